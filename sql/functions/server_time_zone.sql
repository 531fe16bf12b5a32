-- The time zone whose hours a sender address's hourly_rate_pct counts: the
-- server's timezone setting (what the Sender's session has), not the
-- caller's session.
CREATE OR REPLACE FUNCTION server_time_zone() RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT s.reset_val FROM pg_catalog.pg_settings s WHERE s.name = 'TimeZone');
REVOKE ALL ON FUNCTION server_time_zone() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION server_time_zone() TO smsdist_reader;
