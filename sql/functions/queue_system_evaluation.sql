-- Systems: a bulk load (more than 10,000 rows in one statement) queues a
-- full evaluation of every collection instead of one entry per system.
CREATE OR REPLACE FUNCTION queue_system_evaluation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    SELECT count(*) INTO n FROM new_rows;
    IF n > 10000 THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT collection_id FROM smsdist.collections
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO smsdist.system_evaluation_queue (sms_id)
        SELECT n.sms_id FROM new_rows n JOIN old_rows o USING (sms_id)
         WHERE (n.*) IS DISTINCT FROM (o.*)
        ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSE
        INSERT INTO smsdist.system_evaluation_queue (sms_id)
        SELECT sms_id FROM new_rows ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION queue_system_evaluation() FROM PUBLIC;
