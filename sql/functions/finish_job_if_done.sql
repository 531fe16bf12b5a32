-- A run-command job ends when none of its targets, at any site, is still
-- on its way.  The job's row is locked first: of two transactions that
-- finish its last two targets at once, the second sees the first's.
CREATE OR REPLACE FUNCTION finish_job_if_done(p_job_id text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM smsdist.jobs j WHERE j.job_id = p_job_id AND j.state = 'active'
                                   AND j.job_type = 'run_command' FOR NO KEY UPDATE;
    IF NOT FOUND
       OR NOT EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = p_job_id)
       OR EXISTS (SELECT 1 FROM smsdist.job_target_status t
                   WHERE t.job_id = p_job_id AND t.state < 'succeeded') THEN
        RETURN false;
    END IF;
    UPDATE smsdist.jobs SET state = 'completed',
           state_reason = CASE WHEN EXISTS (SELECT 1 FROM smsdist.job_target_status t
                                             WHERE t.job_id = p_job_id AND t.state = 'failed')
                               THEN 'with failures: ' ELSE '' END
                          || smsdist.job_target_counts(p_job_id)
     WHERE job_id = p_job_id;
    RETURN true;
END
$$;
