-- smsdist 0.2 -> 0.3: delta updates (only added and changed files travel to
-- a site that holds an earlier version), the request for the full package
-- when a delta cannot be applied, and the operators' progress view.
\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.3'" to load this file. \quit

-------------------------------------------------------------------------------
-- Builds: where the package file came from.
-------------------------------------------------------------------------------
-- received: the file came from the parent site (receive_end), so it cannot
--           be compressed again here: a damaged one is asked for again.
-- base_version: the file is a delta from this version (only at a site that
--           received a delta); NULL for a full package file.
ALTER TABLE package_builds
    ADD COLUMN received boolean NOT NULL DEFAULT false,
    ADD COLUMN base_version integer,
    ADD CONSTRAINT delta_base_is_older CHECK (base_version IS NULL OR
        (base_version >= 1 AND base_version < source_version));

ALTER TABLE package_transfers
    ADD COLUMN base_version integer,
    ADD CONSTRAINT delta_base_is_older CHECK (base_version IS NULL OR
        (base_version >= 1 AND base_version < source_version));

-------------------------------------------------------------------------------
-- Delta package files: one per (package, base version, new version), made by
-- the Sender from the new version's package file and the base's manifest
-- (src/package_delta.c), kept in <package store>/deltas/ for as long as the
-- new version's build is.
-------------------------------------------------------------------------------
CREATE TABLE package_deltas (
    package_id       sms_id NOT NULL,
    base_version     integer NOT NULL,
    source_version   integer NOT NULL,
    file_path        text NOT NULL,
    bytes            bigint NOT NULL CHECK (bytes > 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    files_sent       integer NOT NULL,
    files_deleted    integer NOT NULL,
    files_kept       integer NOT NULL,
    full_bytes       bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (package_id, source_version, base_version),
    FOREIGN KEY (package_id, source_version) REFERENCES package_builds ON DELETE CASCADE,
    CHECK (base_version >= 1 AND base_version < source_version)
);

-------------------------------------------------------------------------------
-- Send and distribute rows: deltas and the full-package fallback.
-------------------------------------------------------------------------------
-- delta_base (send rows): the transfer to this site's hop was a delta from
--   this version; NULL if the full package file was sent.
-- full_package_required: send rows: send the full package file, not a
--   delta (the site could not apply one); distribute rows at the site
--   itself: waiting for the full package from the parent site.
ALTER TABLE job_site_status
    ADD COLUMN delta_base integer,
    ADD COLUMN full_package_required boolean NOT NULL DEFAULT false;

-------------------------------------------------------------------------------
-- Receiving: receive_begin learns whether the file is a delta.
-------------------------------------------------------------------------------
DROP FUNCTION receive_begin(text, integer, bigint, text, text, text);
-- Returns the offset to send from (total_bytes: the site has this file).
-- base_version: the file is a delta from that version (NULL: full file).
CREATE FUNCTION receive_begin(package_id text, source_version integer, total_bytes bigint,
        sha256 text, package_name text, source_directory text,
        base_version integer DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_begin';
REVOKE ALL ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer) TO smsdist_site;

-------------------------------------------------------------------------------
-- What operators watch: per (job, site, phase), with throughput.
-------------------------------------------------------------------------------
CREATE VIEW job_progress AS
SELECT s.job_id, j.package_id, j.source_version, s.site_code, s.phase, s.state,
       s.bytes_done, s.bytes_total,
       CASE WHEN s.bytes_total > 0 THEN round(100.0 * s.bytes_done / s.bytes_total, 1) END AS percent,
       CASE WHEN s.started_at IS NOT NULL
                 AND coalesce(s.finished_at, clock_timestamp()) > s.started_at
            THEN round(s.bytes_done / extract(epoch FROM coalesce(s.finished_at, clock_timestamp()) - s.started_at))
       END::bigint AS bytes_per_second,
       s.delta_base, s.full_package_required,
       s.started_at, s.finished_at,
       coalesce(s.finished_at, clock_timestamp()) - s.started_at AS elapsed,
       s.attempts, s.detail, s.last_error
  FROM smsdist.job_site_status s JOIN smsdist.jobs j USING (job_id);

REVOKE ALL ON package_deltas, job_progress FROM PUBLIC;
GRANT SELECT ON package_deltas, job_progress TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_deltas', '');
