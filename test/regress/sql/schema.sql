-- The data model: IDs, defaults, target resolution and the job state machine.
-- Jobs here start in 2099 so that the running Scheduler leaves them alone.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
DROP EXTENSION smsdist CASCADE;
CREATE EXTENSION smsdist;
SHOW smsdist.site_code;
SELECT smsdist.library_version() = extversion AS library_matches_extension
  FROM pg_extension WHERE extname = 'smsdist';

-- a hierarchy: central, two children, one grandchild
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES
    ('CEN', 'Central', NULL), ('CH1', 'Child one', 'CEN'),
    ('CH2', 'Child two', 'CEN'), ('GC1', 'Grandchild', 'CH1');

-- IDs are made from the site code and a hex sequence
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Office 97', '/srv/source/office97')
    RETURNING package_id, source_version;
INSERT INTO smsdist.packages (name, source_directory, version, manufacturer, language)
    VALUES ('Virus scanner', '/srv/source/vscan', '4.0', 'Example Corp', 'English')
    RETURNING package_id;
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes) VALUES
    ('CEN00001', 'Typical', 'setup.exe /q /typical', '{WINNT_X86,WIN95}', 60),
    ('CEN00001', 'Remove', 'setup.exe /q /remove', NULL, 30),
    ('CEN00002', 'Scan', 'vscan --all', '{LINUX_X86_64}', NULL);

INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform, ip_address) VALUES
    ('CEN00001', 'WKS-CEN-1', 'CORP', 'CEN', 'WINNT_X86', '10.0.0.1'),
    ('CH100001', 'WKS-CH1-1', 'CORP', 'CH1', 'WINNT_X86', '10.0.1.1'),
    ('CH100002', 'WKS-CH1-2', 'CORP', 'CH1', 'WIN95', NULL),
    ('GC100001', 'WKS-GC1-1', 'SALES', 'GC1', 'LINUX_X86_64', NULL);

INSERT INTO smsdist.collections (name) VALUES ('All workstations') RETURNING collection_id;
-- membership is the Collection Evaluator's: direct rules, then wait for it
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id)
    VALUES ('CEN00001', 'direct', 'CH100002'), ('CEN00001', 'direct', 'GC100001');
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN (SELECT count(*) FROM smsdist.collection_members WHERE collection_id = 'CEN00001') = 2;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

-- three ways to target a job
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after)
    VALUES ('run_command', 'CEN00001', 'Typical', 'machines', '{CEN00001,CH100001}', '2099-01-01')
    RETURNING job_id, state, priority;
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites, include_subsites, start_after)
    VALUES ('share_package', 'CEN00002', 'sites', '{CH1}', true, '2099-01-01')
    RETURNING job_id;
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_collection_id, start_after, offer_after, mandatory_at, expires_at)
    VALUES ('run_command', 'CEN00001', 'Typical', 'collection', 'CEN00001', '2099-01-01', '2099-01-02', '2099-01-03', '2099-02-01')
    RETURNING job_id;

SELECT * FROM smsdist.job_target_machines('CEN00001') ORDER BY 1;
SELECT * FROM smsdist.job_target_sites('CEN00001') ORDER BY 1;
SELECT * FROM smsdist.job_target_sites('CEN00002') ORDER BY 1;
SELECT * FROM smsdist.job_target_machines('CEN00002') ORDER BY 1;
SELECT * FROM smsdist.job_target_machines('CEN00003') ORDER BY 1;
SELECT * FROM smsdist.job_target_sites('CEN00003') ORDER BY 1;

-- every job starts pending, and the creation is logged
SELECT job_id, from_state, to_state, reason FROM smsdist.job_transitions ORDER BY transition_id;

-- the state machine
UPDATE smsdist.jobs SET state = 'completed' WHERE job_id = 'CEN00001';
UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'wrong package' WHERE job_id = 'CEN00001';
UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'CEN00001';
UPDATE smsdist.jobs SET start_after = '2099-06-01' WHERE job_id = 'CEN00001';
SELECT job_id, state, state_reason, finished_at IS NOT NULL AS finished FROM smsdist.jobs ORDER BY job_id;
SELECT job_id, from_state, to_state, reason FROM smsdist.job_transitions
 WHERE job_id = 'CEN00001' ORDER BY transition_id;
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, state)
    VALUES ('run_command', 'CEN00001', 'Typical', 'machines', '{CEN00001}', 'active');

-- a pending job may be rescheduled; its changes are announced to the Scheduler
UPDATE smsdist.jobs SET start_after = '2099-03-01', priority = 'high' WHERE job_id = 'CEN00002';
SELECT job_id, start_after, priority FROM smsdist.jobs WHERE job_id = 'CEN00002';

-- explicit IDs are accepted when well formed
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CH1000A0', 'From child', '/srv/x')
    RETURNING package_id;

-- the operator's overview
SELECT job_id, job_type, package_name, state, sites, machines FROM smsdist.job_overview ORDER BY job_id;
