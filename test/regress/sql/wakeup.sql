-- Wake-ups: a commit wakes the Scheduler at once (poll_interval is 60 s
-- here), a rollback wakes nobody, and NOTIFY reaches outside listeners.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
DROP EXTENSION smsdist CASCADE;
CREATE EXTENSION smsdist;
SHOW smsdist.poll_interval;

-- wait up to timeout seconds for a condition, polling every 10 ms
CREATE FUNCTION pg_temp.wait_for(cond text, timeout float8) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout * interval '1 second';
    ok boolean;
BEGIN
    LOOP
        EXECUTE cond INTO ok;
        IF ok THEN RETURN true; END IF;
        IF clock_timestamp() > deadline THEN RETURN false; END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;

-- the Scheduler is running and idle
SELECT pg_temp.wait_for($$SELECT pid IS NOT NULL AND state = 'idle' FROM smsdist.workers WHERE component = 'scheduler'$$, 30);

INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
-- the source does not exist: the job is activated, then fails when the
-- package cannot be compressed
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Tool', '/srv/nonexistent/tool');
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Run', 'tool --install', NULL, 5);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00001', 'WKS1', 'CORP', 'CH1', 'WIN95');

-- a rolled-back job wakes nobody
SELECT wake_requests AS before FROM smsdist.workers WHERE component = 'scheduler' \gset
BEGIN;
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines)
    VALUES ('run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}');
ROLLBACK;
SELECT pg_sleep(0.3);
SELECT wake_requests - :before AS wake_requests_after_rollback
  FROM smsdist.workers WHERE component = 'scheduler';

-- a committed job wakes it: active well within the 60 s poll (30 s allows
-- for a busy machine and still proves the wake-up)
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
    VALUES ('CEN000A1', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}');
SELECT pg_temp.wait_for($$SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN000A1'$$, 30)
    AS activated_before_the_poll;
SELECT wake_requests - :before >= 1 AS woken FROM smsdist.workers WHERE component = 'scheduler';
-- (its target waits, or has already ended with the job: the builder may be quick)
SELECT job_id, sms_id, site_code, state IN ('waiting', 'failed') AS recorded
  FROM smsdist.job_target_status WHERE job_id = 'CEN000A1';
-- the package builder finds no source: the job fails, with the reason
SELECT pg_temp.wait_for($$SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN000A1'$$, 30)
    AS failed_for_its_package;
SELECT sms_id, state FROM smsdist.job_target_status WHERE job_id = 'CEN000A1';
SELECT job_id, site_code, phase, state, last_error FROM smsdist.job_site_status WHERE job_id = 'CEN000A1';
SELECT package_id, source_version, state, error FROM smsdist.package_builds;
SELECT from_state, to_state, by_application, reason FROM smsdist.job_transitions
 WHERE job_id = 'CEN000A1' ORDER BY transition_id;
SELECT severity, message_id, message FROM smsdist.status_messages
 WHERE job_id = 'CEN000A1' OR (package_id = 'CEN00001' AND message_id = 3101) ORDER BY status_id;

-- wake() is transactional too
SELECT wake_requests AS before FROM smsdist.workers WHERE component = 'scheduler' \gset
BEGIN; SELECT smsdist.wake('scheduler'); ROLLBACK;
SELECT wake_requests - :before AS after_rolled_back_wake FROM smsdist.workers WHERE component = 'scheduler';
SELECT smsdist.wake('scheduler');
SELECT wake_requests - :before AS after_committed_wake FROM smsdist.workers WHERE component = 'scheduler';
SELECT smsdist.wake('mailer');

-- a job that resolves to no site fails with its reason
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00001', 'Empty');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id)
    VALUES ('CEN000A2', 'run_command', 'CEN00001', 'Run', 'collection', 'CEN00001');
SELECT pg_temp.wait_for($$SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN000A2'$$, 30)
    AS failed_before_the_poll;
SELECT state, state_reason FROM smsdist.jobs WHERE job_id = 'CEN000A2';
SELECT severity, message_id, message FROM smsdist.status_messages WHERE job_id = 'CEN000A2';

-- a job whose expiry passes is expired, at that time (a Remove Package job
-- for the child site: it needs no package file and waits for the Sender)
-- (active first: a job whose expiry has passed before the Scheduler
-- activates it is expired straight from pending)
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, start_after, expires_at)
    VALUES ('CEN000A3', 'remove_package', 'CEN00001', 'sites', '{CH1}',
            clock_timestamp() + interval '1 hour', clock_timestamp() + interval '1.5 hour');
UPDATE smsdist.jobs SET start_after = clock_timestamp() - interval '1 hour'
 WHERE job_id = 'CEN000A3';
SELECT pg_temp.wait_for($$SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN000A3'$$, 30)
    AS activated;
UPDATE smsdist.jobs SET expires_at = clock_timestamp() + interval '0.5 s'
 WHERE job_id = 'CEN000A3';
SELECT pg_temp.wait_for($$SELECT state = 'expired' FROM smsdist.jobs WHERE job_id = 'CEN000A3'$$, 30)
    AS expired;
SELECT from_state, to_state FROM smsdist.job_transitions WHERE job_id = 'CEN000A3' ORDER BY transition_id;
