CREATE OR REPLACE FUNCTION check_command_line(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_command_line';
REVOKE ALL ON FUNCTION check_command_line(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION check_command_line(text) TO PUBLIC;
