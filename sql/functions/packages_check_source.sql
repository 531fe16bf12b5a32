-- The source directory of one of this site's own packages must be allowed
-- (require_allowed_source()).
CREATE OR REPLACE FUNCTION packages_check_source() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- a received package's source is the parent's path: never built here;
    -- and an INSERT ... ON CONFLICT of a package that exists inserts nothing
    -- (this trigger sees its proposed row all the same)
    IF NEW.source_site IS NULL
       AND (TG_OP = 'UPDATE' OR NOT EXISTS (SELECT 1 FROM smsdist.packages p
                                             WHERE p.package_id = NEW.package_id)) THEN
        PERFORM smsdist.require_allowed_source(NEW.source_directory);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION packages_check_source() FROM PUBLIC;
