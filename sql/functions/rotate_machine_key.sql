-- A new key for the machine, in hex; status files signed with the old key
-- are refused from now on (give the agent the new one first: docs/agent.md).
CREATE OR REPLACE FUNCTION rotate_machine_key(machine sms_id) RETURNS text
    LANGUAGE plpgsql STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k bytea := smsdist.strong_random_bytes(32);
BEGIN
    UPDATE smsdist.machine_keys SET key = k, created_at = clock_timestamp()
     WHERE sms_id = machine;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'machine % is not in smsdist.system_resources', machine
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN encode(k, 'hex');
END
$$;
REVOKE ALL ON FUNCTION rotate_machine_key(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rotate_machine_key(sms_id) TO smsdist_admin;
