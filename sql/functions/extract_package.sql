-- Extract a package file into a directory (C).
CREATE OR REPLACE FUNCTION extract_package(package_file text, destination text) RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_extract_package';
REVOKE ALL ON FUNCTION extract_package(text, text) FROM PUBLIC;
