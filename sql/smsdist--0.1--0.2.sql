-- smsdist 0.1 -> 0.2: package builds (the Send phase's compression), the
-- package archive tools, and distribution point locations.
\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.2'" to load this file. \quit

-------------------------------------------------------------------------------
-- The version of its package a job distributes: fixed when it is activated.
-------------------------------------------------------------------------------
ALTER TABLE jobs ADD COLUMN source_version integer;

-------------------------------------------------------------------------------
-- Package builds: one compressed package file per (package, source version).
-------------------------------------------------------------------------------
-- purged: an older version whose file was removed from the package store
-- (no pending or active job needs it); the row and its manifest stay.
CREATE TYPE build_state AS ENUM ('building', 'ready', 'failed', 'purged');

CREATE TABLE package_builds (
    package_id       sms_id NOT NULL REFERENCES packages ON DELETE CASCADE,
    source_version   integer NOT NULL,
    state            build_state NOT NULL DEFAULT 'building',
    file_path        text,
    bytes            bigint,
    sha256           text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    manifest         text,
    source_bytes     bigint,
    file_count       integer,
    bytes_done       bigint NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    builder_pid      integer,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (package_id, source_version)
);
CREATE INDEX ON package_builds (state) WHERE state = 'building';

-- The advisory lock a package builder holds for as long as it works on a
-- build: a build in state 'building' whose lock is free has lost its builder.
CREATE FUNCTION build_lock_key(package_id text, source_version integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.hashtextextended('smsdist build ' || package_id || '.' || source_version, 0);

-- What operators watch while a package is compressed.
CREATE VIEW build_progress AS
SELECT b.package_id, p.name AS package_name, b.source_version, b.state,
       b.source_bytes, b.bytes_done,
       CASE WHEN b.state = 'ready' THEN 100
            WHEN b.source_bytes > 0 THEN round(100.0 * b.bytes_done / b.source_bytes, 1) END AS percent,
       b.bytes AS compressed_bytes,
       CASE WHEN b.source_bytes > 0 AND b.bytes IS NOT NULL
            THEN round(100.0 * b.bytes / b.source_bytes, 1) END AS compressed_percent,
       b.file_count, b.attempts, b.error,
       b.started_at, b.finished_at, coalesce(b.finished_at, clock_timestamp()) - b.started_at AS elapsed
  FROM smsdist.package_builds b JOIN smsdist.packages p USING (package_id);

-------------------------------------------------------------------------------
-- A distribution point's package share is <root>/SMS_PKG<share_letter>.
-------------------------------------------------------------------------------
ALTER TABLE site_systems ADD COLUMN share_letter "char" NOT NULL DEFAULT 'C'
    CONSTRAINT share_letter_is_a_capital CHECK (share_letter BETWEEN 'A' AND 'Z');

-------------------------------------------------------------------------------
-- Where packages are published: one row per (package, distribution point).
-------------------------------------------------------------------------------
CREATE TABLE package_locations (
    package_id       sms_id NOT NULL REFERENCES packages ON DELETE CASCADE,
    site_code        site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    site_system_id   integer NOT NULL,
    source_version   integer NOT NULL,
    path             text NOT NULL,
    published_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (package_id, site_code, site_system_id)
);

-------------------------------------------------------------------------------
-- Package archive tools (src/package_archive.c, package_extract.c,
-- publish.c), for administrators: what the workers do, callable by hand.
-------------------------------------------------------------------------------
CREATE FUNCTION build_tar(source_directory text, tar_path text) RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_build_tar';
CREATE FUNCTION extract_package(package_file text, destination text) RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_extract_package';
CREATE FUNCTION publish_tree(source_directory text, share text, package_id text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_publish_tree';
CREATE FUNCTION unpublish(share text, package_id text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_unpublish';
REVOKE ALL ON FUNCTION build_tar(text, text), extract_package(text, text),
    publish_tree(text, text, text), unpublish(text, text) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Routing and reports between sites (src/sender.c)
-------------------------------------------------------------------------------
-- The child of this site through which a site below it is reached (NULL if
-- the site is not below this one).
CREATE FUNCTION route_hop(target site_code) RETURNS site_code
    LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE up(code, parent, depth) AS (
        SELECT s.site_code, s.parent_site_code, 0 FROM smsdist.sites s WHERE s.site_code = target
        UNION ALL
        SELECT s.site_code, s.parent_site_code, up.depth + 1
          FROM smsdist.sites s JOIN up ON s.site_code = up.parent
         WHERE up.parent IS DISTINCT FROM current_setting('smsdist.site_code')::smsdist.site_code
           AND up.depth < 100)
    SELECT code FROM up WHERE parent = current_setting('smsdist.site_code')::smsdist.site_code LIMIT 1
$$;

-- What a child site tells its parent about one job: per target site, the
-- state of its distribution (a site still being sent to is 'running').
CREATE FUNCTION distribution_report(p_job_id text)
    RETURNS TABLE (site_code text, state text, detail text, last_error text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.site_code::text,
           CASE WHEN d.state IS NOT NULL THEN d.state::text
                WHEN s.state = 'failed' THEN 'failed'
                ELSE 'running' END,
           coalesce(d.detail, s.detail),
           coalesce(d.last_error, s.last_error)
      FROM (SELECT DISTINCT x.site_code FROM smsdist.job_site_status x WHERE x.job_id = p_job_id) t
      LEFT JOIN smsdist.job_site_status d
        ON d.job_id = p_job_id AND d.site_code = t.site_code AND d.phase = 'distribute'
      LEFT JOIN smsdist.job_site_status s
        ON s.job_id = p_job_id AND s.site_code = t.site_code AND s.phase = 'send'
$$;
REVOKE ALL ON FUNCTION distribution_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION route_hop(site_code) TO smsdist_reader;

-------------------------------------------------------------------------------
-- Grants, backups, wake-ups
-------------------------------------------------------------------------------
REVOKE ALL ON package_builds, package_locations, build_progress FROM PUBLIC;
GRANT SELECT ON package_builds, package_locations, build_progress TO smsdist_reader;
GRANT EXECUTE ON FUNCTION build_lock_key(text, integer) TO smsdist_reader;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_builds', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_locations', '');

CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OF state ON package_builds
    FOR EACH ROW EXECUTE FUNCTION notify_change('sender,despooler', 'package_id', 'source_version');

SELECT wake('supervisor'), wake('scheduler');

-------------------------------------------------------------------------------
-- Receiving packages from the parent site (src/receiver.c).  A parent site's
-- Sender logs in with a role that is a member of smsdist_site and calls
-- receive_begin, receive_chunk (once per chunk) and receive_end here.
-------------------------------------------------------------------------------
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['smsdist_site'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- One row per package version on its way here; the bytes themselves are in
-- <package store>/incoming/<package id>.<version>.part, never in a table.
CREATE TABLE package_transfers (
    package_id       sms_id NOT NULL REFERENCES packages ON DELETE CASCADE,
    source_version   integer NOT NULL CHECK (source_version >= 1),
    total_bytes      bigint NOT NULL CHECK (total_bytes > 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes_received   bigint NOT NULL DEFAULT 0
                     CHECK (bytes_received >= 0 AND bytes_received <= total_bytes),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (package_id, source_version)
);

-- Returns the offset to send from (total_bytes: the site has this file).
CREATE FUNCTION receive_begin(package_id text, source_version integer, total_bytes bigint,
        sha256 text, package_name text, source_directory text) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_begin';
-- Returns the offset after the chunk (or the site's offset, if "offset" is not it).
CREATE FUNCTION receive_chunk(package_id text, source_version integer, "offset" bigint,
        data bytea, chunk_sha256 text) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_chunk';
-- Checks the whole file, makes it a ready build, records the job.
CREATE FUNCTION receive_end(package_id text, source_version integer, job_id text,
        job_type text, target_sites text[], include_subsites boolean) RETURNS void
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_end';

REVOKE ALL ON package_transfers FROM PUBLIC;
GRANT SELECT ON package_transfers TO smsdist_reader;
REVOKE ALL ON FUNCTION receive_begin(text, integer, bigint, text, text, text),
    receive_chunk(text, integer, bigint, bytea, text),
    receive_end(text, integer, text, text, text[], boolean) FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO smsdist_site;
GRANT EXECUTE ON FUNCTION receive_begin(text, integer, bigint, text, text, text),
    receive_chunk(text, integer, bigint, bytea, text),
    receive_end(text, integer, text, text, text[], boolean) TO smsdist_site;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_transfers', '');
-------------------------------------------------------------------------------
-- End of: receiving packages from the parent site
-------------------------------------------------------------------------------

-- The parent's Sender follows its jobs at this site (src/sender.c).
GRANT EXECUTE ON FUNCTION distribution_report(text) TO smsdist_site;

-- Where a job's package is published at the target sites at and below this
-- site: the parent's Sender copies it into its own package_locations.
CREATE FUNCTION location_report(p_job_id text)
    RETURNS TABLE (package_id text, site_code text, site_system_id integer,
                   source_version integer, path text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.package_id::text, l.site_code::text, l.site_system_id, l.source_version, l.path
      FROM smsdist.jobs j
      JOIN smsdist.package_locations l ON l.package_id = j.package_id
     WHERE j.job_id = p_job_id
       AND l.site_code IN (SELECT s.site_code FROM smsdist.job_site_status s WHERE s.job_id = p_job_id)
$$;
REVOKE ALL ON FUNCTION location_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION location_report(text) TO smsdist_site;
