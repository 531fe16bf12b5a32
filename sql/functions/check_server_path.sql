CREATE OR REPLACE FUNCTION check_server_path(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_server_path';
REVOKE ALL ON FUNCTION check_server_path(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION check_server_path(text) TO PUBLIC;
