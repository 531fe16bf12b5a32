-- An advertisement's targets that have not ended when it expires are
-- expired.  An expiry in local time has passed on every machine 12 hours
-- after it passed in UTC (the westernmost time zone).  The Scheduler calls
-- this at every step.
CREATE OR REPLACE FUNCTION expire_advertisement_targets() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE smsdist.advertisement_target_status t
       SET state = 'expired', status_id = NULL,
           detail = format('advertisement %s expired at %s%s', a.advert_id,
                           to_char(a.expires_time, 'YYYY-MM-DD HH24:MI'),
                           CASE WHEN a.expires_time_utc THEN ' UTC' ELSE ' local time' END)
      FROM smsdist.advertisements a
     WHERE a.advert_id = t.advert_id AND t.state < 'succeeded' AND a.expires_time IS NOT NULL
       AND (a.expires_time AT TIME ZONE 'UTC')
           + CASE WHEN a.expires_time_utc THEN interval '0' ELSE interval '12 hours' END <= clock_timestamp();
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
