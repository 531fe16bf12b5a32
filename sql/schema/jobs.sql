-- Jobs: what to do with a package, where, and how far it has got.
--
-- A job sends a package to sites (share_package), removes it
-- (remove_package), or also runs one of its programs on machines
-- (run_command).  Its phases: Send (to each target site's hop), Distribute
-- (onto the distribution points of each site) and Run (on each target
-- machine).  job_site_status holds the first two per (job, site, phase);
-- job_target_status the Run phase per (job, machine), a "target".  A job
-- received from the parent site has source_site set; the pushes tables hold
-- what the Sender still has to tell each child site (hop) about a job.
CREATE TABLE jobs (
    job_id             sms_id PRIMARY KEY DEFAULT @extschema@.new_sms_id('@extschema@.job_id_seq'),
    job_type           job_type NOT NULL,
    package_id         sms_id NOT NULL REFERENCES packages ON DELETE RESTRICT,
    program_name       object_name,
    target_type        target_type NOT NULL,
    target_collection_id sms_id REFERENCES collections ON DELETE RESTRICT,
    target_machines    sms_id[],
    target_sites       site_code[],
    include_subsites   boolean NOT NULL DEFAULT false,
    start_after        timestamptz NOT NULL DEFAULT now(),
    offer_after        timestamptz,
    mandatory_at       timestamptz,
    expires_at         timestamptz,
    priority           job_priority NOT NULL DEFAULT 'medium',
    state              job_state NOT NULL DEFAULT 'pending',
    state_reason       text,
    state_changed_by   name NOT NULL DEFAULT current_user,
    comment            text CHECK (length(comment) <= 4000),
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by         name NOT NULL DEFAULT current_user,
    activated_at       timestamptz,
    finished_at        timestamptz,
    -- the version of its package the job distributes: fixed when it is
    -- activated
    source_version     integer,
    source_site        site_code,
    FOREIGN KEY (package_id, program_name) REFERENCES programs ON DELETE RESTRICT,
    CONSTRAINT run_command_job_names_a_program
        CHECK ((job_type = 'run_command') = (program_name IS NOT NULL)),
    CONSTRAINT only_run_command_jobs_have_offer_and_mandatory_times
        CHECK (job_type = 'run_command' OR (offer_after IS NULL AND mandatory_at IS NULL)),
    CONSTRAINT share_and_remove_jobs_target_sites
        CHECK (job_type = 'run_command' OR target_type = 'sites'),
    CONSTRAINT collection_target_names_a_collection
        CHECK ((target_type = 'collection') = (target_collection_id IS NOT NULL)),
    CONSTRAINT machines_target_lists_machines
        CHECK ((target_type = 'machines') = (target_machines IS NOT NULL)
               AND (target_machines IS NULL OR (cardinality(target_machines) > 0
                    AND array_ndims(target_machines) = 1
                    AND array_position(target_machines, NULL) IS NULL))),
    CONSTRAINT sites_target_lists_sites
        CHECK ((target_type = 'sites') = (target_sites IS NOT NULL)
               AND (target_sites IS NULL OR (cardinality(target_sites) > 0
                    AND array_ndims(target_sites) = 1
                    AND array_position(target_sites, NULL) IS NULL))),
    CONSTRAINT offer_after_is_not_before_start_after
        CHECK (offer_after IS NULL OR offer_after >= start_after),
    CONSTRAINT mandatory_time_is_not_before_offer_after
        CHECK (mandatory_at IS NULL OR mandatory_at >= coalesce(offer_after, start_after)),
    CONSTRAINT expiry_is_after_start_offer_and_mandatory_times
        CHECK (expires_at IS NULL OR
               (expires_at > start_after AND expires_at > coalesce(offer_after, start_after)
                AND expires_at > coalesce(mandatory_at, start_after)))
);
CREATE INDEX jobs_pending_start ON jobs (start_after) WHERE state = 'pending';
CREATE INDEX jobs_live_expiry ON jobs (expires_at)
    WHERE state IN ('pending', 'active') AND expires_at IS NOT NULL;
CREATE INDEX ON jobs (package_id);
COMMENT ON COLUMN jobs.source_site IS
    'set for a job received from that parent site; NULL for this site''s own, which no other site may change';
REVOKE ALL ON jobs FROM PUBLIC;
GRANT SELECT ON jobs TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON jobs TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.jobs', '');

-- Every change of a job's state, with its reason.
CREATE TABLE job_transitions (
    transition_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id             sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    from_state         job_state,
    to_state           job_state NOT NULL,
    at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
    by_role            name NOT NULL,
    by_application     text DEFAULT current_setting('application_name', true),
    reason             text
);
CREATE INDEX ON job_transitions (job_id, at);
REVOKE ALL ON job_transitions FROM PUBLIC;
GRANT SELECT ON job_transitions TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_transitions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_transitions_transition_id_seq', '');

-- Per (job, site, phase): the progress of the Send and Distribute phases.
-- delta_base (send rows): the transfer to this site's hop was a delta from
--   this version; NULL if the full package file was sent.
-- full_package_required: send rows: send the full package file, not a
--   delta (the site could not apply one); distribute rows at the site
--   itself: waiting for the full package from the parent site.
-- retrying_since, next_attempt_at: when the current run of failures of a
--   row began, and when its worker will try again; kept by a trigger so
--   that every writer of a row (the Sender, the Despooler, the reports of
--   child sites) keeps them right.
-- bytes_total_estimated, attempt_started_at, attempt_bytes: figures of the
--   attempt in progress (or the last one), so that a rate is computed from
--   the bytes this attempt moved and the time it took, never from a total
--   carried over from an earlier attempt or already at the site; an
--   estimated total while the package is still being compressed.
-- reported_eta: for the rows of sites below a child, the completion time
--   the child estimated.
CREATE TABLE job_site_status (
    job_id             sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    site_code          site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    phase              job_phase NOT NULL,
    state              phase_state NOT NULL DEFAULT 'waiting',
    detail             text,
    bytes_done         bigint NOT NULL DEFAULT 0 CHECK (bytes_done >= 0),
    bytes_total        bigint CHECK (bytes_total >= 0),
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    started_at         timestamptz,
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    delta_base         integer,
    full_package_required boolean NOT NULL DEFAULT false,
    retrying_since     timestamptz,
    next_attempt_at    timestamptz,
    bytes_total_estimated boolean NOT NULL DEFAULT false,
    attempt_started_at timestamptz,
    attempt_bytes      bigint CHECK (attempt_bytes >= 0),
    reported_eta       timestamptz,
    PRIMARY KEY (job_id, site_code, phase)
);
CREATE INDEX ON job_site_status (state, phase) WHERE state IN ('waiting', 'running', 'retrying');
REVOKE ALL ON job_site_status FROM PUBLIC;
GRANT SELECT ON job_site_status TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_site_status', '');
CREATE TRIGGER touch_updated_at BEFORE UPDATE ON job_site_status
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
-- The Despooler works on distribute rows only.  The Sender works on send
-- rows, and fails or completes a job when a row ends; the Despooler's
-- claim and progress at this site are not its work (they woke it about
-- six times a job at a site with no child).
CREATE TRIGGER notify_despooler AFTER INSERT OR UPDATE ON job_site_status
    FOR EACH ROW WHEN (NEW.phase = 'distribute')
    EXECUTE FUNCTION notify_change('despooler', 'job_id', 'site_code', 'phase');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE ON job_site_status
    FOR EACH ROW WHEN (NEW.phase = 'send' OR NEW.state IN ('done', 'failed'))
    EXECUTE FUNCTION notify_change('sender', 'job_id', 'site_code', 'phase');

-- Per (job, target machine): the Run phase as the workstation reports it.
-- status_id: the message that set the state (NULL: the site set it);
-- client_sequence, client_at: the agent's order of that message;
-- report_pending: the parent site still has to be told (a target of a job
-- the parent sent).
CREATE TABLE job_target_status (
    job_id             sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    sms_id             sms_id NOT NULL REFERENCES system_resources ON DELETE CASCADE,
    site_code          site_code NOT NULL,
    state              target_state NOT NULL DEFAULT 'waiting',
    detail             text,
    exit_code          integer,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    status_id          bigint,
    client_sequence    bigint,
    client_at          timestamptz,
    report_pending     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_id, sms_id)
);
CREATE INDEX ON job_target_status (sms_id);
CREATE INDEX job_target_status_live ON job_target_status (job_id)
    WHERE state < 'succeeded';
CREATE INDEX job_target_status_report ON job_target_status (job_id, sms_id)
    WHERE report_pending;
REVOKE ALL ON job_target_status FROM PUBLIC;
GRANT SELECT ON job_target_status TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_target_status', '');
-- The Sender tells child sites when a run-command job gains or loses
-- machines behind them.
CREATE TRIGGER notify_sender AFTER INSERT OR DELETE ON job_target_status
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');
-- A machine the site took out of a job (it left the job's collection)
-- must be taken out at the child sites too: the Sender pushes each hop
-- its machines (run_job_details).
CREATE TRIGGER notify_sender_not_applicable AFTER UPDATE OF state ON job_target_status
    FOR EACH ROW WHEN (NEW.state = 'not_applicable' AND NEW.status_id IS NULL AND OLD.state <> 'not_applicable')
    EXECUTE FUNCTION notify_change('sender', 'job_id');

-- What the parent's Sender last told each hop about a job's machines.
CREATE TABLE job_target_pushes (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    machines_md5     text NOT NULL,
    pushed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, hop)
);
REVOKE ALL ON job_target_pushes FROM PUBLIC;
GRANT SELECT ON job_target_pushes TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_target_pushes', '');

-- What each child site must still be told about a job: its copy there
-- follows the job here when the job is cancelled or expires (by an operator
-- or the Scheduler) and when a failed job is retried (failed -> pending).
-- One row per (job, hop): the newest change replaces one not sent yet.  The
-- Sender works the rows off (src/job_control.c) and deletes each once the
-- hop has taken it; a hop that is down keeps its rows, tried again after
-- 2^attempts seconds (at most 60), also after a restart of either site.
CREATE TABLE job_control_pushes (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    state            job_state NOT NULL
                     CONSTRAINT a_child_copy_is_cancelled_expired_or_retried
                     CHECK (state IN ('cancelled', 'expired', 'pending')),
    reason           text,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempted_at     timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    PRIMARY KEY (job_id, hop)
);
COMMENT ON TABLE job_control_pushes IS
    'a job''s cancellation, expiry or retry that the child site hop (and the sites behind it) has not taken yet';
REVOKE ALL ON job_control_pushes FROM PUBLIC;
GRANT SELECT ON job_control_pushes TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_control_pushes', '');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE ON job_control_pushes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-- The job state machine: allowed transitions, timestamps, the transition
-- log (docs/architecture.md).
\ir ../functions/jobs_check_transition.sql
\ir ../functions/jobs_log_transition.sql
\ir ../functions/jobs_new_is_pending.sql
\ir ../functions/jobs_check_targets.sql
CREATE TRIGGER jobs_check_transition BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_check_transition();
CREATE TRIGGER jobs_log_transition AFTER INSERT OR UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_log_transition();
CREATE TRIGGER jobs_new_is_pending BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_new_is_pending();
CREATE TRIGGER jobs_check_targets BEFORE INSERT OR UPDATE OF target_machines, target_sites ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_check_targets();
CREATE TRIGGER notify_scheduler AFTER INSERT OR UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION notify_change('scheduler', 'job_id');

-- Target resolution (used by the Scheduler when a job becomes active)
\ir ../functions/job_target_machines.sql
\ir ../functions/job_target_sites.sql
\ir ../functions/describe_targets.sql
\ir ../functions/job_target_counts.sql

-- How jobs end: every job and every target ends in a true state, and
-- cancel, expire and retry reach every site that holds a copy.
\ir ../functions/finish_job_if_done.sql
\ir ../functions/finish_done_jobs.sql
\ir ../functions/end_job_targets.sql
CREATE TRIGGER end_job_targets AFTER UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION end_job_targets();
\ir ../functions/jobs_control_change.sql
CREATE TRIGGER jobs_control_change AFTER UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_control_change();
