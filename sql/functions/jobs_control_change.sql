-- A job's state changed: queue what its copies below must follow, and
-- bring this site's rows of the job in line.
--   cancelled, expired: the send and distribute rows still open end
--     ('cancelled', the detail says why); the targets are the target
--     lifecycle's.
--   failed -> pending (retry): every per-site row goes, the per-target rows
--     are waiting again, so that the job runs again from the start (the
--     Scheduler makes the per-site rows anew) and no old failure fails it
--     again.
-- The hops are those of every site the job has a row for, and those that
-- still wait for an earlier change (a retry not sent yet, which a cancel
-- replaces): a hop that never received the job answers that it is not
-- there.  A retry is sent once the job is active again here (the Sender),
-- so that a copy does not run before its job.
CREATE OR REPLACE FUNCTION jobs_control_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here text := current_setting('smsdist.site_code', true);
    retry boolean := OLD.state = 'failed' AND NEW.state = 'pending';
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.state IS NOT DISTINCT FROM OLD.state
       OR NOT (retry OR NEW.state IN ('cancelled', 'expired')) THEN
        RETURN NULL;
    END IF;

    INSERT INTO smsdist.job_control_pushes AS c (job_id, hop, state, reason)
    SELECT NEW.job_id, h.hop, NEW.state,
           left(format('%s at site %s by %s%s', CASE WHEN retry THEN 'retried' ELSE NEW.state::text END,
                       here, NEW.state_changed_by, ': ' || NEW.state_reason), 1000)
      FROM (SELECT smsdist.route_hop(s.site_code) AS hop
              FROM smsdist.job_site_status s
             WHERE s.job_id = NEW.job_id AND s.site_code::text IS DISTINCT FROM here
             UNION
            SELECT c.hop FROM smsdist.job_control_pushes c WHERE c.job_id = NEW.job_id) h
     WHERE h.hop IS NOT NULL
    ON CONFLICT (job_id, hop) DO UPDATE
       SET state = EXCLUDED.state, reason = EXCLUDED.reason, queued_at = clock_timestamp(),
           attempted_at = NULL, attempts = 0, last_error = NULL;

    IF retry THEN
        DELETE FROM smsdist.job_site_status s WHERE s.job_id = NEW.job_id;
        -- the targets the job's failure ended (end_job_targets: "job X
        -- failed: ..."; at a parent, as a child reported its copy's) wait
        -- again, without what the last run left (the message, sequence and
        -- client time that set them).  A target an agent ended keeps its
        -- state: its program ran (or cannot run there), and the agent,
        -- which remembers that, would never report it again.  (A copy's
        -- reset is reported to its parent: target_changed.)
        UPDATE smsdist.job_target_status t
           SET state = 'waiting', detail = NULL, exit_code = NULL, status_id = NULL,
               client_sequence = NULL, client_at = NULL
         WHERE t.job_id = NEW.job_id
           AND (t.state < 'succeeded' OR t.detail LIKE 'job ' || NEW.job_id || ' failed%');
    ELSE
        UPDATE smsdist.job_site_status s
           SET state = 'cancelled', detail = 'the job was ' || NEW.state::text,
               finished_at = clock_timestamp()
         WHERE s.job_id = NEW.job_id AND s.state IN ('waiting', 'running', 'retrying');
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION jobs_control_change() FROM PUBLIC;
