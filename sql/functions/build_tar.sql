CREATE OR REPLACE FUNCTION build_tar(source_directory text, tar_path text) RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_build_tar';
REVOKE ALL ON FUNCTION build_tar(text, text) FROM PUBLIC;
