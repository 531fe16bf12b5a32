-- Returns the offset after the chunk (or the site's offset, if "offset" is not it).
CREATE OR REPLACE FUNCTION receive_chunk(package_id text, source_version integer, "offset" bigint,
        data bytea, chunk_sha256 text) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_chunk';
REVOKE ALL ON FUNCTION receive_chunk(text, integer, bigint, bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_chunk(text, integer, bigint, bytea, text) TO smsdist_parent_site;
