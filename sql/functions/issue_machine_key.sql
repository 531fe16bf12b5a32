-- A new machine gets its key in the same transaction as its row, whoever
-- inserts it (an administrator, a parent site's record_machines).
CREATE OR REPLACE FUNCTION issue_machine_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_SCHEMA <> 'smsdist' OR TG_TABLE_NAME <> 'system_resources'
       OR TG_OP <> 'INSERT' OR TG_LEVEL <> 'STATEMENT' THEN
        RAISE EXCEPTION 'issue_machine_key() fires only once per INSERT statement on smsdist.system_resources, not on %.%',
            TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    INSERT INTO smsdist.machine_keys (sms_id, key)
    SELECT sms_id, smsdist.strong_random_bytes(32) FROM new_machines
    ON CONFLICT (sms_id) DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION issue_machine_key() FROM PUBLIC;
