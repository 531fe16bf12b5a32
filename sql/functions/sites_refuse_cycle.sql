-- Refuse a parent that would make a cycle (A under B under A).
CREATE OR REPLACE FUNCTION sites_refuse_cycle() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- two concurrent moves could each pass the check and make a cycle
    -- together: serialize changes of parents (READ COMMITTED sees the other's
    -- committed change once the lock is ours)
    IF NEW.parent_site_code IS NOT NULL THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('smsdist.sites.parent_site_code'));
    END IF;
    IF NEW.parent_site_code IS NOT NULL AND EXISTS (
        WITH RECURSIVE up(code, depth) AS (
            SELECT NEW.parent_site_code::text, 1
            UNION ALL
            SELECT s.parent_site_code::text, up.depth + 1
              FROM smsdist.sites s JOIN up ON s.site_code::text = up.code
             WHERE s.parent_site_code IS NOT NULL AND up.depth < 1000)
        SELECT 1 FROM up WHERE code = NEW.site_code::text)
    THEN
        RAISE EXCEPTION 'site % cannot have parent %: % is already below %',
            NEW.site_code, NEW.parent_site_code, NEW.parent_site_code, NEW.site_code
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION sites_refuse_cycle() FROM PUBLIC;
