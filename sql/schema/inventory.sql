-- Inventory: systems (machines), users and user groups, and what each
-- machine's agent is and holds.
--
-- Inventory is bulk-loadable with COPY.  sms_id is a machine's ID (its
-- site code and five hex digits); a machine's login at the management point
-- (machine_logins) speaks for that machine only, and its key (machine_keys)
-- authenticates the status files its agent writes.
CREATE TABLE system_resources (
    sms_id           sms_id PRIMARY KEY,
    name             netbios_name NOT NULL,
    domain           netbios_name NOT NULL,
    site_code        site_code NOT NULL REFERENCES sites ON DELETE RESTRICT,
    platform         platform NOT NULL,
    os_version       text CHECK (length(os_version) <= 64),
    ip_address       inet,
    memory_mb        integer CHECK (memory_mb >= 0),
    free_disk_mb     bigint CHECK (free_disk_mb >= 0),
    last_seen        timestamptz,
    UNIQUE (domain, name)
);
CREATE INDEX ON system_resources (site_code);
REVOKE ALL ON system_resources FROM PUBLIC;
GRANT SELECT ON system_resources TO smsdist_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON system_resources TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.system_resources', '');

CREATE TABLE users (
    domain           netbios_name NOT NULL,
    user_name        object_name NOT NULL,
    full_name        text CHECK (length(full_name) <= 256),
    PRIMARY KEY (domain, user_name)
);
REVOKE ALL ON users FROM PUBLIC;
GRANT SELECT ON users TO smsdist_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON users TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.users', '');

CREATE TABLE user_groups (
    domain           netbios_name NOT NULL,
    group_name       object_name NOT NULL,
    PRIMARY KEY (domain, group_name)
);
REVOKE ALL ON user_groups FROM PUBLIC;
GRANT SELECT ON user_groups TO smsdist_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON user_groups TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.user_groups', '');

CREATE TABLE user_group_members (
    group_domain     netbios_name NOT NULL,
    group_name       object_name NOT NULL,
    user_domain      netbios_name NOT NULL,
    user_name        object_name NOT NULL,
    PRIMARY KEY (group_domain, group_name, user_domain, user_name),
    FOREIGN KEY (group_domain, group_name) REFERENCES user_groups ON DELETE CASCADE,
    FOREIGN KEY (user_domain, user_name) REFERENCES users ON DELETE CASCADE
);
CREATE INDEX ON user_group_members (user_domain, user_name);
REVOKE ALL ON user_group_members FROM PUBLIC;
GRANT SELECT ON user_group_members TO smsdist_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON user_group_members TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.user_group_members', '');

-- Inventory is bulk-loaded: one notification per statement, payload '*'.
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON system_resources
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON user_group_members
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
-- a policy names the machine's site and platform
CREATE TRIGGER notify_offer_manager AFTER UPDATE OF site_code, platform ON system_resources
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');

-- Each agent login speaks for one machine: it reads that machine's policy
-- and reports that machine's status, nobody else's.
CREATE TABLE machine_logins (
    role_name        name PRIMARY KEY,
    sms_id           sms_id NOT NULL REFERENCES system_resources ON UPDATE CASCADE ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE machine_logins IS
    'the login each machine''s agent uses at the management point, and the one machine it speaks for';
REVOKE ALL ON machine_logins FROM PUBLIC;
GRANT SELECT ON machine_logins TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON machine_logins TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.machine_logins', '');
CREATE TRIGGER check_role BEFORE INSERT OR UPDATE ON machine_logins
    FOR EACH ROW EXECUTE FUNCTION site_logins_check_role();
\ir ../functions/require_machine_login.sql

\ir ../functions/strong_random_bytes.sql
CREATE TABLE machine_keys (
    sms_id      sms_id PRIMARY KEY REFERENCES system_resources ON DELETE CASCADE,
    key         bytea NOT NULL CHECK (length(key) = 32),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON machine_keys FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('smsdist.machine_keys', '');
\ir ../functions/issue_machine_key.sql
-- once per statement, like the other inventory triggers: a bulk COPY is one call
CREATE TRIGGER issue_machine_key AFTER INSERT ON system_resources
    REFERENCING NEW TABLE AS new_machines
    FOR EACH STATEMENT EXECUTE FUNCTION issue_machine_key();
\ir ../functions/machine_key.sql
\ir ../functions/rotate_machine_key.sql
\ir ../functions/status_problem.sql

-- A machine's clock and time zone, as its agent last reported them
\ir ../functions/machine_utc_offset.sql
\ir ../functions/machine_local_time.sql
\ir ../functions/machine_instant.sql
