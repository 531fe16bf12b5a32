-- A path inside a package's tree (packages.icon_file): relative, no empty,
-- "." or ".." component, no backslash or control character, not a
-- directory (no trailing '/'): the rule of every path a package holds
-- (src/package/package_manifest.c).  Links and special files are refused
-- where the file is read, since only then is it known what the path is.
CREATE OR REPLACE FUNCTION check_package_path(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_package_path';
REVOKE ALL ON FUNCTION check_package_path(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION check_package_path(text) TO PUBLIC;
