-- At the child, with the parent's answer to its target report: the rows
-- the parent took (unchanged since) are no longer pending.
CREATE OR REPLACE FUNCTION targets_reported(report jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
    m integer;
BEGIN
    UPDATE smsdist.job_target_status t SET report_pending = false
      FROM jsonb_array_elements(report) r
     WHERE r->>'kind' = 'job' AND t.job_id = r->>'id' AND t.sms_id = r->>'sms_id'
       AND t.updated_at = (r->>'at')::timestamptz;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE smsdist.advertisement_target_status t SET report_pending = false
      FROM jsonb_array_elements(report) r
     WHERE r->>'kind' = 'advertisement' AND t.advert_id = r->>'id' AND t.sms_id = r->>'sms_id'
       AND t.updated_at = (r->>'at')::timestamptz;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
