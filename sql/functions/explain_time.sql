-- Times and durations as explain() writes them.
CREATE OR REPLACE FUNCTION explain_time(t timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN to_char(t, 'YYYY-MM-DD HH24:MI:SSOF');
REVOKE ALL ON FUNCTION explain_time(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION explain_time(timestamp with time zone) TO smsdist_reader;
