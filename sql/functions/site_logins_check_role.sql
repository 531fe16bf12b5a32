-- A login bound to a site or a machine must be a role that exists and is
-- not a superuser.
CREATE OR REPLACE FUNCTION site_logins_check_role() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = NEW.role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', NEW.role_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = NEW.role_name) THEN
        RAISE EXCEPTION 'role "%" is a superuser: a site''s login must not be', NEW.role_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION site_logins_check_role() FROM PUBLIC;
