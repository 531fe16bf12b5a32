-- When remaining bytes will have moved at rate bytes per second, starting at
-- from_time, under a sender address's throttling.  rate_limited: the rate
-- measured is taken as the rate of the current hour's share of the link, and
-- each later hour moves its own share (hourly_rate_pct, hours of the day in
-- time_zone, by default the server's timezone setting, as the Sender reads
-- them); an hour at 0 % moves nothing.  NULL when it cannot be known: no
-- remaining figure, no rate, or more than 31 days away.
CREATE OR REPLACE FUNCTION transfer_eta(remaining bigint, rate numeric, throttle throttle_mode,
                             hourly_rate_pct smallint[], from_time timestamptz,
                             time_zone text DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := coalesce(time_zone, smsdist.server_time_zone());
    t timestamptz := from_time;
    left_bytes numeric := remaining;
    full_rate numeric;
    pct_now integer;
    hour_rate numeric;
    hour_end timestamptz;
    capacity numeric;
BEGIN
    IF remaining IS NULL OR rate IS NULL OR rate <= 0 OR from_time IS NULL THEN
        RETURN NULL;
    END IF;
    IF remaining <= 0 THEN
        RETURN from_time;
    END IF;
    IF throttle IS DISTINCT FROM 'rate_limited' OR hourly_rate_pct IS NULL
       OR cardinality(hourly_rate_pct) <> 24 THEN
        IF remaining / rate > 31 * 86400 THEN
            RETURN NULL;
        END IF;
        RETURN from_time + make_interval(secs => (remaining / rate)::double precision);
    END IF;
    pct_now := hourly_rate_pct[extract(hour FROM from_time AT TIME ZONE tz)::integer + 1];
    full_rate := CASE WHEN pct_now > 0 THEN rate * 100 / pct_now ELSE rate END;
    FOR i IN 1 .. 31 * 24 + 1 LOOP
        hour_rate := full_rate * hourly_rate_pct[extract(hour FROM t AT TIME ZONE tz)::integer + 1] / 100;
        hour_end := (date_trunc('hour', t AT TIME ZONE tz) + interval '1 hour') AT TIME ZONE tz;
        capacity := hour_rate * extract(epoch FROM hour_end - t);
        IF hour_rate > 0 AND capacity >= left_bytes THEN
            RETURN t + make_interval(secs => (left_bytes / hour_rate)::double precision);
        END IF;
        left_bytes := left_bytes - capacity;
        t := hour_end;
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION transfer_eta(bigint, numeric, throttle_mode, smallint[], timestamp with time zone, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION transfer_eta(bigint, numeric, throttle_mode, smallint[], timestamp with time zone, text) TO smsdist_reader;
