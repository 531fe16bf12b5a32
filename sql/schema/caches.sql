-- Download caches: what each machine's agent last reported of its cache.
--
-- An agent reports its download cache (size limit, bytes used and locked,
-- its packages and the machine's UTC offset) in a signed inventory file or
-- over libpq; each site sends the inventories of its machines, and those
-- its children sent, up to its parent (cache_report_for_parent(),
-- receive_cache_report()), so that preview() and explain() at any site
-- above know them.

-- What each machine's download cache holds, as its agent last reported it
-- (legacy mode: a signed <MACHINE>.INV file in the CAP's status inbox, taken
-- in by the Status Manager; advanced mode: client_cache_inventory()).  One
-- row per machine, replaced by each newer report; preview() reads it to say
-- which machines would have to evict packages, or have no room.
CREATE TABLE machine_caches (
    sms_id              sms_id PRIMARY KEY REFERENCES system_resources ON DELETE CASCADE,
    site_code           site_code NOT NULL,
    reported_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    client_at           timestamptz NOT NULL,
    size_limit_bytes    bigint NOT NULL CHECK (size_limit_bytes >= 0),
    used_bytes          bigint NOT NULL CHECK (used_bytes >= 0),
    locked_bytes        bigint NOT NULL CHECK (locked_bytes BETWEEN 0 AND used_bytes),
    utc_offset_seconds  integer NOT NULL CHECK (utc_offset_seconds BETWEEN -50400 AND 50400),
    package_count       integer NOT NULL CHECK (package_count BETWEEN 0 AND 1000),
    -- changed since the parent site last heard (status_manager.c sends it up)
    report_pending      boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE machine_caches IS
    'each machine''s download cache as its agent last reported it: size limit, bytes used and locked, and the machine''s UTC offset';
REVOKE ALL ON machine_caches FROM PUBLIC;
GRANT SELECT ON machine_caches TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.machine_caches', '');
-- an inventory an agent reported over libpq goes up to the parent site soon
CREATE TRIGGER notify_status_manager AFTER INSERT OR UPDATE ON machine_caches
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('status_manager');

CREATE TABLE machine_cache_packages (
    sms_id          sms_id NOT NULL REFERENCES machine_caches ON DELETE CASCADE,
    package_id      sms_id NOT NULL,
    source_version  integer NOT NULL CHECK (source_version >= 1),
    bytes           bigint NOT NULL CHECK (bytes >= 0),
    downloaded_at   timestamptz NOT NULL,
    locked_until    timestamptz,
    last_run_at     timestamptz,
    PRIMARY KEY (sms_id, package_id, source_version)
);
COMMENT ON TABLE machine_cache_packages IS
    'the packages in each machine''s download cache, as its agent last reported them (locked_until NULL: unlocked)';
REVOKE ALL ON machine_cache_packages FROM PUBLIC;
GRANT SELECT ON machine_cache_packages TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.machine_cache_packages', '');

-- An inventory, checked and recorded (legacy mode: the Status Manager;
-- advanced mode: client_cache_inventory())
\ir ../functions/cache_inventory_problem.sql
\ir ../functions/record_cache_inventory.sql
\ir ../functions/client_cache_inventory.sql

-- Up the hierarchy
\ir ../functions/cache_report_for_parent.sql
\ir ../functions/caches_reported.sql
\ir ../functions/receive_cache_report.sql
