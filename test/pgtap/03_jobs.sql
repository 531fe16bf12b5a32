-- Jobs: the state machine and its log, new SMS IDs, target checks and target
-- resolution.  Every job starts after 2099-01-01 so that the running
-- Scheduler never activates or expires it (and nothing here is committed).
BEGIN;
SELECT plan(94);

-------------------------------------------------------------------------------
-- Fixtures: a 3-level site hierarchy TJ1 > TJ2 > TJ3, TJ1 > TJ4, and TJ5 alone
-------------------------------------------------------------------------------
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES
    ('TJ1', 'Jobs central', NULL), ('TJ2', 'Jobs child', 'TJ1'),
    ('TJ3', 'Jobs grandchild', 'TJ2'), ('TJ4', 'Jobs second child', 'TJ1'),
    ('TJ5', 'Jobs other central', NULL);
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
    ('TJ100001', 'Jobs test', '/srv/source/jobs');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES
    ('TJ100001', 'Install', 'setup.exe /q'), ('TJ100001', 'Remove', 'setup.exe /remove');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
    ('TJ200001', 'WKS-TJ2-1', 'CORP', 'TJ2', 'WINNT_X86'),
    ('TJ300001', 'WKS-TJ3-1', 'CORP', 'TJ3', 'WIN95'),
    ('TJ400001', 'WKS-TJ4-1', 'SALES', 'TJ4', 'LINUX_X86_64');
INSERT INTO smsdist.collections (collection_id, name) VALUES
    ('TJ100001', 'Jobs collection'), ('TJ100002', 'Jobs empty collection');
-- membership is the Collection Evaluator's to keep; written directly here
INSERT INTO smsdist.collection_members VALUES ('TJ100001', 'TJ300001'), ('TJ100001', 'TJ400001');

-- a pending run-command job on machine TJ200001
CREATE FUNCTION pg_temp.new_job(p_id text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
    VALUES (p_id, 'run_command', 'TJ100001', 'Install', 'machines', '{TJ200001}', '2099-01-01')
$$;
-- current_user as text of the default collation (name is collated "C")
CREATE FUNCTION pg_temp.me() RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_user::text $$;
-- the transitions of a job as (from, to, by_role, reason)
CREATE FUNCTION pg_temp.log_of(p_id text) RETURNS TABLE (from_state text, to_state text, by_role text, reason text)
LANGUAGE sql AS $$
    SELECT from_state::text, to_state::text, by_role::text COLLATE "default", reason
      FROM smsdist.job_transitions WHERE job_id = p_id ORDER BY transition_id
$$;

-------------------------------------------------------------------------------
-- Creation
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT pg_temp.new_job('TJ1000B1')$$, 'a run-command job on listed machines can be created');
SELECT results_eq(
    $$SELECT state::text, state_reason, state_changed_by = current_user, created_by = session_user,
             activated_at IS NULL, finished_at IS NULL, priority::text
        FROM smsdist.jobs WHERE job_id = 'TJ1000B1'$$,
    $$VALUES ('pending', NULL::text, true, true, true, true, 'medium')$$,
    'a new job is pending, changed by current_user, created by session_user, not activated or finished');
SELECT results_eq($$SELECT * FROM pg_temp.log_of('TJ1000B1')$$,
                  $$VALUES (NULL::text, 'pending', pg_temp.me(), 'created')$$,
                  'creating a job logs one transition from NULL to pending, reason "created"');
SELECT is((SELECT by_application FROM smsdist.job_transitions WHERE job_id = 'TJ1000B1'),
          current_setting('application_name'), 'the transition records the application_name');

INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, start_after, state_reason,
                          activated_at, finished_at, state_changed_by)
VALUES ('TJ1000B2', 'share_package', 'TJ100001', 'sites', '{TJ2}', '2099-01-01', 'imported from SMS 1.2',
        '2000-01-01', '2000-01-02', 'mallory');
SELECT results_eq($$SELECT * FROM pg_temp.log_of('TJ1000B2')$$,
                  $$VALUES (NULL::text, 'pending', pg_temp.me(), 'imported from SMS 1.2')$$,
                  'a reason given at creation is logged instead of "created"');
SELECT results_eq(
    $$SELECT activated_at, finished_at, state_changed_by::text COLLATE "default" FROM smsdist.jobs WHERE job_id = 'TJ1000B2'$$,
    $$VALUES (NULL::timestamptz, NULL::timestamptz, pg_temp.me())$$,
    'activated_at, finished_at and state_changed_by given at creation are overridden');

SELECT throws_ok(
    $$INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, state)
      VALUES ('TJ1000B3', 'run_command', 'TJ100001', 'Install', 'machines', '{TJ200001}', '2099-01-01', 'active')$$,
    '23514', 'a new job starts in state pending, not active', 'a job cannot be created active');
SELECT throws_ok(
    $$INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, state)
      VALUES ('TJ1000B3', 'run_command', 'TJ100001', 'Install', 'machines', '{TJ200001}', '2099-01-01', 'completed')$$,
    '23514', 'a new job starts in state pending, not completed', 'a job cannot be created completed');

-------------------------------------------------------------------------------
-- New SMS IDs
-------------------------------------------------------------------------------
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after, comment)
VALUES ('run_command', 'TJ100001', 'Install', 'machines', '{TJ200001}', '2099-01-01', 'pgtap default job_id');
SELECT matches((SELECT job_id::text FROM smsdist.jobs WHERE comment = 'pgtap default job_id'),
               '^CEN[0-9A-F]{5}$', 'a job without an ID gets CEN + 5 upper-case hex digits');
SELECT matches(smsdist.new_sms_id('smsdist.package_id_seq')::text, '^CEN[0-9A-F]{5}$',
               'new_sms_id(package_id_seq) is CEN + 5 upper-case hex digits');
CREATE TEMP SEQUENCE tap_seq_a START 10;
CREATE TEMP SEQUENCE tap_seq_b START 1048575;
CREATE TEMP SEQUENCE tap_seq_c START 1;
SELECT is(smsdist.new_sms_id('tap_seq_a')::text, 'CEN0000A', 'new_sms_id: 10 is CEN0000A (upper-case hex)');
SELECT is(smsdist.new_sms_id('tap_seq_b')::text, 'CENFFFFF', 'new_sms_id: 1048575 is CENFFFFF');
SELECT is(smsdist.new_sms_id('tap_seq_c')::text, 'CEN00001', 'new_sms_id: 1 is CEN00001 (zero-padded to 5 digits)');
SELECT is(smsdist.new_sms_id('tap_seq_c')::text, 'CEN00002', 'new_sms_id takes the next value each call');

-------------------------------------------------------------------------------
-- Allowed transitions
-------------------------------------------------------------------------------
-- pending -> active -> completed
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'active', state_reason = 'started by hand' WHERE job_id = 'TJ1000B1'$$,
                'pending -> active is allowed');
SELECT results_eq($$SELECT state::text, state_reason, finished_at IS NULL FROM smsdist.jobs WHERE job_id = 'TJ1000B1'$$,
                  $$VALUES ('active', 'started by hand', true)$$,
                  'an active job keeps the reason given and is not finished');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'completed' WHERE job_id = 'TJ1000B1'$$,
                'active -> completed is allowed');
SELECT results_eq($$SELECT state::text, state_reason, finished_at IS NOT NULL, finished_at >= now() FROM smsdist.jobs WHERE job_id = 'TJ1000B1'$$,
                  $$VALUES ('completed', NULL::text, true, true)$$,
                  'completed: finished_at is set and the previous reason is reset, none being given');
SELECT results_eq($$SELECT * FROM pg_temp.log_of('TJ1000B1')$$,
                  $$VALUES (NULL::text, 'pending', pg_temp.me(), 'created'),
                           ('pending', 'active', pg_temp.me(), 'started by hand'),
                           ('active', 'completed', pg_temp.me(), 'changed by ' || pg_temp.me())$$,
                  'each transition is logged, with "changed by <role>" when no reason was given');

-- pending -> cancelled, pending -> expired
SELECT pg_temp.new_job('TJ1000B4');
SELECT pg_temp.new_job('TJ1000B5');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'no longer needed' WHERE job_id = 'TJ1000B4'$$,
                'pending -> cancelled is allowed');
SELECT results_eq($$SELECT state::text, state_reason, finished_at IS NOT NULL FROM smsdist.jobs WHERE job_id = 'TJ1000B4'$$,
                  $$VALUES ('cancelled', 'no longer needed', true)$$,
                  'cancelled: finished_at is set and the reason given is kept');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'expired' WHERE job_id = 'TJ1000B5'$$,
                'pending -> expired is allowed');
SELECT ok((SELECT finished_at IS NOT NULL FROM smsdist.jobs WHERE job_id = 'TJ1000B5'), 'expired: finished_at is set');

-- pending -> active -> failed -> pending (retry)
SELECT pg_temp.new_job('TJ1000B6');
UPDATE smsdist.jobs SET state = 'active', activated_at = clock_timestamp(), state_reason = 'Start After time reached'
 WHERE job_id = 'TJ1000B6';
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'failed', state_reason = 'disk full' WHERE job_id = 'TJ1000B6'$$,
                'active -> failed is allowed');
SELECT results_eq($$SELECT state::text, state_reason, activated_at IS NOT NULL, finished_at IS NOT NULL FROM smsdist.jobs WHERE job_id = 'TJ1000B6'$$,
                  $$VALUES ('failed', 'disk full', true, true)$$,
                  'failed: finished_at is set, activated_at kept');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'TJ1000B6'$$,
                'failed -> pending (retry) is allowed');
SELECT results_eq($$SELECT state::text, state_reason, activated_at, finished_at FROM smsdist.jobs WHERE job_id = 'TJ1000B6'$$,
                  $$VALUES ('pending', NULL::text, NULL::timestamptz, NULL::timestamptz)$$,
                  'a retried job is pending again, with activated_at, finished_at and reason cleared');
SELECT results_eq($$SELECT * FROM pg_temp.log_of('TJ1000B6')$$,
                  $$VALUES (NULL::text, 'pending', pg_temp.me(), 'created'),
                           ('pending', 'active', pg_temp.me(), 'Start After time reached'),
                           ('active', 'failed', pg_temp.me(), 'disk full'),
                           ('failed', 'pending', pg_temp.me(), 'changed by ' || pg_temp.me())$$,
                  'the retry is logged from failed to pending');

-- active -> cancelled, active -> expired
SELECT pg_temp.new_job('TJ1000B7');
SELECT pg_temp.new_job('TJ1000B8');
UPDATE smsdist.jobs SET state = 'active' WHERE job_id IN ('TJ1000B7', 'TJ1000B8');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'TJ1000B7'$$, 'active -> cancelled is allowed');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'expired' WHERE job_id = 'TJ1000B8'$$, 'active -> expired is allowed');

-- an UPDATE that leaves the state as it is logs nothing
SELECT lives_ok($$UPDATE smsdist.jobs SET state = state, comment = 'touched' WHERE job_id = 'TJ1000B4'$$,
                'a cancelled job''s comment may still change');
SELECT is((SELECT count(*) FROM smsdist.job_transitions WHERE job_id = 'TJ1000B4'), 2::bigint,
          'an UPDATE that does not change the state logs no transition');
SELECT is((SELECT state_reason FROM smsdist.jobs WHERE job_id = 'TJ1000B4'), 'no longer needed',
          'an UPDATE that does not change the state keeps the reason');

-------------------------------------------------------------------------------
-- Refused transitions
-------------------------------------------------------------------------------
SELECT pg_temp.new_job('TJ1000C1');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'completed' WHERE job_id = 'TJ1000C1'$$,
                 '23514', 'job TJ1000C1 cannot go from pending to completed', 'pending -> completed is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'failed' WHERE job_id = 'TJ1000C1'$$,
                 '23514', 'job TJ1000C1 cannot go from pending to failed', 'pending -> failed is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'TJ1000B5'$$,
                 '23514', 'job TJ1000B5 cannot go from expired to pending', 'expired -> pending is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'TJ1000B7'$$,
                 '23514', 'job TJ1000B7 cannot go from cancelled to pending', 'cancelled -> pending is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'active' WHERE job_id = 'TJ1000B1'$$,
                 '23514', 'job TJ1000B1 cannot go from completed to active', 'completed -> active is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'TJ1000B1'$$,
                 '23514', 'job TJ1000B1 cannot go from completed to pending', 'completed -> pending is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'failed' WHERE job_id = 'TJ1000B1'$$,
                 '23514', 'job TJ1000B1 cannot go from completed to failed', 'completed -> failed is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'active' WHERE job_id = 'TJ1000B5'$$,
                 '23514', 'job TJ1000B5 cannot go from expired to active', 'expired -> active is refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'completed' WHERE job_id = 'TJ1000B4'$$,
                 '23514', 'job TJ1000B4 cannot go from cancelled to completed', 'cancelled -> completed is refused');
UPDATE smsdist.jobs SET state = 'active' WHERE job_id = 'TJ1000B6';
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'TJ1000B6'$$,
                 '23514', 'job TJ1000B6 cannot go from active to pending', 'active -> pending is refused');
UPDATE smsdist.jobs SET state = 'failed' WHERE job_id = 'TJ1000B6';
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'active' WHERE job_id = 'TJ1000B6'$$,
                 '23514', 'job TJ1000B6 cannot go from failed to active', 'failed -> active is refused (retry goes through pending)');
SELECT throws_ok($$UPDATE smsdist.jobs SET state = 'completed' WHERE job_id = 'TJ1000B6'$$,
                 '23514', 'job TJ1000B6 cannot go from failed to completed', 'failed -> completed is refused');
SELECT results_eq($$SELECT job_id::text, state::text FROM smsdist.jobs WHERE job_id IN ('TJ1000B1', 'TJ1000B4', 'TJ1000B5', 'TJ1000B6', 'TJ1000C1') ORDER BY 1$$,
                  $$VALUES ('TJ1000B1', 'completed'), ('TJ1000B4', 'cancelled'), ('TJ1000B5', 'expired'),
                           ('TJ1000B6', 'failed'), ('TJ1000C1', 'pending')$$,
                  'refused transitions leave the jobs as they were');
SELECT is((SELECT count(*) FROM smsdist.job_transitions WHERE job_id = 'TJ1000C1'), 1::bigint,
          'refused transitions are not logged');

-------------------------------------------------------------------------------
-- What may change once a job has left pending
-------------------------------------------------------------------------------
SELECT pg_temp.new_job('TJ1000D1');
SELECT lives_ok($$UPDATE smsdist.jobs SET start_after = '2099-06-01', target_machines = '{TJ200001,TJ300001}' WHERE job_id = 'TJ1000D1'$$,
                'a pending job''s targets and Start After may change');
UPDATE smsdist.jobs SET state = 'active' WHERE job_id = 'TJ1000D1';
SELECT throws_ok($$UPDATE smsdist.jobs SET start_after = '2099-07-01' WHERE job_id = 'TJ1000D1'$$,
                 '55000', 'job TJ1000D1 is active and its type, package, program, targets and Start After can no longer change',
                 'an active job''s Start After may not change');
SELECT throws_ok($$UPDATE smsdist.jobs SET target_machines = '{TJ200001}' WHERE job_id = 'TJ1000D1'$$,
                 '55000', 'job TJ1000D1 is active and its type, package, program, targets and Start After can no longer change',
                 'an active job''s targets may not change');
SELECT throws_ok($$UPDATE smsdist.jobs SET program_name = 'Remove' WHERE job_id = 'TJ1000D1'$$,
                 '55000', 'job TJ1000D1 is active and its type, package, program, targets and Start After can no longer change',
                 'an active job''s program may not change');
SELECT throws_ok($$UPDATE smsdist.jobs SET include_subsites = true WHERE job_id = 'TJ1000B1'$$,
                 '55000', 'job TJ1000B1 is completed and its type, package, program, targets and Start After can no longer change',
                 'a completed job''s include_subsites may not change');
SELECT lives_ok($$UPDATE smsdist.jobs SET priority = 'high', comment = 'urgent', expires_at = '2099-12-31' WHERE job_id = 'TJ1000D1'$$,
                'an active job''s priority, comment and expiry may change');

-------------------------------------------------------------------------------
-- State changes by another role are logged under that role
-------------------------------------------------------------------------------
CREATE ROLE tap_jobs_operator IN ROLE smsdist_operator;
SELECT pg_temp.new_job('TJ1000E1');
SET ROLE tap_jobs_operator;
UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'TJ1000E1';
RESET ROLE;
SELECT results_eq($$SELECT * FROM pg_temp.log_of('TJ1000E1')$$,
                  $$VALUES (NULL::text, 'pending', pg_temp.me(), 'created'),
                           ('pending', 'cancelled', 'tap_jobs_operator', 'changed by tap_jobs_operator')$$,
                  'by_role is the current_user of each change');
SELECT is((SELECT state_changed_by::text FROM smsdist.jobs WHERE job_id = 'TJ1000E1'), 'tap_jobs_operator',
          'jobs.state_changed_by names the role of the last state change');

-------------------------------------------------------------------------------
-- Listed targets must exist
-------------------------------------------------------------------------------
SELECT throws_ok(
    $$INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
      VALUES ('TJ1000F1', 'run_command', 'TJ100001', 'Install', 'machines', '{TJ2FFFFE,TJ200001,TJ2FFFFD,TJ2FFFFE}', '2099-01-01')$$,
    '23503', 'job TJ1000F1 targets unknown machine(s): TJ2FFFFD, TJ2FFFFE',
    'unknown target machines are refused, listed once each in order');
SELECT throws_ok(
    $$INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, start_after)
      VALUES ('TJ1000F2', 'share_package', 'TJ100001', 'sites', '{ZZ9,TJ1,ZZ8}', '2099-01-01')$$,
    '23503', 'job TJ1000F2 targets unknown site(s): ZZ8, ZZ9', 'unknown target sites are refused');
SELECT throws_ok($$UPDATE smsdist.jobs SET target_machines = '{TJ200001,TJ2FFFFF}' WHERE job_id = 'TJ1000C1'$$,
                 '23503', 'job TJ1000C1 targets unknown machine(s): TJ2FFFFF',
                 'changing a pending job to an unknown machine is refused');

-------------------------------------------------------------------------------
-- Target resolution
-------------------------------------------------------------------------------
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines,
                          target_collection_id, target_sites, include_subsites, start_after) VALUES
    ('TJ1000A1', 'run_command', 'TJ100001', 'Install', 'machines', '{TJ300001,TJ200001}', NULL, NULL, false, '2099-01-01'),
    ('TJ1000A2', 'share_package', 'TJ100001', NULL, 'sites', NULL, NULL, '{TJ2}', true, '2099-01-01'),
    ('TJ1000A3', 'share_package', 'TJ100001', NULL, 'sites', NULL, NULL, '{TJ1}', false, '2099-01-01'),
    ('TJ1000A4', 'share_package', 'TJ100001', NULL, 'sites', NULL, NULL, '{TJ1}', true, '2099-01-01'),
    ('TJ1000A5', 'run_command', 'TJ100001', 'Install', 'collection', NULL, 'TJ100001', NULL, false, '2099-01-01'),
    ('TJ1000A6', 'remove_package', 'TJ100001', NULL, 'sites', NULL, NULL, '{TJ3,TJ5}', true, '2099-01-01'),
    ('TJ1000A7', 'run_command', 'TJ100001', 'Install', 'collection', NULL, 'TJ100002', NULL, false, '2099-01-01'),
    ('TJ1000A8', 'share_package', 'TJ100001', NULL, 'sites', NULL, NULL, '{TJ2,TJ1,TJ3}', true, '2099-01-01'),
    ('TJ1000A9', 'run_command', 'TJ100001', 'Install', 'machines', '{TJ200001,TJ200001}', NULL, NULL, false, '2099-01-01');

SELECT results_eq($$SELECT site_code::text FROM smsdist.job_target_sites('TJ1000A2') ORDER BY 1$$,
                  ARRAY['TJ2', 'TJ3'], 'include_subsites: a site and every site below it');
SELECT results_eq($$SELECT site_code::text FROM smsdist.job_target_sites('TJ1000A3') ORDER BY 1$$,
                  ARRAY['TJ1'], 'without include_subsites: only the listed site');
SELECT results_eq($$SELECT site_code::text FROM smsdist.job_target_sites('TJ1000A4') ORDER BY 1$$,
                  ARRAY['TJ1', 'TJ2', 'TJ3', 'TJ4'], 'include_subsites from the top: all three levels, both branches');
SELECT results_eq($$SELECT site_code::text FROM smsdist.job_target_sites('TJ1000A6') ORDER BY 1$$,
                  ARRAY['TJ3', 'TJ5'], 'include_subsites on leaf sites adds nothing and does not climb');
SELECT results_eq($$SELECT site_code::text FROM smsdist.job_target_sites('TJ1000A8') ORDER BY 1$$,
                  ARRAY['TJ1', 'TJ2', 'TJ3', 'TJ4'], 'overlapping listed sites give each site once');
SELECT results_eq($$SELECT site_code::text FROM smsdist.job_target_sites('TJ1000A1') ORDER BY 1$$,
                  ARRAY['TJ2', 'TJ3'], 'a machines job targets the sites of its machines');
SELECT results_eq($$SELECT site_code::text FROM smsdist.job_target_sites('TJ1000A5') ORDER BY 1$$,
                  ARRAY['TJ3', 'TJ4'], 'a collection job targets the sites of its members');
SELECT is_empty($$SELECT * FROM smsdist.job_target_sites('TJ1000A7')$$, 'an empty collection targets no site');
SELECT is_empty($$SELECT * FROM smsdist.job_target_sites('TJ1FFFFF')$$, 'an unknown job targets no site');

SELECT results_eq($$SELECT sms_id::text, site_code::text FROM smsdist.job_target_machines('TJ1000A1') ORDER BY 1$$,
                  $$VALUES ('TJ200001', 'TJ2'), ('TJ300001', 'TJ3')$$,
                  'machines job: each listed machine, with its site');
SELECT results_eq($$SELECT sms_id::text, site_code::text FROM smsdist.job_target_machines('TJ1000A9')$$,
                  $$VALUES ('TJ200001', 'TJ2')$$,
                  'a machine listed twice is targeted once');
SELECT results_eq($$SELECT sms_id::text, site_code::text FROM smsdist.job_target_machines('TJ1000A5') ORDER BY 1$$,
                  $$VALUES ('TJ300001', 'TJ3'), ('TJ400001', 'TJ4')$$,
                  'collection job: the collection''s members, with their sites');
SELECT is_empty($$SELECT * FROM smsdist.job_target_machines('TJ1000A2')$$, 'a share-package job targets no machines');
SELECT is_empty($$SELECT * FROM smsdist.job_target_machines('TJ1000A7')$$, 'an empty collection targets no machines');

-- after a machine leaves the inventory
DELETE FROM smsdist.system_resources WHERE sms_id = 'TJ300001';
SELECT results_eq($$SELECT sms_id::text FROM smsdist.job_target_machines('TJ1000A1')$$,
                  ARRAY['TJ200001'], 'a listed machine no longer in system_resources is skipped');
SELECT results_eq($$SELECT sms_id::text FROM smsdist.job_target_machines('TJ1000A5')$$,
                  ARRAY['TJ400001'], 'a deleted machine leaves the collection''s membership');

-------------------------------------------------------------------------------
-- describe_targets
-------------------------------------------------------------------------------
SELECT is(smsdist.describe_targets('TJ1000A7'), 'collection TJ100002 has no members',
          'describe_targets of an empty collection job');
SELECT is(smsdist.describe_targets('TJ1000A5'), 'collection TJ100001 has 1 member(s), none of them at this site or below it',
          'describe_targets of a collection job with members counts them (it said "has no members")');
SELECT is(smsdist.describe_targets('TJ1000A1'), '2 listed machine(s), 1 of them in system_resources',
          'describe_targets of a machines job counts the listed machines that exist');
SELECT is(smsdist.describe_targets('TJ1000A6'), '2 listed site(s) with their subsites, 2 of them in sites',
          'describe_targets of a sites job counts the listed sites that exist (it said "none of them")');
SELECT is(smsdist.describe_targets('TJ1FFFFF'), NULL, 'describe_targets of an unknown job is NULL');

-------------------------------------------------------------------------------
-- job_overview and deletion
-------------------------------------------------------------------------------
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state) VALUES
    ('TJ1000A2', 'TJ2', 'send', 'done'), ('TJ1000A2', 'TJ3', 'send', 'running'),
    ('TJ1000A2', 'TJ2', 'distribute', 'done');
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code) VALUES ('TJ1000A1', 'TJ200001', 'TJ2');
SELECT results_eq(
    $$SELECT job_id::text, package_name::text, sites, sites_done, machines FROM smsdist.job_overview
       WHERE job_id IN ('TJ1000A1', 'TJ1000A2') ORDER BY 1$$,
    $$VALUES ('TJ1000A1', 'Jobs test', 0::bigint, 0::bigint, 1::bigint),
             ('TJ1000A2', 'Jobs test', 2::bigint, 1::bigint, 0::bigint)$$,
    'job_overview counts sites (not their phases), the sites whose every phase is done, and target machines');
SELECT throws_ok($$DELETE FROM smsdist.packages WHERE package_id = 'TJ100001'$$, '23503', NULL,
                 'a package with jobs cannot be deleted');
DELETE FROM smsdist.jobs WHERE job_id = 'TJ1000A2';
SELECT is((SELECT count(*) FROM smsdist.job_transitions WHERE job_id = 'TJ1000A2')
        + (SELECT count(*) FROM smsdist.job_site_status WHERE job_id = 'TJ1000A2'), 0::bigint,
          'deleting a job deletes its transitions and site status');

-------------------------------------------------------------------------------
-- Job control: what a cancel, an expiry and a retry do at this site and
-- queue for the child sites that hold a copy (this site is CEN)
-------------------------------------------------------------------------------
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES ('CEN', 'Central', NULL) ON CONFLICT DO NOTHING;
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES
    ('TJC', 'Control child', 'CEN'), ('TJG', 'Control grandchild', 'TJC'), ('TJD', 'Control child 2', 'CEN');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
    ('TJC00001', 'WKS-TJC-1', 'CORP', 'TJC', 'WINNT_X86'), ('TJC00002', 'WKS-TJC-2', 'CORP', 'TJC', 'WINNT_X86');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
SELECT id, 'run_command', 'TJ100001', 'Install', 'machines', '{TJC00001}', '2099-01-01'
  FROM unnest(ARRAY['TJ1000F1', 'TJ1000F2', 'TJ1000F3']) id;
UPDATE smsdist.jobs SET state = 'active' WHERE job_id IN ('TJ1000F1', 'TJ1000F2', 'TJ1000F3');
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state, last_error) VALUES
    ('TJ1000F1', 'TJC', 'send', 'done', NULL), ('TJ1000F1', 'TJC', 'distribute', 'done', NULL),
    ('TJ1000F1', 'TJG', 'send', 'done', NULL), ('TJ1000F1', 'TJG', 'distribute', 'failed', 'disk full'),
    ('TJ1000F2', 'TJC', 'send', 'done', NULL), ('TJ1000F2', 'TJC', 'distribute', 'waiting', NULL),
    ('TJ1000F2', 'TJG', 'send', 'running', NULL),
    ('TJ1000F3', 'TJD', 'send', 'retrying', 'unreachable');
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code, state, detail, exit_code) VALUES
    ('TJ1000F1', 'TJC00001', 'TJC', 'failed', 'exit code 3', 3), ('TJ1000F1', 'TJC00002', 'TJC', 'waiting', NULL, NULL);
UPDATE smsdist.jobs SET state = 'failed', state_reason = 'distribution failed at site TJG' WHERE job_id = 'TJ1000F1';
SELECT is((SELECT count(*) FROM smsdist.job_control_pushes WHERE job_id = 'TJ1000F1'), 0::bigint,
          'a job that fails queues nothing for the sites below');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'pending', state_reason = 'disk replaced' WHERE job_id = 'TJ1000F1'$$,
                'retry: failed -> pending');
SELECT is((SELECT count(*) FROM smsdist.job_site_status WHERE job_id = 'TJ1000F1'), 0::bigint,
          'a retry deletes every per-site row of the job, so that no old failure fails it again');
SELECT results_eq($$SELECT sms_id::text, state::text, detail, exit_code FROM smsdist.job_target_status WHERE job_id = 'TJ1000F1' ORDER BY sms_id$$,
                  $$VALUES ('TJC00001', 'failed', 'exit code 3', 3), ('TJC00002', 'waiting', NULL::text, NULL::integer)$$,
                  'a retry makes the targets the job''s failure ended waiting again, without detail or exit code; one whose program ran keeps its state');
SELECT results_eq($$SELECT hop::text, state::text, reason, attempts, last_error FROM smsdist.job_control_pushes
                     WHERE job_id = 'TJ1000F1'$$,
                  $$VALUES ('TJC', 'pending', 'retried at site CEN by ' || pg_temp.me() || ': disk replaced', 0, NULL::text)$$,
                  'the retry is queued once for the child on the way to both sites');
UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'TJ1000F2';
SELECT results_eq($$SELECT site_code::text, phase::text, state::text, coalesce(detail, '') FROM smsdist.job_site_status
                     WHERE job_id = 'TJ1000F2' ORDER BY 1, 2$$,
                  $$VALUES ('TJC', 'distribute', 'cancelled', 'the job was cancelled'), ('TJC', 'send', 'done', ''),
                           ('TJG', 'send', 'cancelled', 'the job was cancelled')$$,
                  'a cancel ends the open per-site rows, saying why; finished rows stay');
SELECT results_eq($$SELECT hop::text, state::text FROM smsdist.job_control_pushes WHERE job_id = 'TJ1000F2'$$,
                  $$VALUES ('TJC', 'cancelled')$$, 'the cancel is queued for the child');
UPDATE smsdist.jobs SET state = 'expired' WHERE job_id = 'TJ1000F3';
SELECT results_eq($$SELECT hop::text, state::text FROM smsdist.job_control_pushes WHERE job_id = 'TJ1000F3'$$,
                  $$VALUES ('TJD', 'expired')$$, 'an expiry is queued for the child the job was being sent to');
SELECT is((SELECT state::text || ': ' || detail FROM smsdist.job_site_status WHERE job_id = 'TJ1000F3'),
          'cancelled: the job was expired', 'its send row ends');
-- a retry not sent yet (the job is not active again) and then a cancel:
-- the cancel replaces it, failed attempts forgotten
UPDATE smsdist.job_control_pushes SET attempts = 3, attempted_at = clock_timestamp(), last_error = 'down'
 WHERE job_id = 'TJ1000F1';
UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'TJ1000F1';
SELECT results_eq($$SELECT hop::text, state::text, attempts, last_error FROM smsdist.job_control_pushes WHERE job_id = 'TJ1000F1'$$,
                  $$VALUES ('TJC', 'cancelled', 0, NULL::text)$$,
                  'a newer change of the job replaces the one not sent yet, even with no per-site row left');
SELECT throws_ok($$INSERT INTO smsdist.job_control_pushes (job_id, hop, state) VALUES ('TJ1000F2', 'TJD', 'completed')$$,
                 '23514', NULL, 'only cancelled, expired and pending are passed on');
SELECT throws_ok($$SELECT smsdist.receive_job_state('TJ1000F2', 'active', NULL)$$, '22023',
                 'invalid job state "active": a parent site sets its copies cancelled, expired or pending (retry)',
                 'receive_job_state refuses other states');

SELECT * FROM finish();
ROLLBACK;
