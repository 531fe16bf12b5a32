/* smsdist 0.5 -> 0.6: a package is sent while it is compressed.
 *
 * The package builder appends the compressed members to its output file in
 * order as they are done; that file is final up to its current size.  The
 * builder names it with a stream ID, recorded in package_builds.stream_id
 * while the build runs.  The Sender may send such a file to a site that
 * holds no version of the package yet (no delta is possible) before the
 * build is ready: receive_begin without size and hash but with the stream
 * ID, chunks as the file grows, then receive_total with the final size and
 * hash once the build is ready, the rest, and receive_end (which checks the
 * whole file, as always).  A builder that starts over writes another stream
 * (another ID): the site drops what it had of the old one.
 * docs/packages.md#sending-while-compressing. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.6'" to load this file. \quit

ALTER TABLE package_builds
    ADD COLUMN stream_id text CONSTRAINT stream_id_format CHECK (stream_id ~ '^[0-9a-f]{16}$');
COMMENT ON COLUMN package_builds.stream_id IS
    'while building: the ID of the package file being written (<stem>.tar.gz.<stream_id>.tmp in the package store), which the Sender may send as it grows';

ALTER TABLE package_transfers
    ALTER COLUMN total_bytes DROP NOT NULL,
    ALTER COLUMN sha256 DROP NOT NULL,
    ADD COLUMN stream_id text CONSTRAINT stream_id_format CHECK (stream_id ~ '^[0-9a-f]{16}$'),
    ADD CONSTRAINT size_known_or_streamed CHECK (
        (total_bytes IS NULL) = (sha256 IS NULL) AND (total_bytes IS NOT NULL OR stream_id IS NOT NULL));
COMMENT ON COLUMN package_transfers.stream_id IS
    'the parent''s stream ID when the file was sent while the parent compressed it; total_bytes and sha256 stay NULL until the parent knows them (receive_total)';

DROP FUNCTION receive_begin(text, integer, bigint, text, text, text, integer);
-- Returns the offset to send from (total_bytes: the site has this file).
-- base_version: the file is a delta from that version (NULL: full file).
-- stream_id: the file is sent while the parent writes it; total_bytes and
-- sha256 are then NULL (receive_total gives them later).
CREATE FUNCTION receive_begin(package_id text, source_version integer, total_bytes bigint,
        sha256 text, package_name text, source_directory text,
        base_version integer DEFAULT NULL, stream_id text DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_begin';

-- A streamed file's final size and SHA-256; returns the offset to send from.
CREATE FUNCTION receive_total(package_id text, source_version integer, stream_id text,
        total_bytes bigint, sha256 text) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_total';

REVOKE ALL ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer, text),
    receive_total(text, integer, text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer, text),
    receive_total(text, integer, text, bigint, text) TO smsdist_site;
