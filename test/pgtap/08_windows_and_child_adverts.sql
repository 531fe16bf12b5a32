-- Maintenance windows (what is refused, what a machine's policy shows) and
-- what a site sends its children about an advertisement
-- (advertisement_details, advertisement_pushes_due), and what a site with
-- no parent refuses to take.
BEGIN;
SELECT plan(43);

INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN'), ('GC1', 'Grandchild', 'CH1'),
                                 ('CH2', 'Other child', 'CEN')
    ON CONFLICT DO NOTHING;
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN0F001', 'WKS-A', 'CORP', 'CEN', 'WINNT_X86'), ('CH10F001', 'WKS-B', 'CORP', 'CH1', 'WINNT_X86'),
  ('GC10F001', 'WKS-C', 'CORP', 'GC1', 'WIN95'), ('CH20F001', 'WKS-D', 'CORP', 'CH2', 'WINNT_X86');
INSERT INTO smsdist.users VALUES ('CORP', 'bob', 'Bob');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN0FA01', 'All'), ('CEN0FA02', 'Sub');
INSERT INTO smsdist.collection_subcollections VALUES ('CEN0FA01', 'CEN0FA02');
-- membership as the Collection Evaluator would leave it (it runs after commit)
INSERT INTO smsdist.collection_members VALUES ('CEN0FA01', 'CEN0F001'), ('CEN0FA01', 'CH10F001'),
  ('CEN0FA01', 'CH20F001'), ('CEN0FA02', 'GC10F001');
INSERT INTO smsdist.collection_user_members VALUES ('CEN0FA01', 'CORP', 'bob');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0FB01', 'Tool', '/srv/tool');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN0FB01', 'Run', 'tool.exe');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN0FC01', 'Tool for all', 'CEN0FB01', 'Run', 'CEN0FA01');

-- windows: good ones, and what is refused
SELECT lives_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                  VALUES ('CEN0FA01', 'Weekend', '01:30', 90, '{sun,sat}')$$, 'a weekly window');
SELECT lives_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                  VALUES ('CEN0FA02', 'Week', '23:00', 10080, '{mon}')$$, 'a window of a whole week');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA01', 'Empty', '01:00', 0, '{mon}')$$, '23514', NULL, 'a window of 0 minutes is refused');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA01', 'Long', '01:00', 10081, '{mon}')$$, '23514', NULL, 'a window longer than a week is refused');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA01', 'Never', '01:00', 60, '{}')$$, '23514', NULL, 'a window on no day is refused');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA01', 'Twice', '01:00', 60, '{mon,mon}')$$, '23514', NULL, 'a day given twice is refused');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA01', 'Seconds', '01:00:30', 60, '{mon}')$$, '23514', NULL,
                 'a start that is not on a minute is refused');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA01', 'Bad day', '01:00', 60, '{someday}')$$, '22P02', NULL, 'an unknown day is refused');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA01', 'Weekend', '02:00', 60, '{sat}')$$, '23505', NULL,
                 'two windows of one collection cannot share a name');
SELECT throws_ok($$INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
                   VALUES ('CEN0FA09', 'Nowhere', '02:00', 60, '{sat}')$$, '23503', NULL,
                 'a window of a collection that does not exist is refused');

-- the management point: the windows of every collection of the machine, days in week order
SELECT is(smsdist.machine_policy('CEN0F001')->'maintenance_windows',
          '[{"collection_id": "CEN0FA01", "name": "Weekend", "start": "01:30", "duration_minutes": 90, "days": ["sat", "sun"]}]'::jsonb,
          'a machine''s policy has the windows of its collections');
SELECT is(smsdist.machine_policy('GC10F001')->'maintenance_windows'->0->>'name', 'Week',
          'a member of the subcollection gets the subcollection''s window');
UPDATE smsdist.maintenance_windows SET enabled = false WHERE name = 'Week';
SELECT is(smsdist.machine_policy('GC10F001')->'maintenance_windows', '[]'::jsonb, 'a disabled window is left out');

-- what a child site is sent
SELECT is((SELECT array_agg(m->>'sms_id' ORDER BY m->>'sms_id')
             FROM jsonb_array_elements(smsdist.advertisement_details('CEN0FC01', 'CH1')->'collections') c,
                  jsonb_array_elements(c->'machines') m),
          ARRAY['CH10F001', 'GC10F001'],
          'CH1 is sent the members behind it: its own and its child''s, not the central site''s or CH2''s');
SELECT is((SELECT array_agg(c->>'collection_id' ORDER BY c->>'collection_id')
             FROM jsonb_array_elements(smsdist.advertisement_details('CEN0FC01', 'CH1')->'collections') c),
          ARRAY['CEN0FA01', 'CEN0FA02'], 'with the collection and its subcollection (the advertisement includes them)');
SELECT is(smsdist.advertisement_details('CEN0FC01', 'CH1')->'collections'->0->'subcollections', '["CEN0FA02"]'::jsonb,
          'and the link between them');
SELECT is(smsdist.advertisement_details('CEN0FC01', 'CH2')->'collections'->0->'users', '[{"domain": "CORP", "user_name": "bob"}]'::jsonb,
          'every child is sent the targeted users');
SELECT is(smsdist.advertisement_details('CEN0FC01', 'CH1')->'collections'->0->'windows'->0->>'name', 'Weekend',
          'and the windows');
UPDATE smsdist.advertisements SET include_subcollections = false WHERE advert_id = 'CEN0FC01';
SELECT is(jsonb_array_length(smsdist.advertisement_details('CEN0FC01', 'CH1')->'collections'), 1,
          'without include_subcollections only the collection itself is sent');

-- what is due: both children, no sender address yet
SELECT is((SELECT array_agg(hop || ':' || (details IS NOT NULL) || ':' || coalesce(conninfo, '-') ORDER BY hop)
             FROM smsdist.advertisement_pushes_due() WHERE advert_id = 'CEN0FC01'),
          ARRAY['CH1:true:-', 'CH2:true:-'], 'the advertisement is due at each child (not the grandchild: CH1 sends it on)');
INSERT INTO smsdist.advertisement_pushes (advert_id, hop, payload_md5)
SELECT 'CEN0FC01', 'CH1', md5(smsdist.advertisement_details('CEN0FC01', 'CH1')::text);
SELECT is((SELECT array_agg(hop ORDER BY hop) FROM smsdist.advertisement_pushes_due() WHERE advert_id = 'CEN0FC01'),
          ARRAY['CH2'], 'a child that has the current details is not due');
UPDATE smsdist.maintenance_windows SET duration_minutes = 60 WHERE name = 'Weekend';
SELECT is((SELECT array_agg(hop ORDER BY hop) FROM smsdist.advertisement_pushes_due() WHERE advert_id = 'CEN0FC01'),
          ARRAY['CH1', 'CH2'], 'a changed window makes it due again');
DELETE FROM smsdist.advertisements WHERE advert_id = 'CEN0FC01';
SELECT is((SELECT array_agg(hop || ':' || (details IS NULL) ORDER BY hop) FROM smsdist.advertisement_pushes_due()
            WHERE advert_id = 'CEN0FC01'),
          ARRAY['CH1:true'], 'a deleted advertisement is due for removal where it was sent');

-- a site with no parent takes nothing
SELECT throws_like($$SELECT smsdist.receive_advertisement('{"advert": {"advert_id": "CH10FC01"}}')$$,
                   'site CEN has no parent site to take advertisement CH10FC01 from',
                   'the central site refuses an advertisement from a "parent"');

-- what a parent refuses from a child, and a child from its parent
SELECT throws_like($$SELECT smsdist.receive_status_report('GC1', '[]')$$,
                   'site GC1 is not a child of site CEN', 'a status report from a site that is not a child is refused');
SELECT throws_like($$SELECT smsdist.receive_status_report('CH1', '{}')$$,
                   'a status report is a JSON array', 'a report that is not an array is refused');
SELECT is(smsdist.receive_status_report('CH1', '[
  {"site_code": "CH1", "kind": "advertisement", "object_id": "CEN0FC01", "targeted": 2, "offered": 1, "downloaded": 1, "succeeded": 0, "failed": 0},
  {"site_code": "GC1", "kind": "advertisement", "object_id": "CEN0FC01", "targeted": 1, "offered": 1, "downloaded": 0, "succeeded": 0, "failed": 0},
  {"site_code": "CH2", "kind": "advertisement", "object_id": "CEN0FC01", "targeted": 9, "offered": 9, "downloaded": 9, "succeeded": 9, "failed": 0}]'),
          2, 'a child reports for itself and the sites below it');
SELECT is((SELECT string_agg(site_code || ':' || offered, ',' ORDER BY site_code) FROM smsdist.site_status_reports),
          'CH1:1,GC1:1', 'not for a sibling: CH2''s row from CH1 is dropped');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN0FC02', 'Our own', 'CEN0FB01', 'Run', 'CEN0FA01');
SELECT throws_like($$SELECT smsdist.remove_advertisement('CEN0FC02')$$,
                   'advertisement CEN0FC02 is this site''s own: a parent cannot remove it',
                   'a parent cannot remove a site''s own advertisement');

-- an advanced client's status message
SELECT throws_like($$SELECT smsdist.client_status('CEN0F999', 1, now(), 10001, 'informational', 'Client Agent', 'x')$$,
                   'unknown machine CEN0F999', 'a status message from an unknown machine is refused');
SELECT throws_like($$SELECT smsdist.client_status('CEN0F001', 1, now(), 10001, 'informational', 'Agent; DROP', 'x')$$,
                   'invalid component "Agent; DROP"%', 'a component name outside the allowed characters is refused');
SELECT is(smsdist.client_status('CEN0F001', 7, now(), 10001, 'informational', 'Client Agent', 'x'),
          true, 'an advanced client''s status message is recorded');
SELECT is(smsdist.client_status('CEN0F001', 7, now(), 10001, 'informational', 'Client Agent', 'x'),
          false, 'the same message sent twice is recorded once');

-- the planner settings store_machine_policies() changes for a few
-- machines stay inside it, and a few machines' policies are the same as
-- when planned freely
SET LOCAL join_collapse_limit = 5;
SELECT lives_ok($$SELECT smsdist.store_machine_policies(ARRAY['CEN0F001'])$$, 'the policy of one machine is stored');
SELECT is(current_setting('join_collapse_limit') || ' ' || current_setting('from_collapse_limit'), '5 8',
          'store_machine_policies() leaves the caller''s planner settings as they were');
SELECT is((SELECT policy FROM smsdist.machine_policies WHERE sms_id = 'CEN0F001'),
          smsdist.compute_machine_policy('CEN0F001'), 'the stored policy is the one computed with the joins planned freely');
SELECT is(smsdist.store_machine_policies('{}'), 0::bigint, 'no machine: nothing stored, nothing notified');
SELECT is(smsdist.store_machine_policies(NULL), 0::bigint, 'a NULL list of machines stores nothing');
-- compiling its plan took longer than running it, after a large job
SELECT ok((SELECT p.proconfig @> ARRAY['jit=off'] FROM pg_proc p
            WHERE p.oid = 'smsdist.compute_machine_policies(text[])'::regprocedure),
          'compute_machine_policies() is never compiled with JIT');

-- the package hash of PCM files and policies is kept with the manifest
INSERT INTO smsdist.package_builds (package_id, source_version, state, manifest)
VALUES ('CEN0FB01', 97, 'ready', E'smsdist-manifest 2\nfile a\n');
SELECT is((SELECT manifest_sha256 FROM smsdist.package_builds WHERE package_id = 'CEN0FB01' AND source_version = 97),
          encode(sha256(convert_to(E'smsdist-manifest 2\nfile a\n', 'UTF8')), 'hex'),
          'a build''s manifest: its SHA-256 is kept beside it');
UPDATE smsdist.package_builds SET manifest = E'smsdist-manifest 2\nfile b\n' WHERE package_id = 'CEN0FB01' AND source_version = 97;
SELECT is((SELECT manifest_sha256 FROM smsdist.package_builds WHERE package_id = 'CEN0FB01' AND source_version = 97),
          encode(sha256(convert_to(E'smsdist-manifest 2\nfile b\n', 'UTF8')), 'hex'),
          'a manifest written again: the kept SHA-256 follows');
UPDATE smsdist.package_builds SET manifest_sha256 = repeat('0', 64) WHERE package_id = 'CEN0FB01' AND source_version = 97;
SELECT is((SELECT manifest_sha256 FROM smsdist.package_builds WHERE package_id = 'CEN0FB01' AND source_version = 97),
          encode(sha256(convert_to(E'smsdist-manifest 2\nfile b\n', 'UTF8')), 'hex'),
          'a hash written into the column is replaced by the manifest''s');
UPDATE smsdist.package_builds SET manifest = NULL WHERE package_id = 'CEN0FB01' AND source_version = 97;
SELECT is((SELECT manifest_sha256 FROM smsdist.package_builds WHERE package_id = 'CEN0FB01' AND source_version = 97),
          NULL, 'no manifest, no kept SHA-256');

SELECT * FROM finish();
ROLLBACK;
