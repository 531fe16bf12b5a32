CREATE OR REPLACE FUNCTION check_netbios_name(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_netbios_name';
REVOKE ALL ON FUNCTION check_netbios_name(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION check_netbios_name(text) TO PUBLIC;
