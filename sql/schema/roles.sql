-- Roles and the schema's privileges.
--
-- Roles are cluster-wide: each is created once (by the first database that
-- installs smsdist) and kept on DROP EXTENSION.  Each object's own grants
-- are written next to it; this file holds the roles themselves:
--   smsdist_reader       sees everything but sender addresses (their
--                        conninfo may hold passwords)
--   smsdist_operator     a reader who also manages packages, programs,
--                        collections, jobs and advertisements
--   smsdist_admin        an operator who also manages the site hierarchy,
--                        site systems, sender addresses and inventory
--   smsdist_client       a client agent at the management point (advanced
--                        mode), bound to one machine by machine_logins
--   smsdist_parent_site  what a parent site's Sender calls here
--   smsdist_child_site   what a child site's Status Manager calls here
--   smsdist_site         the site role of versions 0.2 to 0.6, granted
--                        nothing: a login that had it needs one of the two
--                        site roles and a row in site_logins.  It exists
--                        in a new install as in an updated one.
-- Every SECURITY DEFINER function and every trigger function has no EXECUTE
-- for PUBLIC.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client',
                             'smsdist_site', 'smsdist_parent_site', 'smsdist_child_site'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

GRANT smsdist_reader TO smsdist_operator;
GRANT smsdist_operator TO smsdist_admin;

GRANT USAGE ON SCHEMA @extschema@ TO smsdist_reader, smsdist_client, smsdist_parent_site, smsdist_child_site;
