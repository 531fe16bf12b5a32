-- Target states: an agent's status messages move its target (job or
-- advertisement x machine) in the transaction that records them; a late,
-- repeated, foreign or backward message is recorded and moves nothing, with
-- the reason in status_messages.target_effect; a run-command job completes
-- when its last target is final; a job that is cancelled, expires or fails
-- takes its open targets with it; the views count current states.
BEGIN;
SELECT plan(60);

INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES ('CEN', 'Targets central', NULL) ON CONFLICT DO NOTHING;
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES
    ('TS2', 'Targets child', 'CEN');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
    ('TS100001', 'Targets test', '/srv/source/targets');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES
    ('TS100001', 'Install', 'setup.exe /q');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
    ('TS100001', 'WKS-1', 'CORP', 'CEN', 'WINNT_X86'),
    ('TS100002', 'WKS-2', 'CORP', 'CEN', 'WINNT_X86'),
    ('TS100003', 'WKS-3', 'CORP', 'CEN', 'WINNT_X86'),
    ('TS200001', 'WKS-C1', 'CORP', 'TS2', 'WINNT_X86');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('TS1000B1', 'run_command', 'TS100001', 'Install', 'machines', '{TS100001,TS100002,TS100003}', '2099-01-01'),
       ('TS1000B2', 'run_command', 'TS100001', 'Install', 'machines', '{TS100001}', '2099-01-01'),
       ('TS1000B3', 'run_command', 'TS100001', 'Install', 'machines', '{TS100001,TS100002}', '2099-01-01');
UPDATE smsdist.jobs SET state = 'active';
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code)
SELECT j, m, 'CEN' FROM unnest(ARRAY['TS100001', 'TS100002', 'TS100003']) m, unnest(ARRAY['TS1000B1']) j
UNION ALL SELECT 'TS1000B2', 'TS100001', 'CEN'
UNION ALL SELECT 'TS1000B3', m, 'CEN' FROM unnest(ARRAY['TS100001', 'TS100002']) m;

-- an agent's message, as the Status Manager records it
CREATE FUNCTION pg_temp.msg(p_machine text, p_seq bigint, p_at text, p_id integer, p_job text,
                            p_text text DEFAULT 'x', p_advert text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message,
                                         job_id, advert_id, client_sequence, client_at)
    VALUES ('CEN', 'Client Agent', p_machine, 'informational', p_id, p_text, p_job, p_advert, p_seq,
            ('2026-12-01 ' || p_at || '+00')::timestamptz)
    ON CONFLICT (machine, client_sequence, client_at) WHERE client_sequence IS NOT NULL DO NOTHING
    RETURNING target_effect
$$;
CREATE FUNCTION pg_temp.state(p_job text, p_machine text) RETURNS text LANGUAGE sql AS $$
    SELECT state::text FROM smsdist.job_target_status WHERE job_id = p_job AND sms_id = p_machine
$$;

-- ---- forward, one step at a time
SELECT is(pg_temp.msg('TS100001', 1, '10:00:00', 10002, 'TS1000B1'), 'job TS1000B1: waiting -> offered',
          'an offer (10002) moves the target to offered, and says so');
SELECT is(pg_temp.state('TS1000B1', 'TS100001'), 'offered', 'the target is offered');
SELECT is(pg_temp.msg('TS100001', 2, '10:00:01', 10003, 'TS1000B1'), 'job TS1000B1: offered -> downloaded',
          'a download (10003) moves it to downloaded');
SELECT is(pg_temp.msg('TS100001', 3, '10:00:02', 10005, 'TS1000B1'), 'job TS1000B1: downloaded -> running',
          'a start (10005) moves it to running');
SELECT is(pg_temp.msg('TS100001', 4, '10:00:03', 10008, 'TS1000B1', 'Program "Install" of package TS100001 succeeded (exit code 0).'),
          'job TS1000B1: running -> succeeded', 'a success (10008) moves it to succeeded');
SELECT is((SELECT exit_code FROM smsdist.job_target_status WHERE job_id = 'TS1000B1' AND sms_id = 'TS100001'), 0,
          'with exit code 0');
SELECT is((SELECT status_id FROM smsdist.job_target_status WHERE job_id = 'TS1000B1' AND sms_id = 'TS100001'),
          (SELECT max(status_id) FROM smsdist.status_messages), 'the target names the message that set its state');

-- ---- what does not move a target
SELECT is(pg_temp.msg('TS100001', 4, '10:00:03', 10008, 'TS1000B1'), NULL,
          'the same message again is not recorded twice');
SELECT is(pg_temp.msg('TS100001', 5, '10:00:04', 10005, 'TS1000B1'),
          'not applied to job TS1000B1: the target is already succeeded and does not go back to running',
          'running after a final state is recorded and does not move the target');
SELECT is(pg_temp.state('TS1000B1', 'TS100001'), 'succeeded', 'the target stays succeeded');
SELECT is(pg_temp.msg('TS100002', 10, '10:00:10', 10005, 'TS1000B1'), 'job TS1000B1: waiting -> running',
          'a machine may report running without an offer first');
SELECT is(pg_temp.msg('TS100002', 9, '10:00:09', 10002, 'TS1000B1'),
          'not applied to job TS1000B1: it is not newer than message 10 of 2026-12-01T10:00:10Z that set the target''s state',
          'a late message (an older sequence and time) is recorded and does not move the target');
SELECT is(pg_temp.msg('TS100002', 11, '10:00:11', 10002, 'TS1000B1'),
          'not applied to job TS1000B1: the target is already running and does not go back to offered',
          'a newer message that would move it back does not');
SELECT is(pg_temp.msg('TS100002', 12, '10:00:12', 10008, 'TS1000B9'),
          'not applied: job TS1000B9 is unknown at site ' || current_setting('smsdist.site_code'),
          'a message for an unknown job is recorded and says so');
SELECT is(pg_temp.msg('TS100003', 13, '10:00:13', 10008, 'TS1000B2'),
          'not applied: machine TS100003 is not a target of job TS1000B2',
          'a message of a machine that is not a target of the job is recorded and says so');
SELECT is((SELECT count(*)::integer FROM smsdist.status_messages WHERE target_effect LIKE 'not applied%'), 5,
          'every message that did not apply is kept in status_messages, with its reason');
SELECT is(pg_temp.msg('TS100002', 14, '10:00:14', 10006, 'TS1000B1', 'no room in the cache'),
          'job TS1000B1: running, detail only', 'a cache-full message changes only the detail of an open target');
SELECT is((SELECT detail FROM smsdist.job_target_status WHERE job_id = 'TS1000B1' AND sms_id = 'TS100002'),
          'no room in the cache', 'which is the message text');

-- ---- failed then succeeded: one success; the job completes
SELECT is(pg_temp.msg('TS100002', 15, '10:00:15', 10009, 'TS1000B1', 'Program "Install" of package TS100001 failed with exit code 3.'),
          'job TS1000B1: running -> failed', 'a failure (10009) moves the target to failed');
SELECT is((SELECT exit_code FROM smsdist.job_target_status WHERE job_id = 'TS1000B1' AND sms_id = 'TS100002'), 3,
          'with the exit code from the text of an agent that sends none');
SELECT is(pg_temp.msg('TS100002', 16, '10:00:16', 10008, 'TS1000B1'), 'job TS1000B1: failed -> succeeded',
          'a newer final outcome (a rerun that succeeded) replaces the old one');
SELECT results_eq($$SELECT targeted, offered, running, succeeded, failed FROM smsdist.job_status WHERE job_id = 'TS1000B1'$$,
                  $$VALUES (3::bigint, 0::bigint, 0::bigint, 2::bigint, 0::bigint)$$,
                  'job_status counts current states: the machine that failed and then succeeded is one success');
SELECT is((SELECT state::text FROM smsdist.jobs WHERE job_id = 'TS1000B1'), 'active', 'the job is active while a target is open');
SELECT is(pg_temp.msg('TS100003', 17, '10:00:17', 10007, 'TS1000B1', 'not for this platform'),
          'job TS1000B1: waiting -> not_applicable', 'not applicable (10007) is final');
SELECT is((SELECT state::text FROM smsdist.jobs WHERE job_id = 'TS1000B1'), 'completed',
          'the job completes in the transaction that ends its last target');
SELECT is((SELECT state_reason FROM smsdist.jobs WHERE job_id = 'TS1000B1'), '2 succeeded, 1 not applicable',
          'its reason gives the counts');
SELECT is(pg_temp.msg('TS100001', 20, '10:00:20', 10009, 'TS1000B2', 'failed with exit code 1603'),
          'job TS1000B2: waiting -> failed', 'a machine that fails');
SELECT is((SELECT state::text || ': ' || state_reason FROM smsdist.jobs WHERE job_id = 'TS1000B2'),
          'completed: with failures: 1 failed',
          'a job whose programs ran and failed completed, with failures: it is not a job that could not be distributed');

-- ---- a job that ends otherwise takes its open targets with it
SELECT is(pg_temp.msg('TS100001', 21, '10:00:21', 10005, 'TS1000B3'), 'job TS1000B3: waiting -> running', 'one target runs');
UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'by the test' WHERE job_id = 'TS1000B3';
SELECT results_eq($$SELECT sms_id::text, state::text, detail FROM smsdist.job_target_status WHERE job_id = 'TS1000B3' ORDER BY sms_id$$,
                  $$VALUES ('TS100001', 'cancelled', 'job TS1000B3 cancelled: by the test'),
                           ('TS100002', 'cancelled', 'job TS1000B3 cancelled: by the test')$$,
                  'cancelling a job cancels its open targets, with the reason');
SELECT is(pg_temp.msg('TS100002', 23, '10:00:23', 10007, 'TS1000B3', 'no longer targeted'),
          'not applied to job TS1000B3: the target is already cancelled',
          'an agent that no longer finds the cancelled job says not applicable: the target stays cancelled');
SELECT is(pg_temp.msg('TS100001', 22, '10:00:22', 10008, 'TS1000B3'), 'job TS1000B3: cancelled -> succeeded',
          'a program that ran before the cancel arrived still reports its true outcome');

-- ---- advertisements
INSERT INTO smsdist.collections (collection_id, name) VALUES ('TS1000C1', 'Targets collection');
INSERT INTO smsdist.collection_members VALUES ('TS1000C1', 'TS100001'), ('TS1000C1', 'TS100002');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('TS1000A1', 'Targets advert', 'TS100001', 'Install', 'TS1000C1');
SELECT results_eq($$SELECT sms_id::text, state::text FROM smsdist.advertisement_target_status WHERE advert_id = 'TS1000A1' ORDER BY 1$$,
                  $$VALUES ('TS100001', 'waiting'), ('TS100002', 'waiting')$$,
                  'an advertisement has one waiting target per member of its collection');
SELECT is(pg_temp.msg('TS100001', 30, '10:00:30', 10001, NULL, 'offered', 'TS1000A1'), 'advertisement TS1000A1: waiting -> offered',
          'an advertisement offer (10001) moves its target');
SELECT is(pg_temp.msg('TS100003', 31, '10:00:31', 10001, NULL, 'offered', 'TS1000A1'),
          'not applied: machine TS100003 is not a target of advertisement TS1000A1',
          'a machine outside the collection moves nothing');
SELECT is(pg_temp.msg('TS100001', 32, '10:00:32', 10001, NULL, 'offered', 'TS1000A9'),
          'not applied: advertisement TS1000A9 is unknown at site ' || current_setting('smsdist.site_code'),
          'an unknown advertisement moves nothing');
DELETE FROM smsdist.collection_members WHERE collection_id = 'TS1000C1' AND sms_id = 'TS100002';
SELECT is((SELECT state::text FROM smsdist.advertisement_target_status WHERE advert_id = 'TS1000A1' AND sms_id = 'TS100002'),
          'not_applicable', 'a member that leaves before its program ran is not applicable');
INSERT INTO smsdist.collection_members VALUES ('TS1000C1', 'TS100002');
SELECT is((SELECT state::text FROM smsdist.advertisement_target_status WHERE advert_id = 'TS1000A1' AND sms_id = 'TS100002'),
          'waiting', 'and waiting again when it comes back before its agent said anything');
SELECT results_eq($$SELECT targeted, waiting, offered FROM smsdist.advertisement_status WHERE advert_id = 'TS1000A1'$$,
                  $$VALUES (2::bigint, 1::bigint, 1::bigint)$$, 'advertisement_status counts current states');

-- ---- a user's advertisement: the machine is met through its user
INSERT INTO smsdist.users (user_name, domain) VALUES ('alice', 'CORP');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('TS1000C2', 'Targets users');
INSERT INTO smsdist.collection_user_members (collection_id, user_name, domain) VALUES ('TS1000C2', 'alice', 'CORP');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('TS1000A2', 'Targets user advert', 'TS100001', 'Install', 'TS1000C2');
SELECT is(pg_temp.msg('TS100003', 33, '10:00:33', 10001, NULL, 'offered', 'TS1000A2'), 'advertisement TS1000A2: waiting -> offered',
          'an advertisement to users gains the machine whose agent reports it');
SELECT is((SELECT through_user FROM smsdist.advertisement_target_status WHERE advert_id = 'TS1000A2' AND sms_id = 'TS100003'), true,
          'as a target met through its user');

-- ---- the parent's side of a child's target report
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code) VALUES ('TS1000B2', 'TS200001', 'TS2');
SELECT is(smsdist.receive_target_report('TS2', '[{"kind": "job", "id": "TS1000B2", "sms_id": "TS200001", "state": "succeeded", "detail": "ok", "exit_code": 0}]')
          ->>'applied', '1', 'a child''s target row for a machine of its own is applied');
SELECT is(pg_temp.state('TS1000B2', 'TS200001'), 'succeeded', 'the parent''s target row follows the child''s');
SELECT is(smsdist.receive_target_report('TS2', '[{"kind": "job", "id": "TS1000B2", "sms_id": "TS100001", "state": "succeeded"}]')
          ->>'reason', 'machine TS100001 is of site CEN, which is not site TS2 or behind it',
          'a row for a machine outside the child''s subtree is refused, with the reason');
SELECT is(smsdist.receive_target_report('TS2', '[{"kind": "job", "id": "TS1000B2", "sms_id": "TS200001", "state": "done"}]')
          ->>'reason', 'done is not a target state', 'a state that does not exist is refused');
SELECT is(smsdist.receive_target_report('TS2', '[{"kind": "job", "id": "TS1000B1", "sms_id": "TS200001", "state": "failed"}]')
          ->>'reason', 'machine TS200001 is not a target of job TS1000B1 here', 'a machine that is not a target here is refused');
INSERT INTO smsdist.job_control_pushes (job_id, hop, state, reason) VALUES ('TS1000B2', 'TS2', 'pending', 'retried');
SELECT is(smsdist.receive_target_report('TS2', '[{"kind": "job", "id": "TS1000B2", "sms_id": "TS200001", "state": "failed"}]')
          ->>'reason', 'job TS1000B2 was retried here and the retry has not reached site TS2 yet: the row is from before',
          'a row of a job whose retry has not reached the child yet is refused: it is from the run before');
DELETE FROM smsdist.job_control_pushes WHERE job_id = 'TS1000B2';
SELECT throws_ok($$SELECT smsdist.receive_target_report('CEN', '[]')$$, '42501', NULL,
                 'only a child of this site may report targets');
-- one bad row fails alone: a row without a state (which once made the
-- whole report fail on the table's NOT NULL) or without a kind is refused,
-- the good row beside it applied
SELECT is(smsdist.receive_target_report('TS2', '[{"kind": "job", "id": "TS1000B2", "sms_id": "TS200001"},
          {"id": "TS1000B2", "sms_id": "TS200001", "state": "failed"},
          {"kind": "job", "id": "TS1000B2", "sms_id": "TS200001", "state": "running"}]'),
          '{"applied": 1, "reason": "it has no state", "refused": 2}'::jsonb,
          'a row without a state or a kind is refused by itself, the others applied');
SELECT is(pg_temp.state('TS1000B2', 'TS200001'), 'running', 'the good row of that report is applied');
-- a report that names a target twice: the last row wins, both count
SELECT is(smsdist.receive_target_report('TS2', '[{"kind": "job", "id": "TS1000B2", "sms_id": "TS200001", "state": "failed", "exit_code": 3},
          {"kind": "job", "id": "TS1000B2", "sms_id": "TS200001", "state": "succeeded", "exit_code": 0}]'),
          '{"applied": 2, "reason": null, "refused": 0}'::jsonb, 'a target named twice in one report: both rows count');
SELECT is(pg_temp.state('TS1000B2', 'TS200001'), 'succeeded', 'and the last row is the one that stays');

-- ---- an advertisement that expires takes its open targets with it
UPDATE smsdist.advertisements SET offer_time = '2026-01-01 00:00', expires_time = '2026-01-02 00:00' WHERE advert_id = 'TS1000A1';
SELECT is(smsdist.expire_advertisement_targets(), 2, 'the open targets of an expired advertisement expire');
SELECT results_eq($$SELECT sms_id::text, state::text, detail FROM smsdist.advertisement_target_status WHERE advert_id = 'TS1000A1' ORDER BY 1$$,
                  $$VALUES ('TS100001', 'expired', 'advertisement TS1000A1 expired at 2026-01-02 00:00 UTC'),
                           ('TS100002', 'expired', 'advertisement TS1000A1 expired at 2026-01-02 00:00 UTC')$$,
                  'with the time it expired');

-- ---- the Scheduler's net
UPDATE smsdist.job_target_status SET state = 'succeeded' WHERE job_id = 'TS1000B1';
SELECT is(smsdist.finish_done_jobs(), 0, 'finish_done_jobs: nothing left when each job ended with its last target');

-- ---- target_changed runs only for a change of state, detail or exit code
CREATE TEMP TABLE stamped AS
SELECT sms_id, updated_at FROM smsdist.job_target_status WHERE job_id = 'TS1000B2';
UPDATE smsdist.job_target_status SET client_at = '2026-12-01 00:00+00' WHERE job_id = 'TS1000B2';
SELECT is((SELECT bool_and(t.updated_at = s.updated_at) FROM smsdist.job_target_status t JOIN stamped s USING (sms_id)
            WHERE t.job_id = 'TS1000B2'),
          true, 'target_changed: an update of neither state, detail nor exit code leaves updated_at');
UPDATE smsdist.job_target_status SET detail = 'changed by the test' WHERE job_id = 'TS1000B2';
SELECT is((SELECT bool_and(t.updated_at > s.updated_at AND NOT t.report_pending)
             FROM smsdist.job_target_status t JOIN stamped s USING (sms_id) WHERE t.job_id = 'TS1000B2'),
          true, 'a new detail stamps the row; a job of this site has no parent to hear of it');

-- ---- new targets queue PCM files, unless their job's distribution at
-- their site was written by the same transaction and is not done (a job
-- being activated: the Despooler queues its machines once it has
-- distributed the package)
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('TS1000C1', 'run_command', 'TS100001', 'Install', 'machines', '{TS100003}', '2099-01-01'),
       ('TS1000C2', 'run_command', 'TS100001', 'Install', 'machines', '{TS100003}', '2099-01-01');
UPDATE smsdist.jobs SET state = 'active' WHERE job_id IN ('TS1000C1', 'TS1000C2');
DELETE FROM smsdist.pcm_queue;
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state) VALUES ('TS1000C1', 'CEN', 'distribute', 'waiting');
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code) VALUES ('TS1000C1', 'TS100003', 'CEN');
SELECT is((SELECT count(*) FROM smsdist.pcm_queue), 0::bigint,
          'a target of a job whose distribution here this transaction began queues no PCM file');
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state) VALUES ('TS1000C2', 'CEN', 'distribute', 'done');
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code) VALUES ('TS1000C2', 'TS100003', 'CEN');
SELECT is((SELECT array_agg(sms_id::text) FROM smsdist.pcm_queue), ARRAY['TS100003'],
          'a target of a job distributed here queues the machine''s PCM file');
DELETE FROM smsdist.pcm_queue;
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code) VALUES ('TS1000C1', 'TS200001', 'TS2');
SELECT is((SELECT array_agg(sms_id::text) FROM smsdist.pcm_queue), ARRAY['TS200001'],
          'a target at a site without such a distribution row is queued as before');

SELECT * FROM finish();
ROLLBACK;
