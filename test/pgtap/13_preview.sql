-- preview() and the cache inventories, in SQL: what an inventory may say
-- (sizes, counts, IDs, times, offsets, totals), who may report one (a
-- machine login for its own machine only), a newer report replacing an
-- older one and never the reverse, the transfer-time arithmetic of each
-- throttling mode, the delta estimate from two manifests, and preview() of
-- a job inserted in the same transaction, which writes nothing.
BEGIN;
SELECT plan(57);

CREATE FUNCTION pg_temp.as_login(login name, stmt text) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE format('SET SESSION AUTHORIZATION %I', login);
    BEGIN
        EXECUTE stmt INTO r;
        r := 'ok: ' || coalesce(r, 'NULL');
    EXCEPTION WHEN OTHERS THEN
        r := SQLSTATE || ': ' || SQLERRM;
    END;
    RESET SESSION AUTHORIZATION;
    RETURN r;
END
$$;
-- an inventory with these totals and packages (p: [id, version, bytes, locked_until])
CREATE FUNCTION pg_temp.inv(lim bigint, used bigint, locked bigint, off integer, pkgs jsonb DEFAULT '[]')
    RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('size_limit_bytes', lim, 'used_bytes', used, 'locked_bytes', locked,
                              'utc_offset_seconds', off, 'packages', pkgs)
$$;
CREATE FUNCTION pg_temp.pkg(id text, v integer, bytes bigint, locked_until text DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql AS $$
    SELECT jsonb_build_object('package_id', id, 'source_version', v, 'bytes', bytes,
                              'downloaded_at', '2026-11-01T00:00:00Z', 'locked_until', locked_until, 'last_run_at', NULL)
$$;

INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES ('CEN', 'Preview central', NULL) ON CONFLICT DO NOTHING;
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES ('PV2', 'Preview child', 'CEN');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
    ('PV100001', 'PV-1', 'CORP', 'CEN', 'WINNT_X86'), ('PV100002', 'PV-2', 'CORP', 'CEN', 'WINNT_X86'),
    ('PV200001', 'PV-C1', 'CORP', 'PV2', 'WINNT_X86');
CREATE ROLE tap_pv1 LOGIN IN ROLE smsdist_client;
CREATE ROLE tap_pv_reader LOGIN IN ROLE smsdist_reader;
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('tap_pv1', 'PV100001');

-------------------------------------------------------------------------------
-- What an inventory may say
-------------------------------------------------------------------------------
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 300, 100, 3600,
              jsonb_build_array(pg_temp.pkg('CEN00B01', 1, 100, '2027-01-01T00:00:00Z'), pg_temp.pkg('CEN00B02', 2, 200)))),
          NULL, 'a consistent inventory is fine');
SELECT is(smsdist.cache_inventory_problem('[]'), 'an inventory is a JSON object', 'not an object');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 0, 0, 0) || '{"evil": 1}'), 'unknown key(s) evil', 'unknown keys');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(-5, 0, 0, 0)),
          'size_limit_bytes must be a whole number of bytes from 0 to 1125899906842624, not -5', 'a negative size');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1125899906842625, 0, 0, 0)),
          'size_limit_bytes must be a whole number of bytes from 0 to 1125899906842624, not 1125899906842625', 'more than 1 PiB');
SELECT is(smsdist.cache_inventory_problem(jsonb_set(pg_temp.inv(1000, 0, 0, 0), '{used_bytes}', '1.5')),
          'used_bytes must be a whole number of bytes from 0 to 1125899906842624, not 1.5', 'a fraction of a byte');
SELECT is(smsdist.cache_inventory_problem(jsonb_set(pg_temp.inv(1000, 0, 0, 0), '{locked_bytes}', '"7"')),
          'locked_bytes must be a whole number of bytes from 0 to 1125899906842624, not "7"', 'a number as a string');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 0, 0, 50401)),
          'utc_offset_seconds must be a whole number of seconds from -50400 to 50400 (14 hours), not 50401', 'an offset beyond +14 h');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 0, 0, -50400)), NULL, '-14 h is an offset (UTC-14 does not exist, but the bound is 14 h)');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 0, 0, 0) - 'packages'), 'packages must be a JSON array', 'no package list');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(10000, 1001, 0, 0,
              (SELECT jsonb_agg(pg_temp.pkg('CEN' || upper(lpad(to_hex(i), 5, '0')), 1, 1)) FROM generate_series(1, 1001) i))),
          'it lists 1001 packages, more than 1000', 'more than 1,000 packages');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(10000, 1000, 0, 0,
              (SELECT jsonb_agg(pg_temp.pkg('CEN' || upper(lpad(to_hex(i), 5, '0')), 1, 1)) FROM generate_series(1, 1000) i))),
          NULL, '1,000 packages are fine');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 1, 0, 0, jsonb_build_array(pg_temp.pkg('../etc', 1, 1)))),
          'package 1: package_id "../etc" is not an SMS ID', 'a package ID that is not an SMS ID');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 1, 0, 0, jsonb_build_array(pg_temp.pkg('CEN00B01', 0, 1)))),
          'package 1 (CEN00B01): source_version must be a whole number from 1 to 2147483647, not 0', 'version 0');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 2, 0, 0, jsonb_build_array(pg_temp.pkg('CEN00B01', 1, 1), pg_temp.pkg('CEN00B01', 1, 1)))),
          'package CEN00B01 version 1 is listed twice', 'a package twice');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 1, 1, 0, jsonb_build_array(pg_temp.pkg('CEN00B01', 1, 1, 'soon')))),
          'package 1 (CEN00B01): locked_until must be a UTC time like 2026-12-01T08:00:00Z or null, not "soon"', 'a lock expiry that is not a time');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 1, 1, 0, jsonb_build_array(pg_temp.pkg('CEN00B01', 1, 1, '2027-02-30T00:00:00Z')))),
          'package 1 (CEN00B01): locked_until 2027-02-30T00:00:00Z is not a valid time', 'February 30th');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 5, 0, 0, jsonb_build_array(pg_temp.pkg('CEN00B01', 1, 1)))),
          'used_bytes is 5, but its packages hold 1 bytes', 'a used total that is not the packages'' sum');
SELECT is(smsdist.cache_inventory_problem(pg_temp.inv(1000, 1, 0, 0, jsonb_build_array(pg_temp.pkg('CEN00B01', 1, 1, '2027-01-01T00:00:00Z')))),
          'locked_bytes is 0, but its locked packages hold 1 bytes', 'a locked total that is not the locked packages'' sum');

-------------------------------------------------------------------------------
-- Who may report, and what is kept
-------------------------------------------------------------------------------
SELECT is(pg_temp.as_login('tap_pv1', $$SELECT smsdist.client_cache_inventory('PV100001', '2026-12-01 10:00+00',
              pg_temp.inv(1000, 100, 100, 3600, jsonb_build_array(pg_temp.pkg('CEN00B01', 1, 100, '2099-01-01T00:00:00Z'))))::text$$),
          'ok: true', 'a machine reports its own cache');
SELECT is(pg_temp.as_login('tap_pv1', $$SELECT smsdist.client_cache_inventory('PV100002', '2026-12-01 10:00+00', pg_temp.inv(1000, 0, 0, 0))::text$$),
          '42501: permission denied: login "tap_pv1" speaks for machine PV100001, not for machine PV100002',
          'a machine login cannot report another machine''s cache');
SELECT is(pg_temp.as_login('tap_pv1', $$SELECT smsdist.client_cache_inventory('PV100001', '2026-12-01 11:00+00', pg_temp.inv(1000, 0, 0, 90000))::text$$),
          '22023: cache inventory of machine PV100001 refused: utc_offset_seconds must be a whole number of seconds from -50400 to 50400 (14 hours), not 90000',
          'a bad report is refused with the reason');
SELECT is(pg_temp.as_login('tap_pv1', $$SELECT smsdist.client_cache_inventory('PV100001', '2026-12-01 11:00+00',
              jsonb_build_object('padding', repeat('x', 300000)))::text$$),
          '54000: cache inventory of machine PV100001 refused: it is 300015 bytes, more than 262144',
          'an oversized report is refused before it is read');
SELECT alike(pg_temp.as_login('tap_pv1', $$SELECT smsdist.client_cache_inventory('PV100001', '1990-01-01 00:00+00', pg_temp.inv(1000, 0, 0, 0))::text$$),
          '22023: cache inventory of machine PV100001 refused: its client time 1990-01-01T00:00:00Z is not within smsdist.client_time_window %',
          'a client time outside the window is refused');
SELECT is(pg_temp.as_login('tap_pv1', $$SELECT smsdist.client_cache_inventory('PV100001', '2026-12-01 09:00+00', pg_temp.inv(2000, 0, 0, 0))::text$$),
          'ok: false', 'an older report than the one kept is ignored (false)');
SELECT is((SELECT concat_ws(' ', size_limit_bytes, used_bytes, locked_bytes, utc_offset_seconds, package_count, client_at = '2026-12-01 10:00+00')
             FROM smsdist.machine_caches WHERE sms_id = 'PV100001'),
          '1000 100 100 3600 1 t', 'the refused and the older reports changed nothing');
SELECT is(pg_temp.as_login('tap_pv_reader', $$SELECT count(*)::text FROM smsdist.machine_cache_packages WHERE sms_id = 'PV100001'$$),
          'ok: 1', 'readers see the inventories');
SELECT is(pg_temp.as_login('tap_pv1', $$SELECT count(*)::text FROM smsdist.machine_caches$$),
          '42501: permission denied for table machine_caches', 'an agent''s login reads no inventory');
SELECT is(smsdist.record_cache_inventory('PV1FFFFF', now(), pg_temp.inv(1, 0, 0, 0)::text), 'machine PV1FFFFF is unknown here',
          'the Status Manager''s call: an unknown machine');
SELECT is(smsdist.record_cache_inventory('PV100002', now(), '{"size_limit_bytes": '), 'the inventory is not valid JSON: invalid input syntax for type json',
          'not JSON: refused with the reason, not an error');
SELECT is(smsdist.record_cache_inventory('PV100002', now(), pg_temp.inv(4000, 1000, 0, -18000,
              jsonb_build_array(pg_temp.pkg('CEN00B09', 1, 1000)))::text), NULL, 'a good one is recorded (NULL)');

-------------------------------------------------------------------------------
-- Up the hierarchy: a child speaks for its own machines and those below it
-------------------------------------------------------------------------------
CREATE ROLE tap_pv_child LOGIN IN ROLE smsdist_child_site;
INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('tap_pv_child', 'PV2');
SELECT is(pg_temp.as_login('tap_pv_child', format($$SELECT smsdist.receive_cache_report('PV2', %L)::text$$, jsonb_build_array(
              jsonb_build_object('sms_id', 'PV200001', 'client_at', now(), 'inventory', pg_temp.inv(3000, 0, 0, 7200)),
              jsonb_build_object('sms_id', 'PV100001', 'client_at', now() + interval '1 minute', 'inventory', pg_temp.inv(1, 0, 0, 0)),
              jsonb_build_object('sms_id', 'PV200001', 'client_at', now() + interval '1 minute', 'inventory', pg_temp.inv(1, 0, 0, 99999))))),
          'ok: {"reasons": ["machine PV100001 is at site CEN, not at site PV2 or below it", "machine PV200001: utc_offset_seconds must be a whole number of seconds from -50400 to 50400 (14 hours), not 99999"], "refused": 2, "recorded": 1}',
          'a child''s report: its own machine recorded, a machine of another site and a bad inventory refused, each with its reason');
SELECT is((SELECT concat_ws(' ', site_code, size_limit_bytes, utc_offset_seconds) FROM smsdist.machine_caches WHERE sms_id = 'PV200001'),
          'PV2 3000 7200', 'the child''s machine''s cache is known here, at its site');
SELECT is(pg_temp.as_login('tap_pv_child', $$SELECT smsdist.receive_cache_report('CEN', '[]')::text$$),
          '42501: login "tap_pv_child" speaks for site PV2, not for site CEN', 'a child cannot report for another site');
SELECT is((SELECT string_agg(r->>'sms_id', ',' ORDER BY r->>'sms_id') FROM jsonb_array_elements(smsdist.cache_report_for_parent(2)) r)
          || ' / ' || smsdist.caches_reported(smsdist.cache_report_for_parent(2)),
          'PV100001,PV100002 / 2', 'what goes to the parent: the changed rows, a batch at a time, cleared once sent');
SELECT is((SELECT string_agg(r->>'sms_id', ',') FROM jsonb_array_elements(smsdist.cache_report_for_parent(10)) r),
          'PV200001', 'the next batch: what is still pending');

-------------------------------------------------------------------------------
-- Transfer times: unthrottled, pulses, hourly rates (hours in the server's zone)
-------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.addr(mode text, kb integer DEFAULT NULL, ms integer DEFAULT NULL, pct smallint[] DEFAULT NULL)
    RETURNS smsdist.sender_addresses LANGUAGE sql AS $$
    SELECT ROW(1, 'PV2', 'host=x', 1, mode::smsdist.throttle_mode, kb, ms, pct, true)::smsdist.sender_addresses
$$;
CREATE FUNCTION pg_temp.at(local text) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT (local::timestamp) AT TIME ZONE current_setting('log_timezone')
$$;
SELECT is(smsdist.transfer_seconds(1000000, pg_temp.addr('unlimited'), 100000), 10.0::numeric, 'unthrottled: bytes / rate');
SELECT is(smsdist.transfer_seconds(1000000, pg_temp.addr('unlimited'), NULL), NULL::numeric, 'never measured: NULL');
SELECT is(smsdist.transfer_seconds(0, pg_temp.addr('unlimited'), NULL), 0::numeric, 'nothing to send: 0');
SELECT is(smsdist.transfer_seconds(262144, pg_temp.addr('pulse', 64, 500), 65536), 5.5::numeric,
          'pulses of 64 kB every 500 ms: 4 s on the wire, 3 pauses between 4 blocks');
SELECT is(smsdist.transfer_seconds(3600000, pg_temp.addr('rate_limited', pct => array_fill(50::smallint, ARRAY[24])), 1000, pg_temp.at('2026-12-01 10:00')),
          7200.0::numeric, 'every hour at 50 %: twice as long');
SELECT is(smsdist.transfer_seconds(3600000,
              pg_temp.addr('rate_limited', pct => (SELECT array_agg(CASE WHEN h = 10 THEN 0 ELSE 100 END::smallint ORDER BY h) FROM generate_series(0, 23) h)),
              1000, pg_temp.at('2026-12-01 10:30')),
          5400.0::numeric, 'starting half-way through an hour at 0 %: nothing until 11:00, then an hour at 100 %');
SELECT is(smsdist.transfer_seconds(1, pg_temp.addr('rate_limited', pct => array_fill(0::smallint, ARRAY[24])), 1000), NULL::numeric,
          'every hour at 0 %: never (NULL)');

-------------------------------------------------------------------------------
-- Delta sizes from manifests
-------------------------------------------------------------------------------
SELECT is((smsdist.manifest_delta_bytes(
              repeat('a', 64) || E' 10 0644 a.txt\n' || repeat('b', 64) || E' 20 0644 b.txt\n' || repeat('-', 64) || E' 0 0755 d\n',
              repeat('a', 64) || E' 10 0644 a.txt\n' || repeat('c', 64) || E' 20 0644 b.txt\n' || repeat('a', 64) || E' 10 0755 d/x\n'))::text,
          '(30,40)', 'a changed file and an added one travel; the kept file and directories do not');
SELECT is((smsdist.manifest_delta_bytes(repeat('a', 64) || E' 10 0644 a.txt\n', repeat('a', 64) || E' 10 0755 a.txt\n'))::text,
          '(10,10)', 'a mode change sends the file again');
SELECT is((smsdist.manifest_delta_bytes(
              E'smsdist-manifest 2\n' || repeat('a', 64) || E' 10 0644 1700000000.000000000 a.txt\n' || repeat('b', 64) || E' 20 0644 1700000000.000000000 b c.txt\n',
              E'smsdist-manifest 2\n' || repeat('a', 64) || E' 10 0644 1700000000.000000000 a.txt\n' || repeat('b', 64) || E' 20 0644 1700000001.000000000 b c.txt\n'
              || repeat('-', 64) || E' 0 1775 1700000000.000000000 d/\n' || repeat('@', 64) || E' 5 0777 1700000000.000000000 l -> a.txt\n'))::text,
          '(20,30)', 'version 2: a changed modification time sends the file again; directories and links are not counted');
SELECT is((smsdist.manifest_delta_bytes(repeat('a', 64) || E' 10 0644 a.txt\n',
              E'smsdist-manifest 2\n' || repeat('a', 64) || E' 10 0644 1700000000.000000000 a.txt\n'))::text,
          '(10,10)', 'from a version 1 base every file travels (it carried no time)');

-------------------------------------------------------------------------------
-- preview() of a job inserted in the same transaction
-------------------------------------------------------------------------------
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('PV100001', 'Preview', '/srv/preview/source');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('PV100001', 'Install', 'setup.exe');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('PV1000A1', 'run_command', 'PV100001', 'Install', 'machines', '{PV100001,PV100002,PV200001}', '2099-01-01');
SELECT results_eq(
    $$SELECT site_code::text, sent_via::text, machines, bytes_to_send, cache_evictions, cache_no_room, cache_unknown, note
        FROM smsdist.preview('PV1000A1') ORDER BY site_code$$,
    $$VALUES ('CEN', NULL, 2, 0::bigint, 0, 0, 2,
              'this site: nothing to send; version 1 is not built yet and its source tree cannot be measured: sizes unknown'),
             ('PV2', 'PV2', 1, NULL, 0, 0, 1,
              'version 1 is not built yet and its source tree cannot be measured: sizes unknown; no enabled sender address for PV2: it cannot be sent')$$,
    'a package never built whose source is not there: sizes unknown, and each machine''s room unknown too');
SELECT is(pg_temp.as_login('tap_pv_reader', $$SELECT count(*)::text FROM smsdist.preview('PV1000A1')$$), 'ok: 2',
          'readers may preview (it reads the addresses'' schedules for them, never their conninfo)');
SELECT is(pg_temp.as_login('tap_pv1', $$SELECT count(*)::text FROM smsdist.preview('PV1000A1')$$),
          '42501: permission denied for function preview', 'an agent''s login may not');
SELECT throws_ok($$SELECT * FROM smsdist.preview('PV1FFFFF')$$, 'P0002', 'job PV1FFFFF does not exist', 'an unknown job');
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'smsdist.preview(text)'::regprocedure), 's',
          'preview() is STABLE: PostgreSQL refuses any write in it');

-------------------------------------------------------------------------------
-- A child and a grandchild: the delta needs the same version at both
-------------------------------------------------------------------------------
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES ('PV3', 'Preview grandchild', 'PV2');
INSERT INTO smsdist.package_builds (package_id, source_version, state, file_path, bytes, sha256, manifest, source_bytes, file_count)
VALUES ('PV100001', 1, 'ready', '/srv/store/PV100001.1.tar.gz', 1000, repeat('1', 64),
        repeat('a', 64) || E' 600 0644 a.bin\n' || repeat('b', 64) || E' 400 0644 b.bin\n', 1000, 2),
       ('PV100001', 2, 'ready', '/srv/store/PV100001.2.tar.gz', 1000, repeat('2', 64),
        repeat('a', 64) || E' 600 0644 a.bin\n' || repeat('c', 64) || E' 400 0644 b.bin\n', 1000, 2);
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'PV100001';
INSERT INTO smsdist.package_locations (package_id, site_code, site_system_id, source_version, path) VALUES
    ('PV100001', 'PV2', 1, 1, '/srv/pv2/dp'), ('PV100001', 'PV3', 1, 1, '/srv/pv3/dp');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, hourly_rate_pct)
VALUES ('PV2', 'host=pv2.example dbname=site', 'rate_limited', array_fill(50::smallint, ARRAY[24]));
INSERT INTO smsdist.link_measurements (address_id, job_id, bytes, seconds)
SELECT address_id, 'PV1000A9', 800, 1 FROM smsdist.sender_addresses WHERE target_site_code = 'PV2';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites, start_after)
VALUES ('PV1000A2', 'share_package', 'PV100001', 'sites', '{PV2}', true, '2099-01-01');
SELECT results_eq(
    $$SELECT site_code::text, sent_via::text, bytes_to_send, delta_from_version, estimated_seconds, note
        FROM smsdist.preview('PV1000A2') ORDER BY site_code$$,
    $$VALUES ('PV2', 'PV2', 400::bigint, 1, 1.0::numeric,
              'the delta from version 1 (estimated from the manifests: 400 of 1000 source bytes changed); 800 bytes/s measured to PV2, rate limited by the hour'),
             ('PV3', 'PV2', 400::bigint, 1, 1.0::numeric,
              'the delta from version 1 (estimated from the manifests: 400 of 1000 source bytes changed); 800 bytes/s measured to PV2, rate limited by the hour; sent through PV2, whose own transfer onwards is not counted')$$,
    'child and grandchild hold version 1: the delta goes through PV2 (400 bytes at half of 800 bytes/s)');
INSERT INTO smsdist.package_deltas (package_id, base_version, source_version, file_path, bytes, sha256, files_sent, files_deleted, files_kept, full_bytes)
VALUES ('PV100001', 1, 2, '/srv/store/deltas/PV100001.1-2.tar.gz', 450, repeat('d', 64), 1, 0, 1, 1000);
SELECT is((SELECT bytes_to_send || ' ' || note FROM smsdist.preview('PV1000A2') WHERE site_code = 'PV2'),
          '450 the delta from version 1 (made already: 450 of 1000 bytes); 800 bytes/s measured to PV2, rate limited by the hour',
          'a delta made already: its real size');
UPDATE smsdist.sender_addresses SET hourly_rate_pct = (SELECT array_agg(CASE WHEN h < 12 THEN 0 ELSE 100 END::smallint ORDER BY h)
                                                         FROM generate_series(0, 23) h)
 WHERE target_site_code = 'PV2';
UPDATE smsdist.jobs SET start_after = pg_temp.at('2099-01-01 00:00') WHERE job_id = 'PV1000A2';
SELECT is((SELECT estimated_seconds FROM smsdist.preview('PV1000A2') WHERE site_code = 'PV2'), 43200.6,
          'the schedule counts from the job''s Start After (midnight): nothing until noon, then 450 bytes at 800 bytes/s');
DELETE FROM smsdist.package_locations WHERE site_code = 'PV3';
SELECT is((SELECT string_agg(site_code || ' ' || bytes_to_send || ' ' || coalesce(delta_from_version::text, 'full'), ', ' ORDER BY site_code)
             FROM smsdist.preview('PV1000A2')),
          'PV2 1000 full, PV3 1000 full', 'the grandchild lacks version 1: the full package for both, as the Sender would send it');
-- a child that holds the version itself needs nothing, whatever its child needs (the
-- demo showed the full package for a child that held it)
INSERT INTO smsdist.package_locations (package_id, site_code, site_system_id, source_version, path) VALUES
    ('PV100001', 'PV2', 2, 2, '/srv/pv2/dp2');
DELETE FROM smsdist.package_locations WHERE site_code = 'PV2' AND source_version = 1;
SELECT is((SELECT string_agg(site_code || ' ' || bytes_to_send || ' ' || coalesce(delta_from_version::text, 'full') || ' ' || note, ', ' ORDER BY site_code)
             FROM smsdist.preview('PV1000A2')),
          'PV2 0 full site PV2 holds version 2 already, PV3 1000 full version 2 is built: 1000 bytes; 800 bytes/s measured to PV2, rate limited by the hour; sent through PV2, whose own transfer onwards is not counted',
          'a child that holds the version: 0 for it, the full package for the grandchild behind it');

SELECT * FROM finish();
ROLLBACK;
