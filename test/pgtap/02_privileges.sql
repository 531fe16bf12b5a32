-- smsdist privileges: what smsdist_reader, smsdist_operator, smsdist_admin,
-- smsdist_client and PUBLIC may do, in the catalog and in practice.
BEGIN;
SELECT plan(272);

-------------------------------------------------------------------------------
-- The roles
-------------------------------------------------------------------------------
SELECT has_role('smsdist_reader', 'role smsdist_reader exists');
SELECT has_role('smsdist_operator', 'role smsdist_operator exists');
SELECT has_role('smsdist_admin', 'role smsdist_admin exists');
SELECT has_role('smsdist_client', 'role smsdist_client exists');
SELECT isnt_superuser('smsdist_reader', 'smsdist_reader is not a superuser');
SELECT isnt_superuser('smsdist_operator', 'smsdist_operator is not a superuser');
SELECT isnt_superuser('smsdist_admin', 'smsdist_admin is not a superuser');
SELECT isnt_superuser('smsdist_client', 'smsdist_client is not a superuser');
SELECT is((SELECT array_agg(rolname::text ORDER BY rolname) FROM pg_roles
            WHERE rolname LIKE 'smsdist\_%'
              AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls OR rolcanlogin)),
          NULL::text[],
          'no smsdist_* role is superuser, can create roles or databases, replicate, bypass RLS or log in');
SELECT is_member_of('smsdist_reader', 'smsdist_operator', 'smsdist_operator is a member of smsdist_reader');
SELECT is_member_of('smsdist_operator', 'smsdist_admin', 'smsdist_admin is a member of smsdist_operator');
SELECT isnt_member_of('smsdist_reader', 'smsdist_client', 'smsdist_client is not a member of smsdist_reader');
SELECT ok(pg_has_role('smsdist_admin', 'smsdist_reader', 'USAGE'),
          'smsdist_admin inherits the privileges of smsdist_reader');
SELECT ok(NOT pg_has_role('smsdist_client', 'smsdist_operator', 'USAGE'),
          'smsdist_client does not have the privileges of smsdist_operator');

-------------------------------------------------------------------------------
-- Schema
-------------------------------------------------------------------------------
SELECT schema_privs_are('smsdist', 'smsdist_reader', ARRAY['USAGE'], 'smsdist_reader may use schema smsdist, not create in it');
SELECT schema_privs_are('smsdist', 'smsdist_operator', ARRAY['USAGE'], 'smsdist_operator may use schema smsdist, not create in it');
SELECT schema_privs_are('smsdist', 'smsdist_admin', ARRAY['USAGE'], 'smsdist_admin may use schema smsdist, not create in it');
SELECT schema_privs_are('smsdist', 'smsdist_client', ARRAY['USAGE'], 'smsdist_client may use schema smsdist, not create in it');
SELECT schema_privs_are('smsdist', 'public', ARRAY[]::name[], 'PUBLIC has no privileges on schema smsdist');

-------------------------------------------------------------------------------
-- Tables and views: every relation for every role (22 x 5 = 110 assertions)
-------------------------------------------------------------------------------
WITH rels(n, rel) AS (VALUES
        (1, 'sites'), (2, 'sender_addresses'), (3, 'site_systems'), (4, 'packages'),
        (5, 'programs'), (6, 'system_resources'), (7, 'users'), (8, 'user_groups'),
        (9, 'user_group_members'), (10, 'collections'), (11, 'collection_subcollections'),
        (12, 'collection_rules'), (13, 'collection_members'), (14, 'jobs'),
        (15, 'job_transitions'), (16, 'job_site_status'), (17, 'job_target_status'),
        (18, 'advertisements'), (19, 'advertisement_assignments'), (20, 'status_messages'),
        (21, 'workers'), (22, 'job_overview')),
     roles(m, role) AS (VALUES
        (1, 'smsdist_reader'), (2, 'smsdist_operator'), (3, 'smsdist_admin'),
        (4, 'smsdist_client'), (5, 'public')),
     -- grants as sql/smsdist--0.1.sql documents them, before inheritance
     direct(role, rel, priv) AS (
        SELECT 'smsdist_reader', r, 'SELECT' FROM unnest(ARRAY[
            'sites', 'site_systems', 'packages', 'programs', 'system_resources', 'users',
            'user_groups', 'user_group_members', 'collections', 'collection_subcollections',
            'collection_rules', 'collection_members', 'jobs', 'job_transitions',
            'job_site_status', 'job_target_status', 'advertisements',
            'advertisement_assignments', 'status_messages', 'workers', 'job_overview']) r
        UNION ALL
        SELECT 'smsdist_operator', r, p FROM unnest(ARRAY[
            'packages', 'programs', 'collections', 'collection_subcollections',
            'collection_rules', 'jobs', 'advertisements', 'advertisement_assignments']) r,
            unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) p
        UNION ALL
        SELECT 'smsdist_admin', r, p FROM unnest(ARRAY[
            'sites', 'site_systems', 'sender_addresses', 'system_resources', 'users',
            'user_groups', 'user_group_members']) r,
            unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
        UNION ALL
        SELECT 'smsdist_admin', r, p FROM unnest(ARRAY['status_messages']) r,
            unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) p),
     -- admin is an operator, operator is a reader
     inherits(role, from_role) AS (VALUES
        ('smsdist_reader', 'smsdist_reader'),
        ('smsdist_operator', 'smsdist_operator'), ('smsdist_operator', 'smsdist_reader'),
        ('smsdist_admin', 'smsdist_admin'), ('smsdist_admin', 'smsdist_operator'),
        ('smsdist_admin', 'smsdist_reader'))
SELECT table_privs_are('smsdist', rels.rel, roles.role,
           ARRAY(SELECT DISTINCT d.priv::name FROM inherits i JOIN direct d ON d.role = i.from_role
                  WHERE i.role = roles.role AND d.rel = rels.rel),
           format('%s has exactly %s on smsdist.%s', roles.role,
                  coalesce((SELECT string_agg(DISTINCT d.priv, ', ') FROM inherits i
                              JOIN direct d ON d.role = i.from_role
                             WHERE i.role = roles.role AND d.rel = rels.rel), 'no privileges'),
                  rels.rel))
  FROM rels CROSS JOIN roles;

-------------------------------------------------------------------------------
-- ID sequences: operators (and admins) may draw IDs; nobody else
-------------------------------------------------------------------------------
SELECT sequence_privs_are('smsdist', s, r, CASE WHEN r IN ('smsdist_operator', 'smsdist_admin')
                                             THEN ARRAY['USAGE']::name[] ELSE ARRAY[]::name[] END,
           format('%s has %s on sequence smsdist.%s', r,
                  CASE WHEN r IN ('smsdist_operator', 'smsdist_admin') THEN 'only USAGE' ELSE 'nothing' END, s))
  FROM unnest(ARRAY['package_id_seq', 'job_id_seq', 'collection_id_seq', 'advert_id_seq']::name[]) s,
       unnest(ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client', 'public']::name[]) r;

-------------------------------------------------------------------------------
-- Functions
-------------------------------------------------------------------------------
-- validators and library_version(): everyone (domains call them on every write)
SELECT function_privs_are('smsdist', 'check_site_code', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_site_code');
SELECT function_privs_are('smsdist', 'check_sms_id', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_sms_id');
SELECT function_privs_are('smsdist', 'check_object_name', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_object_name');
SELECT function_privs_are('smsdist', 'check_netbios_name', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_netbios_name');
SELECT function_privs_are('smsdist', 'check_server_path', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_server_path');
SELECT function_privs_are('smsdist', 'check_command_line', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_command_line');
SELECT function_privs_are('smsdist', 'check_conninfo', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_conninfo');
SELECT function_privs_are('smsdist', 'check_package_path', ARRAY['text'], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute check_package_path');
SELECT function_privs_are('smsdist', 'library_version', ARRAY[]::name[], 'public', ARRAY['EXECUTE'], 'PUBLIC may execute library_version');

-- status functions: readers and up, not clients or PUBLIC
SELECT function_privs_are('smsdist', f, a, r,
           CASE WHEN r IN ('smsdist_reader', 'smsdist_operator', 'smsdist_admin')
                THEN ARRAY['EXECUTE']::name[] ELSE ARRAY[]::name[] END,
           format('%s %s execute smsdist.%s', r,
                  CASE WHEN r IN ('smsdist_reader', 'smsdist_operator', 'smsdist_admin') THEN 'may' ELSE 'may not' END, f))
  FROM (VALUES ('worker_status'::name, ARRAY[]::name[]),
               ('job_target_machines', ARRAY['smsdist.sms_id']::name[]),
               ('job_target_sites', ARRAY['smsdist.sms_id']::name[]),
               ('describe_targets', ARRAY['smsdist.sms_id']::name[])) fn(f, a),
       unnest(ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client', 'public']::name[]) r;

-- new_sms_id and wake: operators and admins
SELECT function_privs_are('smsdist', f, a, r,
           CASE WHEN r IN ('smsdist_operator', 'smsdist_admin')
                THEN ARRAY['EXECUTE']::name[] ELSE ARRAY[]::name[] END,
           format('%s %s execute smsdist.%s', r,
                  CASE WHEN r IN ('smsdist_operator', 'smsdist_admin') THEN 'may' ELSE 'may not' END, f))
  FROM (VALUES ('new_sms_id'::name, ARRAY['regclass']::name[]),
               ('wake', ARRAY['text']::name[])) fn(f, a),
       unnest(ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client', 'public']::name[]) r;

-- trigger functions: nobody calls them directly, not even admins
SELECT function_privs_are('smsdist', f, ARRAY[]::name[], r, ARRAY[]::name[],
           format('%s may not execute trigger function smsdist.%s', r, f))
  FROM unnest(ARRAY['sites_refuse_cycle', 'jobs_check_transition', 'jobs_log_transition',
                    'jobs_new_is_pending', 'jobs_check_targets', 'notify_change',
                    'touch_updated_at']::name[]) f,
       unnest(ARRAY['smsdist_admin', 'public']::name[]) r;

-------------------------------------------------------------------------------
-- In practice: login roles in each group, within this transaction
-------------------------------------------------------------------------------
CREATE ROLE tap_reader IN ROLE smsdist_reader;
CREATE ROLE tap_operator IN ROLE smsdist_operator;
CREATE ROLE tap_admin IN ROLE smsdist_admin;
CREATE ROLE tap_client IN ROLE smsdist_client;
CREATE ROLE tap_nobody;

-- the admin builds the hierarchy and the inventory
SET ROLE tap_admin;
SELECT lives_ok($$INSERT INTO smsdist.sites VALUES ('TQ1', 'Privileges central', NULL), ('TQ2', 'Privileges child', 'TQ1')$$,
                'smsdist_admin may insert sites');
SELECT lives_ok($$INSERT INTO smsdist.site_systems (site_code, role, name, root_directory)
                  VALUES ('TQ2', 'distribution_point', 'DP1', '/srv/tq2/dp1')$$,
                'smsdist_admin may insert site systems');
SELECT lives_ok($$INSERT INTO smsdist.sender_addresses (target_site_code, conninfo)
                  VALUES ('TQ2', 'host=tq2.example.org dbname=sms')$$,
                'smsdist_admin may insert sender addresses');
SELECT is((SELECT conninfo::text FROM smsdist.sender_addresses WHERE target_site_code = 'TQ2'),
          'host=tq2.example.org dbname=sms', 'smsdist_admin may read sender addresses');
SELECT lives_ok($$INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
                  VALUES ('TQ200001', 'WKS-TQ2-1', 'CORP', 'TQ2', 'WIN_X64')$$,
                'smsdist_admin may insert systems');
SELECT lives_ok($$INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message)
                  VALUES ('TQ1', 'pgtap', 'informational', 1, 'privileges test')$$,
                'smsdist_admin may insert status messages');
RESET ROLE;

-- the operator creates packages, programs, collections and jobs
SET ROLE tap_operator;
SELECT lives_ok($$INSERT INTO smsdist.packages (name, source_directory) VALUES ('Privileges default ID', '/srv/src/priv')$$,
                'smsdist_operator may insert a package with a new SMS ID (new_sms_id and the sequence)');
SELECT lives_ok($$INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('TQ100001', 'Privileges', '/srv/src/tq')$$,
                'smsdist_operator may insert a package with a given ID');
SELECT lives_ok($$INSERT INTO smsdist.programs VALUES ('TQ100001', 'Install', 'install.sh', NULL, 5)$$,
                'smsdist_operator may insert programs');
SELECT lives_ok($$INSERT INTO smsdist.collections (collection_id, name) VALUES ('TQ100001', 'Privileges collection')$$,
                'smsdist_operator may insert collections');
SELECT lives_ok($$INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
                  VALUES ('TQ100001', 'run_command', 'TQ100001', 'Install', 'machines', '{TQ200001}', '2099-01-01')$$,
                'smsdist_operator may insert a job whose targets it checks through a SECURITY DEFINER trigger');
SELECT lives_ok($$UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'privileges test' WHERE job_id = 'TQ100001'$$,
                'smsdist_operator may cancel a job');
SELECT results_eq(
    $$SELECT from_state::text, to_state::text, by_role::text COLLATE "default", reason FROM smsdist.job_transitions
       WHERE job_id = 'TQ100001' ORDER BY transition_id$$,
    $$VALUES (NULL, 'pending', 'tap_operator', 'created'),
             ('pending', 'cancelled', 'tap_operator', 'privileges test')$$,
    'the operator''s changes are logged as by_role tap_operator although it cannot write the log');
SELECT lives_ok($$SELECT smsdist.wake('scheduler')$$, 'smsdist_operator may call wake()');
SELECT throws_ok($$INSERT INTO smsdist.sites VALUES ('TQ3', 'Sneaky', 'TQ1')$$,
                 '42501', 'permission denied for table sites', 'smsdist_operator may not insert sites');
SELECT throws_ok($$SELECT * FROM smsdist.sender_addresses$$,
                 '42501', 'permission denied for table sender_addresses', 'smsdist_operator may not read sender addresses');
SELECT throws_ok($$INSERT INTO smsdist.job_transitions (job_id, to_state, by_role) VALUES ('TQ100001', 'completed', 'x')$$,
                 '42501', 'permission denied for table job_transitions', 'smsdist_operator may not write the transition log');
SELECT throws_ok($$INSERT INTO smsdist.collection_members VALUES ('TQ100001', 'TQ200001')$$,
                 '42501', 'permission denied for table collection_members', 'smsdist_operator may not write collection membership');
SELECT throws_ok($$DELETE FROM smsdist.system_resources$$,
                 '42501', 'permission denied for table system_resources', 'smsdist_operator may not delete inventory');
RESET ROLE;

-- the admin, being an operator, may also do operator work
SET ROLE tap_admin;
SELECT throws_ok($$INSERT INTO smsdist.collection_members VALUES ('TQ100001', 'TQ200001')$$,
                 '42501', 'permission denied for table collection_members',
                 'nor may smsdist_admin: the Collection Evaluator keeps membership');
RESET ROLE;

-- the reader reads status and nothing else
SET ROLE tap_reader;
SELECT is((SELECT count(*) FROM smsdist.jobs WHERE job_id = 'TQ100001'), 1::bigint, 'smsdist_reader may read jobs');
SELECT is((SELECT count(*) FROM smsdist.job_overview WHERE job_id = 'TQ100001'), 1::bigint, 'smsdist_reader may read job_overview');
SELECT ok((SELECT count(*) FROM smsdist.workers) > 0, 'smsdist_reader may read workers (and so call worker_status())');
SELECT ok((SELECT count(*) FROM smsdist.metrics) > 0, 'smsdist_reader may read metrics (the monitoring login)');
SELECT is((SELECT array_agg(site_code::text) FROM smsdist.job_target_sites('TQ100001')), ARRAY['TQ2'],
          'smsdist_reader may resolve job targets');
SELECT throws_ok($$SELECT * FROM smsdist.sender_addresses$$,
                 '42501', 'permission denied for table sender_addresses', 'smsdist_reader may not read sender addresses');
SELECT throws_ok($$INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('TQ100002', 'Sneaky', '/srv/x')$$,
                 '42501', 'permission denied for table packages', 'smsdist_reader may not insert packages');
SELECT throws_ok($$UPDATE smsdist.jobs SET comment = 'sneaky' WHERE job_id = 'TQ100001'$$,
                 '42501', 'permission denied for table jobs', 'smsdist_reader may not update jobs');
SELECT throws_ok($$SELECT smsdist.wake('scheduler')$$,
                 '42501', 'permission denied for function wake', 'smsdist_reader may not call wake()');
SELECT throws_ok($$SELECT smsdist.new_sms_id('smsdist.job_id_seq')$$,
                 '42501', 'permission denied for function new_sms_id', 'smsdist_reader may not call new_sms_id()');
RESET ROLE;

-- the client: schema usage and the validators only
SET ROLE tap_client;
SELECT ok(smsdist.check_sms_id('CEN00001'), 'smsdist_client may call the validators');
SELECT throws_ok($$SELECT count(*) FROM smsdist.jobs$$,
                 '42501', 'permission denied for table jobs', 'smsdist_client may not read jobs');
SELECT throws_ok($$SELECT count(*) FROM smsdist.workers$$,
                 '42501', 'permission denied for view workers', 'smsdist_client may not read workers');
SELECT throws_ok($$SELECT count(*) FROM smsdist.metrics$$,
                 '42501', 'permission denied for view metrics', 'smsdist_client may not read metrics');
RESET ROLE;

-- everyone else: not even the schema
SET ROLE tap_nobody;
SELECT throws_ok($$SELECT count(*) FROM smsdist.jobs$$,
                 '42501', 'permission denied for schema smsdist', 'a role outside the smsdist groups may not use the schema');
RESET ROLE;

-------------------------------------------------------------------------------
-- validate_content(): the admins of the site, for this site only
-------------------------------------------------------------------------------
SELECT function_privs_are('smsdist', 'validate_content', ARRAY['text']::name[], r,
           CASE WHEN r = 'smsdist_admin' THEN ARRAY['EXECUTE']::name[] ELSE ARRAY[]::name[] END,
           format('%s %s execute smsdist.validate_content', r,
                  CASE WHEN r = 'smsdist_admin' THEN 'may' ELSE 'may not' END))
  FROM unnest(ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client', 'public']::name[]) r;
-- importing package definition files: operators, who may create packages
SELECT function_privs_are('smsdist', f.name, f.args, r,
           CASE WHEN r IN ('smsdist_operator', 'smsdist_admin') THEN ARRAY['EXECUTE']::name[] ELSE ARRAY[]::name[] END,
           format('%s %s execute smsdist.%s(%s)', r,
                  CASE WHEN r IN ('smsdist_operator', 'smsdist_admin') THEN 'may' ELSE 'may not' END,
                  f.name, array_to_string(f.args, ', ')))
  FROM (VALUES ('import_package_definition', ARRAY['text', 'text']::name[]),
               ('import_package_definition', ARRAY['bytea', 'text']::name[])) f(name, args),
       unnest(ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client', 'public']::name[]) r;
SELECT function_privs_are('smsdist', 'content_mismatch_reported', ARRAY[]::name[], r, ARRAY[]::name[],
           format('%s may not execute trigger function smsdist.content_mismatch_reported', r))
  FROM unnest(ARRAY['smsdist_admin', 'public']::name[]) r;
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL) ON CONFLICT DO NOTHING;
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory)
VALUES ('CEN', 'distribution_point', 'DPV', '/srv/cen/dpv');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0C001', 'Validated', '/srv/src/content');
INSERT INTO smsdist.package_locations (package_id, site_code, site_system_id, source_version, path)
SELECT 'CEN0C001', 'CEN', site_system_id, 1, '/srv/cen/dpv/SMS_PKGC/CEN0C001'
  FROM smsdist.site_systems WHERE name = 'DPV';
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
VALUES ('CEN0C001', 'WKS-CEN-C1', 'CORP', 'CEN', 'WIN_X64');
SET ROLE tap_operator;
SELECT throws_ok($$SELECT * FROM smsdist.validate_content()$$, '42501', NULL,
                 'smsdist_operator may not queue content validations');
RESET ROLE;
SET ROLE tap_admin;
SELECT throws_ok($$SELECT * FROM smsdist.validate_content('ZZ9')$$, '23503', 'unknown site ZZ9',
                 'validate_content() refuses an unknown site');
SELECT throws_ok($$SELECT * FROM smsdist.validate_content('TQ2')$$, '22023',
                 'the distribution points of site TQ2 are validated by that site''s Despooler, not by site CEN',
                 'validate_content() refuses another site (its own Despooler validates it)');
SELECT results_eq($$SELECT package_id, source_version, path FROM smsdist.validate_content()$$,
                  $$VALUES ('CEN0C001'::text, 1, '/srv/cen/dpv/SMS_PKGC/CEN0C001'::text)$$,
                  'validate_content() queues every location of this site and returns it');
SELECT results_eq($$SELECT package_id, source_version FROM smsdist.validate_content('CEN')$$,
                  $$VALUES ('CEN0C001'::text, 1)$$,
                  'validate_content(this site) does the same');
SELECT throws_ok($$UPDATE smsdist.content_validations SET requested_at = NULL$$, '42501', NULL,
                 'smsdist_admin may not write content_validations directly');
RESET ROLE;
SELECT is((SELECT requested_by FROM smsdist.content_validations WHERE package_id = 'CEN0C001'), session_user::text,
          'the request says who made it (the login)');
UPDATE smsdist.content_validations SET requested_at = NULL WHERE package_id = 'CEN0C001';
INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message, package_id)
VALUES ('CEN', 'Client Agent', 'CEN0C001', 'warning', 10004, 'Package CEN0C001 version 1 not downloaded: a file did not verify', 'CEN0C001');
SELECT ok((SELECT requested_at IS NOT NULL AND requested_by LIKE 'machine CEN0C001 (status message %)'
             FROM smsdist.content_validations WHERE package_id = 'CEN0C001'),
          'a 10004 from a machine of this site queues the validation of the package''s locations');

-------------------------------------------------------------------------------
-- prune_status_messages() and pg_cron_check(): the administrators
-------------------------------------------------------------------------------
SELECT function_privs_are('smsdist', f, a, r,
           CASE WHEN r = 'smsdist_admin' THEN ARRAY['EXECUTE']::name[] ELSE ARRAY[]::name[] END,
           format('%s %s execute smsdist.%s', r,
                  CASE WHEN r = 'smsdist_admin' THEN 'may' ELSE 'may not' END, f))
  FROM (VALUES ('prune_status_messages'::name, ARRAY['integer']::name[]),
               ('pg_cron_check', ARRAY[]::name[])) fn(f, a),
       unnest(ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client', 'public']::name[]) r;

SELECT * FROM finish();
ROLLBACK;
