-- The instant a machine's wall-clock time reads local.
CREATE OR REPLACE FUNCTION machine_instant(p_sms_id text, local timestamp) RETURNS timestamptz
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (local - make_interval(secs => smsdist.machine_utc_offset(p_sms_id))) AT TIME ZONE 'UTC',
        local AT TIME ZONE smsdist.server_time_zone())
$$;
REVOKE ALL ON FUNCTION machine_instant(text, timestamp without time zone) FROM PUBLIC;
