-- Progress that can be trusted: every figure of job_progress, build_progress,
-- job_overview and job_status against a known scenario.  A rate is the
-- bytes this attempt moved over the time it took (NULL when it moved none);
-- an estimated total says so and never shows 100 %; a site is counted once,
-- whatever its phases; eta follows the sender address's throttling.
BEGIN;
SELECT plan(48);

INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES ('CEN', 'Progress central', NULL) ON CONFLICT DO NOTHING;
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES
    ('PG2', 'Progress child', 'CEN'), ('PG3', 'Progress grandchild', 'PG2'), ('PG4', 'Progress child 2', 'CEN');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle) VALUES ('PG2', 'host=pg2', 'unlimited');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, hourly_rate_pct) VALUES
    ('PG4', 'host=pg4', 'rate_limited', array_fill(50::smallint, ARRAY[24]));
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
    ('PG100001', 'Progress test', '/srv/source/progress');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES
    ('PG100001', 'Install', 'setup.exe /q');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, start_after) VALUES
    ('PG1000B1', 'share_package', 'PG100001', 'sites', '{PG2,PG3}', '2099-01-01'),
    ('PG1000B2', 'share_package', 'PG100001', 'sites', '{PG4}', '2099-01-01'),
    ('PG1000B3', 'remove_package', 'PG100001', 'sites', '{PG2}', '2099-01-01');
UPDATE smsdist.jobs SET state = 'active';

-- the scenario: times relative to now, rates chosen to give round numbers
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state, detail, bytes_done, bytes_total,
                                     bytes_total_estimated, attempts, started_at, finished_at,
                                     attempt_started_at, attempt_bytes, reported_eta) VALUES
    -- sent to the child: 30 MB this attempt in 12 s
    ('PG1000B1', 'PG2', 'send', 'done', 'sent', 174135962, 174135962, false, 2,
     now() - interval '1 hour', now() - interval '10 minutes',
     now() - interval '10 minutes 12 seconds', 30000000, NULL),
    -- the child had it all: "0 bytes this time" -- no rate, not 6 GB/s
    ('PG1000B1', 'PG3', 'send', 'done', 'sent (0 bytes this time)', 174135962, 174135962, false, 1,
     now() - interval '5 seconds', now() - interval '5 seconds' + interval '27 milliseconds',
     now() - interval '5 seconds', 0, NULL),
    -- the child's distribution, and the grandchild's as the child reported it
    ('PG1000B1', 'PG2', 'distribute', 'done', 'published on 1 distribution point', 0, NULL, false, 0,
     NULL, now() - interval '9 minutes', NULL, NULL, NULL),
    ('PG1000B1', 'PG3', 'distribute', 'running', 'sending to PG3: 6291456 of 174135962 bytes', 6291456, 174135962, false, 0,
     now() - interval '1 minute', NULL, NULL, NULL, now() + interval '2 hours'),
    -- streaming to a throttled child: the total is an estimate, already passed
    ('PG1000B2', 'PG4', 'send', 'waiting', 'waiting for the build', 5000, 4000, true, 1,
     now() - interval '1 minute', NULL, NULL, NULL, NULL),
    -- a failed leg
    ('PG1000B3', 'PG2', 'send', 'failed', 'gave up', 100, 1000, false, 9,
     now() - interval '1 day', now() - interval '1 hour', now() - interval '2 hours', 100, NULL);

-------------------------------------------------------------------------------
-- job_progress
-------------------------------------------------------------------------------
SELECT is(percent, 100.0, 'a done send: 100 %') FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG2' AND phase = 'send';
SELECT is(bytes_per_second, 2500000::bigint, 'the rate is the bytes this attempt moved over its time: 30000000 / 12 s')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG2' AND phase = 'send';
SELECT is(attempt_bytes, 30000000::bigint, 'attempt_bytes shown') FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG2' AND phase = 'send';
SELECT is(attempt_elapsed, interval '12 seconds', 'attempt_elapsed: from attempt_started_at to finished_at')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG2' AND phase = 'send';
SELECT is(eta, now() - interval '10 minutes', 'a finished row''s eta is its finished_at')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG2' AND phase = 'send';
SELECT is(bytes_per_second, NULL, 'a send that moved 0 bytes this time has no rate (not bytes_done / elapsed)')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG3' AND phase = 'send';
SELECT is(percent, 100.0, '... and is 100 %') FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG3' AND phase = 'send';
SELECT is(percent, 3.6, 'the grandchild leg as reported: 6291456 of 174135962 bytes is 3.6 %')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG3' AND phase = 'distribute';
SELECT is(eta, now() + interval '2 hours', 'a reported leg''s eta is the one its site''s parent estimated')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG3' AND phase = 'distribute';
SELECT is(bytes_per_second, NULL, 'no rate without the attempt''s figures')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG3' AND phase = 'distribute';
SELECT is(percent, NULL, 'a distribution without a total has no percent')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG2' AND phase = 'distribute';
SELECT is(percent, 99.9, 'an estimated total already passed shows 99.9 %, never 100 % or more')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B2';
SELECT is(bytes_total_estimated, true, '... and says the total is an estimate') FROM smsdist.job_progress WHERE job_id = 'PG1000B2';
SELECT is(eta, NULL, 'a waiting row has no eta') FROM smsdist.job_progress WHERE job_id = 'PG1000B2';
SELECT is(bytes_per_second, 0::bigint, 'a failed attempt: 100 bytes from attempt_started_at to finished_at (1 hour) rounds to 0 B/s')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B3';
SELECT is(eta, NULL, 'a failed row has no eta') FROM smsdist.job_progress WHERE job_id = 'PG1000B3';

-- the reported eta, once past, is stale: NULL, never a time gone by
UPDATE smsdist.job_site_status SET reported_eta = now() - interval '1 minute'
 WHERE job_id = 'PG1000B1' AND site_code = 'PG3' AND phase = 'distribute';
SELECT is(eta, NULL, 'a reported eta that has passed is not shown')
  FROM smsdist.job_progress WHERE job_id = 'PG1000B1' AND site_code = 'PG3' AND phase = 'distribute';

-- a running send: 40000000 bytes this attempt in ~20 s, 60000000 left
UPDATE smsdist.job_site_status SET state = 'running', bytes_done = 100000000, bytes_total = 160000000,
       bytes_total_estimated = false, attempt_started_at = clock_timestamp() - interval '20 seconds',
       attempt_bytes = 40000000
 WHERE job_id = 'PG1000B2';
UPDATE smsdist.sender_addresses SET throttle = 'unlimited' WHERE target_site_code = 'PG4';
-- (the expected figures from the attempt's start in the same statement:
-- a stall between the statements makes the attempt longer, not the test wrong)
SELECT ok(p.bytes_per_second BETWEEN floor(40000000 / extract(epoch FROM clock_timestamp() - s.attempt_started_at)) - 1000
                                 AND 2000000,
          'a running attempt''s rate: 40000000 bytes over 20 s, about 2000000 B/s')
  FROM smsdist.job_progress p
  JOIN smsdist.job_site_status s ON s.job_id = p.job_id AND s.site_code = p.site_code AND s.phase = p.phase
 WHERE p.job_id = 'PG1000B2';
SELECT ok(p.eta BETWEEN clock_timestamp() + 1.5 * (clock_timestamp() - s.attempt_started_at) - interval '2 seconds'
                    AND clock_timestamp() + 1.5 * (clock_timestamp() - s.attempt_started_at) + interval '2 seconds',
          'unthrottled: eta = now + 60000000 bytes / 2000000 B/s = 30 s')
  FROM smsdist.job_progress p
  JOIN smsdist.job_site_status s ON s.job_id = p.job_id AND s.site_code = p.site_code AND s.phase = p.phase
 WHERE p.job_id = 'PG1000B2';
SELECT is(percent, 62.5, '100000000 of 160000000 bytes is 62.5 %') FROM smsdist.job_progress WHERE job_id = 'PG1000B2';
UPDATE smsdist.sender_addresses SET throttle = 'rate_limited', hourly_rate_pct = array_fill(0::smallint, ARRAY[24])
 WHERE target_site_code = 'PG4';
SELECT is(eta, NULL, 'an address at 0 % every hour never finishes: no eta') FROM smsdist.job_progress WHERE job_id = 'PG1000B2';
UPDATE smsdist.job_site_status SET attempt_bytes = 0 WHERE job_id = 'PG1000B2';
UPDATE smsdist.sender_addresses SET throttle = 'unlimited' WHERE target_site_code = 'PG4';
SELECT is(eta, NULL, 'no bytes moved yet: no rate, no eta') FROM smsdist.job_progress WHERE job_id = 'PG1000B2';
SELECT is(bytes_per_second, NULL, '... and no rate') FROM smsdist.job_progress WHERE job_id = 'PG1000B2';

-------------------------------------------------------------------------------
-- transfer_eta: the throttling schedule, hour by hour
-------------------------------------------------------------------------------
SELECT is(smsdist.transfer_eta(1000, 100, 'unlimited', NULL, '2026-12-05 10:00:00+00', 'UTC'),
          '2026-12-05 10:00:10+00'::timestamptz, 'unlimited: 1000 bytes at 100 B/s take 10 s');
SELECT is(smsdist.transfer_eta(1000, 100, 'pulse', NULL, '2026-12-05 10:00:00+00', 'UTC'),
          '2026-12-05 10:00:10+00'::timestamptz, 'pulse: the measured rate includes the pauses');
SELECT is(smsdist.transfer_eta(300000, 100, 'rate_limited',
              (SELECT array_agg(CASE h WHEN 10 THEN 50 WHEN 11 THEN 0 ELSE 100 END::smallint ORDER BY h)
                 FROM generate_series(0, 23) h),
              '2026-12-05 10:30:00+00', 'UTC'),
          '2026-12-05 12:10:00+00'::timestamptz,
          'rate-limited: 100 B/s at 50 % is 200 B/s for the whole link; 180000 bytes until 11:00, nothing in the 0 % hour, 120000 at 200 B/s from 12:00');
SELECT is(smsdist.transfer_eta(300000, 100, 'rate_limited',
              (SELECT array_agg(CASE h WHEN 10 THEN 50 WHEN 11 THEN 0 ELSE 100 END::smallint ORDER BY h)
                 FROM generate_series(0, 23) h),
              '2026-12-05 10:30:00+01', 'Europe/Paris'),
          '2026-12-05 12:10:00+01'::timestamptz, 'the hours are those of the given time zone');
SELECT is(smsdist.transfer_eta(0, 100, 'unlimited', NULL, '2026-12-05 10:00:00+00', 'UTC'),
          '2026-12-05 10:00:00+00'::timestamptz, 'nothing left: now');
SELECT is(smsdist.transfer_eta(1000, 0, 'unlimited', NULL, '2026-12-05 10:00:00+00', 'UTC'), NULL, 'rate 0: unknown');
SELECT is(smsdist.transfer_eta(1000, NULL, 'unlimited', NULL, '2026-12-05 10:00:00+00', 'UTC'), NULL, 'rate unknown: unknown');
SELECT is(smsdist.transfer_eta(NULL, 100, 'unlimited', NULL, '2026-12-05 10:00:00+00', 'UTC'), NULL, 'total unknown: unknown');
SELECT is(smsdist.transfer_eta(1000000000000, 1, 'unlimited', NULL, '2026-12-05 10:00:00+00', 'UTC'), NULL,
          'more than 31 days away: not an estimate anyone can use');
SELECT is(smsdist.transfer_eta(1000, 100, 'rate_limited', array_fill(0::smallint, ARRAY[24]),
                               '2026-12-05 10:00:00+00', 'UTC'), NULL, 'every hour at 0 %: never');

-------------------------------------------------------------------------------
-- job_overview: sites are sites, not status rows
-------------------------------------------------------------------------------
SELECT is(sites, 2::bigint, 'a 2-site job with 4 status rows has 2 sites') FROM smsdist.job_overview WHERE job_id = 'PG1000B1';
SELECT is(sites_done, 1::bigint, 'one site has every phase done (PG2), PG3 is still distributing')
  FROM smsdist.job_overview WHERE job_id = 'PG1000B1';
SELECT is(sites, 1::bigint, 'a 1-site job: 1 site') FROM smsdist.job_overview WHERE job_id = 'PG1000B2';
SELECT is(machines, 0::bigint, 'a share job has no machines') FROM smsdist.job_overview WHERE job_id = 'PG1000B1';

-------------------------------------------------------------------------------
-- build_progress
-------------------------------------------------------------------------------
INSERT INTO smsdist.package_builds (package_id, source_version, state, source_bytes, bytes_done, started_at)
VALUES ('PG100001', 1, 'building', 8000, 2000, now() - interval '4 seconds');
SELECT is(percent, 25.0, 'building: 2000 of 8000 source bytes compressed is 25 %') FROM smsdist.build_progress WHERE package_id = 'PG100001';
SELECT ok(elapsed >= interval '4 seconds' AND elapsed < interval '1 minute', 'elapsed runs while building (started 4 s ago)')
  FROM smsdist.build_progress WHERE package_id = 'PG100001';
UPDATE smsdist.package_builds SET bytes_done = 8600 WHERE package_id = 'PG100001';
SELECT is(percent, 99.9, 'the tar''s headers pass the source size: still 99.9 % until ready') FROM smsdist.build_progress WHERE package_id = 'PG100001';
UPDATE smsdist.package_builds SET state = 'ready', bytes = 2000, bytes_done = 8000, finished_at = started_at + interval '5 seconds'
 WHERE package_id = 'PG100001';
SELECT is(percent, 100::numeric, 'ready: 100 %') FROM smsdist.build_progress WHERE package_id = 'PG100001';
SELECT is(compressed_percent, 25.0, '2000 compressed bytes of 8000 is 25 %') FROM smsdist.build_progress WHERE package_id = 'PG100001';
SELECT is(elapsed, interval '5 seconds', 'a finished build''s elapsed is its length') FROM smsdist.build_progress WHERE package_id = 'PG100001';

-------------------------------------------------------------------------------
-- job_status: current states counted
-------------------------------------------------------------------------------
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
    ('PG100001', 'PWKS-1', 'CORP', 'CEN', 'WINNT_X86'), ('PG100002', 'PWKS-2', 'CORP', 'CEN', 'WINNT_X86'),
    ('PG100003', 'PWKS-3', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('PG1000B5', 'run_command', 'PG100001', 'Install', 'machines', '{PG100001,PG100002,PG100003}', '2099-01-01');
UPDATE smsdist.jobs SET state = 'active' WHERE job_id = 'PG1000B5';
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code, state) VALUES
    ('PG1000B5', 'PG100001', 'CEN', 'succeeded'), ('PG1000B5', 'PG100002', 'CEN', 'running'),
    ('PG1000B5', 'PG100003', 'CEN', 'waiting');
SELECT results_eq($$SELECT targeted, waiting, running, succeeded, failed FROM smsdist.job_status WHERE job_id = 'PG1000B5'$$,
                  $$VALUES (3::bigint, 1::bigint, 1::bigint, 1::bigint, 0::bigint)$$,
                  'job_status: 3 targeted, 1 waiting, 1 running, 1 succeeded, 0 failed');
SELECT is(machines, 3::bigint, 'job_overview counts the job''s machines') FROM smsdist.job_overview WHERE job_id = 'PG1000B5';
SELECT is(sites, 0::bigint, 'a job without status rows has 0 sites, not NULL') FROM smsdist.job_overview WHERE job_id = 'PG1000B5';

-------------------------------------------------------------------------------
-- privileges
-------------------------------------------------------------------------------
SELECT ok(has_table_privilege('smsdist_reader', 'smsdist.job_progress', 'SELECT')
          AND has_table_privilege('smsdist_reader', 'smsdist.build_progress', 'SELECT')
          AND has_table_privilege('smsdist_reader', 'smsdist.job_overview', 'SELECT'),
          'readers see the progress views');
SELECT ok(NOT has_function_privilege('public', 'smsdist.progress_report(text)', 'EXECUTE')
          AND has_function_privilege('smsdist_parent_site', 'smsdist.progress_report(text)', 'EXECUTE'),
          'progress_report is for parent sites only');

SELECT * FROM finish();
ROLLBACK;
