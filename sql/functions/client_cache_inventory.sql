-- Advanced mode: an agent reports its own cache.  The login must speak for
-- the machine (machine_logins); a bad report is refused with the reason.
-- True when recorded, false when a newer report is kept already.
CREATE OR REPLACE FUNCTION client_cache_inventory(p_machine text, p_client_at timestamptz, p_inventory jsonb)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
    before timestamptz;
BEGIN
    PERFORM smsdist.require_machine_login(p_machine);
    IF p_inventory IS NOT NULL AND octet_length(p_inventory::text) > 256 * 1024 THEN
        RAISE EXCEPTION 'cache inventory of machine % refused: it is % bytes, more than 262144',
            p_machine, octet_length(p_inventory::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT c.client_at INTO before FROM smsdist.machine_caches c WHERE c.sms_id = p_machine;
    problem := smsdist.record_cache_inventory(p_machine, p_client_at, p_inventory::text);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'cache inventory of machine % refused: %', p_machine, problem
            USING ERRCODE = CASE WHEN problem LIKE 'machine % is unknown here' THEN 'foreign_key_violation'
                                 ELSE 'invalid_parameter_value' END;
    END IF;
    RETURN before IS NULL OR before < p_client_at;
END
$$;
REVOKE ALL ON FUNCTION client_cache_inventory(text, timestamp with time zone, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client_cache_inventory(text, timestamp with time zone, jsonb) TO smsdist_client;
