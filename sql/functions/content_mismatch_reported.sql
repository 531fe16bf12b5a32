-- A machine could not download a package (10004: no location had it, or its
-- manifest or a file did not verify): the distribution points of its site
-- that hold the package are validated at once (the Despooler is woken).  A
-- location already queued is left as it is, so that many machines
-- reporting the same damage while it waits cause one check.
CREATE OR REPLACE FUNCTION content_mismatch_reported() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pkg smsdist.sms_id;
    site smsdist.site_code;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    pkg := coalesce(NEW.package_id,
                    (SELECT j.package_id FROM smsdist.jobs j WHERE j.job_id = NEW.job_id),
                    (SELECT a.package_id FROM smsdist.advertisements a WHERE a.advert_id = NEW.advert_id));
    SELECT r.site_code INTO site FROM smsdist.system_resources r WHERE r.sms_id::text = NEW.machine;
    IF pkg IS NULL OR site IS NULL OR site::text IS DISTINCT FROM current_setting('smsdist.site_code', true) THEN
        RETURN NULL;
    END IF;
    INSERT INTO smsdist.content_validations AS v (package_id, site_code, site_system_id, requested_at, requested_by)
    SELECT l.package_id, l.site_code, l.site_system_id, clock_timestamp(),
           format('machine %s (status message %s)', NEW.machine, NEW.status_id)
      FROM smsdist.package_locations l
      JOIN smsdist.site_systems d ON d.site_system_id = l.site_system_id AND d.site_code = l.site_code
     WHERE l.package_id = pkg AND l.site_code = site AND d.role = 'distribution_point' AND d.enabled
    ON CONFLICT ON CONSTRAINT content_validations_pkey DO UPDATE
       SET requested_at = EXCLUDED.requested_at, requested_by = EXCLUDED.requested_by
     WHERE v.requested_at IS NULL;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION content_mismatch_reported() FROM PUBLIC;
