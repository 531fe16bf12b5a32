-- Sites, their site systems and the links between them.
--
-- A site (site code, three characters) has one parent site or none; the
-- Sender reaches a child site through its sender addresses (conninfo, with a
-- priority and a throttle), and a parent site's login here speaks for that
-- one site (site_logins).  Site systems are this site's servers in a role:
-- distribution points, logon servers, client access points (CAPs), the
-- management point.
CREATE TABLE sites (
    site_code        site_code PRIMARY KEY,
    name             object_name NOT NULL,
    parent_site_code site_code REFERENCES sites ON DELETE RESTRICT,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT site_is_not_its_own_parent CHECK (parent_site_code IS DISTINCT FROM site_code)
);
CREATE INDEX ON sites (parent_site_code);
REVOKE ALL ON sites FROM PUBLIC;
GRANT SELECT ON sites TO smsdist_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON sites TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.sites', '');

\ir ../functions/sites_refuse_cycle.sql
CREATE TRIGGER sites_refuse_cycle BEFORE INSERT OR UPDATE OF parent_site_code ON sites
    FOR EACH ROW EXECUTE FUNCTION sites_refuse_cycle();
CREATE TRIGGER notify_sender AFTER INSERT OR DELETE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

CREATE TABLE sender_addresses (
    address_id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_site_code site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    conninfo         conninfo NOT NULL,
    priority         integer NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 99),
    throttle         throttle_mode NOT NULL DEFAULT 'unlimited',
    pulse_block_kb   integer CHECK (pulse_block_kb BETWEEN 1 AND 1048576),
    pulse_delay_ms   integer CHECK (pulse_delay_ms BETWEEN 0 AND 3600000),
    hourly_rate_pct  smallint[],
    enabled          boolean NOT NULL DEFAULT true,
    CONSTRAINT pulse_mode_needs_block_and_delay
        CHECK (throttle <> 'pulse' OR (pulse_block_kb IS NOT NULL AND pulse_delay_ms IS NOT NULL)),
    CONSTRAINT rate_limit_needs_24_hourly_percentages
        CHECK (throttle <> 'rate_limited' OR
               (hourly_rate_pct IS NOT NULL AND cardinality(hourly_rate_pct) = 24
                AND array_ndims(hourly_rate_pct) = 1
                AND 0 <= ALL (hourly_rate_pct) AND 100 >= ALL (hourly_rate_pct)
                AND array_position(hourly_rate_pct, NULL) IS NULL)),
    UNIQUE (target_site_code, priority)
);
REVOKE ALL ON sender_addresses FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON sender_addresses TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.sender_addresses', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.sender_addresses_address_id_seq', '');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON sender_addresses
    FOR EACH ROW EXECUTE FUNCTION notify_change('sender', 'address_id');

-- A distribution point's package share is <root>/SMS_PKG<share_letter>.
CREATE TABLE site_systems (
    site_system_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_code        site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    role             site_role NOT NULL,
    name             object_name NOT NULL,
    root_directory   server_path NOT NULL,
    enabled          boolean NOT NULL DEFAULT true,
    share_letter     "char" NOT NULL DEFAULT 'C'
                     CONSTRAINT share_letter_is_a_capital CHECK (share_letter BETWEEN 'A' AND 'Z'),
    UNIQUE (site_code, role, root_directory),
    UNIQUE (site_code, role, name)
);
REVOKE ALL ON site_systems FROM PUBLIC;
GRANT SELECT ON site_systems TO smsdist_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON site_systems TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.site_systems', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.site_systems_site_system_id_seq', '');
CREATE TRIGGER notify_despooler AFTER INSERT OR UPDATE OR DELETE ON site_systems
    FOR EACH ROW EXECUTE FUNCTION notify_change('despooler,inbox_manager', 'site_system_id');

-- Each login another site uses here speaks for exactly one site.
CREATE TABLE site_logins (
    role_name        name PRIMARY KEY,
    site_code        site_code NOT NULL REFERENCES sites ON UPDATE CASCADE ON DELETE CASCADE,
    comment          text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE site_logins IS
    'the login each other site uses at this site, and the one site it speaks for (the parent, or one child and its subtree)';
REVOKE ALL ON site_logins FROM PUBLIC;
GRANT SELECT ON site_logins TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON site_logins TO smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.site_logins', '');
\ir ../functions/site_logins_check_role.sql
CREATE TRIGGER check_role BEFORE INSERT OR UPDATE ON site_logins
    FOR EACH ROW EXECUTE FUNCTION site_logins_check_role();

-- The hierarchy: routes and who is calling
\ir ../functions/route_hop.sql
\ir ../functions/require_default_collation.sql
\ir ../functions/calling_site.sql
\ir ../functions/require_sent_by.sql
\ir ../functions/site_public_key.sql
