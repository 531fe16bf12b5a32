-- At the child, with the parent's answer to its cache report: the rows the
-- parent took (unchanged since) are no longer pending.
CREATE OR REPLACE FUNCTION caches_reported(report jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE smsdist.machine_caches c SET report_pending = false
      FROM jsonb_array_elements(report) r
     WHERE c.sms_id = r->>'sms_id' AND c.reported_at = (r->>'reported_at')::timestamptz;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION caches_reported(jsonb) FROM PUBLIC;
