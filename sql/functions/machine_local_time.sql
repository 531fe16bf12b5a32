-- A machine's wall-clock time at an instant: from the UTC offset its agent
-- last reported with its cache inventory, else the site's time zone.
CREATE OR REPLACE FUNCTION machine_local_time(p_sms_id text, at timestamptz) RETURNS timestamp
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (at AT TIME ZONE 'UTC') + make_interval(secs => smsdist.machine_utc_offset(p_sms_id)),
        at AT TIME ZONE smsdist.server_time_zone())
$$;
REVOKE ALL ON FUNCTION machine_local_time(text, timestamp with time zone) FROM PUBLIC;
