-- A job's targets or state changed: the PCM files of the machines
-- concerned are due.
CREATE OR REPLACE FUNCTION queue_pcm() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_TABLE_NAME = 'jobs' THEN
        -- a run-command job changed state (expired, cancelled, ...)
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT t.sms_id
          FROM new_rows n JOIN old_rows o USING (job_id)
          JOIN smsdist.job_target_status t ON t.job_id = n.job_id
         WHERE n.job_type = 'run_command' AND n.state IS DISTINCT FROM o.state
        ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP = 'DELETE' THEN
        -- (also for a deleted machine: its files must go)
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT o.sms_id FROM old_rows o ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSE
        -- New targets.  Not those whose job's distribution at their site
        -- this very transaction wrote and is not done (a job being
        -- activated, 100,000 machines at once): nobody can finish that
        -- distribution before this commits, and the Despooler that does
        -- queues every machine of the job then, these included.
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT n.sms_id FROM new_rows n
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.job_site_status s
                            WHERE s.job_id = n.job_id AND s.site_code = n.site_code
                              AND s.phase = 'distribute' AND s.state <> 'done'
                              AND s.xmin = pg_current_xact_id()::xid)
        ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION queue_pcm() FROM PUBLIC;
