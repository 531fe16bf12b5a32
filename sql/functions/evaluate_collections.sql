-- A full evaluation on demand (for pg_cron schedules): every collection, or
-- one and whatever depends on it.  The queue has no wake-up trigger of its
-- own (its other writers are triggers on tables that wake the Collection
-- Evaluator), so the call wakes it: without that the evaluation would wait
-- for smsdist.poll_interval.
CREATE OR REPLACE FUNCTION evaluate_collections(p_collection_id sms_id DEFAULT NULL) RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT smsdist.wake('collection_evaluator');
    WITH q AS (
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT collection_id FROM smsdist.collections
         WHERE p_collection_id IS NULL OR collection_id = p_collection_id
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = clock_timestamp()
        RETURNING 1)
    SELECT count(*)::integer FROM q
$$;
REVOKE ALL ON FUNCTION evaluate_collections(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evaluate_collections(sms_id) TO smsdist_operator;
