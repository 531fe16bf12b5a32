-- The mandatory times of an advertisement on one machine: the last that
-- passed and the next to come (assignment times in UTC, or in the
-- machine's own time; recurring ones repeat).
CREATE OR REPLACE FUNCTION advertisement_mandatory_times(p_advert_id text, p_sms_id text,
        OUT last_passed timestamptz, OUT next_due timestamptz)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH base AS (
        SELECT CASE WHEN a.assign_time_utc THEN a.assign_time AT TIME ZONE 'UTC'
                    ELSE smsdist.machine_instant(p_sms_id, a.assign_time) END AS t0,
               a.recur_every
          FROM smsdist.advertisement_assignments a WHERE a.advert_id = p_advert_id),
    k AS (
        SELECT t0, recur_every,
               CASE WHEN recur_every IS NULL OR recur_every <= interval '0' OR t0 > clock_timestamp() THEN 0
                    ELSE floor(extract(epoch FROM clock_timestamp() - t0) / extract(epoch FROM recur_every))::bigint END AS n
          FROM base)
    SELECT max(CASE WHEN t0 <= clock_timestamp() THEN t0 + coalesce(recur_every, interval '0') * n END),
           min(CASE WHEN t0 > clock_timestamp() THEN t0
                    WHEN recur_every > interval '0' THEN t0 + recur_every * (n + 1) END)
      FROM k
$$;
REVOKE ALL ON FUNCTION advertisement_mandatory_times(text, text) FROM PUBLIC;
