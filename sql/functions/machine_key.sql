-- The key to give the machine's agent (its --machine-key file), in hex.
CREATE OR REPLACE FUNCTION machine_key(machine sms_id) RETURNS text
    LANGUAGE plpgsql STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k bytea;
BEGIN
    SELECT key INTO k FROM smsdist.machine_keys WHERE sms_id = machine;
    IF k IS NULL THEN
        RAISE EXCEPTION 'machine % is not in smsdist.system_resources', machine
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN encode(k, 'hex');
END
$$;
REVOKE ALL ON FUNCTION machine_key(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION machine_key(sms_id) TO smsdist_admin;
