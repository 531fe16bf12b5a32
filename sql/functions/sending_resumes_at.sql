-- The first hour, after at, in which a rate-limited sender address may send
-- (its hourly_rate_pct, hours of the server's time zone as the Sender
-- reads them); NULL if it never may.
CREATE OR REPLACE FUNCTION sending_resumes_at(hourly_rate_pct smallint[], at timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := smsdist.server_time_zone();
    local_hour timestamp := date_trunc('hour', at AT TIME ZONE tz);
BEGIN
    FOR h IN 1..24 LOOP
        IF coalesce(hourly_rate_pct[extract(hour FROM local_hour + make_interval(hours => h))::int + 1], 0) > 0 THEN
            RETURN (local_hour + make_interval(hours => h)) AT TIME ZONE tz;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION sending_resumes_at(smallint[], timestamp with time zone) FROM PUBLIC;
