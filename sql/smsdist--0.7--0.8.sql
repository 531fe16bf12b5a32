/* smsdist 0.7 -> 0.8: every job and every target ends in a true state.
 *
 * A target (a run-command job or an advertisement, times one machine) has
 * one current state, moved by the agent's own status messages in the same
 * transaction that records them; jobs end when every target at every site
 * is final; cancel, expire and retry reach every site that holds a copy.
 * docs/status-messages.md and docs/data-model.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.8'" to load this file. \quit

-------------------------------------------------------------------------------
-- Target lifecycle
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Job control across the hierarchy (cancel, expire, retry)
-------------------------------------------------------------------------------

-- What each child site must still be told about a job: its copy there
-- follows the job here when the job is cancelled or expires (by an operator
-- or the Scheduler) and when a failed job is retried (failed -> pending).
-- One row per (job, hop): the newest change replaces one not sent yet.  The
-- Sender works the rows off (src/job_control.c) and deletes each once the
-- hop has taken it; a hop that is down keeps its rows, tried again after
-- 2^attempts seconds (at most 60), also after a restart of either site.
CREATE TABLE job_control_pushes (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    state            job_state NOT NULL
                     CONSTRAINT a_child_copy_is_cancelled_expired_or_retried
                     CHECK (state IN ('cancelled', 'expired', 'pending')),
    reason           text,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempted_at     timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    PRIMARY KEY (job_id, hop)
);
COMMENT ON TABLE job_control_pushes IS
    'a job''s cancellation, expiry or retry that the child site hop (and the sites behind it) has not taken yet';
REVOKE ALL ON job_control_pushes FROM PUBLIC;
GRANT SELECT ON job_control_pushes TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_control_pushes', '');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE ON job_control_pushes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

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
CREATE FUNCTION jobs_control_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here text := current_setting('smsdist.site_code', true);
    retry boolean := OLD.state = 'failed' AND NEW.state = 'pending';
    report_columns text;
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
        -- what the last run's reports left: the state and its reason, the
        -- exit code, and the message, sequence and client time that set it
        SELECT string_agg(format(', %I = NULL', a.attname), '' ORDER BY a.attnum) INTO report_columns
          FROM pg_attribute a
         WHERE a.attrelid = 'smsdist.job_target_status'::regclass AND NOT a.attisdropped
           AND a.attname IN ('status_id', 'client_sequence', 'client_at');
        EXECUTE format('UPDATE smsdist.job_target_status t'
                       '   SET state = ''waiting'', detail = NULL, exit_code = NULL,'
                       '       updated_at = clock_timestamp()%s'
                       ' WHERE t.job_id = $1', coalesce(report_columns, ''))
          USING NEW.job_id;
    ELSE
        UPDATE smsdist.job_site_status s
           SET state = 'cancelled', detail = 'the job was ' || NEW.state::text,
               finished_at = clock_timestamp()
         WHERE s.job_id = NEW.job_id AND s.state IN ('waiting', 'running', 'retrying');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_control_change AFTER UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_control_change();

-- Called by the parent's Sender: the parent's job p_job_id was cancelled
-- or expired (p_state), or retried (p_state 'pending'); the copy here
-- follows, and this site's Sender passes it on to the sites below (the
-- trigger above).  Only the parent that sent the job may do so.  Returns
-- what became of the copy: its new state, "unchanged: <state>" when there
-- is nothing to do (a copy that ended already, a retry of a copy that has
-- not failed), or "not here" when the job never reached this site.
CREATE FUNCTION receive_job_state(p_job_id text, p_state text, p_reason text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
    id smsdist.sms_id := p_job_id;
    cur smsdist.job_state;
    why text := left(regexp_replace(coalesce(p_reason, ''), '[[:cntrl:]]', ' ', 'g'), 1000);
    want smsdist.job_state;
BEGIN
    IF p_state IS NULL OR p_state NOT IN ('cancelled', 'expired', 'pending') THEN
        RAISE EXCEPTION 'invalid job state "%": a parent site sets its copies cancelled, expired or pending (retry)',
            left(p_state, 100)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    want := p_state::smsdist.job_state;
    SELECT j.state INTO cur FROM smsdist.jobs j WHERE j.job_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not here';
    END IF;
    PERFORM smsdist.require_sent_by('job', id, source);
    IF (want IN ('cancelled', 'expired') AND cur NOT IN ('pending', 'active'))
       OR (want = 'pending' AND cur <> 'failed') THEN
        RETURN 'unchanged: ' || cur::text;
    END IF;
    UPDATE smsdist.jobs j
       SET state = want,
           state_reason = CASE want WHEN 'pending' THEN 'retried' ELSE want::text END
                          || ' at parent site ' || coalesce(source::text, '(none)')
                          || CASE WHEN why <> '' THEN ' (' || why || ')' ELSE '' END
     WHERE j.job_id = id;
    INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message, job_id, package_id)
    SELECT current_setting('smsdist.site_code'), 'despooler', 'informational', 3322,
           format('Job %s %s by parent site %s%s.', j.job_id,
                  CASE want WHEN 'pending' THEN 'retried' ELSE want::text END,
                  coalesce(source::text, '(none)'), CASE WHEN why <> '' THEN ' (' || why || ')' ELSE '' END),
           j.job_id, j.package_id
      FROM smsdist.jobs j WHERE j.job_id = id;
    RETURN want::text;
END
$$;
REVOKE ALL ON FUNCTION receive_job_state(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_job_state(text, text, text) TO smsdist_parent_site;
REVOKE ALL ON FUNCTION jobs_control_change() FROM PUBLIC;


-------------------------------------------------------------------------------
-- Advanced-mode parity (run-command jobs, user and group advertisements)
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Rerun behaviour, recurrence, not applicable
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Package versions and live jobs
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Every SECURITY DEFINER function and every trigger function: no EXECUTE for
-- PUBLIC (those the roles need are granted in their sections).
-------------------------------------------------------------------------------
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace
                AND (p.prosecdef OR p.prorettype = 'trigger'::regtype) LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
