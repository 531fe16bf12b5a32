-- Trigger on job_target_status (one per event, with its transition
-- tables): add the targets a statement put into each state and take away
-- those it took out of one, as rows of metric_counts for
-- smsdist_job_targets.  A TRUNCATE sets every state to zero.
CREATE OR REPLACE FUNCTION count_targets() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_OP = 'TRUNCATE' THEN
        -- wait for a folding in progress, whose rows this must see
        PERFORM pg_advisory_xact_lock(hashtext('smsdist.metric_counts'));
        DELETE FROM smsdist.metric_counts WHERE metric = 'smsdist_job_targets';
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO smsdist.metric_counts (metric, label, value)
        SELECT 'smsdist_job_targets', state::text, count(*) FROM new_targets GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO smsdist.metric_counts (metric, label, value)
        SELECT 'smsdist_job_targets', state::text, -count(*) FROM old_targets GROUP BY state;
    ELSE
        INSERT INTO smsdist.metric_counts (metric, label, value)
        SELECT 'smsdist_job_targets', state::text, sum(n)
          FROM (SELECT state, 1 AS n FROM new_targets
                UNION ALL
                SELECT state, -1 FROM old_targets) moved
         GROUP BY state
        HAVING sum(n) <> 0;
    END IF;
    PERFORM smsdist.compact_metric_counts();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION count_targets() FROM PUBLIC;
