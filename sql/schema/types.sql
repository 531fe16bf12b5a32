-- Domains, enumerated types and object IDs.
--
-- Validators (C, in the server library) and the domains built on them: each
-- raises an error saying what a valid value looks like.  Every writer of a
-- row with a checked domain needs them, so PUBLIC may call them.
\ir ../functions/check_site_code.sql
\ir ../functions/check_sms_id.sql
\ir ../functions/check_object_name.sql
\ir ../functions/check_netbios_name.sql
\ir ../functions/check_server_path.sql
\ir ../functions/check_command_line.sql
\ir ../functions/check_conninfo.sql
\ir ../functions/check_package_path.sql

CREATE DOMAIN site_code AS text
    CONSTRAINT site_code_format CHECK (@extschema@.check_site_code(VALUE));
CREATE DOMAIN sms_id AS text
    CONSTRAINT sms_id_format CHECK (@extschema@.check_sms_id(VALUE));
CREATE DOMAIN object_name AS text
    CONSTRAINT object_name_format CHECK (@extschema@.check_object_name(VALUE));
CREATE DOMAIN netbios_name AS text
    CONSTRAINT netbios_name_format CHECK (@extschema@.check_netbios_name(VALUE));
CREATE DOMAIN server_path AS text
    CONSTRAINT server_path_format CHECK (@extschema@.check_server_path(VALUE));
CREATE DOMAIN command_line AS text
    CONSTRAINT command_line_format CHECK (@extschema@.check_command_line(VALUE));
CREATE DOMAIN conninfo AS text
    CONSTRAINT conninfo_format CHECK (@extschema@.check_conninfo(VALUE));

-- Operating-system platforms a program supports and a system runs.
CREATE TYPE platform AS ENUM (
    'MSDOS', 'WIN31', 'WIN95', 'WINNT_X86', 'WINNT_ALPHA', 'WINNT_MIPS', 'OS2', 'MAC',
    'WIN_X64', 'WIN_ARM64', 'LINUX_X86_64', 'LINUX_AARCH64');

CREATE TYPE site_role AS ENUM (
    'distribution_point', 'logon_server', 'client_access_point', 'management_point',
    'site_server_drive');
CREATE TYPE throttle_mode AS ENUM ('unlimited', 'pulse', 'rate_limited');
CREATE TYPE job_type AS ENUM ('run_command', 'share_package', 'remove_package');
CREATE TYPE target_type AS ENUM ('collection', 'machines', 'sites');
CREATE TYPE job_priority AS ENUM ('high', 'medium', 'low');
CREATE TYPE job_state AS ENUM ('pending', 'active', 'completed', 'failed', 'cancelled', 'expired');
CREATE TYPE job_phase AS ENUM ('send', 'distribute', 'run');
CREATE TYPE phase_state AS ENUM ('waiting', 'running', 'retrying', 'done', 'failed', 'cancelled');
CREATE TYPE rule_type AS ENUM ('direct', 'query', 'include', 'exclude');
CREATE TYPE severity AS ENUM ('informational', 'warning', 'error');

-- The state of one target (a run-command job or an advertisement, times one
-- machine).  The order is progress: a target moves only forward through
-- waiting .. running, and from there to a final state.
CREATE TYPE target_state AS ENUM (
    'waiting', 'offered', 'downloaded', 'running',
    'succeeded', 'failed', 'not_applicable', 'cancelled', 'expired');

-- purged: an older version whose file was removed from the package store
-- (no pending or active job needs it); the row and its manifest stay.
CREATE TYPE build_state AS ENUM ('building', 'ready', 'failed', 'purged');

CREATE TYPE weekday AS ENUM ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun');

-- IDs: <site code><5 hex digits>, from one sequence per kind of object.
CREATE SEQUENCE package_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;
CREATE SEQUENCE job_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;
CREATE SEQUENCE collection_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;
CREATE SEQUENCE advert_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;
REVOKE ALL ON SEQUENCE package_id_seq FROM PUBLIC;
GRANT USAGE ON SEQUENCE package_id_seq TO smsdist_operator;
REVOKE ALL ON SEQUENCE job_id_seq FROM PUBLIC;
GRANT USAGE ON SEQUENCE job_id_seq TO smsdist_operator;
REVOKE ALL ON SEQUENCE collection_id_seq FROM PUBLIC;
GRANT USAGE ON SEQUENCE collection_id_seq TO smsdist_operator;
REVOKE ALL ON SEQUENCE advert_id_seq FROM PUBLIC;
GRANT USAGE ON SEQUENCE advert_id_seq TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.advert_id_seq', '');
\ir ../functions/new_sms_id.sql
