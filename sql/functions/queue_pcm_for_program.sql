-- A program changed: the PCM files of this site's machines that its active
-- run-command jobs target are written again (the command line, platforms,
-- maximum run time and run mode are in them).
CREATE OR REPLACE FUNCTION queue_pcm_for_program() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    INSERT INTO smsdist.pcm_queue (sms_id)
    SELECT DISTINCT t.sms_id
      FROM new_rows n
      JOIN smsdist.jobs j ON j.package_id = n.package_id AND j.program_name = n.program_name
      JOIN smsdist.job_target_status t ON t.job_id = j.job_id
      JOIN smsdist.system_resources r ON r.sms_id = t.sms_id
     WHERE j.job_type = 'run_command' AND j.state = 'active'
       AND t.state NOT IN ('cancelled', 'expired')
       AND r.site_code = current_setting('smsdist.site_code')
    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION queue_pcm_for_program() FROM PUBLIC;
