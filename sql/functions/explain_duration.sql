-- A duration as explain() writes it.
CREATE OR REPLACE FUNCTION explain_duration(d interval) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE WHEN s < 100 THEN round(s) || ' s'
                        WHEN s < 6000 THEN round(s / 60) || ' min'
                        WHEN s < 172800 THEN round(s / 3600, 1) || ' h'
                        ELSE round(s / 86400, 1) || ' days' END
              FROM (SELECT greatest(extract(epoch FROM d), 0) AS s) x);
REVOKE ALL ON FUNCTION explain_duration(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION explain_duration(interval) TO smsdist_reader;
