-- Remove status messages older than smsdist.status_retention (0: keep every
-- message), oldest first, at most p_limit of them (NULL: all), and return
-- how many were removed.  Called by the administrator or on a pg_cron
-- schedule; no worker deletes status messages.
--
-- A target's state lives in its job_target_status or
-- advertisement_target_status row, with the agent's order of the message
-- that set it, so history can go without changing any state.  Kept
-- whatever their age, because something still reads them:
--   * every message of a job that is pending or active, and of an
--     advertisement with a target that is not final (explain() and the
--     administrator follow an unfinished deployment through them);
--   * the message that set a target's current state (status_id of a target
--     row): the evidence of that state, with its exit code;
--   * each machine's newest agent message (agent_last_heard()).
CREATE OR REPLACE FUNCTION prune_status_messages(p_limit integer DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keep_s bigint := (SELECT s.setting::bigint FROM pg_catalog.pg_settings s
                       WHERE s.name = 'smsdist.status_retention');
    removed bigint;
BEGIN
    IF p_limit IS NOT NULL AND p_limit < 0 THEN
        RAISE EXCEPTION 'p_limit must not be negative, not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keep_s IS NULL OR keep_s = 0 THEN
        RETURN 0;
    END IF;
    WITH doomed AS (
        SELECT m.status_id
          FROM smsdist.status_messages m
         WHERE m.at < clock_timestamp() - make_interval(secs => keep_s)
           AND NOT (m.job_id IS NOT NULL AND EXISTS (
                    SELECT 1 FROM smsdist.jobs j
                     WHERE j.job_id = m.job_id AND j.state IN ('pending', 'active')))
           AND NOT (m.advert_id IS NOT NULL AND EXISTS (
                    SELECT 1 FROM smsdist.advertisement_target_status t
                     WHERE t.advert_id = m.advert_id AND NOT smsdist.target_state_is_final(t.state)))
           AND NOT EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.status_id = m.status_id)
           AND NOT EXISTS (SELECT 1 FROM smsdist.advertisement_target_status t WHERE t.status_id = m.status_id)
           AND NOT (m.client_sequence IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM smsdist.status_messages n
                     WHERE n.machine = m.machine AND n.client_sequence IS NOT NULL
                       AND n.client_sequence > m.client_sequence))
         ORDER BY m.at, m.status_id
         LIMIT p_limit),
    gone AS (
        DELETE FROM smsdist.status_messages m USING doomed d
         WHERE m.status_id = d.status_id
        RETURNING 1)
    SELECT count(*) INTO removed FROM gone;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION prune_status_messages(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prune_status_messages(integer) TO smsdist_admin;
