-- "98 succeeded, 2 failed, 3 not applicable": a job's targets by state.
CREATE OR REPLACE FUNCTION job_target_counts(p_job_id text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(string_agg(n || ' ' || replace(state::text, '_', ' '), ', ' ORDER BY state), 'no targets')
      FROM (SELECT t.state, count(*) AS n FROM smsdist.job_target_status t
             WHERE t.job_id = p_job_id GROUP BY t.state) c
$$;
