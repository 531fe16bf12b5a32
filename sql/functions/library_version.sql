-- The version of the loaded server library, which anyone may ask.
CREATE OR REPLACE FUNCTION library_version() RETURNS text
    LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'smsdist_library_version';
REVOKE ALL ON FUNCTION library_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION library_version() TO PUBLIC;
