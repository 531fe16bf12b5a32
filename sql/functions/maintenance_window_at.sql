-- The maintenance windows of a machine (those of every collection it is a
-- member of) at its local time local_now: whether it is inside one, and
-- which opens next.  has_windows is false when the machine has none.
CREATE OR REPLACE FUNCTION maintenance_window_at(p_sms_id text, local_now timestamp,
        OUT has_windows boolean, OUT inside boolean, OUT next_window text, OUT next_opens timestamp)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT w.name, w.start_time, w.duration_minutes, w.days
          FROM smsdist.maintenance_windows w
          JOIN smsdist.collection_members m ON m.collection_id = w.collection_id AND m.sms_id = p_sms_id
         WHERE w.enabled),
    starts AS (
        SELECT w.name, date_trunc('day', local_now) + make_interval(days => d) + w.start_time AS opens,
               w.duration_minutes
          FROM w CROSS JOIN generate_series(-7, 7) d
         WHERE (ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])
                   [extract(dow FROM date_trunc('day', local_now) + make_interval(days => d))::int + 1]::smsdist.weekday
               = ANY (w.days))
    SELECT EXISTS (SELECT 1 FROM w),
           EXISTS (SELECT 1 FROM starts s
                    WHERE s.opens <= local_now AND local_now < s.opens + make_interval(mins => s.duration_minutes)),
           (SELECT s.name::text FROM starts s WHERE s.opens > local_now ORDER BY s.opens, s.name LIMIT 1),
           (SELECT min(s.opens) FROM starts s WHERE s.opens > local_now)
$$;
REVOKE ALL ON FUNCTION maintenance_window_at(text, timestamp without time zone) FROM PUBLIC;
