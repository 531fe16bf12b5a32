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
 * The areas new in 0.9 are included whole; what only an update does (ALTER
 * TABLE of an existing table, DROP VIEW of a view made again) is written
 * here. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.9'" to load this file. \quit

-------------------------------------------------------------------------------
-- Why not yet: retries, the machines' clocks and schedules
-------------------------------------------------------------------------------

-- When the current run of failures of a row began, and when its worker will
-- try again.  Kept by a trigger so that every writer of a row (the Sender,
-- the Despooler, the reports of child sites) keeps them right.
ALTER TABLE job_site_status
    ADD COLUMN retrying_since timestamptz,
    ADD COLUMN next_attempt_at timestamptz;
\ir ../schema/job_retries.sql

-- A build whose package store is full waits and is started again by
-- itself: since when, and when next.
ALTER TABLE package_builds
    ADD COLUMN retrying_since timestamptz,
    ADD COLUMN next_attempt_at timestamptz;
COMMENT ON COLUMN package_builds.next_attempt_at IS
    'while building: the package store was full (error says so); the Scheduler starts a builder again at this time';
COMMENT ON COLUMN package_builds.retrying_since IS
    'while building: when the package store was first found full in this run of failures (smsdist.disk_full_give_up_after counts from it)';

-- The package hash of PCM files and policies, kept with the manifest
ALTER TABLE package_builds ADD COLUMN manifest_sha256 text;
COMMENT ON COLUMN package_builds.manifest_sha256 IS
    'the SHA-256 of manifest (hex), the package hash in PCM files and policies; set by the trigger set_manifest_sha256';
\ir ../functions/set_manifest_sha256.sql
CREATE TRIGGER set_manifest_sha256 BEFORE INSERT OR UPDATE OF manifest, manifest_sha256 ON package_builds
    FOR EACH ROW EXECUTE FUNCTION set_manifest_sha256();
UPDATE package_builds SET manifest_sha256 = NULL WHERE manifest IS NOT NULL;

\ir ../functions/describe_targets.sql
\ir ../functions/maintenance_window_at.sql
\ir ../functions/machine_utc_offset.sql
\ir ../functions/machine_local_time.sql
\ir ../functions/machine_instant.sql
\ir ../functions/agent_last_heard.sql
\ir ../functions/advertisement_mandatory_times.sql

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

\ir ../schema/throughput.sql
\ir ../functions/progress_report.sql

-- the views gained columns: made again
DROP VIEW job_progress;
\ir ../views/job_progress.sql
DROP VIEW job_overview;
\ir ../views/job_overview.sql
DROP VIEW build_progress;
\ir ../views/build_progress.sql

\ir ../functions/package_removed_at.sql
\ir ../functions/policy_advertisements.sql

-- policies computed for a set of machines in one statement, and served
-- with one query
\ir ../functions/member_advertisements.sql
-- each live job's hash, locations and policy entry once, not once per
-- machine (a new result column: the function is made again)
DROP FUNCTION live_run_jobs(text[], text);
\ir ../functions/live_run_jobs.sql
-- a job being activated queues no PCM file before its distribution
\ir ../functions/queue_pcm.sql
-- a collection's members without a UNION that finds no duplicate
\ir ../functions/job_target_machines.sql
\ir ../functions/compute_machine_policies.sql
\ir ../functions/compute_machine_policy.sql
\ir ../functions/store_machine_policies.sql
\ir ../functions/answer_machine_policy.sql
\ir ../functions/machine_policy.sql

-------------------------------------------------------------------------------
-- Cache inventory, preview and explain
-------------------------------------------------------------------------------

\ir ../schema/caches.sql
\ir ../functions/manifest_delta_bytes.sql
\ir ../functions/source_tree_size.sql
\ir ../schema/explain.sql

-------------------------------------------------------------------------------
-- Content validation: the distribution points checked and repaired
-------------------------------------------------------------------------------

\ir ../schema/content.sql

-------------------------------------------------------------------------------
-- Speed: a child's target report applied in one statement
-------------------------------------------------------------------------------

\ir ../functions/receive_target_report.sql
-- target_changed in C, called only when state, detail or exit code changed
\ir ../functions/target_changed.sql
-- the Sender is woken by send rows and by rows that end, the Despooler by distribute rows
DROP TRIGGER notify_sender ON job_site_status;
CREATE TRIGGER notify_despooler AFTER INSERT OR UPDATE ON job_site_status
    FOR EACH ROW WHEN (NEW.phase = 'distribute')
    EXECUTE FUNCTION notify_change('despooler', 'job_id', 'site_code', 'phase');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE ON job_site_status
    FOR EACH ROW WHEN (NEW.phase = 'send' OR NEW.state IN ('done', 'failed'))
    EXECUTE FUNCTION notify_change('sender', 'job_id', 'site_code', 'phase');

DROP TRIGGER target_changed ON job_target_status;
CREATE TRIGGER target_changed BEFORE UPDATE ON job_target_status
    FOR EACH ROW
    WHEN ((NEW.state, NEW.detail, NEW.exit_code) IS DISTINCT FROM (OLD.state, OLD.detail, OLD.exit_code))
    EXECUTE FUNCTION target_changed();
DROP TRIGGER target_changed ON advertisement_target_status;
CREATE TRIGGER target_changed BEFORE UPDATE ON advertisement_target_status
    FOR EACH ROW
    WHEN ((NEW.state, NEW.detail, NEW.exit_code) IS DISTINCT FROM (OLD.state, OLD.detail, OLD.exit_code))
    EXECUTE FUNCTION target_changed();

-------------------------------------------------------------------------------
-- Importing SMS package definition files (.SMS, .PDF)
-------------------------------------------------------------------------------

\ir ../schema/import.sql

-------------------------------------------------------------------------------
-- Package icons: <PACKAGE>.ICO beside the .PKG, its hash in the policy
-------------------------------------------------------------------------------

\ir ../functions/check_package_path.sql
ALTER TABLE packages
    ADD COLUMN icon_file text CONSTRAINT icon_file_in_package CHECK (@extschema@.check_package_path(icon_file));
COMMENT ON COLUMN packages.icon_file IS
    'the package''s icon (.ico), a path relative to its source tree; the Offer Manager writes it as <PACKAGE>.ICO beside the .PKG (package_icons says how it went)';
\ir ../schema/icons.sql
-- a child site takes the package's icon file with the advertisement
\ir ../functions/advertisement_details.sql
\ir ../functions/record_advertisement.sql

-------------------------------------------------------------------------------
-- The administrator's day: status retention and pg_cron
-------------------------------------------------------------------------------

\ir ../functions/prune_status_messages.sql
-- a full evaluation on demand wakes the Collection Evaluator
\ir ../functions/evaluate_collections.sql
\ir ../functions/pg_cron_check.sql

-------------------------------------------------------------------------------
-- Metrics for Prometheus: the view metrics and the counts it reads
-------------------------------------------------------------------------------

\ir ../schema/metrics.sql

-------------------------------------------------------------------------------
-- Functions the workers call at every step, in PL/pgSQL (plans kept)
-------------------------------------------------------------------------------

\ir ../functions/route_hop.sql
\ir ../functions/run_job_details.sql
\ir ../functions/advertisement_pushes_due.sql
\ir ../functions/status_report_for_parent.sql

-------------------------------------------------------------------------------
-- The functions other logins call take their arguments in the default
-- collation only (a COLLATE clause decided how they compared IDs)
-------------------------------------------------------------------------------

\ir ../functions/require_default_collation.sql
\ir ../functions/require_machine_login.sql
\ir ../functions/distribution_report.sql
\ir ../functions/location_report.sql
\ir ../functions/receive_job_state.sql
\ir ../functions/receive_job_targets.sql
\ir ../functions/receive_status_report.sql
\ir ../functions/remove_advertisement.sql

-------------------------------------------------------------------------------
-- Upgrades from every version: jobs left active by 0.1
-------------------------------------------------------------------------------

-- Version 0.1 activated jobs but had no package builds, and its update to
-- 0.2 gave those jobs no package version, so no build was ever recorded
-- for them and they stayed active forever.  They take the package's
-- current version, as a job activated now does, and their builds are
-- recorded as the Scheduler records them.  Only those jobs: a job a
-- parent sent here has its version and waits for the parent's file.
WITH versioned AS (
    UPDATE jobs j SET source_version = p.source_version
      FROM packages p
     WHERE p.package_id = j.package_id AND j.source_version IS NULL AND j.state = 'active'
       AND j.job_type IN ('run_command', 'share_package')
    RETURNING j.package_id, j.source_version)
INSERT INTO package_builds (package_id, source_version)
SELECT DISTINCT package_id, source_version FROM versioned
    ON CONFLICT (package_id, source_version) DO NOTHING;
