-- A logon server or site-server drive added, moved or enabled: every PCM
-- file of this site is written again, so that it has them all.
CREATE OR REPLACE FUNCTION queue_all_pcm() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF EXISTS (SELECT 1 FROM new_rows n WHERE n.role IN ('logon_server', 'site_server_drive')) THEN
        INSERT INTO smsdist.pcm_queue (sms_id) SELECT sms_id FROM smsdist.pcm_files ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION queue_all_pcm() FROM PUBLIC;
