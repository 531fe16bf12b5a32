-- The site the calling login speaks for, as the parent of this site
-- (direction 'parent') or as one of its children ('child'); an error if it
-- speaks for no site or another one.  session_user, not current_user: the
-- functions that call this are SECURITY DEFINER.  A superuser may act as
-- the parent (the result is this site's parent, NULL if it has none) or as
-- any child (NULL).
CREATE OR REPLACE FUNCTION calling_site(direction text) RETURNS site_code
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here smsdist.site_code := current_setting('smsdist.site_code');
    login name := session_user;
    bound smsdist.site_code;
    parent smsdist.site_code;
BEGIN
    IF direction IS NULL OR direction NOT IN ('parent', 'child') THEN
        RAISE EXCEPTION 'invalid direction "%": parent or child', direction
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.parent_site_code INTO parent FROM smsdist.sites s WHERE s.site_code = here;
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = login) THEN
        RETURN CASE direction WHEN 'parent' THEN parent END;
    END IF;
    SELECT l.site_code INTO bound FROM smsdist.site_logins l WHERE l.role_name = login;
    IF bound IS NULL THEN
        RAISE EXCEPTION 'login "%" does not speak for any site at site %', login, here
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An administrator binds the login another site uses here to that site: INSERT INTO smsdist.site_logins (role_name, site_code).';
    END IF;
    IF direction = 'parent' AND bound IS DISTINCT FROM parent THEN
        RAISE EXCEPTION 'login "%" speaks for site %, which is not the parent site of site %', login, bound, here
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF direction = 'child' AND NOT EXISTS (SELECT 1 FROM smsdist.sites s
                                            WHERE s.site_code = bound AND s.parent_site_code = here) THEN
        RAISE EXCEPTION 'login "%" speaks for site %, which is not a child site of site %', login, bound, here
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN bound;
END
$$;
REVOKE ALL ON FUNCTION calling_site(text) FROM PUBLIC;
