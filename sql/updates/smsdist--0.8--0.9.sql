/* smsdist 0.8 -> 0.9: why not yet, what if, and how long.
 *
 * explain() says why each open target has not finished, preview() what a
 * job would cost before it is committed, and the progress views give
 * figures that can be trusted, with an estimated completion time.
 * docs/troubleshooting.md, docs/preview.md and docs/data-model.md.
 *
 * The source of the update script: make expands each \ir line with the
 * file it names (tools/expand-sql), the one source of that function's or
 * view's current definition, also used by the base script (sql/smsdist.sql).
 * What only an update does (ALTER TABLE, the new tables) is written here. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.9'" to load this file. \quit

-------------------------------------------------------------------------------
-- Explain
-------------------------------------------------------------------------------
\ir ../functions/explain_time.sql

\ir ../functions/explain_duration.sql

-- When the current run of failures of a row began, and when its worker will
-- try again.  Kept by a trigger so that every writer of a row (the Sender,
-- the Despooler, the reports of child sites) keeps them right.
ALTER TABLE job_site_status
    ADD COLUMN retrying_since timestamptz,
    ADD COLUMN next_attempt_at timestamptz;

-- Per job and child: when the child last answered the Sender's
-- distribution report (about once a second while a row of a site behind
-- it is open), and why it could not be asked since.  A table of its own:
-- writing it must neither wake the workers nor move job_site_status's
-- updated_at, which times a child's refused reports.
CREATE TABLE distribution_report_answers (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    reported_at      timestamptz,
    report_error     text,
    error_since      timestamptz,
    PRIMARY KEY (job_id, hop)
);
REVOKE ALL ON distribution_report_answers FROM PUBLIC;
GRANT SELECT ON distribution_report_answers TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.distribution_report_answers', '');
\ir ../functions/job_site_status_retry_clock.sql

CREATE TRIGGER retry_clock BEFORE INSERT OR UPDATE ON job_site_status
    FOR EACH ROW EXECUTE FUNCTION job_site_status_retry_clock();

\ir ../functions/describe_targets.sql

-------------------------------------------------------------------------------
-- explain(): why each open target of a job or an advertisement has not
-- finished yet, in words, with who it waits for and when something will
-- next happen.  Computed from the rows alone: this site's own, and what
-- child sites reported for theirs.  docs/troubleshooting.md.
-------------------------------------------------------------------------------
CREATE TYPE explanation AS (
    sms_id           text,          -- the target machine (NULL: the job or a site)
    site_code        text,          -- its site
    state            text,          -- its target state (or the job's, or a phase's)
    reason           text,          -- why it has not finished, for an operator
    waiting_on       text,          -- a component, 'agent', 'child site', 'parent site' or 'operator'
    since            timestamptz,   -- when this reason began
    next_attempt_at  timestamptz    -- when something will next happen, if known
);

\ir ../functions/server_time_zone.sql

\ir ../functions/sending_resumes_at.sql

\ir ../functions/maintenance_window_at.sql

\ir ../functions/machine_utc_offset.sql

\ir ../functions/machine_local_time.sql

\ir ../functions/machine_instant.sql

\ir ../functions/agent_last_heard.sql

\ir ../functions/platform_mismatch.sql

\ir ../functions/cache_full_reason.sql

\ir ../functions/cache_locks.sql

\ir ../functions/running_reason.sql

\ir ../functions/cache_full.sql

\ir ../functions/explain_job_gate.sql

\ir ../functions/explain_job_site.sql

\ir ../functions/explain_job_target.sql

\ir ../functions/explain_job.sql

\ir ../functions/advertisement_mandatory_times.sql

\ir ../functions/explain_advertisement_site.sql

\ir ../functions/explain_advertisement_target.sql

\ir ../functions/explain_advertisement.sql

\ir ../functions/explain.sql

-------------------------------------------------------------------------------
-- Progress
-------------------------------------------------------------------------------

-- Figures of the attempt in progress (or the last one), so that a rate is
-- computed from the bytes this attempt moved and the time it took, never
-- from a total carried over from an earlier attempt or already at the site;
-- an estimated total while the package is still being compressed; and, for
-- the rows of sites below a child, the completion time the child estimated.
ALTER TABLE job_site_status
    ADD COLUMN bytes_total_estimated boolean NOT NULL DEFAULT false,
    ADD COLUMN attempt_started_at timestamptz,
    ADD COLUMN attempt_bytes bigint CHECK (attempt_bytes >= 0),
    ADD COLUMN reported_eta timestamptz;

\ir ../functions/transfer_eta.sql

\ir ../functions/progress_report.sql

DROP VIEW job_progress;
\ir ../views/job_progress.sql

DROP VIEW job_overview;
\ir ../views/job_overview.sql

DROP VIEW build_progress;
\ir ../views/build_progress.sql

\ir ../functions/package_removed_at.sql

\ir ../functions/policy_advertisements.sql

-------------------------------------------------------------------------------
-- Preview and cache inventory
-------------------------------------------------------------------------------

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

\ir ../functions/cache_inventory_problem.sql

\ir ../functions/record_cache_inventory.sql

\ir ../functions/client_cache_inventory.sql

\ir ../functions/cache_report_for_parent.sql

\ir ../functions/caches_reported.sql

\ir ../functions/receive_cache_report.sql

-- The link's measured throughput: one row per completed transfer to a child
-- site, the bytes the child took and the seconds spent sending them
-- (chunks on the wire and the child's writes, not the throttling pauses),
-- the ten newest per sender address.  The Sender writes them.
CREATE TABLE link_measurements (
    address_id    integer NOT NULL REFERENCES sender_addresses ON DELETE CASCADE,
    measured_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    job_id        sms_id NOT NULL,
    bytes         bigint NOT NULL CHECK (bytes > 0),
    seconds       double precision NOT NULL CHECK (seconds > 0),
    PRIMARY KEY (address_id, measured_at)
);
COMMENT ON TABLE link_measurements IS
    'bytes and seconds of the latest completed transfers over each sender address (throttling pauses not counted)';
REVOKE ALL ON link_measurements FROM PUBLIC;
GRANT SELECT ON link_measurements TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.link_measurements', '');
\ir ../views/link_throughput.sql

\ir ../functions/transfer_seconds.sql

\ir ../functions/manifest_delta_bytes.sql

\ir ../functions/source_tree_size.sql

\ir ../functions/preview.sql

