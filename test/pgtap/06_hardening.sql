-- Hardening found by review: fields of a started job stay put even in the
-- update that changes its state; the bookkeeping columns cannot be forged;
-- a hand-made activation is timestamped; Unicode controls and empty conninfo
-- are refused.  Jobs start in 2099 so the running Scheduler leaves them alone.
BEGIN;
SELECT plan(16);

INSERT INTO smsdist.sites VALUES ('TH1', 'Hardening', NULL);
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
    ('TH100001', 'Hardening', '/srv/h'), ('TH100002', 'Other', '/srv/o');
INSERT INTO smsdist.programs VALUES ('TH100001', 'Run', 'run', NULL, 5), ('TH100002', 'Run', 'run', NULL, 5);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('TH100001', 'WKS-H1', 'CORP', 'TH1', 'WIN95'), ('TH100002', 'WKS-H2', 'CORP', 'TH1', 'WIN95');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('TH100001', 'run_command', 'TH100001', 'Run', 'machines', '{TH100001}', '2099-01-01');

-- a hand-made activation is timestamped like the Scheduler's
UPDATE smsdist.jobs SET state = 'active', state_reason = 'by hand' WHERE job_id = 'TH100001';
SELECT isnt((SELECT activated_at FROM smsdist.jobs WHERE job_id = 'TH100001'), NULL,
    'activated_at is set when a job is activated by hand');

-- locked fields cannot ride along with a state change
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'completed', package_id = 'TH100002', program_name = 'Run'
                   WHERE job_id = 'TH100001'$$,
    '55000', 'job TH100001 is active and its type, package, program, targets and Start After can no longer change',
    'package cannot change in the same update that completes the job');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'cancelled', target_machines = '{TH100002}' WHERE job_id = 'TH100001'$$,
    '55000', NULL, 'targets cannot change in the same update that cancels the job');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'failed', start_after = '2099-06-01' WHERE job_id = 'TH100001'$$,
    '55000', NULL, 'Start After cannot change in the same update that fails the job');

-- bookkeeping columns belong to the triggers
UPDATE smsdist.jobs SET created_by = 'mallory', created_at = '2000-01-01', state_changed_by = 'mallory',
                        activated_at = NULL, finished_at = '2000-01-01', comment = 'edited'
 WHERE job_id = 'TH100001';
SELECT is((SELECT created_by::text FROM smsdist.jobs WHERE job_id = 'TH100001'), current_user::text,
    'created_by cannot be forged');
SELECT isnt((SELECT created_at FROM smsdist.jobs WHERE job_id = 'TH100001'), '2000-01-01'::timestamptz,
    'created_at cannot be forged');
SELECT is((SELECT state_changed_by::text FROM smsdist.jobs WHERE job_id = 'TH100001'), current_user::text,
    'state_changed_by cannot be forged');
SELECT isnt((SELECT activated_at FROM smsdist.jobs WHERE job_id = 'TH100001'), NULL,
    'activated_at cannot be cleared');
SELECT is((SELECT finished_at FROM smsdist.jobs WHERE job_id = 'TH100001'), NULL,
    'finished_at cannot be set by hand');
SELECT is((SELECT comment FROM smsdist.jobs WHERE job_id = 'TH100001'), 'edited',
    'ordinary columns still change');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, created_by, created_at)
VALUES ('TH100002', 'run_command', 'TH100001', 'Run', 'machines', '{TH100001}', '2099-01-01', 'mallory', '2000-01-01');
SELECT is((SELECT created_by::text || (created_at > '2001-01-01')::text FROM smsdist.jobs WHERE job_id = 'TH100002'),
    current_user::text || 'true', 'an INSERT cannot forge created_by or created_at');

-- Unicode line breaks and C1 controls (this database is UTF-8)
SELECT is(pg_encoding_to_char(encoding), 'UTF8', 'the test database is UTF-8')
  FROM pg_database WHERE datname = current_database();
SELECT throws_ok($$SELECT smsdist.check_object_name(E'name\u2028second line')$$, '23514',
    E'invalid name "name\u2028second line": it contains a control character', 'U+2028 in a name is refused');
SELECT throws_ok($$SELECT smsdist.check_command_line(E'setup.exe\u0085rm -rf /')$$, '23514',
    NULL, 'NEL (U+0085) in a command line is refused');
SELECT throws_ok($$SELECT smsdist.check_server_path(E'/srv/a\u2029b')$$, '23514',
    NULL, 'U+2029 in a path is refused');
SELECT throws_ok($$SELECT smsdist.check_conninfo('   ')$$, '23514',
    'invalid connection string for sender address: it is empty', 'an empty conninfo is refused');

SELECT * FROM finish();
ROLLBACK;
