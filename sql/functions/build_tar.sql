-- The package archive tools (C, src/package): build a package file from a
-- source directory, extract one, publish a package on a share and take it
-- off again.
CREATE OR REPLACE FUNCTION build_tar(source_directory text, tar_path text) RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_build_tar';
REVOKE ALL ON FUNCTION build_tar(text, text) FROM PUBLIC;
