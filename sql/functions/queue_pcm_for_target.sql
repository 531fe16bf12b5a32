-- A target that leaves the PCM file (not applicable, cancelled or expired
-- while its job goes on): the machine's file is due.
CREATE OR REPLACE FUNCTION queue_pcm_for_target() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    INSERT INTO smsdist.pcm_queue (sms_id) VALUES (NEW.sms_id)
    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION queue_pcm_for_target() FROM PUBLIC;
