-- A queue row that is already there is updated, not left alone: a worker
-- that takes the row (DELETE) then waits for this transaction, and reads
-- the tables after it committed.  With DO NOTHING a change committed while
-- the worker evaluated with an older snapshot could be lost.
CREATE OR REPLACE FUNCTION queue_collection_evaluation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_OP IN ('UPDATE', 'DELETE') AND TG_TABLE_NAME = 'collection_rules' THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT DISTINCT o.collection_id FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM smsdist.collections c WHERE c.collection_id = o.collection_id)
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'collections' THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT n.collection_id FROM new_rows n JOIN old_rows o USING (collection_id)
         WHERE n.limiting_collection_id IS DISTINCT FROM o.limiting_collection_id
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT DISTINCT n.collection_id FROM new_rows n ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION queue_collection_evaluation() FROM PUBLIC;
