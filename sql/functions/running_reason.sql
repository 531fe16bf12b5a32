-- A running program, in words: since when, and when the agent stops it.
CREATE OR REPLACE FUNCTION running_reason(client_at timestamptz, max_run_minutes integer) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN format('its program is running since %s (%s)%s', smsdist.explain_time(client_at),
                  smsdist.explain_duration(clock_timestamp() - client_at),
                  CASE WHEN max_run_minutes IS NOT NULL
                       THEN format('; the agent stops it at %s if it still runs (maximum run time %s min)',
                                   smsdist.explain_time(client_at + make_interval(mins => max_run_minutes)),
                                   max_run_minutes) ELSE '' END);
REVOKE ALL ON FUNCTION running_reason(timestamp with time zone, integer) FROM PUBLIC;
