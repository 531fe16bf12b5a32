/* smsdist 0.6 -> 0.7: trust boundaries.
 *
 * Every path to a command line is a path to root on the workstations, so
 * each login now speaks for one thing: a parent site's login at this site
 * for that parent, a child site's login for that child and its subtree, a
 * machine's login for that machine.  What a site receives records where it
 * came from and may be changed only from there; what a site made itself is
 * never changed through what another site sends.  docs/security.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.7'" to load this file. \quit

-------------------------------------------------------------------------------
-- Site identity
-------------------------------------------------------------------------------

-- Roles: what a parent site's Sender calls here, and what a child site's
-- Status Manager calls here.  smsdist_site (0.2-0.6) held both and is left
-- with nothing: a login that had it must be granted one of these and bound
-- to its site in site_logins.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['smsdist_parent_site', 'smsdist_child_site'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;
GRANT USAGE ON SCHEMA @extschema@ TO smsdist_parent_site, smsdist_child_site;

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

CREATE FUNCTION site_logins_check_role() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = NEW.role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', NEW.role_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = NEW.role_name) THEN
        RAISE EXCEPTION 'role "%" is a superuser: a site''s login must not be', NEW.role_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_role BEFORE INSERT OR UPDATE ON site_logins
    FOR EACH ROW EXECUTE FUNCTION site_logins_check_role();

-- The site the calling login speaks for, as the parent of this site
-- (direction 'parent') or as one of its children ('child'); an error if it
-- speaks for no site or another one.  session_user, not current_user: the
-- functions that call this are SECURITY DEFINER.  A superuser may act as
-- the parent (the result is this site's parent, NULL if it has none) or as
-- any child (NULL).
CREATE FUNCTION calling_site(direction text) RETURNS site_code
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here smsdist.site_code := current_setting('smsdist.site_code');
    login name := session_user;
    bound smsdist.site_code;
    parent smsdist.site_code;
BEGIN
    IF direction IS NULL OR direction NOT IN ('parent', 'child') THEN
        RAISE EXCEPTION 'invalid direction "%": parent or child', direction
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.parent_site_code INTO parent FROM smsdist.sites s WHERE s.site_code = here;
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = login) THEN
        RETURN CASE direction WHEN 'parent' THEN parent END;
    END IF;
    SELECT l.site_code INTO bound FROM smsdist.site_logins l WHERE l.role_name = login;
    IF bound IS NULL THEN
        RAISE EXCEPTION 'login "%" does not speak for any site at site %', login, here
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An administrator binds the login another site uses here to that site: INSERT INTO smsdist.site_logins (role_name, site_code).';
    END IF;
    IF direction = 'parent' AND bound IS DISTINCT FROM parent THEN
        RAISE EXCEPTION 'login "%" speaks for site %, which is not the parent site of site %', login, bound, here
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF direction = 'child' AND NOT EXISTS (SELECT 1 FROM smsdist.sites s
                                            WHERE s.site_code = bound AND s.parent_site_code = here) THEN
        RAISE EXCEPTION 'login "%" speaks for site %, which is not a child site of site %', login, bound, here
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN bound;
END
$$;

-- Where each received object came from: only that site may change it
-- through receive_*; NULL: made at this site, never changed from outside.
ALTER TABLE packages ADD COLUMN source_site site_code;
ALTER TABLE jobs ADD COLUMN source_site site_code;
COMMENT ON COLUMN packages.source_site IS
    'set for a package received from that parent site; NULL for this site''s own, which no other site may change';
COMMENT ON COLUMN jobs.source_site IS
    'set for a job received from that parent site; NULL for this site''s own, which no other site may change';
-- what came from above before 0.7: received builds and transfers, the
-- parent's advertisements, and the jobs that the parent site numbered
UPDATE packages p SET source_site = s.parent_site_code
  FROM sites s
 WHERE s.site_code = current_setting('smsdist.site_code', true) AND s.parent_site_code IS NOT NULL
   AND (EXISTS (SELECT 1 FROM package_builds b WHERE b.package_id = p.package_id AND b.received)
        OR EXISTS (SELECT 1 FROM package_transfers t WHERE t.package_id = p.package_id)
        OR EXISTS (SELECT 1 FROM advertisements a WHERE a.package_id = p.package_id AND a.source_site IS NOT NULL));
UPDATE jobs j SET source_site = s.parent_site_code
  FROM sites s
 WHERE s.site_code = current_setting('smsdist.site_code', true) AND s.parent_site_code IS NOT NULL
   AND left(j.job_id, 3) <> s.site_code
   AND EXISTS (SELECT 1 FROM packages p WHERE p.package_id = j.package_id AND p.source_site IS NOT NULL);

-- An error unless a package or job is new here or came from site `source`.
CREATE FUNCTION require_sent_by(kind text, object_id text, source site_code) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_it boolean;
    owner smsdist.site_code;
BEGIN
    IF kind = 'package' THEN
        SELECT true, p.source_site INTO found_it, owner FROM smsdist.packages p WHERE p.package_id = object_id;
    ELSIF kind = 'job' THEN
        SELECT true, j.source_site INTO found_it, owner FROM smsdist.jobs j WHERE j.job_id = object_id;
    ELSIF kind = 'advertisement' THEN
        SELECT true, a.source_site INTO found_it, owner FROM smsdist.advertisements a WHERE a.advert_id = object_id;
    ELSE
        RAISE EXCEPTION 'invalid object kind "%"', kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT coalesce(found_it, false) OR owner IS NOT DISTINCT FROM source THEN
        RETURN;
    END IF;
    IF owner IS NULL THEN
        RAISE EXCEPTION '% % was made at site %: site % may not change it', kind, object_id,
            current_setting('smsdist.site_code'), coalesce(source::text, '(none)')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION '% % came from site %: site % may not change it', kind, object_id, owner,
        coalesce(source::text, '(none)')
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The machines a parent names: added to the inventory if unknown here, and
-- only for sites at or below this one (a parent cannot place machines at
-- itself or at a sibling through this site).
CREATE OR REPLACE FUNCTION record_machines(machines jsonb) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    SELECT m.sms_id, m.name, m.domain, m.site_code, m.platform::smsdist.platform
      FROM jsonb_to_recordset(CASE WHEN jsonb_typeof(machines) = 'array' THEN machines ELSE '[]' END)
           AS m(sms_id text, name text, domain text, site_code text, platform text)
     WHERE EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code = m.site_code)
       AND (m.site_code = current_setting('smsdist.site_code')
            OR smsdist.route_hop(m.site_code::smsdist.site_code) IS NOT NULL)
    ON CONFLICT DO NOTHING
$$;

-- Called by receive_end (C) for a run-command job from site p_source: the
-- program and the machines, then the job itself, targeting the machines.
-- receive_end has checked that the package and the job are p_source's.
DROP FUNCTION record_run_job(text, text, jsonb);
CREATE FUNCTION record_run_job(p_job_id text, p_package_id text, run jsonb, p_source site_code)
    RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    machines text[];
    other record;
    offer timestamptz := (run->>'offer_after')::timestamptz;
BEGIN
    PERFORM smsdist.require_sent_by('package', p_package_id, p_source);
    PERFORM smsdist.require_sent_by('job', p_job_id, p_source);
    INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes)
    VALUES (p_package_id, run->>'program_name', run->>'command_line',
            (SELECT array_agg(p::smsdist.platform) FROM jsonb_array_elements_text(
                 CASE WHEN jsonb_typeof(run->'platforms') = 'array' THEN run->'platforms' END) p),
            (run->>'max_run_minutes')::integer)
    ON CONFLICT (package_id, program_name) DO UPDATE
       SET command_line = EXCLUDED.command_line, platforms = EXCLUDED.platforms,
           max_run_minutes = EXCLUDED.max_run_minutes;
    PERFORM smsdist.record_machines(run->'machines');
    SELECT array_agg(m->>'sms_id' ORDER BY m->>'sms_id') INTO machines FROM jsonb_array_elements(run->'machines') m
     WHERE EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id = m->>'sms_id'
                      AND (r.site_code = current_setting('smsdist.site_code')
                           OR smsdist.route_hop(r.site_code) IS NOT NULL));
    IF machines IS NULL THEN
        RAISE EXCEPTION 'run-command job % names no machine known at or below site %', p_job_id,
            current_setting('smsdist.site_code')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines,
                              start_after, offer_after, mandatory_at, expires_at, priority, comment,
                              source_site)
    VALUES (p_job_id, 'run_command', p_package_id, run->>'program_name', 'machines', machines,
            least(clock_timestamp(), offer), offer, (run->>'mandatory_at')::timestamptz,
            (run->>'expires_at')::timestamptz, coalesce((run->>'priority')::smsdist.job_priority, 'medium'),
            'sent by the parent site', p_source)
    ON CONFLICT (job_id) DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT job_type, package_id INTO other FROM smsdist.jobs WHERE job_id = p_job_id;
    IF other.job_type <> 'run_command' OR other.package_id <> p_package_id THEN
        RAISE EXCEPTION 'job % already exists at site % as a % job for package %, not a run_command job for package %',
            p_job_id, current_setting('smsdist.site_code'), other.job_type, other.package_id, p_package_id
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN false;
END
$$;
REVOKE ALL ON FUNCTION record_run_job(text, text, jsonb, site_code) FROM PUBLIC;

-- The parent's machines of a run-command job changed: the parent that sent
-- the job, and nobody else, may retarget it.
ALTER FUNCTION receive_job_targets(text, jsonb) RENAME TO record_job_targets;
ALTER FUNCTION record_job_targets(text, jsonb) SECURITY INVOKER;
CREATE FUNCTION receive_job_targets(p_job_id text, machines jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    IF EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = p_job_id) THEN
        PERFORM smsdist.require_sent_by('job', p_job_id, source);
    END IF;
    RETURN smsdist.record_job_targets(p_job_id, machines);
END
$$;

-- Advertisements from the parent: its own, for its own packages.
ALTER FUNCTION receive_advertisement(jsonb) RENAME TO record_advertisement;
ALTER FUNCTION record_advertisement(jsonb) SECURITY INVOKER;
CREATE FUNCTION receive_advertisement(details jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    -- (NULL: a superuser at a site with no parent, which record_advertisement refuses)
    IF source IS NOT NULL THEN
        IF jsonb_typeof(details) IS DISTINCT FROM 'object' OR jsonb_typeof(details->'advert') IS DISTINCT FROM 'object'
           OR jsonb_typeof(details->'package') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'incomplete advertisement details: advert, package, program and collections are required'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM smsdist.require_sent_by('advertisement', details->'advert'->>'advert_id', source);
        PERFORM smsdist.require_sent_by('package', details->'package'->>'package_id', source);
        -- a new package is the parent's from its first row (its source is
        -- the parent's path, never checked or built here)
        INSERT INTO smsdist.packages (package_id, name, source_directory, source_site)
        VALUES (details->'package'->>'package_id', details->'package'->>'name',
                details->'package'->>'source_directory', source)
        ON CONFLICT (package_id) DO NOTHING;
    END IF;
    PERFORM smsdist.record_advertisement(details);
    UPDATE smsdist.packages p SET source_site = source
     WHERE p.package_id = details->'package'->>'package_id' AND p.source_site IS DISTINCT FROM source;
END
$$;

ALTER FUNCTION remove_advertisement(text) RENAME TO drop_parent_advertisement;
ALTER FUNCTION drop_parent_advertisement(text) SECURITY INVOKER;
CREATE FUNCTION remove_advertisement(p_advert_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_sent_by('advertisement', p_advert_id, smsdist.calling_site('parent'));
    PERFORM smsdist.drop_parent_advertisement(p_advert_id);
END
$$;

-- What the parent asks about its own jobs here (PL/pgSQL: the caller is
-- checked before anything is read, whether there are rows or not).
CREATE OR REPLACE FUNCTION distribution_report(p_job_id text)
    RETURNS TABLE (site_code text, state text, detail text, last_error text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    RETURN QUERY
    SELECT t.site_code::text,
           CASE WHEN d.state IS NOT NULL THEN d.state::text
                WHEN s.state = 'failed' THEN 'failed'
                ELSE 'running' END,
           coalesce(d.detail, s.detail),
           coalesce(d.last_error, s.last_error)
      FROM (SELECT DISTINCT x.site_code FROM smsdist.job_site_status x WHERE x.job_id = p_job_id) t
      JOIN smsdist.jobs j ON j.job_id = p_job_id AND j.source_site IS NOT DISTINCT FROM source
      LEFT JOIN smsdist.job_site_status d
        ON d.job_id = p_job_id AND d.site_code = t.site_code AND d.phase = 'distribute'
      LEFT JOIN smsdist.job_site_status s
        ON s.job_id = p_job_id AND s.site_code = t.site_code AND s.phase = 'send';
END
$$;

CREATE OR REPLACE FUNCTION location_report(p_job_id text)
    RETURNS TABLE (package_id text, site_code text, site_system_id integer,
                   source_version integer, path text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    RETURN QUERY
    SELECT l.package_id::text, l.site_code::text, l.site_system_id, l.source_version, l.path
      FROM smsdist.jobs j
      JOIN smsdist.package_locations l ON l.package_id = j.package_id
     WHERE j.job_id = p_job_id AND j.source_site IS NOT DISTINCT FROM source
       AND l.site_code IN (SELECT s.site_code FROM smsdist.job_site_status s WHERE s.job_id = p_job_id);
END
$$;

-- A child reports for itself and its subtree, under its own name only.
ALTER FUNCTION receive_status_report(text, jsonb) RENAME TO record_status_report;
ALTER FUNCTION record_status_report(text, jsonb) SECURITY INVOKER;
CREATE FUNCTION receive_status_report(p_child text, report jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller smsdist.site_code := smsdist.calling_site('child');
BEGIN
    IF caller IS NOT NULL AND caller IS DISTINCT FROM p_child THEN
        RAISE EXCEPTION 'login "%" speaks for site %, not for site %', session_user, caller, p_child
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF octet_length(report::text) > 64 * 1024 * 1024 THEN
        RAISE EXCEPTION 'status report of site % is too large: % bytes (at most 64 MB)', p_child,
            octet_length(report::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN smsdist.record_status_report(p_child, report);
END
$$;

REVOKE ALL ON FUNCTION calling_site(text), require_sent_by(text, text, site_code),
    site_logins_check_role(), record_job_targets(text, jsonb), record_advertisement(jsonb),
    drop_parent_advertisement(text), record_status_report(text, jsonb),
    receive_job_targets(text, jsonb), receive_advertisement(jsonb), remove_advertisement(text),
    receive_status_report(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer, text),
    receive_chunk(text, integer, bigint, bytea, text), receive_total(text, integer, text, bigint, text),
    receive_end(text, integer, text, text, text[], boolean, jsonb), distribution_report(text),
    location_report(text) FROM smsdist_site;
GRANT EXECUTE ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer, text),
    receive_chunk(text, integer, bigint, bytea, text), receive_total(text, integer, text, bigint, text),
    receive_end(text, integer, text, text, text[], boolean, jsonb), receive_job_targets(text, jsonb),
    distribution_report(text), location_report(text), receive_advertisement(jsonb),
    remove_advertisement(text) TO smsdist_parent_site;
GRANT EXECUTE ON FUNCTION receive_status_report(text, jsonb) TO smsdist_child_site;
REVOKE USAGE ON SCHEMA @extschema@ FROM smsdist_site;

-------------------------------------------------------------------------------
-- Machine identity
-------------------------------------------------------------------------------

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

-- An error unless the calling login may speak for machine p_sms_id: it is
-- bound to it in machine_logins, or it has the privileges of
-- smsdist_reader (which reads every machine's policy anyway), or it is a
-- superuser.
CREATE FUNCTION require_machine_login(p_sms_id text) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    login name := session_user;
    bound text;
BEGIN
    SELECT l.sms_id INTO bound FROM smsdist.machine_logins l WHERE l.role_name = login;
    IF bound IS NOT NULL AND bound = p_sms_id THEN
        RETURN;
    END IF;
    IF bound IS NULL AND pg_has_role(login, 'smsdist_reader', 'USAGE') THEN
        RETURN;
    END IF;
    IF bound IS NULL THEN
        RAISE EXCEPTION 'permission denied: login "%" does not speak for any machine', login
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An administrator binds each agent''s login to its machine: INSERT INTO smsdist.machine_logins (role_name, sms_id).';
    END IF;
    RAISE EXCEPTION 'permission denied: login "%" speaks for machine %, not for machine %', login, bound, p_sms_id
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION machine_policy(p_sms_id text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_machine_login(p_sms_id);
    -- PL/pgSQL, not SQL: its plan is kept across calls
    RETURN (SELECT coalesce(mp.policy, smsdist.compute_machine_policy(r.sms_id))
              FROM smsdist.system_resources r
              LEFT JOIN smsdist.machine_policies mp ON mp.sms_id = r.sms_id
             WHERE r.sms_id = p_sms_id);
END
$$;

-- Advanced clients send their status messages through the management
-- point: the same row as a status file, recorded once per (machine,
-- sequence, client time), for the caller's own machine only, with the
-- same limits as a status file (status_problem: smsdist.status_text_max,
-- smsdist.client_time_window, no control characters but tab).
CREATE OR REPLACE FUNCTION client_status(p_machine text, p_sequence bigint, p_client_at timestamptz,
                              p_message_id integer, p_severity text, p_component text, p_text text,
                              p_advert_id text DEFAULT NULL, p_job_id text DEFAULT NULL,
                              p_package_id text DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    site smsdist.site_code;
    problem text;
BEGIN
    PERFORM smsdist.require_machine_login(p_machine);
    SELECT r.site_code INTO site FROM smsdist.system_resources r WHERE r.sms_id = p_machine;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown machine %', p_machine USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF p_component !~ '^[A-Za-z0-9_. -]{1,64}$' THEN
        RAISE EXCEPTION 'invalid component "%": 1-64 of A-Z a-z 0-9 _ . - and space', p_component
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_sequence IS NULL OR p_sequence < 0 THEN
        RAISE EXCEPTION 'invalid sequence number %: 0 or more', coalesce(p_sequence::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_message_id IS NULL OR p_message_id NOT BETWEEN 1 AND 99999 THEN
        RAISE EXCEPTION 'invalid message ID %: 1-99999', coalesce(p_message_id::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_text IS NULL OR p_client_at IS NULL THEN
        RAISE EXCEPTION 'status message of machine % refused: it has no text or no client time', p_machine
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the same limits as a status file's (src/status_manager.c)
    problem := smsdist.status_problem(p_text, p_client_at);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'status message of machine % refused: %', p_machine, problem
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message,
                                         job_id, package_id, advert_id, client_sequence, client_at)
    VALUES (site, p_component, p_machine, p_severity::smsdist.severity, p_message_id, p_text,
            p_job_id, p_package_id, p_advert_id, p_sequence, p_client_at)
    ON CONFLICT (machine, client_sequence, client_at) WHERE client_sequence IS NOT NULL DO NOTHING;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION require_machine_login(text) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Signed instruction files and authenticated status files
-------------------------------------------------------------------------------

-- signing keys
-- Every instruction file the site writes for workstations is signed with
-- the site's Ed25519 key (smsdist.signing_key); agents verify it with the
-- public key this function gives (smsdist-agent --site-key).  The PCM
-- files record the key that signed them, so that a new key re-signs them.
CREATE FUNCTION site_public_key() RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_site_public_key';
REVOKE ALL ON FUNCTION site_public_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION site_public_key() TO smsdist_reader;
COMMENT ON FUNCTION site_public_key() IS
    'The site''s public key (PEM) that agents verify instruction files with (smsdist-agent --site-key).';

ALTER TABLE pcm_files ADD COLUMN key_id text;
COMMENT ON COLUMN pcm_files.key_id IS
    'The key ID of the site key that signed the file (docs/formats.md, Signatures).';

-------------------------------------------------------------------------------
-- Package sources only from directories a superuser allowed
-- (smsdist.source_roots): checked when an operator names a source, and
-- again by the builder on the directory it opens (src/source_roots.c).
-------------------------------------------------------------------------------
CREATE FUNCTION require_allowed_source(path text) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'smsdist_require_allowed_source';

CREATE FUNCTION packages_check_source() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- a received package's source is the parent's path: never built here;
    -- and an INSERT ... ON CONFLICT of a package that exists inserts nothing
    -- (this trigger sees its proposed row all the same)
    IF NEW.source_site IS NULL
       AND (TG_OP = 'UPDATE' OR NOT EXISTS (SELECT 1 FROM smsdist.packages p
                                             WHERE p.package_id = NEW.package_id)) THEN
        PERFORM smsdist.require_allowed_source(NEW.source_directory);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_source BEFORE INSERT OR UPDATE OF source_directory, source_site ON packages
    FOR EACH ROW EXECUTE FUNCTION packages_check_source();
GRANT EXECUTE ON FUNCTION require_allowed_source(text) TO smsdist_operator;

-- machine keys and status files
--
-- Each machine registered in system_resources gets a random key (32 bytes
-- from pg_strong_random); its agent is given the key (--machine-key) and
-- signs every status file it writes to a CAP with HMAC-SHA256; the Status
-- Manager verifies the file with the key of the machine it names, and
-- keeps a file that does not verify as <name>.bad.  Only the administrator
-- reads keys out (machine_key) or replaces them (rotate_machine_key);
-- nobody reads the table.  docs/agent.md, docs/security.md.
CREATE FUNCTION strong_random_bytes(n integer) RETURNS bytea
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_strong_random_bytes';
REVOKE ALL ON FUNCTION strong_random_bytes(integer) FROM PUBLIC;

CREATE TABLE machine_keys (
    sms_id      sms_id PRIMARY KEY REFERENCES system_resources ON DELETE CASCADE,
    key         bytea NOT NULL CHECK (length(key) = 32),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON machine_keys FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('smsdist.machine_keys', '');

-- A new machine gets its key in the same transaction as its row, whoever
-- inserts it (an administrator, a parent site's record_machines).
CREATE FUNCTION issue_machine_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_SCHEMA <> 'smsdist' OR TG_TABLE_NAME <> 'system_resources'
       OR TG_OP <> 'INSERT' OR TG_LEVEL <> 'STATEMENT' THEN
        RAISE EXCEPTION 'issue_machine_key() fires only once per INSERT statement on smsdist.system_resources, not on %.%',
            TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    INSERT INTO smsdist.machine_keys (sms_id, key)
    SELECT sms_id, smsdist.strong_random_bytes(32) FROM new_machines
    ON CONFLICT (sms_id) DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION issue_machine_key() FROM PUBLIC;
-- once per statement, like the other inventory triggers: a bulk COPY is one call
CREATE TRIGGER issue_machine_key AFTER INSERT ON system_resources
    REFERENCING NEW TABLE AS new_machines
    FOR EACH STATEMENT EXECUTE FUNCTION issue_machine_key();

-- the machines registered before this version
INSERT INTO machine_keys (sms_id, key)
SELECT sms_id, strong_random_bytes(32) FROM system_resources
ON CONFLICT (sms_id) DO NOTHING;

-- The key to give the machine's agent (its --machine-key file), in hex.
CREATE FUNCTION machine_key(machine sms_id) RETURNS text
    LANGUAGE plpgsql STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k bytea;
BEGIN
    SELECT key INTO k FROM smsdist.machine_keys WHERE sms_id = machine;
    IF k IS NULL THEN
        RAISE EXCEPTION 'machine % is not in smsdist.system_resources', machine
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN encode(k, 'hex');
END
$$;

-- A new key for the machine, in hex; status files signed with the old key
-- are refused from now on (give the agent the new one first: docs/agent.md).
CREATE FUNCTION rotate_machine_key(machine sms_id) RETURNS text
    LANGUAGE plpgsql STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k bytea := smsdist.strong_random_bytes(32);
BEGIN
    UPDATE smsdist.machine_keys SET key = k, created_at = clock_timestamp()
     WHERE sms_id = machine;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'machine % is not in smsdist.system_resources', machine
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN encode(k, 'hex');
END
$$;
REVOKE ALL ON FUNCTION machine_key(sms_id), rotate_machine_key(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION machine_key(sms_id), rotate_machine_key(sms_id) TO smsdist_admin;

-- NULL if a status message's text and client time are within the site's
-- limits (smsdist.status_text_max, smsdist.client_time_window; no control
-- character but tab), else the reason.  The Status Manager applies it to
-- status files; client_status() can apply it to what advanced clients send.
CREATE FUNCTION status_problem(message text, client_at timestamptz) RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'smsdist_status_problem';
REVOKE ALL ON FUNCTION status_problem(text, timestamptz) FROM PUBLIC;


-------------------------------------------------------------------------------
-- Limits and quarantine
-------------------------------------------------------------------------------

-- A collection whose evaluation fails fails alone: the error and when it
-- happened stay on its row (collection_evaluator.c), the others go on.
ALTER TABLE collections ADD COLUMN evaluation_error_at timestamptz;
COMMENT ON COLUMN collections.evaluation_error_at IS
    'When the Collection Evaluator last failed to evaluate this collection (evaluation_error says why); NULL once an evaluation succeeds.';

-------------------------------------------------------------------------------
-- Safe SQL: every SECURITY DEFINER function sets its search_path and is
-- executable only by the roles that need it
-------------------------------------------------------------------------------

-- Trigger functions that run as the extension's owner check the table they
-- fire on; and, like every function here that is not a pure check,
-- nobody but the roles granted it may execute them (a trigger fires
-- without the EXECUTE privilege; CREATE TRIGGER needs it).
CREATE FUNCTION require_extension_table(trigger_name name, table_schema name, table_name name)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- only the extension's owner can create tables in its schema
    IF table_schema <> 'smsdist' THEN
        RAISE EXCEPTION '% fires only on smsdist''s tables, not on %.%', trigger_name, table_schema, table_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION require_extension_table(name, name, name) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobs_log_transition() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO smsdist.job_transitions (job_id, from_state, to_state, by_role, reason)
        VALUES (NEW.job_id, NULL, NEW.state, NEW.state_changed_by, coalesce(NEW.state_reason, 'created'));
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO smsdist.job_transitions (job_id, from_state, to_state, by_role, reason)
        VALUES (NEW.job_id, OLD.state, NEW.state, NEW.state_changed_by,
                coalesce(NEW.state_reason, 'changed by ' || NEW.state_changed_by));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION jobs_check_targets() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.target_machines IS NOT NULL THEN
        SELECT string_agg(m, ', ' ORDER BY m) INTO missing
          FROM (SELECT DISTINCT unnest(NEW.target_machines)::text AS m) t
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id::text = t.m);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'job % targets unknown machine(s): %', NEW.job_id, left(missing, 400)
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'Target machines must be rows of smsdist.system_resources.';
        END IF;
    END IF;
    IF NEW.target_sites IS NOT NULL THEN
        SELECT string_agg(c, ', ' ORDER BY c) INTO missing
          FROM (SELECT DISTINCT unnest(NEW.target_sites)::text AS c) t
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code::text = t.c);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'job % targets unknown site(s): %', NEW.job_id, missing
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'Target sites must be rows of smsdist.sites.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION collection_members_cascade() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_TABLE_NAME = 'system_resources' THEN
        DELETE FROM smsdist.collection_members m USING old_rows o WHERE m.sms_id = o.sms_id;
    ELSE
        DELETE FROM smsdist.collection_members m USING old_rows o WHERE m.collection_id = o.collection_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION queue_all_pcm() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF EXISTS (SELECT 1 FROM new_rows n WHERE n.role IN ('logon_server', 'site_server_drive')) THEN
        INSERT INTO smsdist.pcm_queue (sms_id) SELECT sms_id FROM smsdist.pcm_files ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION queue_collection_evaluation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_OP IN ('UPDATE', 'DELETE') AND TG_TABLE_NAME = 'collection_rules' THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT DISTINCT o.collection_id FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM smsdist.collections c WHERE c.collection_id = o.collection_id)
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'collections' THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT n.collection_id FROM new_rows n JOIN old_rows o USING (collection_id)
         WHERE n.limiting_collection_id IS DISTINCT FROM o.limiting_collection_id
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT DISTINCT n.collection_id FROM new_rows n ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION queue_pcm() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_TABLE_NAME = 'jobs' THEN
        -- a run-command job changed state (expired, cancelled, ...)
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT t.sms_id
          FROM new_rows n JOIN old_rows o USING (job_id)
          JOIN smsdist.job_target_status t ON t.job_id = n.job_id
         WHERE n.job_type = 'run_command' AND n.state IS DISTINCT FROM o.state
        ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP = 'DELETE' THEN
        -- (also for a deleted machine: its files must go)
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT o.sms_id FROM old_rows o ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSE
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT n.sms_id FROM new_rows n ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION queue_pcm_for_program() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    INSERT INTO smsdist.pcm_queue (sms_id)
    SELECT DISTINCT t.sms_id
      FROM new_rows n
      JOIN smsdist.jobs j ON j.package_id = n.package_id AND j.program_name = n.program_name
      JOIN smsdist.job_target_status t ON t.job_id = j.job_id
      JOIN smsdist.system_resources r ON r.sms_id = t.sms_id
     WHERE j.job_type = 'run_command' AND j.state = 'active'
       AND t.state NOT IN ('cancelled', 'expired')
       AND r.site_code = current_setting('smsdist.site_code')
    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION queue_system_evaluation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    SELECT count(*) INTO n FROM new_rows;
    IF n > 10000 THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT collection_id FROM smsdist.collections
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO smsdist.system_evaluation_queue (sms_id)
        SELECT n.sms_id FROM new_rows n JOIN old_rows o USING (sms_id)
         WHERE (n.*) IS DISTINCT FROM (o.*)
        ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSE
        INSERT INTO smsdist.system_evaluation_queue (sms_id)
        SELECT sms_id FROM new_rows ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;

-- Every SECURITY DEFINER function and every trigger function: no EXECUTE
-- for PUBLIC (those the roles need are granted above and in earlier
-- versions).  smsdist_site (before 0.7) keeps nothing.
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace
                AND (p.prosecdef OR p.prorettype = 'trigger'::regtype) LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'smsdist_site') THEN
        REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM smsdist_site;
        REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM smsdist_site;
    END IF;
END
$$;
