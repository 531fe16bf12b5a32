-- Fold the rows of metric_counts into one per series, so that the view
-- sums few rows.  Called by the counting triggers; folds in about one
-- counting transaction in sixteen, once in it (the session setting
-- smsdist_metrics.folded_in remembers the transaction: a Status Manager
-- batch calls this once per message), and never waits: a transaction
-- that finds another folding skips it.  Only under READ COMMITTED, where
-- each statement sees the rows committed before it (under REPEATABLE READ
-- a row another folding had deleted would raise a serialization error in
-- the counted transaction).
CREATE OR REPLACE FUNCTION compact_metric_counts() RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    xid text := pg_current_xact_id()::text;
BEGIN
    IF xid::bigint % 16 <> 0
       OR current_setting('smsdist_metrics.folded_in', true) IS NOT DISTINCT FROM xid
       OR current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_try_advisory_xact_lock(hashtext('smsdist.metric_counts')) THEN
        RETURN;
    END IF;
    -- a session setting, not a local one: it outlives this function's SET
    PERFORM set_config('smsdist_metrics.folded_in', xid, false);
    WITH folded AS (DELETE FROM smsdist.metric_counts RETURNING metric, label, value)
    INSERT INTO smsdist.metric_counts (metric, label, value)
    SELECT metric, label, sum(value) FROM folded GROUP BY metric, label HAVING sum(value) <> 0;
END
$$;
REVOKE ALL ON FUNCTION compact_metric_counts() FROM PUBLIC;
