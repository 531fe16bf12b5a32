-- What each machine is told: PCM instruction files and machine policies.
--
-- The Run phase (src/pcm_writer.c, run by the Despooler) writes one PCM
-- instruction file per target workstation of this site, again whenever
-- what it must say changes; pcm_queue holds the machines whose file is due.
-- A machine's policy (advanced mode, served by the management point) is its
-- advertisements, maintenance windows and live run-command jobs, computed by
-- compute_machine_policy() and stored in machine_policies, which
-- machine_policy() serves.
CREATE TABLE pcm_queue (
    sms_id           sms_id PRIMARY KEY,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON pcm_queue FROM PUBLIC;
GRANT SELECT ON pcm_queue TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.pcm_queue', '');
CREATE TRIGGER notify_despooler AFTER INSERT ON pcm_queue
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('despooler');

-- The PCM file each machine of this site has, for operators (and so that
-- the file of a machine that was deleted can be found and removed).
CREATE TABLE pcm_files (
    sms_id           sms_id PRIMARY KEY,
    domain           netbios_name NOT NULL,
    jobs             text[] NOT NULL,
    sha256           text NOT NULL,
    copies           integer NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    key_id           text
);
COMMENT ON COLUMN pcm_files.key_id IS
    'The key ID of the site key that signed the file (docs/formats.md, Signatures).';
REVOKE ALL ON pcm_files FROM PUBLIC;
GRANT SELECT ON pcm_files TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.pcm_files', '');

-- The hash of each machine's policy as last notified.
CREATE TABLE machine_policies (
    sms_id           sms_id PRIMARY KEY,
    policy_md5       text NOT NULL,
    changed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    policy           jsonb
);
COMMENT ON COLUMN machine_policies.policy IS
    'compute_machine_policy() as the Offer Manager last computed it; machine_policy() serves it';
REVOKE ALL ON machine_policies FROM PUBLIC;
GRANT SELECT ON machine_policies TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.machine_policies', '');

-- When a PCM file is due
\ir ../functions/queue_pcm.sql
CREATE TRIGGER queue_pcm AFTER INSERT ON job_target_status
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm();
CREATE TRIGGER queue_pcm_delete AFTER DELETE ON job_target_status
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm();
CREATE TRIGGER queue_pcm AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm();
\ir ../functions/queue_all_pcm.sql
CREATE TRIGGER queue_all_pcm AFTER INSERT ON site_systems
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_all_pcm();
CREATE TRIGGER queue_all_pcm_update AFTER UPDATE ON site_systems
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_all_pcm();
\ir ../functions/queue_pcm_for_program.sql
CREATE TRIGGER queue_pcm_for_program AFTER UPDATE ON programs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm_for_program();
\ir ../functions/queue_pcm_for_target.sql
CREATE TRIGGER queue_pcm_for_target AFTER UPDATE OF state ON job_target_status
    FOR EACH ROW WHEN (NEW.state IN ('not_applicable', 'cancelled', 'expired') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION queue_pcm_for_target();

-- What a machine is offered
\ir ../functions/live_run_jobs.sql
\ir ../functions/package_removed_at.sql
\ir ../functions/policy_advertisements.sql
\ir ../functions/compute_machine_policies.sql
\ir ../functions/compute_machine_policy.sql
\ir ../functions/store_machine_policies.sql
\ir ../functions/answer_machine_policy.sql
\ir ../functions/machine_policy.sql
