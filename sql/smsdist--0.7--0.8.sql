/* smsdist 0.7 -> 0.8: every job and every target ends in a true state.
 *
 * A target (a run-command job or an advertisement, times one machine) has
 * one current state, moved by the agent's own status messages in the same
 * transaction that records them; jobs end when every target at every site
 * is final; cancel, expire and retry reach every site that holds a copy.
 * docs/status-messages.md and docs/data-model.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.8'" to load this file. \quit

-------------------------------------------------------------------------------
-- Target lifecycle
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Job control across the hierarchy (cancel, expire, retry)
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Advanced-mode parity (run-command jobs, user and group advertisements)
-------------------------------------------------------------------------------

-- The run-command jobs a machine of site p_site is to be offered: its PCM
-- file says exactly these (src/pcm_writer.c reads them from here), and its
-- policy (compute_machine_policy(), "jobs") too.  A job is live for a
-- machine when it is an active run-command job, not past its expiry, whose
-- package is distributed at the machine's site (its 'distribute' row there
-- is done, with at least one location), and the machine is its target in a
-- state that still wants the job (not cancelled, expired or not
-- applicable).  An SQL function that the planner inlines: a caller's
-- condition on sms_id reaches the index.
CREATE FUNCTION live_run_jobs(p_sms_ids text[], p_site text)
    RETURNS TABLE (sms_id text, job_id text, package_id text, package_name text,
                   source_version integer, program_name text, command_line text,
                   platforms text[], offer_after timestamptz, mandatory_at timestamptz,
                   expires_at timestamptz, max_run_minutes integer, locations text[],
                   package_sha256 text, run_with text)
    LANGUAGE sql STABLE
AS $$
    SELECT t.sms_id::text, j.job_id::text, j.package_id::text, p.name::text,
           j.source_version, j.program_name::text, pr.command_line::text,
           pr.platforms::text[], coalesce(j.offer_after, j.start_after), j.mandatory_at,
           j.expires_at, pr.max_run_minutes, loc.paths,
           coalesce(encode(pg_catalog.sha256(pg_catalog.convert_to(b.manifest, 'UTF8')), 'hex'), b.sha256),
           pr.run_with
      FROM smsdist.job_target_status t
      JOIN smsdist.system_resources r ON r.sms_id = t.sms_id AND r.site_code = p_site
      JOIN smsdist.jobs j ON j.job_id = t.job_id
      JOIN smsdist.packages p ON p.package_id = j.package_id
      JOIN smsdist.programs pr ON pr.package_id = j.package_id AND pr.program_name = j.program_name
      JOIN smsdist.package_builds b ON b.package_id = j.package_id AND b.source_version = j.source_version
      JOIN smsdist.job_site_status d ON d.job_id = j.job_id AND d.site_code = p_site
       AND d.phase = 'distribute' AND d.state = 'done'
      CROSS JOIN LATERAL (SELECT array_agg(l.path::text ORDER BY l.site_system_id) AS paths
                            FROM smsdist.package_locations l
                           WHERE l.package_id = j.package_id AND l.site_code = p_site) loc
     WHERE t.sms_id = ANY (p_sms_ids)
       -- (as text: the same test whatever the states' type has)
       AND t.state::text NOT IN ('cancelled', 'expired', 'not_applicable')
       AND j.job_type = 'run_command' AND j.state = 'active'
       AND (j.expires_at IS NULL OR j.expires_at > pg_catalog.clock_timestamp())
       AND loc.paths IS NOT NULL
$$;
REVOKE ALL ON FUNCTION live_run_jobs(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION live_run_jobs(text[], text) TO smsdist_reader;
COMMENT ON FUNCTION live_run_jobs(text[], text) IS
    'The run-command jobs the PCM files and policies of these machines of site p_site carry.';

-- User and user-group names as the lookup files hold them (DOMAIN\name)
-- and agents match them: equal when equal ignoring the case of A-Z only.
CREATE FUNCTION lookup_name_key(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.translate(p_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
GRANT EXECUTE ON FUNCTION lookup_name_key(text) TO PUBLIC;
CREATE INDEX collection_user_members_lookup
    ON collection_user_members (lookup_name_key(domain || '\' || user_name));
CREATE INDEX collection_group_members_lookup
    ON collection_group_members (lookup_name_key(domain || '\' || group_name));

-- The policy's advertisement entries for these advertisement IDs, as a
-- machine of site p_site gets them, each saying why it is there
-- (p_target: machine, user or user_group); NULL for none.
CREATE FUNCTION policy_advertisements(p_adverts text[], p_site text, p_target text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_agg(jsonb_build_object(
        'advert_id', a.advert_id, 'name', a.name, 'collection_id', a.collection_id,
        'target', p_target,
        'package_id', a.package_id, 'program', a.program_name,
        'command_line', pr.command_line, 'platforms', to_jsonb(pr.platforms),
        'max_run_minutes', pr.max_run_minutes, 'run_with', pr.run_with,
        'offer_time', a.offer_time, 'offer_time_utc', a.offer_time_utc,
        'expires_time', a.expires_time, 'expires_time_utc', a.expires_time_utc,
        'assignments', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'time', s.assign_time, 'time_utc', s.assign_time_utc,
                'recur_every_minutes', (extract(epoch FROM s.recur_every) / 60)::bigint)
                ORDER BY s.assign_time)
            FROM smsdist.advertisement_assignments s WHERE s.advert_id = a.advert_id), '[]'::jsonb),
        'package_version', loc.version,
        -- the package hash: of the manifest published beside the package
        'package_sha256', (SELECT coalesce(encode(sha256(convert_to(b.manifest, 'UTF8')), 'hex'), b.sha256)
                             FROM smsdist.package_builds b
                            WHERE b.package_id = a.package_id AND b.source_version = loc.version),
        'locations', coalesce(loc.paths, '[]'::jsonb))
        ORDER BY a.advert_id)
      FROM smsdist.advertisements a
      JOIN smsdist.programs pr ON pr.package_id = a.package_id AND pr.program_name = a.program_name
      LEFT JOIN LATERAL (
          SELECT max(l.source_version) AS version,
                 jsonb_agg(l.path ORDER BY l.site_system_id) AS paths
            FROM smsdist.package_locations l
           WHERE l.package_id = a.package_id AND l.site_code = p_site) loc ON true
     WHERE a.advert_id = ANY (p_adverts)
$$;
REVOKE ALL ON FUNCTION policy_advertisements(text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION policy_advertisements(text[], text, text) TO smsdist_reader;

-- The enabled advertisements whose collection (with its subcollections,
-- when the advertisement includes them, 100 levels deep at most) has
-- these members: the Offer Manager's lookup files, walked from the member
-- up.  p_kind: 'system' (p_names are SMS IDs), 'user' or 'user_group'
-- (DOMAIN\name, matched as lookup_name_key() does).
CREATE FUNCTION member_advertisements(p_kind text, p_names text[]) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE direct(collection_id) AS (
        SELECT m.collection_id::text FROM smsdist.collection_members m
         WHERE p_kind = 'system' AND m.sms_id = ANY (p_names)
        UNION
        SELECT m.collection_id::text FROM smsdist.collection_user_members m
         WHERE p_kind = 'user'
           AND smsdist.lookup_name_key(m.domain || '\' || m.user_name)
               = ANY (ARRAY(SELECT smsdist.lookup_name_key(n) FROM unnest(p_names) n))
        UNION
        SELECT m.collection_id::text FROM smsdist.collection_group_members m
         WHERE p_kind = 'user_group'
           AND smsdist.lookup_name_key(m.domain || '\' || m.group_name)
               = ANY (ARRAY(SELECT smsdist.lookup_name_key(n) FROM unnest(p_names) n))),
    up(collection_id, depth) AS (
        SELECT collection_id, 0 FROM direct
        UNION
        SELECT s.parent_collection_id::text, u.depth + 1
          FROM up u JOIN smsdist.collection_subcollections s ON s.child_collection_id = u.collection_id
         WHERE u.depth < 100)
    SELECT coalesce(array_agg(DISTINCT a.advert_id::text ORDER BY a.advert_id::text), '{}')
      FROM up JOIN smsdist.advertisements a ON a.collection_id = up.collection_id
     WHERE a.enabled AND (up.depth = 0 OR a.include_subcollections)
$$;
REVOKE ALL ON FUNCTION member_advertisements(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION member_advertisements(text, text[]) TO smsdist_reader;

-- A machine's policy, computed: its advertisements ("target": "machine"),
-- its maintenance windows, and its live run-command jobs (what its PCM
-- file says).  machine_policies keeps it: the Offer Manager stores it for
-- every machine an advertisement targets, the PCM writer for every machine
-- whose PCM file it writes or removes, and each notifies
-- smsdist_policy_<sms id> when it changed.
CREATE OR REPLACE FUNCTION compute_machine_policy(p_sms_id text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'machine', r.sms_id, 'site', r.site_code, 'platform', r.platform,
        'advertisements', coalesce(smsdist.policy_advertisements(
            smsdist.member_advertisements('system', ARRAY[r.sms_id::text]), r.site_code, 'machine'), '[]'::jsonb),
        'maintenance_windows', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'collection_id', w.collection_id, 'name', w.name,
                'start', to_char(w.start_time, 'HH24:MI'), 'duration_minutes', w.duration_minutes,
                'days', (SELECT jsonb_agg(d ORDER BY d) FROM unnest(w.days) d))
                ORDER BY w.start_time, w.duration_minutes, w.collection_id, w.name)
              FROM smsdist.maintenance_windows w
              JOIN smsdist.collection_members m ON m.collection_id = w.collection_id AND m.sms_id = r.sms_id
             WHERE w.enabled), '[]'::jsonb),
        'jobs', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'job_id', lj.job_id, 'package_id', lj.package_id, 'package_name', lj.package_name,
                'package_version', lj.source_version, 'program', lj.program_name,
                'command_line', lj.command_line, 'platforms', to_jsonb(lj.platforms),
                'offer_after', lj.offer_after, 'mandatory_at', lj.mandatory_at, 'expires_at', lj.expires_at,
                'max_run_minutes', lj.max_run_minutes, 'run_with', lj.run_with,
                'package_sha256', lj.package_sha256, 'locations', to_jsonb(lj.locations))
                ORDER BY lj.job_id)
              FROM smsdist.live_run_jobs(ARRAY[r.sms_id::text],
                                         current_setting('smsdist.site_code', true)) lj), '[]'::jsonb))
      FROM smsdist.system_resources r WHERE r.sms_id = p_sms_id
$$;

-- What an agent calls: its machine's policy (the stored copy, or computed
-- now for a machine nothing targets yet) and, when the agent says who is
-- logged on, the advertisements for that user ("target": "user") and for
-- the user's groups ("user_group"), computed at each call, as the user and
-- user-group lookup files give them to a legacy agent.  Names are DOMAIN\name
-- (matched ignoring the case of A-Z), at most smsdist's lookup-name length;
-- at most 256 groups.  Called with the machine alone, it costs what it did.
DROP FUNCTION machine_policy(text);
CREATE FUNCTION machine_policy(p_sms_id text, p_user text DEFAULT NULL, p_groups text[] DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol jsonb;
    site text;
    taken text[];
    ids text[];
    extra jsonb := '[]'::jsonb;
    name text;
    kind text;
    n integer;
BEGIN
    PERFORM smsdist.require_machine_login(p_sms_id);
    -- PL/pgSQL, not SQL: its plan is kept across calls
    SELECT coalesce(mp.policy, smsdist.compute_machine_policy(r.sms_id)), r.site_code
      INTO pol, site
      FROM smsdist.system_resources r
      LEFT JOIN smsdist.machine_policies mp ON mp.sms_id = r.sms_id
     WHERE r.sms_id = p_sms_id;
    IF p_user IS NULL AND p_groups IS NULL THEN
        RETURN pol;
    END IF;

    n := coalesce(cardinality(p_groups), 0);
    IF n > 256 THEN
        RAISE EXCEPTION 'too many groups: % (at most 256)', n
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF array_ndims(p_groups) > 1 THEN
        RAISE EXCEPTION 'the groups must be a one-dimensional array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR name, kind IN SELECT p_user, 'user' WHERE p_user IS NOT NULL
                      UNION ALL SELECT g, 'group' FROM unnest(p_groups) g LOOP
        IF name IS NULL OR octet_length(name) NOT BETWEEN 3 AND 256
           OR name !~ '^[A-Za-z0-9_][A-Za-z0-9_-]{0,14}\\[^\\]'
           OR name ~ '[\x01-\x1f\x7f]' OR name ~ ' $' THEN
            RAISE EXCEPTION 'invalid % name "%"', kind, coalesce(left(name, 300), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A user or group is DOMAIN\name: a NetBIOS domain of 1 to 15 of A-Z a-z 0-9 _ - (not starting with -), a backslash and a name; 3 to 256 bytes, no control characters, no trailing space.';
        END IF;
    END LOOP;
    IF pol IS NULL THEN
        RETURN NULL;            -- no such machine
    END IF;

    SELECT coalesce(array_agg(a->>'advert_id'), '{}') INTO taken
      FROM jsonb_array_elements(pol->'advertisements') a;
    IF p_user IS NOT NULL THEN
        ids := ARRAY(SELECT x FROM unnest(smsdist.member_advertisements('user', ARRAY[p_user])) x
                      WHERE x <> ALL (taken));
        IF cardinality(ids) > 0 THEN
            extra := extra || smsdist.policy_advertisements(ids, site, 'user');
            taken := taken || ids;
        END IF;
    END IF;
    IF n > 0 THEN
        ids := ARRAY(SELECT x FROM unnest(smsdist.member_advertisements('user_group', p_groups)) x
                      WHERE x <> ALL (taken));
        IF cardinality(ids) > 0 THEN
            extra := extra || smsdist.policy_advertisements(ids, site, 'user_group');
        END IF;
    END IF;
    RETURN pol || jsonb_build_object('advertisements', (pol->'advertisements') || extra,
                                     'user', p_user, 'groups', coalesce(to_jsonb(p_groups), '[]'::jsonb));
END
$$;
REVOKE ALL ON FUNCTION machine_policy(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION machine_policy(text, text, text[]) TO smsdist_client, smsdist_reader;
COMMENT ON FUNCTION machine_policy(text, text, text[]) IS
    'An agent''s policy: its machine''s advertisements, maintenance windows and run-command jobs, and the advertisements for its logged-on user and the user''s groups (docs/advertisements.md).';

-- Every stored policy is computed again (it gained "jobs" and "target"):
-- the Offer Manager recomputes those it stored, the PCM writer those of
-- machines with a PCM file (and stores them, notifying the agents).
UPDATE machine_policies SET policy = NULL;
INSERT INTO pcm_queue (sms_id) SELECT sms_id FROM pcm_files
    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;


-------------------------------------------------------------------------------
-- Rerun behaviour, recurrence, not applicable
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Package versions and live jobs
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Every SECURITY DEFINER function and every trigger function: no EXECUTE for
-- PUBLIC (those the roles need are granted in their sections).
-------------------------------------------------------------------------------
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace
                AND (p.prosecdef OR p.prorettype = 'trigger'::regtype) LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
