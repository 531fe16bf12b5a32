-- A streamed file's final size and SHA-256; returns the offset to send from.
CREATE OR REPLACE FUNCTION receive_total(package_id text, source_version integer, stream_id text,
        total_bytes bigint, sha256 text) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_total';
REVOKE ALL ON FUNCTION receive_total(text, integer, text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_total(text, integer, text, bigint, text) TO smsdist_parent_site;
