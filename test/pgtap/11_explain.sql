-- explain() and its parts, on rows made by hand: the arithmetic of times,
-- windows and schedules, the retry clock of job_site_status, and who may
-- call what.  The situations themselves are made for real in t/035.
BEGIN;
SELECT plan(28);

-- durations as an operator reads them
SELECT is(smsdist.explain_duration(interval '42 seconds'), '42 s', 'seconds');
SELECT is(smsdist.explain_duration(interval '12 minutes 20 seconds'), '12 min', 'minutes');
SELECT is(smsdist.explain_duration(interval '5 hours 30 minutes'), '5.5 h', 'hours');
SELECT is(smsdist.explain_duration(interval '3 days'), '3.0 days', 'days');
SELECT is(smsdist.explain_duration(interval '-5 minutes'), '0 s', 'never negative');

-- a rate-limited address: the first hour, after now, whose rate is not 0 %
SET LOCAL TimeZone = 'UTC';
SELECT is(smsdist.sending_resumes_at(
              (SELECT array_agg(CASE WHEN h = 14 THEN 20 ELSE 0 END ORDER BY h) FROM generate_series(0, 23) h)::smallint[],
              timestamptz '2026-12-05 09:30:00+00'),
          timestamptz '2026-12-05 14:00:00+00', 'sending resumes at the first hour with a rate (hours of the server''s time zone)');
SELECT is(smsdist.sending_resumes_at(
              (SELECT array_agg(CASE WHEN h = 3 THEN 20 ELSE 0 END ORDER BY h) FROM generate_series(0, 23) h)::smallint[],
              timestamptz '2026-12-05 09:30:00+00'),
          timestamptz '2026-12-06 03:00:00+00', 'past midnight');
SELECT is(smsdist.sending_resumes_at(array_fill(0::smallint, ARRAY[24]), now()), NULL, 'never, when every hour is 0 %');

-- maintenance windows of a machine, at its local time
INSERT INTO smsdist.sites VALUES ('XP1', 'Explain', NULL);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
    ('XP100001', 'NIGHT', 'CORP', 'XP1', 'WINNT_X86'), ('XP100002', 'NONE', 'CORP', 'XP1', 'WIN95');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('XP100A01', 'Night');
INSERT INTO smsdist.collection_members VALUES ('XP100A01', 'XP100001');
INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days) VALUES
    ('XP100A01', 'Weeknights', '22:00', 240, '{mon,tue,wed,thu,fri}'),
    ('XP100A01', 'Saturday', '10:00', 60, '{sat}');
-- 2026-12-05 is a Saturday
SELECT is((SELECT row(has_windows, inside, next_window, next_opens)::text
             FROM smsdist.maintenance_window_at('XP100001', timestamp '2026-12-05 09:00')),
          '(t,f,Saturday,"2026-12-05 10:00:00")', 'before the Saturday window: it opens next');
SELECT is((SELECT row(has_windows, inside)::text FROM smsdist.maintenance_window_at('XP100001', timestamp '2026-12-05 10:30')),
          '(t,t)', 'inside it');
SELECT is((SELECT row(inside, next_window, next_opens)::text
             FROM smsdist.maintenance_window_at('XP100001', timestamp '2026-12-05 11:00')),
          '(f,Weeknights,"2026-12-07 22:00:00")', 'after it: Monday night is next');
SELECT is((SELECT inside FROM smsdist.maintenance_window_at('XP100001', timestamp '2026-12-08 01:30')),
          true, 'a window that runs past midnight (Monday 22:00 to Tuesday 02:00)');
SELECT is((SELECT row(has_windows, inside, next_window)::text FROM smsdist.maintenance_window_at('XP100002', timestamp '2026-12-05 09:00')),
          '(f,f,)', 'a machine in no collection with windows has none');

-- the machine's clock: from the offset its agent reported, else the site's time zone
SELECT is(smsdist.machine_local_time('XP100002', timestamptz '2026-12-05 09:00:00+00'), timestamp '2026-12-05 09:00:00',
          'no offset reported: the site''s time zone');
SELECT is(smsdist.machine_instant('XP100002', timestamp '2026-12-05 09:00:00'), timestamptz '2026-12-05 09:00:00+00',
          'and back');

-- mandatory times of an advertisement: the last passed, the next to come
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('XP100B01', 'Explain', '/srv/explain');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms) VALUES ('XP100B01', 'NT', 'setup', '{WINNT_X86}');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, offer_time_utc)
    VALUES ('XP100C01', 'Daily', 'XP100B01', 'NT', 'XP100A01', '2026-01-01 00:00', true);
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc, recur_every) VALUES
    ('XP100C01', (now() AT TIME ZONE 'UTC') - interval '25 hours', true, '1 day');
SELECT is((SELECT row(last_passed = now() - interval '1 hour', next_due = now() + interval '23 hours')::text
             FROM smsdist.advertisement_mandatory_times('XP100C01', 'XP100001')),
          '(t,t)', 'a daily assignment: an hour ago, and in 23 hours');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc) VALUES
    ('XP100C01', (now() AT TIME ZONE 'UTC') + interval '2 hours', true);
SELECT is((SELECT next_due = now() + interval '2 hours' FROM smsdist.advertisement_mandatory_times('XP100C01', 'XP100001')),
          true, 'the nearest of several');

-- a platform the program does not support
SELECT is(smsdist.platform_mismatch('XP100B01', 'NT', 'XP100002'),
          'program "NT" runs on WINNT_X86; this machine is WIN95: its agent will report that it does not apply here (10007)',
          'a platform mismatch is said with both platforms');
SELECT is(smsdist.platform_mismatch('XP100B01', 'NT', 'XP100001'), NULL, 'a supported platform is no reason');

-- the retry clock of job_site_status
INSERT INTO smsdist.sites VALUES ('XP2', 'Explain child', 'XP1');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, start_after)
    VALUES ('XP1000E1', 'share_package', 'XP100B01', 'sites', '{XP2}', '2099-01-01');
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state, attempts) VALUES ('XP1000E1', 'XP2', 'send', 'running', 3);
UPDATE smsdist.job_site_status SET state = 'retrying', last_error = 'refused' WHERE job_id = 'XP1000E1';
SELECT is((SELECT row(retrying_since IS NOT NULL, next_attempt_at - retrying_since BETWEEN interval '7 s' AND interval '9 s')::text
             FROM smsdist.job_site_status WHERE job_id = 'XP1000E1'),
          '(t,t)', 'a failure starts the clock; the next attempt follows the Sender''s back-off (2^attempts s)');
UPDATE smsdist.job_site_status SET state = 'running', attempts = 4, bytes_done = 0 WHERE job_id = 'XP1000E1';
SELECT is((SELECT row(retrying_since IS NOT NULL, next_attempt_at IS NULL)::text FROM smsdist.job_site_status WHERE job_id = 'XP1000E1'),
          '(t,t)', 'a new attempt keeps the start of the failures');
UPDATE smsdist.job_site_status SET bytes_done = 1000 WHERE job_id = 'XP1000E1';
SELECT is((SELECT retrying_since FROM smsdist.job_site_status WHERE job_id = 'XP1000E1'), NULL, 'bytes that move end them');
-- a distribute row's next attempt is its writer's (the Despooler's, for a
-- full disk), and a distribution's progress does not end its failures
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state, attempts) VALUES ('XP1000E1', 'XP1', 'distribute', 'running', 1);
UPDATE smsdist.job_site_status SET state = 'retrying', last_error = 'full', next_attempt_at = '2099-01-01 00:00+00'
 WHERE job_id = 'XP1000E1' AND phase = 'distribute';
SELECT is((SELECT row(retrying_since IS NOT NULL, next_attempt_at = '2099-01-01 00:00+00')::text
             FROM smsdist.job_site_status WHERE job_id = 'XP1000E1' AND phase = 'distribute'),
          '(t,t)', 'a distribute row keeps the next attempt its writer set');
UPDATE smsdist.job_site_status SET state = 'running', attempts = 2 WHERE job_id = 'XP1000E1' AND phase = 'distribute';
UPDATE smsdist.job_site_status SET bytes_done = 1000 WHERE job_id = 'XP1000E1' AND phase = 'distribute';
SELECT is((SELECT row(retrying_since IS NOT NULL, next_attempt_at IS NULL)::text
             FROM smsdist.job_site_status WHERE job_id = 'XP1000E1' AND phase = 'distribute'),
          '(t,t)', 'its progress keeps the start of the failures (smsdist.disk_full_give_up_after counts from it)');

-- who may call what
SELECT ok(has_function_privilege('smsdist_reader', 'smsdist.explain(text, text)', 'EXECUTE'), 'readers may explain');
SELECT ok(NOT has_function_privilege('public', 'smsdist.explain(text, text)', 'EXECUTE'), 'PUBLIC may not');
SELECT ok(NOT has_function_privilege('smsdist_reader', 'smsdist.explain_job_site(text, text)', 'EXECUTE'),
          'its parts are its own (they read sender addresses)');
SELECT throws_ok($$SELECT * FROM smsdist.explain('XP1FFFFF')$$, '42704',
                 'there is no job or advertisement "XP1FFFFF" at site CEN', 'an unknown ID');

SELECT * FROM finish();
ROLLBACK;
