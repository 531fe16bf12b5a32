-- A job that ends otherwise than by its targets takes them with it: what
-- has not ended is cancelled or expired with the job, or fails with it
-- (its reason in each target's detail).
CREATE OR REPLACE FUNCTION end_job_targets() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.state IN ('cancelled', 'expired', 'failed') AND NEW.state IS DISTINCT FROM OLD.state
       AND NEW.job_type = 'run_command' THEN
        UPDATE smsdist.job_target_status t
           SET state = NEW.state::text::smsdist.target_state,
               detail = format('job %s %s%s', NEW.job_id, NEW.state,
                               CASE WHEN NEW.state_reason IS NOT NULL THEN ': ' || NEW.state_reason ELSE '' END),
               exit_code = NULL, status_id = NULL
         WHERE t.job_id = NEW.job_id AND t.state < 'succeeded';
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION end_job_targets() FROM PUBLIC;
