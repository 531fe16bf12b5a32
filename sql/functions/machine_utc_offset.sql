-- The UTC offset (seconds) a machine's agent last reported, or NULL.
CREATE OR REPLACE FUNCTION machine_utc_offset(p_sms_id text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL: machine_caches is made further down this script)
    RETURN (SELECT c.utc_offset_seconds FROM smsdist.machine_caches c WHERE c.sms_id = p_sms_id);
END
$$;
REVOKE ALL ON FUNCTION machine_utc_offset(text) FROM PUBLIC;
