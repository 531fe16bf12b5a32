-- Packages and programs, their builds, and where they are.
--
-- A package is a source directory (source_version counts its changes); a
-- program is a command line in it.  A build is one compressed package file
-- per (package, source version), made by the package builder in the package
-- store; a delta is a smaller file carrying only the files that changed
-- since an earlier version.  A transfer is a package file on its way here
-- from the parent site; a location is a package published on one of this
-- site's distribution points.
CREATE TABLE packages (
    package_id       sms_id PRIMARY KEY DEFAULT @extschema@.new_sms_id('@extschema@.package_id_seq'),
    name             object_name NOT NULL,
    version          object_name,
    manufacturer     object_name,
    language         object_name,
    comment          text CHECK (length(comment) <= 4000),
    source_directory server_path NOT NULL,
    source_version   integer NOT NULL DEFAULT 1 CHECK (source_version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- where a received package came from: only that site may change it
    -- through receive_*
    source_site      site_code,
    -- the package's icon: a file of its tree, written as <PACKAGE>.ICO
    icon_file        text CONSTRAINT icon_file_in_package CHECK (@extschema@.check_package_path(icon_file))
);
COMMENT ON COLUMN packages.source_site IS
    'set for a package received from that parent site; NULL for this site''s own, which no other site may change';
COMMENT ON COLUMN packages.icon_file IS
    'the package''s icon (.ico), a path relative to its source tree; the Offer Manager writes it as <PACKAGE>.ICO beside the .PKG (package_icons says how it went)';
REVOKE ALL ON packages FROM PUBLIC;
GRANT SELECT ON packages TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON packages TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.packages', '');
CREATE TRIGGER touch_updated_at BEFORE UPDATE ON packages
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER notify_scheduler AFTER UPDATE ON packages
    FOR EACH ROW EXECUTE FUNCTION notify_change('scheduler', 'package_id');
CREATE TRIGGER notify_offer_manager AFTER UPDATE ON packages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
\ir ../functions/require_allowed_source.sql
\ir ../functions/packages_check_source.sql
CREATE TRIGGER check_source BEFORE INSERT OR UPDATE OF source_directory, source_site ON packages
    FOR EACH ROW EXECUTE FUNCTION packages_check_source();

-- A program's run mode: as in SMS, with administrative rights (the agent's
-- own account) or with the logged-on user's rights; it travels in the PCM
-- file, the .PKG file, the management point's policy, and to child sites
-- (docs/agent.md#running-programs).
CREATE TABLE programs (
    package_id       sms_id NOT NULL REFERENCES packages ON DELETE CASCADE,
    program_name     object_name NOT NULL,
    command_line     command_line NOT NULL,
    platforms        platform[],
    max_run_minutes  integer CHECK (max_run_minutes BETWEEN 1 AND 10080),
    comment          text CHECK (length(comment) <= 4000),
    run_with         text NOT NULL DEFAULT 'administrative_rights'
                     CONSTRAINT run_with_known CHECK (run_with IN ('administrative_rights', 'user_rights')),
    PRIMARY KEY (package_id, program_name),
    CONSTRAINT platforms_null_for_any_or_a_nonempty_list
        CHECK (platforms IS NULL OR (cardinality(platforms) > 0 AND array_ndims(platforms) = 1
                                     AND array_position(platforms, NULL) IS NULL))
);
COMMENT ON COLUMN programs.run_with IS
    'administrative_rights: the agent''s own account runs the program; user_rights: the logged-on user''s account (the program waits for a user)';
REVOKE ALL ON programs FROM PUBLIC;
GRANT SELECT ON programs TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON programs TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.programs', '');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON programs
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
CREATE TRIGGER notify_sender AFTER UPDATE ON programs
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-- Package builds: one compressed package file per (package, source version).
-- received: the file came from the parent site (receive_end), so it cannot
--           be compressed again here: a damaged one is asked for again.
-- base_version: the file is a delta from this version (only at a site that
--           received a delta); NULL for a full package file.
-- stream_id: while building, the package builder appends the compressed
--           members to its output file in order as they are done, so that
--           file is final up to its current size and the Sender may send it
--           as it grows (docs/packages.md#sending-while-compressing).
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
    received         boolean NOT NULL DEFAULT false,
    base_version     integer,
    stream_id        text CONSTRAINT stream_id_format CHECK (stream_id ~ '^[0-9a-f]{16}$'),
    retrying_since   timestamptz,
    next_attempt_at  timestamptz,
    manifest_sha256  text,
    PRIMARY KEY (package_id, source_version),
    CONSTRAINT delta_base_is_older CHECK (base_version IS NULL OR
        (base_version >= 1 AND base_version < source_version))
);
CREATE INDEX ON package_builds (state) WHERE state = 'building';
COMMENT ON COLUMN package_builds.stream_id IS
    'while building: the ID of the package file being written (<stem>.tar.gz.<stream_id>.tmp in the package store), which the Sender may send as it grows';
COMMENT ON COLUMN package_builds.next_attempt_at IS
    'while building: the package store was full (error says so); the Scheduler starts a builder again at this time';
COMMENT ON COLUMN package_builds.retrying_since IS
    'while building: when the package store was first found full in this run of failures (smsdist.disk_full_give_up_after counts from it)';
REVOKE ALL ON package_builds FROM PUBLIC;
GRANT SELECT ON package_builds TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_builds', '');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OF state ON package_builds
    FOR EACH ROW EXECUTE FUNCTION notify_change('sender,despooler', 'package_id', 'source_version');
COMMENT ON COLUMN package_builds.manifest_sha256 IS
    'the SHA-256 of manifest (hex), the package hash in PCM files and policies; set by the trigger set_manifest_sha256';
\ir ../functions/set_manifest_sha256.sql
CREATE TRIGGER set_manifest_sha256 BEFORE INSERT OR UPDATE OF manifest, manifest_sha256 ON package_builds
    FOR EACH ROW EXECUTE FUNCTION set_manifest_sha256();
\ir ../functions/build_lock_key.sql

-- Delta package files: one per (package, base version, new version), made by
-- the Sender from the new version's package file and the base's manifest
-- (src/package_delta.c), kept in <package store>/deltas/ for as long as the
-- new version's build is.
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
REVOKE ALL ON package_deltas FROM PUBLIC;
GRANT SELECT ON package_deltas TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_deltas', '');

-- Where packages are published: one row per (package, distribution point).
CREATE TABLE package_locations (
    package_id       sms_id NOT NULL REFERENCES packages ON DELETE CASCADE,
    site_code        site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    site_system_id   integer NOT NULL,
    source_version   integer NOT NULL,
    path             text NOT NULL,
    published_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (package_id, site_code, site_system_id)
);
REVOKE ALL ON package_locations FROM PUBLIC;
GRANT SELECT ON package_locations TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_locations', '');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON package_locations
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');

-- One row per package version on its way here; the bytes themselves are in
-- <package store>/incoming/<package id>.<version>.part, never in a table.
-- A file sent while the parent compressed it has no size and hash until the
-- parent knows them (receive_total).
CREATE TABLE package_transfers (
    package_id       sms_id NOT NULL REFERENCES packages ON DELETE CASCADE,
    source_version   integer NOT NULL CHECK (source_version >= 1),
    total_bytes      bigint CHECK (total_bytes > 0),
    sha256           text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes_received   bigint NOT NULL DEFAULT 0
                     CHECK (bytes_received >= 0 AND bytes_received <= total_bytes),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    base_version     integer,
    stream_id        text CONSTRAINT stream_id_format CHECK (stream_id ~ '^[0-9a-f]{16}$'),
    PRIMARY KEY (package_id, source_version),
    CONSTRAINT delta_base_is_older CHECK (base_version IS NULL OR
        (base_version >= 1 AND base_version < source_version)),
    CONSTRAINT size_known_or_streamed CHECK (
        (total_bytes IS NULL) = (sha256 IS NULL) AND (total_bytes IS NOT NULL OR stream_id IS NOT NULL))
);
COMMENT ON COLUMN package_transfers.stream_id IS
    'the parent''s stream ID when the file was sent while the parent compressed it; total_bytes and sha256 stay NULL until the parent knows them (receive_total)';
REVOKE ALL ON package_transfers FROM PUBLIC;
GRANT SELECT ON package_transfers TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_transfers', '');

-- The package archive tools (C): build, extract, publish on a share.
\ir ../functions/build_tar.sql
\ir ../functions/extract_package.sql
\ir ../functions/publish_tree.sql
\ir ../functions/unpublish.sql
\ir ../functions/manifest_delta_bytes.sql
\ir ../functions/source_tree_size.sql
