-- The Scheduler's safety net, at every step: a job whose last targets were
-- made final by a way that did not finish it (none known; cheap to check).
CREATE OR REPLACE FUNCTION finish_done_jobs() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j text;
    n integer := 0;
BEGIN
    FOR j IN SELECT x.job_id FROM smsdist.jobs x
              WHERE x.state = 'active' AND x.job_type = 'run_command'
                AND EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = x.job_id)
                AND NOT EXISTS (SELECT 1 FROM smsdist.job_target_status t
                                 WHERE t.job_id = x.job_id AND t.state < 'succeeded') LOOP
        IF smsdist.finish_job_if_done(j) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
