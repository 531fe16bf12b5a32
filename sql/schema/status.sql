-- Status messages and the state of each target.
--
-- The Status Manager takes each file an agent writes to its CAP's
-- statmsgs.box into status_messages (advanced mode: client_status()): at is
-- when the site took it, client_at the agent's own clock, client_sequence
-- the agent's message number.  A file read twice (a crash between the
-- insert and the removal of the file) is recorded once.  A target (a
-- run-command job or an advertisement, times one machine) has one current
-- state, moved by the agent's own status messages in the same transaction
-- that records them; history stays in status_messages, whose exit_code and
-- target_effect say what a message did.  Jobs end when every target at every
-- site is final (docs/status-messages.md).
CREATE TABLE status_messages (
    status_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_code          site_code,
    component          text NOT NULL,
    machine            text,
    severity           severity NOT NULL,
    message_id         integer NOT NULL,
    at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
    message            text NOT NULL,
    job_id             sms_id,
    package_id         sms_id,
    advert_id          sms_id,
    client_at          timestamptz,
    client_sequence    bigint CHECK (client_sequence BETWEEN 0 AND 9999999999),
    exit_code          integer,
    target_effect      text
);
CREATE INDEX ON status_messages (at);
CREATE INDEX ON status_messages (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX ON status_messages (package_id) WHERE package_id IS NOT NULL;
CREATE INDEX ON status_messages (advert_id) WHERE advert_id IS NOT NULL;
CREATE UNIQUE INDEX status_messages_client_once ON status_messages (machine, client_sequence, client_at)
    WHERE client_sequence IS NOT NULL;
REVOKE ALL ON status_messages FROM PUBLIC;
GRANT SELECT ON status_messages TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON status_messages TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.status_messages', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.status_messages_status_id_seq', '');
CREATE TRIGGER notify_status_manager AFTER INSERT ON status_messages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('status_manager');

-- Status summaries travel up: each site's Status Manager sends its parent,
-- per advertisement and per run-command job that came from above, how many
-- of its machines were targeted, offered, downloaded, succeeded and failed
-- (its own and those its children reported to it).  The parent keeps them
-- per reporting site.  The child reaches its parent through a
-- sender_addresses row for the parent's site code.
CREATE TABLE site_status_reports (
    site_code        site_code NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('advertisement', 'job')),
    object_id        sms_id NOT NULL,
    targeted         integer NOT NULL CHECK (targeted >= 0),
    offered          integer NOT NULL CHECK (offered >= 0),
    downloaded       integer NOT NULL CHECK (downloaded >= 0),
    succeeded        integer NOT NULL CHECK (succeeded >= 0),
    failed           integer NOT NULL CHECK (failed >= 0),
    reported_by      site_code NOT NULL,
    reported_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (site_code, kind, object_id)
);
REVOKE ALL ON site_status_reports FROM PUBLIC;
GRANT SELECT ON site_status_reports TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.site_status_reports', '');
-- a report from a child is passed on up at once
CREATE TRIGGER notify_status_manager AFTER INSERT OR UPDATE OR DELETE ON site_status_reports
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('status_manager');

-- The target lifecycle
\ir ../functions/target_state_is_final.sql
\ir ../functions/message_target_state.sql
\ir ../functions/target_changed.sql
CREATE TRIGGER target_changed BEFORE UPDATE ON job_target_status
    FOR EACH ROW
    WHEN ((NEW.state, NEW.detail, NEW.exit_code) IS DISTINCT FROM (OLD.state, OLD.detail, OLD.exit_code))
    EXECUTE FUNCTION target_changed();
CREATE TRIGGER target_changed BEFORE UPDATE ON advertisement_target_status
    FOR EACH ROW
    WHEN ((NEW.state, NEW.detail, NEW.exit_code) IS DISTINCT FROM (OLD.state, OLD.detail, OLD.exit_code))
    EXECUTE FUNCTION target_changed();
-- A target row whose report is newly pending wakes the Status Manager,
-- which sends it up.
CREATE TRIGGER notify_status_manager AFTER UPDATE ON job_target_status
    FOR EACH ROW WHEN (NEW.report_pending AND NOT OLD.report_pending)
    EXECUTE FUNCTION notify_change('status_manager', 'job_id');
CREATE TRIGGER notify_status_manager AFTER UPDATE ON advertisement_target_status
    FOR EACH ROW WHEN (NEW.report_pending AND NOT OLD.report_pending)
    EXECUTE FUNCTION notify_change('status_manager', 'advert_id');
\ir ../functions/move_target.sql
CREATE TRIGGER move_target BEFORE INSERT ON status_messages
    FOR EACH ROW EXECUTE FUNCTION move_target();
\ir ../functions/finish_jobs_of_messages.sql
CREATE TRIGGER finish_jobs AFTER INSERT ON status_messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finish_jobs_of_messages();

-- Status from agents (advanced mode) and what the site knows of them
\ir ../functions/client_status.sql
\ir ../functions/agent_last_heard.sql

-- History older than smsdist.status_retention, pruned on request
\ir ../functions/prune_status_messages.sql
