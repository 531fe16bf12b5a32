-- Trust boundaries in SQL: rules every function of the schema keeps, and
-- each login calling what it must not, from the attacker's side.  A login
-- is who the session authenticated as (session_user): pg_temp.as_login()
-- runs one statement under SET SESSION AUTHORIZATION and returns "ok: ..."
-- or "SQLSTATE: message".  This site is CEN, with children CH1 and CH2.
BEGIN;
SELECT plan(72);

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

-------------------------------------------------------------------------------
-- Rules for every function in the schema
-------------------------------------------------------------------------------
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.prosecdef
              AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c
                               WHERE c LIKE 'search_path=pg\_catalog%')),
          NULL, 'every SECURITY DEFINER function sets search_path, pg_catalog first');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p, unnest(p.proconfig) c
            WHERE p.pronamespace = 'smsdist'::regnamespace AND c LIKE 'search_path=%'
              AND (c ~ 'public|\$user' OR (c ~ 'pg_temp' AND c !~ 'pg_temp$'))),
          NULL, 'no function''s search_path has public or $user, and pg_temp comes last');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.prosecdef
              AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))),
          NULL, 'no SECURITY DEFINER function is executable by PUBLIC');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.prorettype = 'trigger'::regtype
              AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))),
          NULL, 'no trigger function is executable by PUBLIC');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.prosecdef
              AND p.prorettype = 'trigger'::regtype
              AND p.prosrc !~ 'smsdist.require_extension_table\(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME\)'
              AND p.prosrc !~ 'TG_TABLE_SCHEMA <> ''smsdist'''),
          NULL, 'every SECURITY DEFINER trigger function checks the table it fires on');
SELECT is((SELECT count(*) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace
              AND has_function_privilege('smsdist_site', p.oid, 'EXECUTE')
              AND (p.prosecdef OR p.proname LIKE 'receive%')), 0::bigint,
          'smsdist_site (before 0.7) may call nothing that changes a site');

-------------------------------------------------------------------------------
-- Roles: a parent's login and a child's login may do different things
-------------------------------------------------------------------------------
SELECT has_role('smsdist_parent_site', 'role smsdist_parent_site exists');
SELECT has_role('smsdist_child_site', 'role smsdist_child_site exists');
SELECT isnt_superuser('smsdist_parent_site', 'smsdist_parent_site is not a superuser');
SELECT isnt_superuser('smsdist_child_site', 'smsdist_child_site is not a superuser');
SELECT is((SELECT array_agg(f ORDER BY f) FROM unnest(ARRAY[
              'receive_begin(text,integer,bigint,text,text,text,integer,text)',
              'receive_chunk(text,integer,bigint,bytea,text)', 'receive_total(text,integer,text,bigint,text)',
              'receive_end(text,integer,text,text,text[],boolean,jsonb)', 'receive_job_targets(text,jsonb)',
              'receive_job_state(text,text,text)', 'receive_advertisement(jsonb)', 'remove_advertisement(text)', 'distribution_report(text)',
              'location_report(text)']) f
            WHERE has_function_privilege('smsdist_child_site', 'smsdist.' || f, 'EXECUTE')),
          NULL, 'a child''s login may call none of what a parent calls');
SELECT ok(NOT has_function_privilege('smsdist_parent_site', 'smsdist.receive_status_report(text,jsonb)', 'EXECUTE'),
          'a parent''s login may not send status reports as a child');
SELECT ok(has_function_privilege('smsdist_child_site', 'smsdist.receive_status_report(text,jsonb)', 'EXECUTE'),
          'a child''s login may send its status reports');
SELECT is((SELECT count(*) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.proname LIKE 'receive%'
              AND has_function_privilege('smsdist_client', p.oid, 'EXECUTE')), 0::bigint,
          'an agent''s login may call no receive_* function');

-------------------------------------------------------------------------------
-- Logins bound to sites
-------------------------------------------------------------------------------
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN'), ('CH2', 'Other child', 'CEN')
    ON CONFLICT DO NOTHING;
CREATE ROLE tap_ch1 LOGIN IN ROLE smsdist_child_site;
CREATE ROLE tap_unbound LOGIN IN ROLE smsdist_child_site, smsdist_parent_site;
CREATE ROLE tap_self LOGIN IN ROLE smsdist_child_site;
CREATE ROLE tap_fake_parent LOGIN IN ROLE smsdist_parent_site;
INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('tap_ch1', 'CH1'), ('tap_self', 'CEN'),
    ('tap_fake_parent', 'CH1');

SELECT throws_ok($$INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('tap_no_such_role', 'CH1')$$,
                 '42704', 'role "tap_no_such_role" does not exist', 'a login that does not exist cannot be bound');
SELECT throws_ok($$INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('postgres', 'CH1')$$,
                 '22023', 'role "postgres" is a superuser: a site''s login must not be', 'a superuser cannot be a site''s login');
SELECT throws_ok($$INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('tap_ch1', 'CH2')$$,
                 '23505', NULL, 'a login speaks for one site only');
SELECT throws_ok($$INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('tap_unbound', 'XYZ')$$,
                 '23503', NULL, 'a login is bound to a site this site knows');

SELECT is(pg_temp.as_login('tap_ch1', $$SELECT smsdist.receive_status_report('CH2', '[]')$$),
          '42501: login "tap_ch1" speaks for site CH1, not for site CH2',
          'a child cannot report in the name of a sibling');
SELECT is(pg_temp.as_login('tap_ch1', $$SELECT smsdist.receive_status_report('CH1', '[]')$$),
          'ok: 0', 'a child reports in its own name');
SELECT is(pg_temp.as_login('tap_ch1', $$SELECT smsdist.receive_status_report('CH1',
              '[{"site_code": "CEN", "kind": "job", "object_id": "CEN00001", "targeted": 1, "offered": 1,
                 "downloaded": 0, "succeeded": 0, "failed": 1}]')$$),
          'ok: 0', 'a child''s report rows about the parent itself are dropped');
SELECT is(pg_temp.as_login('tap_unbound', $$SELECT smsdist.receive_status_report('CH1', '[]')$$),
          '42501: login "tap_unbound" does not speak for any site at site CEN',
          'a login bound to no site may not report');
SELECT is(pg_temp.as_login('tap_self', $$SELECT smsdist.receive_status_report('CEN', '[]')$$),
          '42501: login "tap_self" speaks for site CEN, which is not a child site of site CEN',
          'a login bound to this site itself is no child');

-- CEN has no parent: whoever calls what a parent calls is refused
SELECT is(pg_temp.as_login('tap_fake_parent',
              $$SELECT smsdist.receive_begin('CEN00001', 2, 100, repeat('a', 64), 'X', '/srv/x')$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot send this site a new version of its own package');
SELECT is(pg_temp.as_login('tap_fake_parent',
              $$SELECT smsdist.receive_end('CEN00001', 1, 'CH100009', 'run_command', '{CEN}', false,
                  '{"program_name": "Install", "command_line": "id > /tmp/x", "machines": []}')$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot rewrite this site''s program and create a job (receive_end)');
SELECT is(pg_temp.as_login('tap_fake_parent',
              $$SELECT smsdist.receive_end('CEN00001', 1, 'CH100010', 'remove_package', '{CEN}', false)$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot remove this site''s package from its distribution points');
SELECT is(pg_temp.as_login('tap_fake_parent', $$SELECT smsdist.receive_chunk('CEN00001', 1, 0, 'x', repeat('a', 64))$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot write chunks here');
SELECT is(pg_temp.as_login('tap_fake_parent', $$SELECT smsdist.receive_total('CEN00001', 1, '0123456789abcdef', 10, repeat('a', 64))$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot complete a transfer here');
SELECT is(pg_temp.as_login('tap_fake_parent',
              $$SELECT smsdist.receive_job_targets('CEN00001', '[{"sms_id": "CEN00001", "site_code": "CEN", "name": "X", "domain": "CORP", "platform": "WIN95"}]')$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot retarget this site''s job or insert machines');
SELECT is(pg_temp.as_login('tap_fake_parent', $$SELECT smsdist.receive_advertisement('{"advert": {"advert_id": "CEN00C01"}, "package": {}}')$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot push an advertisement here');
SELECT is(pg_temp.as_login('tap_fake_parent', $$SELECT smsdist.remove_advertisement('CEN00C01')$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot remove this site''s advertisement');
SELECT is(pg_temp.as_login('tap_fake_parent', $$SELECT count(*) FROM smsdist.distribution_report('CEN00001')$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot read this site''s distribution reports');
SELECT is(pg_temp.as_login('tap_fake_parent', $$SELECT count(*) FROM smsdist.location_report('CEN00001')$$),
          '42501: login "tap_fake_parent" speaks for site CH1, which is not the parent site of site CEN',
          'a child cannot read this site''s package locations');

-- what this site made itself is never changed from outside
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0E001', 'Own', '/srv/own');
SELECT throws_ok($$SELECT smsdist.require_sent_by('package', 'CEN0E001', 'CH1')$$,
                 '42501', 'package CEN0E001 was made at site CEN: site CH1 may not change it',
                 'a package made here is not another site''s to change');
UPDATE smsdist.packages SET source_site = 'CH1' WHERE package_id = 'CEN0E001';
SELECT throws_ok($$SELECT smsdist.require_sent_by('package', 'CEN0E001', 'CH2')$$,
                 '42501', 'package CEN0E001 came from site CH1: site CH2 may not change it',
                 'a package received from one site is not another''s to change');
SELECT lives_ok($$SELECT smsdist.require_sent_by('package', 'CEN0E001', 'CH1')$$,
                'the site it came from may change it');

-------------------------------------------------------------------------------
-- Logins bound to machines
-------------------------------------------------------------------------------
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN0E001', 'WKS-E1', 'CORP', 'CEN', 'WINNT_X86'), ('CEN0E002', 'WKS-E2', 'CORP', 'CEN', 'WINNT_X86');
CREATE ROLE tap_m1 LOGIN IN ROLE smsdist_client;
CREATE ROLE tap_m_unbound LOGIN IN ROLE smsdist_client;
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('tap_m1', 'CEN0E001');

SELECT alike(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN0E001')::text$$),
            'ok: {%"machine": "CEN0E001"%', 'a machine reads its own policy');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN0E002')::text$$),
          '42501: permission denied: login "tap_m1" speaks for machine CEN0E001, not for machine CEN0E002',
          'a machine cannot read another machine''s policy');
SELECT is(pg_temp.as_login('tap_m_unbound', $$SELECT smsdist.machine_policy('CEN0E001')::text$$),
          '42501: permission denied: login "tap_m_unbound" does not speak for any machine',
          'an agent login bound to no machine reads no policy');

-- A stored policy is answered without PL/pgSQL (src/core/machine_policy.c):
-- the same checks, from the attacker's side.
INSERT INTO smsdist.machine_policies (sms_id, policy_md5, policy) VALUES
  ('CEN0E001', 'x', '{"machine": "CEN0E001", "stored": 1}'),
  ('CEN0E002', 'x', '{"machine": "CEN0E002", "stored": 2}'),
  ('CEN0E0FF', 'x', '{"machine": "CEN0E0FF", "stored": 3}');
CREATE ROLE tap_policy_reader LOGIN IN ROLE smsdist_reader;
CREATE ROLE tap_m2_reader LOGIN IN ROLE smsdist_client, smsdist_reader;
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('tap_m2_reader', 'CEN0E002');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN0E001')::text$$),
          'ok: {"stored": 1, "machine": "CEN0E001"}', 'a machine reads its own stored policy');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN0E002')::text$$),
          '42501: permission denied: login "tap_m1" speaks for machine CEN0E001, not for machine CEN0E002',
          'a machine cannot read another machine''s stored policy');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('cen0e002')::text$$),
          '42501: permission denied: login "tap_m1" speaks for machine CEN0E001, not for machine cen0e002',
          'nor by changing the case of its SMS ID');
SELECT is(pg_temp.as_login('tap_m_unbound', $$SELECT smsdist.machine_policy('CEN0E001')::text$$),
          '42501: permission denied: login "tap_m_unbound" does not speak for any machine',
          'an agent login bound to no machine reads no stored policy');
SELECT is(pg_temp.as_login('tap_m2_reader', $$SELECT smsdist.machine_policy('CEN0E001')::text$$),
          '42501: permission denied: login "tap_m2_reader" speaks for machine CEN0E002, not for machine CEN0E001',
          'a login bound to a machine reads only that machine''s policy, reader or not');
SELECT is(pg_temp.as_login('tap_policy_reader', $$SELECT smsdist.machine_policy('CEN0E002')::text$$),
          'ok: {"stored": 2, "machine": "CEN0E002"}', 'a reader reads any machine''s stored policy');
SELECT is(pg_temp.as_login('tap_policy_reader', $$SELECT smsdist.machine_policy('CEN0E0FF')::text$$),
          'ok: NULL', 'the policy of a machine that is gone is not served');
SELECT is(pg_temp.as_login('tap_policy_reader', $$SELECT smsdist.machine_policy(NULL)::text$$),
          'ok: NULL', 'no machine, no policy');
-- a table changed behind its back (the checks kept are forgotten)
SAVEPOINT altered;
ALTER TABLE smsdist.machine_policies ALTER COLUMN policy TYPE json USING policy::json;
SELECT is(pg_temp.as_login('tap_policy_reader', $$SELECT smsdist.machine_policy('CEN0E002')::text$$),
          '55000: relation "smsdist.machine_policies" is not as smsdist made it',
          'a policy column of another type is refused, not read as jsonb');
ROLLBACK TO SAVEPOINT altered;
SELECT is(pg_temp.as_login('tap_policy_reader', $$SELECT smsdist.machine_policy('CEN0E002')::text$$),
          'ok: {"stored": 2, "machine": "CEN0E002"}', 'and read again once it is as it was');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.answer_machine_policy('CEN0E001')::text$$),
          '42501: permission denied for function answer_machine_policy',
          'the PL/pgSQL behind it is not for agents to call');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN0E001', 'CORP\u1', NULL)->>'user'$$),
          'ok: CORP\u1', 'a request with a user is answered by the PL/pgSQL, for the bound machine');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN0E002', 'CORP\u1', NULL)::text$$),
          '42501: permission denied: login "tap_m1" speaks for machine CEN0E001, not for machine CEN0E002',
          'and refused for another machine');

-- A caller's COLLATE clause: a PL/pgSQL function compares its parameters
-- in the call's collation, and under this nondeterministic one (any login
-- may make one in pg_temp) CEN00E01 equals CEN0E001.
CREATE COLLATION pg_temp.tap_numeric (provider = icu, locale = 'und-u-kn', deterministic = false);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00E01', 'WKS-E01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.machine_policies (sms_id, policy_md5, policy) VALUES
  ('CEN00E01', 'x', '{"machine": "CEN00E01", "stored": 4}');
SELECT ok('CEN00E01' = 'CEN0E001' COLLATE pg_temp.tap_numeric, 'the two IDs are equal in that collation');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN00E01' COLLATE pg_temp.tap_numeric)::text$$),
          '42501: permission denied: login "tap_m1" speaks for machine CEN0E001, not for machine CEN00E01',
          'a machine cannot read another machine''s policy through a collation');
SELECT is(pg_temp.as_login('tap_m1', $$SELECT smsdist.machine_policy('CEN00E01' COLLATE pg_temp.tap_numeric, 'CORP\u1')::text$$),
          '42501: permission denied: login "tap_m1" speaks for machine CEN0E001, not for machine CEN00E01',
          'nor with a user');
SELECT is(pg_temp.as_login('tap_m1',
              $$SELECT smsdist.client_status('CEN00E01' COLLATE pg_temp.tap_numeric, 9, now(), 10002, 'informational', 'Client Agent', 'ran')::text$$),
          '42P21: smsdist.require_machine_login() takes its arguments in the database''s default collation, not pg_temp.tap_numeric',
          'a machine cannot write status for another machine through a collation');
SELECT is(pg_temp.as_login('tap_ch1', $$SELECT smsdist.receive_status_report('CH1' COLLATE pg_temp.tap_numeric, '[]')::text$$),
          '42P21: smsdist.receive_status_report() takes its arguments in the database''s default collation, not pg_temp.tap_numeric',
          'a child site''s call with a COLLATE clause is refused');
SELECT is(pg_temp.as_login('tap_ch1', $$SELECT smsdist.receive_status_report('CH1' COLLATE "C", '[]')::text$$),
          '42P21: smsdist.receive_status_report() takes its arguments in the database''s default collation, not "C"',
          'whichever collation it names');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.prosecdef
              AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'))
              AND EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t
                           WHERE (SELECT typcollation FROM pg_type WHERE oid = t) <> 0)
              AND (has_function_privilege('smsdist_client', p.oid, 'EXECUTE')
                   OR has_function_privilege('smsdist_parent_site', p.oid, 'EXECUTE')
                   OR has_function_privilege('smsdist_child_site', p.oid, 'EXECUTE'))
              AND p.prosrc !~ 'smsdist\.require_(default_collation|machine_login)\('),
          NULL, 'every SECURITY DEFINER function an agent or another site calls refuses a COLLATE clause first');
SELECT is(pg_temp.as_login('tap_m1',
              $$SELECT smsdist.client_status('CEN0E002', 1, now(), 10002, 'error', 'Client Agent', 'failed')::text$$),
          '42501: permission denied: login "tap_m1" speaks for machine CEN0E001, not for machine CEN0E002',
          'a machine cannot write status for another machine');
SELECT is(pg_temp.as_login('tap_m1',
              $$SELECT smsdist.client_status('CEN0E001', 1, now(), 10002, 'informational', 'Client Agent', 'ran')::text$$),
          'ok: true', 'a machine writes its own status');
SELECT alike(pg_temp.as_login('tap_m1',
              $$SELECT smsdist.client_status('CEN0E001', 2, now(), 10002, 'informational', 'Client Agent', repeat('x', 50000000))::text$$),
          '22023: status message of machine CEN0E001 refused: its text is 50000000 bytes, more than smsdist.status_text_max (% bytes)',
          '50 MB of status text is refused');
SELECT alike(pg_temp.as_login('tap_m1',
              $$SELECT smsdist.client_status('CEN0E001', 3, now(), 10002, 'informational', 'Client Agent', E'ran\x1b[2J')::text$$),
          '22023: status message of machine CEN0E001 refused: its text holds the control character 0x1B at byte 3%',
          'raw control characters in status text are refused');
SELECT alike(pg_temp.as_login('tap_m1',
              $$SELECT smsdist.client_status('CEN0E001', 4, '0001-01-01 00:00+00', 10002, 'informational', 'Client Agent', 'x')::text$$),
            '22023: status message of machine CEN0E001 refused: its client time % is not within smsdist.client_time_window%',
            'a client time in year 1 is refused');
SELECT alike(pg_temp.as_login('tap_m1',
              $$SELECT smsdist.client_status('CEN0E001', 5, '9999-12-31 00:00+00', 10002, 'informational', 'Client Agent', 'x')::text$$),
            '22023: status message of machine CEN0E001 refused: its client time 9999-12-31% is not within smsdist.client_time_window%',
            'a client time in year 9999 is refused');
SELECT throws_ok($$INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('tap_m_unbound', 'CEN0E999')$$,
                 '23503', NULL, 'a login is bound to a machine this site knows');

-------------------------------------------------------------------------------
-- Package sources only from smsdist.source_roots (here: /srv)
-------------------------------------------------------------------------------
SELECT throws_ok(format($$INSERT INTO smsdist.packages (name, source_directory) VALUES ('Secrets', %L)$$,
                        current_setting('data_directory') || '/global'),
                 '42501', format('package source "%s/global" is inside the server''s data directory "%s"',
                                 current_setting('data_directory'), current_setting('data_directory')),
                 'a package source in the data directory is refused');
SELECT throws_ok($$INSERT INTO smsdist.packages (name, source_directory) VALUES ('Root', '/')$$,
                 '42501', format('package source "/" contains the server''s data directory "%s"',
                                 current_setting('data_directory')),
                 'a package source that contains the data directory is refused');
SELECT throws_ok($$INSERT INTO smsdist.packages (name, source_directory) VALUES ('Etc', '/etc')$$,
                 '42501', 'package source "/etc" is not under any directory of smsdist.source_roots',
                 'a package source outside smsdist.source_roots is refused, naming the setting');
SELECT lives_ok($$INSERT INTO smsdist.packages (name, source_directory) VALUES ('Fine', '/srv/fine')$$,
                'a package source under smsdist.source_roots is taken');

-------------------------------------------------------------------------------
-- Trigger functions cannot be attached elsewhere
-------------------------------------------------------------------------------
CREATE ROLE tap_trigger_client LOGIN IN ROLE smsdist_client;
SELECT alike(pg_temp.as_login('tap_trigger_client',
              $$SELECT 1 FROM (SELECT 1) x; CREATE TEMP TABLE mine (collection_id text);
                CREATE TRIGGER t AFTER DELETE ON mine REFERENCING OLD TABLE AS old_rows
                FOR EACH STATEMENT EXECUTE FUNCTION smsdist.collection_members_cascade()$$),
            '42501: permission denied for %', 'a client cannot attach collection_members_cascade to its own table');
CREATE TEMP TABLE attached (sms_id text);
CREATE TRIGGER t AFTER INSERT ON attached REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION smsdist.queue_pcm();
SELECT throws_like($$INSERT INTO attached VALUES ('CEN0E001')$$,
                   't fires only on smsdist''s tables, not on pg_temp%.attached',
                   'a SECURITY DEFINER trigger function refuses to fire on another table');

SELECT * FROM finish();
ROLLBACK;
