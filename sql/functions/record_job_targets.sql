-- A child's targets of a run-command job, as its parent sends them: a
-- machine no longer sent was taken out of the job before its program ran
-- here (not applicable); one that comes back and nobody reported on is
-- waiting again.
CREATE OR REPLACE FUNCTION record_job_targets(p_job_id text, machines jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted text[];
    n integer;
    m integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM smsdist.jobs WHERE job_id = p_job_id AND job_type = 'run_command') THEN
        RAISE EXCEPTION 'run-command job % is not at site %', p_job_id, current_setting('smsdist.site_code')
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM smsdist.record_machines(machines);
    SELECT coalesce(array_agg(x->>'sms_id'), '{}') INTO wanted FROM jsonb_array_elements(machines) x;
    UPDATE smsdist.job_target_status t
       SET state = 'not_applicable',
           detail = format('the machine is no longer a target of job %s (it left the job''s collection) before its program ran', p_job_id),
           status_id = NULL
     WHERE t.job_id = p_job_id AND NOT t.sms_id = ANY (wanted) AND t.state < 'running';
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO smsdist.job_target_status AS t (job_id, sms_id, site_code)
    SELECT p_job_id, r.sms_id, r.site_code FROM smsdist.system_resources r
     WHERE r.sms_id = ANY (wanted)
       AND EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = p_job_id AND j.state IN ('pending', 'active'))
    ON CONFLICT (job_id, sms_id) DO UPDATE SET state = 'waiting', detail = NULL
     WHERE t.state = 'not_applicable' AND t.status_id IS NULL;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
REVOKE ALL ON FUNCTION record_job_targets(text, jsonb) FROM PUBLIC;
