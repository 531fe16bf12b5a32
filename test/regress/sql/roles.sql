-- Roles: operators and readers work without superuser, within their grants.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
DROP EXTENSION smsdist CASCADE;
CREATE EXTENSION smsdist;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'smsdist\_%' ORDER BY 1;
SELECT pg_has_role('smsdist_admin', 'smsdist_operator', 'MEMBER') AS admin_is_operator,
       pg_has_role('smsdist_operator', 'smsdist_reader', 'MEMBER') AS operator_is_reader,
       pg_has_role('smsdist_client', 'smsdist_reader', 'MEMBER') AS client_is_reader;

CREATE ROLE regress_admin LOGIN IN ROLE smsdist_admin;
CREATE ROLE regress_operator LOGIN IN ROLE smsdist_operator;
CREATE ROLE regress_reader LOGIN IN ROLE smsdist_reader;
CREATE ROLE regress_nobody LOGIN;

-- the admin builds the hierarchy and the inventory
SET ROLE regress_admin;
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory)
    VALUES ('CH1', 'distribution_point', 'DP1', '/srv/ch1/dp1');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host=127.0.0.1 dbname=ch1');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CH100001', 'WKS1', 'CORP', 'CH1', 'WIN95');
RESET ROLE;

-- the operator creates packages, programs, collections and jobs
SET ROLE regress_operator;
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Editor', '/srv/src/editor') RETURNING package_id;
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Install', 'install.sh', '{LINUX_X86_64}', 5);
INSERT INTO smsdist.collections (name) VALUES ('Editors') RETURNING collection_id;
INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines, start_after)
    VALUES ('run_command', 'CEN00001', 'Install', 'machines', '{CH100001}', '2099-01-01') RETURNING job_id;
UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'test' WHERE job_id = 'CEN00001';
SELECT job_id, from_state, to_state, by_role, reason FROM smsdist.job_transitions ORDER BY transition_id;
-- ... but not sites, site systems, sender addresses or the log
INSERT INTO smsdist.sites VALUES ('CH2', 'Child 2', 'CEN');
SELECT * FROM smsdist.sender_addresses;
INSERT INTO smsdist.job_transitions (job_id, to_state) VALUES ('CEN00001', 'completed');
RESET ROLE;

-- the reader reads status and nothing else
SET ROLE regress_reader;
SELECT count(*) AS jobs FROM smsdist.jobs;
SELECT component FROM smsdist.workers WHERE component = 'scheduler';
SELECT count(*) >= 0 AS status_readable FROM smsdist.status_messages;
INSERT INTO smsdist.packages (name, source_directory) VALUES ('Sneaky', '/srv/x');
SELECT * FROM smsdist.sender_addresses;
SELECT smsdist.wake('scheduler');
RESET ROLE;

-- everyone else: nothing
SET ROLE regress_nobody;
SELECT count(*) FROM smsdist.jobs;
RESET ROLE;

-- no smsdist role is a superuser or can create roles
SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles
 WHERE rolname LIKE 'smsdist\_%' OR rolname LIKE 'regress\_%' ORDER BY 1;

DROP OWNED BY regress_admin, regress_operator, regress_reader, regress_nobody;
DROP ROLE regress_admin, regress_operator, regress_reader, regress_nobody;
