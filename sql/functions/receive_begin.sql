-- Returns the offset to send from (total_bytes: the site has this file).
-- base_version: the file is a delta from that version (NULL: full file).
-- stream_id: the file is sent while the parent writes it; total_bytes and
-- sha256 are then NULL (receive_total gives them later).
CREATE OR REPLACE FUNCTION receive_begin(package_id text, source_version integer, total_bytes bigint,
        sha256 text, package_name text, source_directory text,
        base_version integer DEFAULT NULL, stream_id text DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_begin';
REVOKE ALL ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer, text) TO smsdist_parent_site;
