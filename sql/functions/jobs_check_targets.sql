-- Listed target machines and sites must exist (arrays cannot have foreign
-- keys).  SECURITY DEFINER: operators may not read every table it checks.
CREATE OR REPLACE FUNCTION jobs_check_targets() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.target_machines IS NOT NULL THEN
        SELECT string_agg(m, ', ' ORDER BY m) INTO missing
          FROM (SELECT DISTINCT unnest(NEW.target_machines)::text AS m) t
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id::text = t.m);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'job % targets unknown machine(s): %', NEW.job_id, left(missing, 400)
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'Target machines must be rows of smsdist.system_resources.';
        END IF;
    END IF;
    IF NEW.target_sites IS NOT NULL THEN
        SELECT string_agg(c, ', ' ORDER BY c) INTO missing
          FROM (SELECT DISTINCT unnest(NEW.target_sites)::text AS c) t
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code::text = t.c);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'job % targets unknown site(s): %', NEW.job_id, missing
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'Target sites must be rows of smsdist.sites.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION jobs_check_targets() FROM PUBLIC;
