-- smsdist structure: schema, tables, views, columns, keys, domains, enums,
-- sequences, functions and triggers, as sql/smsdist--0.1.sql defines them.
BEGIN;
SELECT plan(222);

-------------------------------------------------------------------------------
-- Extension and schema
-------------------------------------------------------------------------------
SELECT has_schema('smsdist', 'schema smsdist exists');
SELECT has_extension('smsdist', 'smsdist', 'extension smsdist is installed in schema smsdist');
SELECT is(smsdist.library_version(),
          (SELECT extversion FROM pg_extension WHERE extname = 'smsdist'),
          'library_version() of smsdist.so matches the installed extension version');
SELECT is((SELECT count(*) FROM pg_class c
            WHERE c.relnamespace = 'smsdist'::regnamespace
              AND c.relkind IN ('r', 'v', 'S', 'm', 'f', 'p')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')),
          0::bigint,
          'every table, view and sequence in smsdist belongs to the extension');
SELECT set_eq(
    $$SELECT c::regclass::text FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'smsdist'$$,
    ARRAY['smsdist.sites', 'smsdist.sender_addresses', 'smsdist.site_systems', 'smsdist.packages',
          'smsdist.programs', 'smsdist.system_resources', 'smsdist.users', 'smsdist.user_groups',
          'smsdist.user_group_members', 'smsdist.collections', 'smsdist.collection_subcollections',
          'smsdist.collection_rules', 'smsdist.collection_members', 'smsdist.jobs',
          'smsdist.job_transitions', 'smsdist.job_site_status', 'smsdist.job_target_status',
          'smsdist.advertisements', 'smsdist.advertisement_assignments', 'smsdist.status_messages',
          'smsdist.package_builds', 'smsdist.package_locations', 'smsdist.package_transfers', 'smsdist.package_deltas',
          'smsdist.package_icons',
          'smsdist.collection_user_members', 'smsdist.collection_group_members', 'smsdist.collection_evaluation_queue',
          'smsdist.system_evaluation_queue', 'smsdist.pcm_queue', 'smsdist.pcm_files', 'smsdist.job_target_pushes',
          'smsdist.machine_policies', 'smsdist.maintenance_windows', 'smsdist.advertisement_pushes',
          'smsdist.site_status_reports', 'smsdist.site_logins', 'smsdist.machine_logins', 'smsdist.machine_keys',
          'smsdist.advertisement_target_status', 'smsdist.job_control_pushes', 'smsdist.distribution_report_answers',
          'smsdist.machine_caches', 'smsdist.machine_cache_packages', 'smsdist.link_measurements',
          'smsdist.content_validations', 'smsdist.metric_counts',
          'smsdist.package_id_seq', 'smsdist.job_id_seq', 'smsdist.collection_id_seq', 'smsdist.advert_id_seq',
          'smsdist.sender_addresses_address_id_seq', 'smsdist.site_systems_site_system_id_seq',
          'smsdist.collection_rules_rule_id_seq', 'smsdist.job_transitions_transition_id_seq',
          'smsdist.advertisement_assignments_assignment_id_seq', 'smsdist.status_messages_status_id_seq',
          'smsdist.maintenance_windows_window_id_seq'],
    'pg_dump includes every table and sequence (pg_extension_config_dump)');
SELECT is((SELECT array_agg(DISTINCT f) FROM pg_extension e, unnest(e.extcondition) f WHERE e.extname = 'smsdist'),
          ARRAY['']::text[], 'pg_dump dumps all rows of each registered table (no filter)');

-------------------------------------------------------------------------------
-- Tables and views
-------------------------------------------------------------------------------
SELECT has_table('smsdist', 'sites', 'table sites exists');
SELECT has_table('smsdist', 'sender_addresses', 'table sender_addresses exists');
SELECT has_table('smsdist', 'site_systems', 'table site_systems exists');
SELECT has_table('smsdist', 'packages', 'table packages exists');
SELECT has_table('smsdist', 'programs', 'table programs exists');
SELECT has_table('smsdist', 'system_resources', 'table system_resources exists');
SELECT has_table('smsdist', 'users', 'table users exists');
SELECT has_table('smsdist', 'user_groups', 'table user_groups exists');
SELECT has_table('smsdist', 'user_group_members', 'table user_group_members exists');
SELECT has_table('smsdist', 'collections', 'table collections exists');
SELECT has_table('smsdist', 'collection_subcollections', 'table collection_subcollections exists');
SELECT has_table('smsdist', 'collection_rules', 'table collection_rules exists');
SELECT has_table('smsdist', 'collection_members', 'table collection_members exists');
SELECT has_table('smsdist', 'jobs', 'table jobs exists');
SELECT has_table('smsdist', 'job_transitions', 'table job_transitions exists');
SELECT has_table('smsdist', 'job_site_status', 'table job_site_status exists');
SELECT has_table('smsdist', 'job_target_status', 'table job_target_status exists');
SELECT has_table('smsdist', 'advertisements', 'table advertisements exists');
SELECT has_table('smsdist', 'advertisement_assignments', 'table advertisement_assignments exists');
SELECT has_table('smsdist', 'status_messages', 'table status_messages exists');
SELECT has_table('smsdist', 'package_builds', 'table package_builds exists');
SELECT has_table('smsdist', 'package_locations', 'table package_locations exists');
SELECT tables_are('smsdist', ARRAY[
    'sites', 'sender_addresses', 'site_systems', 'packages', 'programs', 'system_resources',
    'users', 'user_groups', 'user_group_members', 'collections', 'collection_subcollections',
    'collection_rules', 'collection_members', 'jobs', 'job_transitions', 'job_site_status',
    'job_target_status', 'advertisements', 'advertisement_assignments', 'status_messages',
    'package_builds', 'package_locations', 'package_transfers', 'package_deltas', 'package_icons',
    'collection_user_members', 'collection_group_members', 'collection_evaluation_queue',
    'system_evaluation_queue', 'pcm_queue', 'pcm_files', 'job_target_pushes', 'machine_policies',
    'maintenance_windows', 'advertisement_pushes', 'site_status_reports', 'site_logins', 'machine_logins',
    'machine_keys',
    'advertisement_target_status', 'job_control_pushes',
    'distribution_report_answers', 'machine_caches', 'machine_cache_packages', 'link_measurements',
    'content_validations', 'metric_counts'],
    'smsdist has exactly the documented tables');

SELECT has_view('smsdist', 'workers', 'view workers exists');
SELECT has_view('smsdist', 'job_overview', 'view job_overview exists');
SELECT has_view('smsdist', 'build_progress', 'view build_progress exists');
SELECT has_view('smsdist', 'job_progress', 'view job_progress exists');
SELECT views_are('smsdist', ARRAY['workers', 'job_overview', 'build_progress', 'job_progress',
    'collection_dependencies', 'advertisement_status', 'job_status', 'link_throughput', 'metrics'],
    'smsdist has exactly its documented views');
SELECT columns_are('smsdist', 'job_progress', ARRAY[
    'job_id', 'package_id', 'source_version', 'site_code', 'phase', 'state', 'bytes_done',
    'bytes_total', 'percent', 'bytes_per_second', 'delta_base', 'full_package_required',
    'started_at', 'finished_at', 'elapsed', 'attempts', 'detail', 'last_error',
    'bytes_total_estimated', 'eta', 'attempt_bytes', 'attempt_elapsed'],
    'job_progress has its documented columns');
SELECT columns_are('smsdist', 'workers', ARRAY[
    'component', 'title', 'pid', 'state', 'wake_requests', 'steps', 'started_at',
    'last_wake_at', 'last_step_at', 'next_step_at', 'last_error'],
    'workers has the columns of worker_status()');
SELECT columns_are('smsdist', 'job_overview', ARRAY[
    'job_id', 'job_type', 'package_id', 'package_name', 'program_name', 'state', 'state_reason',
    'priority', 'start_after', 'activated_at', 'finished_at', 'sites', 'sites_done', 'machines'],
    'job_overview has its documented columns');
SELECT columns_are('smsdist', 'jobs', ARRAY[
    'job_id', 'job_type', 'package_id', 'program_name', 'target_type', 'target_collection_id',
    'target_machines', 'target_sites', 'include_subsites', 'start_after', 'offer_after',
    'mandatory_at', 'expires_at', 'priority', 'state', 'state_reason', 'state_changed_by',
    'comment', 'created_at', 'created_by', 'activated_at', 'finished_at', 'source_version', 'source_site'],
    'jobs has its documented columns');
SELECT columns_are('smsdist', 'job_transitions', ARRAY[
    'transition_id', 'job_id', 'from_state', 'to_state', 'at', 'by_role', 'by_application', 'reason'],
    'job_transitions has its documented columns');

-------------------------------------------------------------------------------
-- Column types: IDs, names and paths use the checked domains
-------------------------------------------------------------------------------
SELECT col_type_is('smsdist', 'sites', 'site_code', 'smsdist', 'site_code', 'sites.site_code is a site_code');
SELECT col_type_is('smsdist', 'sites', 'parent_site_code', 'smsdist', 'site_code', 'sites.parent_site_code is a site_code');
SELECT col_type_is('smsdist', 'sites', 'name', 'smsdist', 'object_name', 'sites.name is an object_name');
SELECT col_type_is('smsdist', 'packages', 'package_id', 'smsdist', 'sms_id', 'packages.package_id is an sms_id');
SELECT col_type_is('smsdist', 'packages', 'source_directory', 'smsdist', 'server_path', 'packages.source_directory is a server_path');
SELECT col_type_is('smsdist', 'programs', 'program_name', 'smsdist', 'object_name', 'programs.program_name is an object_name');
SELECT col_type_is('smsdist', 'programs', 'command_line', 'smsdist', 'command_line', 'programs.command_line is a command_line');
SELECT col_type_is('smsdist', 'programs', 'platforms', 'smsdist', 'platform[]', 'programs.platforms is a platform[]');
SELECT col_type_is('smsdist', 'system_resources', 'sms_id', 'smsdist', 'sms_id', 'system_resources.sms_id is an sms_id');
SELECT col_type_is('smsdist', 'system_resources', 'name', 'smsdist', 'netbios_name', 'system_resources.name is a netbios_name');
SELECT col_type_is('smsdist', 'system_resources', 'domain', 'smsdist', 'netbios_name', 'system_resources.domain is a netbios_name');
SELECT col_type_is('smsdist', 'sender_addresses', 'conninfo', 'smsdist', 'conninfo', 'sender_addresses.conninfo is a conninfo');
SELECT col_type_is('smsdist', 'site_systems', 'root_directory', 'smsdist', 'server_path', 'site_systems.root_directory is a server_path');
SELECT col_type_is('smsdist', 'site_systems', 'role', 'smsdist', 'site_role', 'site_systems.role is a site_role');
SELECT col_type_is('smsdist', 'jobs', 'job_id', 'smsdist', 'sms_id', 'jobs.job_id is an sms_id');
SELECT col_type_is('smsdist', 'jobs', 'job_type', 'smsdist', 'job_type', 'jobs.job_type is a job_type');
SELECT col_type_is('smsdist', 'jobs', 'state', 'smsdist', 'job_state', 'jobs.state is a job_state');
SELECT col_type_is('smsdist', 'jobs', 'priority', 'smsdist', 'job_priority', 'jobs.priority is a job_priority');
SELECT col_type_is('smsdist', 'jobs', 'target_machines', 'smsdist', 'sms_id[]', 'jobs.target_machines is an sms_id[]');
SELECT col_type_is('smsdist', 'jobs', 'target_sites', 'smsdist', 'site_code[]', 'jobs.target_sites is a site_code[]');
SELECT col_type_is('smsdist', 'jobs', 'start_after', 'timestamp with time zone', 'jobs.start_after is a timestamptz');
SELECT col_type_is('smsdist', 'job_transitions', 'from_state', 'smsdist', 'job_state', 'job_transitions.from_state is a job_state');
SELECT col_type_is('smsdist', 'job_transitions', 'by_role', 'name', 'job_transitions.by_role is a name');
SELECT col_type_is('smsdist', 'collections', 'collection_id', 'smsdist', 'sms_id', 'collections.collection_id is an sms_id');
SELECT col_type_is('smsdist', 'advertisements', 'advert_id', 'smsdist', 'sms_id', 'advertisements.advert_id is an sms_id');
SELECT col_type_is('smsdist', 'advertisements', 'offer_time', 'timestamp without time zone',
                   'advertisements.offer_time is a timestamp without time zone (UTC or client wall clock)');
SELECT col_type_is('smsdist', 'sender_addresses', 'hourly_rate_pct', 'smallint[]', 'sender_addresses.hourly_rate_pct is a smallint[]');

-------------------------------------------------------------------------------
-- NOT NULL and nullable columns
-------------------------------------------------------------------------------
SELECT col_not_null('smsdist', 'sites', 'name', 'sites.name is NOT NULL');
SELECT col_is_null('smsdist', 'sites', 'parent_site_code', 'sites.parent_site_code is nullable (a central site has no parent)');
SELECT col_not_null('smsdist', 'packages', 'source_directory', 'packages.source_directory is NOT NULL');
SELECT col_not_null('smsdist', 'programs', 'command_line', 'programs.command_line is NOT NULL');
SELECT col_is_null('smsdist', 'programs', 'platforms', 'programs.platforms is nullable (NULL: any platform)');
SELECT col_not_null('smsdist', 'programs', 'run_with', 'programs.run_with is NOT NULL');
SELECT col_default_is('smsdist', 'programs', 'run_with', 'administrative_rights',
                      'programs.run_with defaults to administrative_rights (the agent''s own account)');
SELECT col_not_null('smsdist', 'system_resources', 'platform', 'system_resources.platform is NOT NULL');
SELECT col_not_null('smsdist', 'sender_addresses', 'conninfo', 'sender_addresses.conninfo is NOT NULL');
SELECT col_not_null('smsdist', 'jobs', 'job_type', 'jobs.job_type is NOT NULL');
SELECT col_not_null('smsdist', 'jobs', 'package_id', 'jobs.package_id is NOT NULL');
SELECT col_not_null('smsdist', 'jobs', 'target_type', 'jobs.target_type is NOT NULL');
SELECT col_not_null('smsdist', 'jobs', 'state', 'jobs.state is NOT NULL');
SELECT col_not_null('smsdist', 'jobs', 'state_changed_by', 'jobs.state_changed_by is NOT NULL');
SELECT col_not_null('smsdist', 'jobs', 'start_after', 'jobs.start_after is NOT NULL');
SELECT col_not_null('smsdist', 'jobs', 'created_by', 'jobs.created_by is NOT NULL');
SELECT col_is_null('smsdist', 'jobs', 'program_name', 'jobs.program_name is nullable (only run-command jobs name one)');
SELECT col_is_null('smsdist', 'jobs', 'activated_at', 'jobs.activated_at is nullable');
SELECT col_is_null('smsdist', 'jobs', 'finished_at', 'jobs.finished_at is nullable');
SELECT col_not_null('smsdist', 'job_transitions', 'to_state', 'job_transitions.to_state is NOT NULL');
SELECT col_not_null('smsdist', 'job_transitions', 'by_role', 'job_transitions.by_role is NOT NULL');
SELECT col_is_null('smsdist', 'job_transitions', 'from_state', 'job_transitions.from_state is nullable (NULL on creation)');
SELECT col_not_null('smsdist', 'status_messages', 'message', 'status_messages.message is NOT NULL');

-------------------------------------------------------------------------------
-- Defaults
-------------------------------------------------------------------------------
SELECT col_default_is('smsdist', 'jobs', 'state', 'pending'::text, 'jobs.state defaults to pending');
SELECT col_default_is('smsdist', 'jobs', 'priority', 'medium'::text, 'jobs.priority defaults to medium');
SELECT col_default_is('smsdist', 'jobs', 'include_subsites', 'false'::text, 'jobs.include_subsites defaults to false');
SELECT col_default_is('smsdist', 'packages', 'source_version', '1'::text, 'packages.source_version defaults to 1');
SELECT col_default_is('smsdist', 'sender_addresses', 'priority', '1'::text, 'sender_addresses.priority defaults to 1');
SELECT col_default_is('smsdist', 'sender_addresses', 'throttle', 'unlimited'::text, 'sender_addresses.throttle defaults to unlimited');
SELECT col_default_is('smsdist', 'advertisements', 'include_subcollections', 'true'::text,
                      'advertisements.include_subcollections defaults to true');
SELECT col_default_is('smsdist', 'advertisements', 'rerun_behaviour', 'rerun_if_failed'::text,
                      'advertisements.rerun_behaviour defaults to rerun_if_failed');
SELECT col_not_null('smsdist', 'advertisements', 'rerun_behaviour', 'advertisements.rerun_behaviour is NOT NULL');
SELECT is((SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
            WHERE c.conrelid = 'smsdist.advertisements'::regclass AND c.conname = 'advertisements_rerun_behaviour_check'),
          'CHECK ((rerun_behaviour = ANY (ARRAY[''never_rerun''::text, ''always_rerun''::text, ''rerun_if_failed''::text, ''rerun_if_succeeded''::text])))',
          'advertisements.rerun_behaviour is one of the four rerun behaviours');
SELECT col_type_is('smsdist', 'status_messages', 'exit_code', 'integer', 'status_messages.exit_code is an integer');
SELECT col_has_default('smsdist', 'jobs', 'job_id', 'jobs.job_id has a default (a new SMS ID)');
SELECT col_has_default('smsdist', 'packages', 'package_id', 'packages.package_id has a default (a new SMS ID)');
SELECT col_hasnt_default('smsdist', 'system_resources', 'sms_id', 'system_resources.sms_id has no default (inventory gives it)');

-------------------------------------------------------------------------------
-- Primary, unique and foreign keys
-------------------------------------------------------------------------------
SELECT col_is_pk('smsdist', 'sites', 'site_code', 'sites is keyed by site_code');
SELECT col_is_pk('smsdist', 'jobs', 'job_id', 'jobs is keyed by job_id');
SELECT col_is_pk('smsdist', 'programs', ARRAY['package_id', 'program_name'], 'programs is keyed by (package_id, program_name)');
SELECT col_is_pk('smsdist', 'collection_members', ARRAY['collection_id', 'sms_id'], 'collection_members is keyed by (collection_id, sms_id)');
SELECT col_is_pk('smsdist', 'job_site_status', ARRAY['job_id', 'site_code', 'phase'], 'job_site_status is keyed by (job_id, site_code, phase)');
SELECT col_is_pk('smsdist', 'job_target_status', ARRAY['job_id', 'sms_id'], 'job_target_status is keyed by (job_id, sms_id)');
SELECT col_is_pk('smsdist', 'users', ARRAY['domain', 'user_name'], 'users is keyed by (domain, user_name)');
SELECT col_is_unique('smsdist', 'sender_addresses', ARRAY['target_site_code', 'priority'],
                     'one sender address per (target site, priority)');
SELECT col_is_unique('smsdist', 'system_resources', ARRAY['domain', 'name'], 'one system per (domain, name)');
SELECT col_is_unique('smsdist', 'site_systems', ARRAY['site_code', 'role', 'name'], 'one site system per (site, role, name)');
SELECT fk_ok('smsdist', 'jobs', ARRAY['package_id', 'program_name'], 'smsdist', 'programs', ARRAY['package_id', 'program_name'],
             'jobs(package_id, program_name) references programs');
SELECT fk_ok('smsdist', 'sites', 'parent_site_code', 'smsdist', 'sites', 'site_code', 'sites.parent_site_code references sites');
SELECT fk_ok('smsdist', 'job_transitions', 'job_id', 'smsdist', 'jobs', 'job_id', 'job_transitions.job_id references jobs');
SELECT hasnt_fk('smsdist', 'collection_members',
             'collection_members has no per-row foreign keys (statement triggers cascade deletions)');
SELECT has_trigger('smsdist', 'system_resources', 'collection_members_cascade',
             'deleting systems removes their memberships');
SELECT has_trigger('smsdist', 'collections', 'collection_members_cascade',
             'deleting collections removes their memberships');
SELECT results_eq(
    $$SELECT conrelid::regclass::text, confrelid::regclass::text, confdeltype::text
        FROM pg_constraint WHERE contype = 'f' AND connamespace = 'smsdist'::regnamespace
       ORDER BY 1, 2, conname$$,
    $$VALUES ('smsdist.advertisement_assignments', 'smsdist.advertisements', 'c'),
             ('smsdist.advertisement_target_status', 'smsdist.advertisements', 'c'),
             ('smsdist.advertisement_target_status', 'smsdist.system_resources', 'c'),
             ('smsdist.advertisements', 'smsdist.collections', 'r'),
             ('smsdist.advertisements', 'smsdist.programs', 'r'),
             ('smsdist.collection_group_members', 'smsdist.collections', 'c'),
             ('smsdist.collection_group_members', 'smsdist.user_groups', 'c'),
             ('smsdist.collection_rules', 'smsdist.collections', 'c'),
             ('smsdist.collection_rules', 'smsdist.collections', 'c'),
             ('smsdist.collection_rules', 'smsdist.system_resources', 'c'),
             ('smsdist.collection_rules', 'smsdist.user_groups', 'c'),
             ('smsdist.collection_rules', 'smsdist.users', 'c'),
             ('smsdist.collection_subcollections', 'smsdist.collections', 'c'),
             ('smsdist.collection_subcollections', 'smsdist.collections', 'c'),
             ('smsdist.collection_user_members', 'smsdist.collections', 'c'),
             ('smsdist.collection_user_members', 'smsdist.users', 'c'),
             ('smsdist.collections', 'smsdist.collections', 'r'),
             ('smsdist.content_validations', 'smsdist.package_locations', 'c'),
             ('smsdist.distribution_report_answers', 'smsdist.jobs', 'c'),
             ('smsdist.job_control_pushes', 'smsdist.jobs', 'c'),
             ('smsdist.job_site_status', 'smsdist.jobs', 'c'),
             ('smsdist.job_site_status', 'smsdist.sites', 'c'),
             ('smsdist.job_target_pushes', 'smsdist.jobs', 'c'),
             ('smsdist.job_target_status', 'smsdist.jobs', 'c'),
             ('smsdist.job_target_status', 'smsdist.system_resources', 'c'),
             ('smsdist.job_transitions', 'smsdist.jobs', 'c'),
             ('smsdist.jobs', 'smsdist.collections', 'r'),
             ('smsdist.jobs', 'smsdist.packages', 'r'),
             ('smsdist.jobs', 'smsdist.programs', 'r'),
             ('smsdist.link_measurements', 'smsdist.sender_addresses', 'c'),
             ('smsdist.machine_cache_packages', 'smsdist.machine_caches', 'c'),
             ('smsdist.machine_caches', 'smsdist.system_resources', 'c'),
             ('smsdist.machine_keys', 'smsdist.system_resources', 'c'),
             ('smsdist.machine_logins', 'smsdist.system_resources', 'c'),
             ('smsdist.maintenance_windows', 'smsdist.collections', 'c'),
             ('smsdist.package_builds', 'smsdist.packages', 'c'),
             ('smsdist.package_deltas', 'smsdist.package_builds', 'c'),
             ('smsdist.package_icons', 'smsdist.packages', 'c'),
             ('smsdist.package_locations', 'smsdist.packages', 'c'),
             ('smsdist.package_locations', 'smsdist.sites', 'c'),
             ('smsdist.package_transfers', 'smsdist.packages', 'c'),
             ('smsdist.programs', 'smsdist.packages', 'c'),
             ('smsdist.sender_addresses', 'smsdist.sites', 'c'),
             ('smsdist.site_logins', 'smsdist.sites', 'c'),
             ('smsdist.site_systems', 'smsdist.sites', 'c'),
             ('smsdist.sites', 'smsdist.sites', 'r'),
             ('smsdist.system_resources', 'smsdist.sites', 'r'),
             ('smsdist.user_group_members', 'smsdist.user_groups', 'c'),
             ('smsdist.user_group_members', 'smsdist.users', 'c')$$,
    'foreign keys: ON DELETE RESTRICT for what jobs, sites and adverts use, CASCADE for dependent rows');

-------------------------------------------------------------------------------
-- Domains: text checked by the C validators
-------------------------------------------------------------------------------
SELECT domain_type_is('smsdist', 'site_code', 'pg_catalog', 'text', 'domain site_code is over text');
SELECT domain_type_is('smsdist', 'sms_id', 'pg_catalog', 'text', 'domain sms_id is over text');
SELECT domain_type_is('smsdist', 'object_name', 'pg_catalog', 'text', 'domain object_name is over text');
SELECT domain_type_is('smsdist', 'netbios_name', 'pg_catalog', 'text', 'domain netbios_name is over text');
SELECT domain_type_is('smsdist', 'server_path', 'pg_catalog', 'text', 'domain server_path is over text');
SELECT domain_type_is('smsdist', 'command_line', 'pg_catalog', 'text', 'domain command_line is over text');
SELECT domain_type_is('smsdist', 'conninfo', 'pg_catalog', 'text', 'domain conninfo is over text');
SELECT results_eq(
    $$SELECT t.typname::text COLLATE "default", c.conname::text COLLATE "default", pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
       WHERE t.typnamespace = 'smsdist'::regnamespace ORDER BY 1$$,
    $$VALUES ('command_line', 'command_line_format', 'CHECK (smsdist.check_command_line(VALUE))'),
             ('conninfo', 'conninfo_format', 'CHECK (smsdist.check_conninfo(VALUE))'),
             ('netbios_name', 'netbios_name_format', 'CHECK (smsdist.check_netbios_name(VALUE))'),
             ('object_name', 'object_name_format', 'CHECK (smsdist.check_object_name(VALUE))'),
             ('server_path', 'server_path_format', 'CHECK (smsdist.check_server_path(VALUE))'),
             ('site_code', 'site_code_format', 'CHECK (smsdist.check_site_code(VALUE))'),
             ('sms_id', 'sms_id_format', 'CHECK (smsdist.check_sms_id(VALUE))')$$,
    'each domain has exactly one CHECK, calling its own validator');

-------------------------------------------------------------------------------
-- Enums (labels in order)
-------------------------------------------------------------------------------
SELECT enum_has_labels('smsdist', 'job_state',
    ARRAY['pending', 'active', 'completed', 'failed', 'cancelled', 'expired'], 'job_state labels');
SELECT enum_has_labels('smsdist', 'job_type',
    ARRAY['run_command', 'share_package', 'remove_package'], 'job_type labels');
SELECT enum_has_labels('smsdist', 'platform',
    ARRAY['MSDOS', 'WIN31', 'WIN95', 'WINNT_X86', 'WINNT_ALPHA', 'WINNT_MIPS', 'OS2', 'MAC',
          'WIN_X64', 'WIN_ARM64', 'LINUX_X86_64', 'LINUX_AARCH64'], 'platform labels');
SELECT enum_has_labels('smsdist', 'site_role',
    ARRAY['distribution_point', 'logon_server', 'client_access_point', 'management_point',
          'site_server_drive'], 'site_role labels');
SELECT enum_has_labels('smsdist', 'weekday', ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], 'weekday labels');
SELECT enum_has_labels('smsdist', 'throttle_mode', ARRAY['unlimited', 'pulse', 'rate_limited'], 'throttle_mode labels');
SELECT enum_has_labels('smsdist', 'target_type', ARRAY['collection', 'machines', 'sites'], 'target_type labels');
SELECT enum_has_labels('smsdist', 'job_priority', ARRAY['high', 'medium', 'low'],
                       'job_priority labels (high sorts first, as the Scheduler orders by priority)');
SELECT enum_has_labels('smsdist', 'job_phase', ARRAY['send', 'distribute', 'run'], 'job_phase labels');
SELECT enum_has_labels('smsdist', 'phase_state',
    ARRAY['waiting', 'running', 'retrying', 'done', 'failed', 'cancelled'], 'phase_state labels');
SELECT enum_has_labels('smsdist', 'target_state',
    ARRAY['waiting', 'offered', 'downloaded', 'running', 'succeeded', 'failed', 'not_applicable', 'cancelled', 'expired'],
    'target_state labels');
SELECT enum_has_labels('smsdist', 'rule_type', ARRAY['direct', 'query', 'include', 'exclude'], 'rule_type labels');
SELECT enum_has_labels('smsdist', 'severity', ARRAY['informational', 'warning', 'error'], 'severity labels');

-------------------------------------------------------------------------------
-- ID sequences: five hex digits, never wrapping round
-------------------------------------------------------------------------------
SELECT sequences_are('smsdist', ARRAY[
    'package_id_seq', 'job_id_seq', 'collection_id_seq', 'advert_id_seq',
    'sender_addresses_address_id_seq', 'site_systems_site_system_id_seq',
    'collection_rules_rule_id_seq', 'job_transitions_transition_id_seq',
    'advertisement_assignments_assignment_id_seq', 'status_messages_status_id_seq',
    'maintenance_windows_window_id_seq'],
    'smsdist has the four ID sequences and the identity sequences');
SELECT results_eq(
    $$SELECT c.relname::text COLLATE "default", s.seqmin, s.seqmax, s.seqcycle
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
       WHERE c.relname IN ('package_id_seq', 'job_id_seq', 'collection_id_seq', 'advert_id_seq')
         AND c.relnamespace = 'smsdist'::regnamespace ORDER BY 1$$,
    $$VALUES ('advert_id_seq', 1::bigint, 1048575::bigint, false),
             ('collection_id_seq', 1, 1048575, false),
             ('job_id_seq', 1, 1048575, false),
             ('package_id_seq', 1, 1048575, false)$$,
    'ID sequences run from 1 to FFFFF (5 hex digits) and do not cycle');

-------------------------------------------------------------------------------
-- Functions
-------------------------------------------------------------------------------
SELECT has_function('smsdist', 'check_site_code', ARRAY['text'], 'check_site_code(text) exists');
SELECT has_function('smsdist', 'check_sms_id', ARRAY['text'], 'check_sms_id(text) exists');
SELECT has_function('smsdist', 'check_object_name', ARRAY['text'], 'check_object_name(text) exists');
SELECT has_function('smsdist', 'check_netbios_name', ARRAY['text'], 'check_netbios_name(text) exists');
SELECT has_function('smsdist', 'check_server_path', ARRAY['text'], 'check_server_path(text) exists');
SELECT has_function('smsdist', 'check_command_line', ARRAY['text'], 'check_command_line(text) exists');
SELECT has_function('smsdist', 'check_conninfo', ARRAY['text'], 'check_conninfo(text) exists');
SELECT has_function('smsdist', 'check_package_path', ARRAY['text'], 'check_package_path(text) exists');
SELECT results_eq(
    $$SELECT p.proname::text COLLATE "default", p.prorettype::regtype::text, p.provolatile::text, p.proisstrict,
             p.proparallel::text, l.lanname::text COLLATE "default"
        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
       WHERE p.pronamespace = 'smsdist'::regnamespace AND p.proname LIKE 'check\_%' ORDER BY 1$$,
    $$VALUES ('check_command_line', 'boolean', 'i', true, 's', 'c'),
             ('check_conninfo', 'boolean', 'i', true, 's', 'c'),
             ('check_netbios_name', 'boolean', 'i', true, 's', 'c'),
             ('check_object_name', 'boolean', 'i', true, 's', 'c'),
             ('check_package_path', 'boolean', 'i', true, 's', 'c'),
             ('check_server_path', 'boolean', 'i', true, 's', 'c'),
             ('check_site_code', 'boolean', 'i', true, 's', 'c'),
             ('check_sms_id', 'boolean', 'i', true, 's', 'c')$$,
    'validators are C functions: boolean, IMMUTABLE, STRICT, PARALLEL SAFE');
SELECT has_function('smsdist', 'worker_status', ARRAY[]::name[], 'worker_status() exists');
SELECT function_returns('smsdist', 'worker_status', ARRAY[]::name[], 'setof record', 'worker_status() returns a set of records');
SELECT has_function('smsdist', 'wake', ARRAY['text'], 'wake(text) exists');
SELECT function_returns('smsdist', 'wake', ARRAY['text'], 'void', 'wake(text) returns void');
SELECT has_function('smsdist', 'new_sms_id', ARRAY['regclass'], 'new_sms_id(regclass) exists');
SELECT function_returns('smsdist', 'new_sms_id', ARRAY['regclass'], 'smsdist.sms_id', 'new_sms_id(regclass) returns an sms_id');
SELECT has_function('smsdist', 'library_version', ARRAY[]::name[], 'library_version() exists');
SELECT has_function('smsdist', 'notify_change', ARRAY[]::name[], 'notify_change() exists');
SELECT function_returns('smsdist', 'notify_change', ARRAY[]::name[], 'trigger', 'notify_change() is a trigger function');
SELECT function_lang_is('smsdist', 'notify_change', ARRAY[]::name[], 'c', 'notify_change() is written in C');
SELECT has_function('smsdist', 'job_target_machines', ARRAY['smsdist.sms_id'], 'job_target_machines(sms_id) exists');
SELECT has_function('smsdist', 'job_target_sites', ARRAY['smsdist.sms_id'], 'job_target_sites(sms_id) exists');
SELECT has_function('smsdist', 'describe_targets', ARRAY['smsdist.sms_id'], 'describe_targets(sms_id) exists');
SELECT volatility_is('smsdist', 'job_target_sites', ARRAY['smsdist.sms_id'], 'stable', 'job_target_sites is STABLE');
SELECT volatility_is('smsdist', 'new_sms_id', ARRAY['regclass'], 'volatile', 'new_sms_id is VOLATILE (it calls nextval)');
SELECT is_definer('smsdist', 'jobs_log_transition', ARRAY[]::name[],
                  'jobs_log_transition is SECURITY DEFINER (operators cannot write the log directly)');
SELECT is_definer('smsdist', 'jobs_check_targets', ARRAY[]::name[],
                  'jobs_check_targets is SECURITY DEFINER');
SELECT isnt_definer('smsdist', 'jobs_check_transition', ARRAY[]::name[], 'jobs_check_transition is not SECURITY DEFINER (current_user is the changer)');
SELECT isnt_definer('smsdist', 'new_sms_id', ARRAY['regclass'], 'new_sms_id is not SECURITY DEFINER');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.prosecdef),
          ARRAY['advertisement_targets_follow', 'answer_machine_policy', 'calling_site', 'client_cache_inventory',
                'client_status', 'collection_members_cascade', 'content_mismatch_reported',
                'count_bytes_sent', 'count_status_messages', 'distribution_report', 'end_job_targets',
                'evaluate_collections', 'explain', 'finish_jobs_of_messages', 'issue_machine_key', 'jobs_check_targets', 'jobs_control_change',
                'jobs_log_transition',
                'location_report', 'machine_key', 'move_target', 'preview', 'progress_report', 'queue_all_pcm', 'queue_collection_evaluation', 'queue_pcm',
                'queue_pcm_for_program', 'queue_pcm_for_target', 'queue_system_evaluation',
                'receive_advertisement', 'receive_begin', 'receive_cache_report', 'receive_chunk', 'receive_end', 'receive_job_state',
                'receive_job_targets', 'receive_status_report', 'receive_target_report', 'receive_total',
                'remove_advertisement', 'require_machine_login', 'rotate_machine_key', 'validate_content'],
          'only the documented functions are SECURITY DEFINER (job and queue triggers, evaluate_collections, what other sites and agents call, and the checks of who is calling)');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'smsdist'::regnamespace AND p.prosecdef
              AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
          NULL::text[],
          'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp');
SELECT functions_are('smsdist', ARRAY[
    'check_site_code', 'check_sms_id', 'check_object_name', 'check_netbios_name',
    'check_server_path', 'check_command_line', 'check_conninfo', 'check_package_path', 'new_sms_id',
    'sites_refuse_cycle', 'jobs_check_transition', 'jobs_log_transition', 'jobs_new_is_pending',
    'jobs_check_targets', 'job_target_machines', 'job_target_sites', 'describe_targets',
    'worker_status', 'wake', 'library_version', 'notify_change', 'touch_updated_at', 'set_manifest_sha256',
    'build_lock_key', 'build_tar', 'extract_package', 'publish_tree', 'unpublish',
    'route_hop', 'distribution_report', 'location_report', 'receive_begin', 'receive_chunk',
    'receive_end', 'compile_query_rule', 'collections_refuse_cycle', 'queue_collection_evaluation',
    'queue_system_evaluation', 'evaluate_collections', 'queue_pcm', 'run_job_details',
    'record_machines', 'record_run_job', 'receive_job_targets', 'collection_members_cascade',
    'queue_all_pcm', 'machine_policy', 'answer_machine_policy', 'require_default_collation', 'compute_machine_policy', 'compute_machine_policies', 'weekdays_distinct', 'advertisement_collections',
    'advertisement_details', 'advertisement_pushes_due', 'receive_advertisement', 'remove_advertisement',
    'remove_unused_parent_collections', 'client_status', 'status_report_for_parent', 'receive_status_report',
    'queue_pcm_for_program', 'receive_total',
    'calling_site', 'require_sent_by', 'site_logins_check_role', 'record_job_targets',
    'record_advertisement', 'drop_parent_advertisement', 'record_status_report', 'require_machine_login',
    'require_allowed_source', 'packages_check_source', 'require_extension_table', 'site_public_key',
    'strong_random_bytes', 'issue_machine_key', 'machine_key', 'rotate_machine_key', 'status_problem',
    'target_state_is_final', 'message_target_state', 'target_changed', 'job_target_counts', 'finish_job_if_done',
    'finish_done_jobs', 'move_target', 'end_job_targets', 'sync_advertisement_targets',
    'advertisement_targets_follow', 'target_report_for_parent', 'targets_reported', 'receive_target_report',
    'expire_advertisement_targets', 'queue_pcm_for_target', 'finish_jobs_of_messages',
    'jobs_control_change', 'receive_job_state',
    'live_run_jobs', 'lookup_name_key', 'policy_advertisements', 'member_advertisements',
    'store_machine_policies', 'transfer_eta', 'progress_report', 'package_removed_at',
    -- explain() and its parts
    'explain', 'explain_job', 'explain_job_gate', 'explain_job_site', 'explain_job_target',
    'explain_advertisement', 'explain_advertisement_site', 'explain_advertisement_target',
    'explain_time', 'explain_duration', 'server_time_zone', 'sending_resumes_at', 'maintenance_window_at',
    'machine_utc_offset', 'machine_local_time', 'machine_instant', 'agent_last_heard',
    'platform_mismatch', 'cache_full_reason', 'cache_locks', 'cache_full', 'running_reason', 'advertisement_mandatory_times',
    'job_site_status_retry_clock',
    'cache_inventory_problem', 'record_cache_inventory', 'client_cache_inventory', 'transfer_seconds',
    'manifest_delta_bytes', 'preview', 'cache_report_for_parent', 'caches_reported', 'receive_cache_report',
    'source_tree_size', 'validate_content', 'content_mismatch_reported',
    -- importing package definition files
    'parse_package_definition', 'decode_package_definition', 'import_program_run_with',
    'import_program_definition', 'import_package_definition',
    -- status retention and the pg_cron check
    'prune_status_messages', 'pg_cron_check',
    -- the metrics' counts
    'compact_metric_counts', 'count_status_messages', 'count_bytes_sent'],
    'smsdist has exactly the documented functions');
SELECT isnt_definer('smsdist', 'import_package_definition', ARRAY['text', 'text'],
                    'import_package_definition is not SECURITY DEFINER (the caller''s rights apply)');
SELECT has_function('smsdist', 'import_package_definition', ARRAY['bytea', 'text'],
                    'import_package_definition(bytea, text) exists (it decodes the file)');
SELECT has_trigger('smsdist', 'job_site_status', 'retry_clock', 'job_site_status has trigger retry_clock');
SELECT columns_are('smsdist', 'metrics', ARRAY['metric', 'labels', 'value', 'type', 'help'],
                   'metrics has one row per Prometheus series: metric, labels, value, type, help');
SELECT has_trigger('smsdist', 'status_messages', 'count_status_messages',
                   'status_messages has trigger count_status_messages (the metrics'' message counters)');
SELECT has_trigger('smsdist', 'job_site_status', 'count_bytes_sent',
                   'job_site_status has trigger count_bytes_sent (the metrics'' bytes sent per child site)');
SELECT has_trigger('smsdist', 'status_messages', 'content_mismatch_reported',
                   'status_messages has trigger content_mismatch_reported (a 10004 queues a validation)');
SELECT is_definer('smsdist', 'validate_content', ARRAY['text'],
                  'validate_content is SECURITY DEFINER (admins queue validations without writing the table)');
SELECT function_returns('smsdist', 'validate_content', ARRAY['text'], 'setof record',
                        'validate_content(text) returns what it queued');
SELECT columns_are('smsdist', 'explanation',
    ARRAY['sms_id', 'site_code', 'state', 'reason', 'waiting_on', 'since', 'next_attempt_at'],
    'explain() returns rows of type explanation');
SELECT has_function('smsdist', 'machine_policy', ARRAY['text', 'text', 'text[]'],
                    'machine_policy(machine, user, groups) exists (the one-argument call uses its defaults)');
SELECT hasnt_function('smsdist', 'machine_policy', ARRAY['text'], 'machine_policy(text) is gone (one-argument calls stay unambiguous)');
SELECT volatility_is('smsdist', 'lookup_name_key', ARRAY['text'], 'immutable', 'lookup_name_key is IMMUTABLE (indexed)');
SELECT is((SELECT array_agg(indexname::text || ':' || (indexdef LIKE '%lookup_name_key(%') ORDER BY indexname)
             FROM pg_indexes WHERE schemaname = 'smsdist' AND indexname LIKE 'collection_%_members_lookup'),
          ARRAY['collection_group_members_lookup:true', 'collection_user_members_lookup:true'],
          'users and groups are looked up by their lookup-file name (lookup_name_key)');

-------------------------------------------------------------------------------
-- Triggers
-------------------------------------------------------------------------------
SELECT has_trigger('smsdist', 'jobs', 'notify_scheduler', 'jobs has trigger notify_scheduler');
SELECT has_trigger('smsdist', 'packages', 'notify_scheduler', 'packages has trigger notify_scheduler');
SELECT has_trigger('smsdist', 'sender_addresses', 'notify_sender', 'sender_addresses has trigger notify_sender');
SELECT has_trigger('smsdist', 'job_site_status', 'notify_sender', 'job_site_status has trigger notify_sender');
SELECT has_trigger('smsdist', 'site_systems', 'notify_despooler', 'site_systems has trigger notify_despooler');
SELECT has_trigger('smsdist', 'programs', 'queue_pcm_for_program',
                   'programs has trigger queue_pcm_for_program (a changed program rewrites the PCM files of its active jobs)');
SELECT has_trigger('smsdist', 'advertisements', 'notify_offer_manager', 'advertisements has trigger notify_offer_manager');
SELECT has_trigger('smsdist', 'advertisement_assignments', 'notify_offer_manager', 'advertisement_assignments has trigger notify_offer_manager');
SELECT has_trigger('smsdist', 'collections', 'notify_collection_evaluator', 'collections has trigger notify_collection_evaluator');
SELECT has_trigger('smsdist', 'collection_rules', 'notify_collection_evaluator', 'collection_rules has trigger notify_collection_evaluator');
SELECT has_trigger('smsdist', 'collection_subcollections', 'notify_collection_evaluator', 'collection_subcollections has trigger notify_collection_evaluator');
SELECT has_trigger('smsdist', 'system_resources', 'notify_collection_evaluator', 'system_resources has trigger notify_collection_evaluator');
SELECT has_trigger('smsdist', 'users', 'notify_collection_evaluator', 'users has trigger notify_collection_evaluator');
SELECT has_trigger('smsdist', 'user_groups', 'notify_collection_evaluator', 'user_groups has trigger notify_collection_evaluator');
SELECT has_trigger('smsdist', 'user_group_members', 'notify_collection_evaluator', 'user_group_members has trigger notify_collection_evaluator');
SELECT has_trigger('smsdist', 'status_messages', 'notify_status_manager', 'status_messages has trigger notify_status_manager');
SELECT has_trigger('smsdist', 'jobs', 'jobs_check_transition', 'jobs has trigger jobs_check_transition');
SELECT has_trigger('smsdist', 'jobs', 'jobs_log_transition', 'jobs has trigger jobs_log_transition');
SELECT has_trigger('smsdist', 'jobs', 'jobs_new_is_pending', 'jobs has trigger jobs_new_is_pending');
SELECT has_trigger('smsdist', 'jobs', 'jobs_check_targets', 'jobs has trigger jobs_check_targets');
SELECT has_trigger('smsdist', 'sites', 'sites_refuse_cycle', 'sites has trigger sites_refuse_cycle');
SELECT triggers_are('smsdist', 'jobs', ARRAY[
    'jobs_check_targets', 'jobs_check_transition', 'jobs_control_change', 'jobs_log_transition',
    'jobs_new_is_pending', 'notify_scheduler', 'queue_pcm', 'end_job_targets'], 'jobs has exactly its eight triggers');
SELECT trigger_is('smsdist', 'jobs', 'jobs_check_transition', 'smsdist', 'jobs_check_transition',
                  'trigger jobs_check_transition calls jobs_check_transition()');
SELECT trigger_is('smsdist', 'jobs', 'jobs_log_transition', 'smsdist', 'jobs_log_transition',
                  'trigger jobs_log_transition calls jobs_log_transition()');
SELECT trigger_is('smsdist', 'jobs', 'notify_scheduler', 'smsdist', 'notify_change',
                  'trigger notify_scheduler on jobs calls notify_change()');
SELECT results_eq(
    $$SELECT tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger
       WHERE tgrelid = 'smsdist.jobs'::regclass AND tgname LIKE 'jobs\_%' ORDER BY tgname$$,
    $$VALUES
      ('smsdist.jobs', 'CREATE TRIGGER jobs_check_targets BEFORE INSERT OR UPDATE OF target_machines, target_sites ON smsdist.jobs FOR EACH ROW EXECUTE FUNCTION smsdist.jobs_check_targets()'),
      ('smsdist.jobs', 'CREATE TRIGGER jobs_check_transition BEFORE UPDATE ON smsdist.jobs FOR EACH ROW EXECUTE FUNCTION smsdist.jobs_check_transition()'),
      ('smsdist.jobs', 'CREATE TRIGGER jobs_control_change AFTER UPDATE OF state ON smsdist.jobs FOR EACH ROW EXECUTE FUNCTION smsdist.jobs_control_change()'),
      ('smsdist.jobs', 'CREATE TRIGGER jobs_log_transition AFTER INSERT OR UPDATE OF state ON smsdist.jobs FOR EACH ROW EXECUTE FUNCTION smsdist.jobs_log_transition()'),
      ('smsdist.jobs', 'CREATE TRIGGER jobs_new_is_pending BEFORE INSERT ON smsdist.jobs FOR EACH ROW EXECUTE FUNCTION smsdist.jobs_new_is_pending()')$$,
    'the job state-machine triggers fire on the right events, before or after');
SELECT results_eq(
    $$SELECT tgrelid::regclass::text, tgname::text COLLATE "default",
             CASE WHEN tgtype & 1 = 1 THEN 'row' ELSE 'statement' END,
             concat_ws(' ', CASE WHEN tgtype & 4 = 4 THEN 'insert' END,
                            CASE WHEN tgtype & 16 = 16 THEN 'update' END,
                            CASE WHEN tgtype & 8 = 8 THEN 'delete' END),
             array_to_string((string_to_array(rtrim(encode(tgargs, 'escape'), '\000'), '\000')), ' | ')
        FROM pg_trigger
       WHERE tgfoid = 'smsdist.notify_change'::regproc AND NOT tgisinternal
       ORDER BY 1, 2$$,
    $$VALUES
      ('smsdist.advertisement_assignments', 'notify_offer_manager', 'row', 'insert update delete', 'offer_manager | advert_id'),
      ('smsdist.advertisement_assignments', 'notify_sender', 'statement', 'insert update delete', 'sender'),
      ('smsdist.advertisement_target_status', 'notify_status_manager', 'row', 'update', 'status_manager | advert_id'),
      ('smsdist.advertisements', 'notify_offer_manager', 'row', 'insert update delete', 'offer_manager | advert_id'),
      ('smsdist.advertisements', 'notify_sender', 'statement', 'insert update delete', 'sender'),
      ('smsdist.collection_rules', 'notify_collection_evaluator', 'row', 'insert update delete', 'collection_evaluator | collection_id'),
      ('smsdist.collection_subcollections', 'notify_collection_evaluator', 'row', 'insert update delete', 'collection_evaluator | parent_collection_id'),
      ('smsdist.collection_subcollections', 'notify_offer_manager', 'statement', 'insert update delete', 'offer_manager'),
      ('smsdist.collection_subcollections', 'notify_sender', 'statement', 'insert update delete', 'sender'),
      ('smsdist.collections', 'notify_collection_evaluator', 'row', 'insert update delete', 'collection_evaluator | collection_id'),
      ('smsdist.collections', 'notify_offer_manager', 'statement', 'update', 'offer_manager'),
      ('smsdist.collections', 'notify_sender', 'statement', 'update', 'sender'),
      ('smsdist.content_validations', 'notify_despooler', 'row', 'insert update', 'despooler | package_id'),
      ('smsdist.job_control_pushes', 'notify_sender', 'statement', 'insert update', 'sender'),
      ('smsdist.job_site_status', 'notify_despooler', 'row', 'insert update', 'despooler | job_id | site_code | phase'),
      ('smsdist.job_site_status', 'notify_sender', 'row', 'insert update', 'sender | job_id | site_code | phase'),
      ('smsdist.job_target_status', 'notify_sender', 'statement', 'insert delete', 'sender'),
      ('smsdist.job_target_status', 'notify_sender_not_applicable', 'row', 'update', 'sender | job_id'),
      ('smsdist.job_target_status', 'notify_status_manager', 'row', 'update', 'status_manager | job_id'),
      ('smsdist.jobs', 'notify_scheduler', 'row', 'insert update', 'scheduler | job_id'),
      ('smsdist.machine_caches', 'notify_status_manager', 'statement', 'insert update', 'status_manager'),
      ('smsdist.maintenance_windows', 'notify_offer_manager', 'statement', 'insert update delete', 'offer_manager,sender'),
      ('smsdist.package_builds', 'notify_sender', 'row', 'insert update', 'sender,despooler | package_id | source_version'),
      ('smsdist.package_locations', 'notify_offer_manager', 'statement', 'insert update delete', 'offer_manager'),
      ('smsdist.packages', 'notify_offer_manager', 'statement', 'update', 'offer_manager'),
      ('smsdist.packages', 'notify_scheduler', 'row', 'update', 'scheduler | package_id'),
      ('smsdist.pcm_queue', 'notify_despooler', 'statement', 'insert', 'despooler'),
      ('smsdist.programs', 'notify_offer_manager', 'statement', 'insert update delete', 'offer_manager'),
      ('smsdist.programs', 'notify_sender', 'statement', 'update', 'sender'),
      ('smsdist.sender_addresses', 'notify_sender', 'row', 'insert update delete', 'sender | address_id'),
      ('smsdist.site_status_reports', 'notify_status_manager', 'statement', 'insert update delete', 'status_manager'),
      ('smsdist.site_systems', 'notify_despooler', 'row', 'insert update delete', 'despooler,inbox_manager | site_system_id'),
      ('smsdist.sites', 'notify_sender', 'statement', 'insert delete', 'sender'),
      ('smsdist.status_messages', 'notify_status_manager', 'statement', 'insert', 'status_manager'),
      ('smsdist.system_resources', 'notify_collection_evaluator', 'statement', 'insert update delete', 'collection_evaluator'),
      ('smsdist.system_resources', 'notify_offer_manager', 'statement', 'update', 'offer_manager'),
      ('smsdist.user_group_members', 'notify_collection_evaluator', 'statement', 'insert update delete', 'collection_evaluator'),
      ('smsdist.user_groups', 'notify_collection_evaluator', 'statement', 'insert update delete', 'collection_evaluator'),
      ('smsdist.users', 'notify_collection_evaluator', 'statement', 'insert update delete', 'collection_evaluator')$$,
    'notify_change triggers: components, ID columns, row or statement level, events');
SELECT is((SELECT pg_get_expr(tgqual, tgrelid) FROM pg_trigger
            WHERE tgrelid = 'smsdist.job_site_status'::regclass AND tgname = 'notify_sender'),
          '((new.phase = ''send''::smsdist.job_phase) OR (new.state = ANY (ARRAY[''done''::smsdist.phase_state, ''failed''::smsdist.phase_state])))',
          'the Sender is woken by send rows and by rows that end, not by the Despooler''s progress');
SELECT is((SELECT pg_get_expr(tgqual, tgrelid) FROM pg_trigger
            WHERE tgrelid = 'smsdist.job_site_status'::regclass AND tgname = 'notify_despooler'),
          '(new.phase = ''distribute''::smsdist.job_phase)',
          'the Despooler is woken by distribute rows, not by the Sender''s');
SELECT is((SELECT count(*) FROM pg_trigger
            WHERE tgfoid = 'smsdist.notify_change'::regproc AND NOT tgisinternal AND tgtype & 2 = 2),
          0::bigint, 'every notify_change trigger fires AFTER the change');
SELECT is((SELECT array_agg(tgrelid::regclass::text ORDER BY tgrelid::regclass::text) FROM pg_trigger
            WHERE tgname = 'touch_updated_at'),
          ARRAY['smsdist.job_site_status', 'smsdist.packages'],
          'touch_updated_at keeps updated_at of packages and job_site_status (target rows: target_changed)');

-------------------------------------------------------------------------------
-- Indexes the Scheduler relies on
-------------------------------------------------------------------------------
SELECT has_index('smsdist', 'jobs', 'jobs_pending_start', ARRAY['start_after'], 'jobs_pending_start indexes start_after');
SELECT has_index('smsdist', 'jobs', 'jobs_live_expiry', ARRAY['expires_at'], 'jobs_live_expiry indexes expires_at');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'smsdist.jobs_pending_start'::regclass),
          '(state = ''pending''::smsdist.job_state)',
          'jobs_pending_start covers only pending jobs');

SELECT * FROM finish();
ROLLBACK;
