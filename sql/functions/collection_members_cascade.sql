-- Deleted systems and collections take their membership rows with them
-- (collection_members has no foreign keys).
CREATE OR REPLACE FUNCTION collection_members_cascade() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_TABLE_NAME = 'system_resources' THEN
        DELETE FROM smsdist.collection_members m USING old_rows o WHERE m.sms_id = o.sms_id;
    ELSE
        DELETE FROM smsdist.collection_members m USING old_rows o WHERE m.collection_id = o.collection_id;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION collection_members_cascade() FROM PUBLIC;
