-- smsdist 0.3 -> 0.4: maintenance windows per collection; advertisements
-- (with their collections, programs and windows) sent to child sites.
\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.4'" to load this file. \quit

-------------------------------------------------------------------------------
-- Maintenance windows.  A window belongs to a collection and applies to its
-- members: weekly, from start_time (the client's own wall-clock time of
-- day) for duration_minutes, on the given days.  The offer file of an
-- advertisement carries the windows of its collection; a machine's policy
-- (the management point) carries the windows of every collection it is a
-- member of.  The client agent runs mandatory assignments inside them.
-------------------------------------------------------------------------------
CREATE TYPE weekday AS ENUM ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun');

-- true if no day is given twice (a CHECK cannot hold a subquery itself)
CREATE FUNCTION weekdays_distinct(days weekday[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT count(DISTINCT d) = count(*) FROM unnest(days) d $$;

CREATE TABLE maintenance_windows (
    window_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    name             object_name NOT NULL,
    start_time       time(0) NOT NULL,
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 1 AND 10080),
    days             weekday[] NOT NULL,
    enabled          boolean NOT NULL DEFAULT true,
    comment          text CHECK (length(comment) <= 4000),
    UNIQUE (collection_id, name),
    CONSTRAINT window_starts_on_a_minute CHECK (date_trunc('minute', start_time) = start_time),
    CONSTRAINT window_has_days_once_each
        CHECK (cardinality(days) BETWEEN 1 AND 7 AND array_ndims(days) = 1
               AND array_position(days, NULL) IS NULL AND weekdays_distinct(days))
);
CREATE INDEX ON maintenance_windows (collection_id);

REVOKE ALL ON maintenance_windows FROM PUBLIC;
REVOKE ALL ON FUNCTION weekdays_distinct(weekday[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION weekdays_distinct(weekday[]) TO smsdist_reader;
GRANT SELECT ON maintenance_windows TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON maintenance_windows TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.maintenance_windows', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.maintenance_windows_window_id_seq', '');

CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON maintenance_windows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager,sender');
-- a policy names the machine's site and platform
CREATE TRIGGER notify_offer_manager AFTER UPDATE OF site_code, platform ON system_resources
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');

-- The management point.  A machine's policy, computed: what machine_policy()
-- returned in 0.3, plus its maintenance windows.  The Offer Manager stores
-- it in machine_policies (for every machine an advertisement targets) each
-- time it runs, and machine_policy() serves the stored copy: a request costs
-- two index lookups instead of walking every advertisement (1,500 requests/s
-- computed, see docs/benchmarks.md).
CREATE FUNCTION compute_machine_policy(p_sms_id text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE tgt(advert_id, collection_id, depth) AS (
        SELECT a.advert_id::text, a.collection_id::text, 0
          FROM smsdist.advertisements a WHERE a.enabled
        UNION
        SELECT t.advert_id, s.child_collection_id::text, t.depth + 1
          FROM tgt t JOIN smsdist.advertisements a ON a.advert_id = t.advert_id
          JOIN smsdist.collection_subcollections s ON s.parent_collection_id = t.collection_id
         WHERE a.include_subcollections AND t.depth < 100),
    mine AS (
        SELECT DISTINCT t.advert_id FROM tgt t
          JOIN smsdist.collection_members m ON m.collection_id = t.collection_id AND m.sms_id = p_sms_id)
    SELECT jsonb_build_object(
        'machine', r.sms_id, 'site', r.site_code, 'platform', r.platform,
        'advertisements', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'advert_id', a.advert_id, 'name', a.name, 'collection_id', a.collection_id,
                'package_id', a.package_id, 'program', a.program_name,
                'command_line', pr.command_line, 'platforms', to_jsonb(pr.platforms),
                'max_run_minutes', pr.max_run_minutes,
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
              FROM mine JOIN smsdist.advertisements a ON a.advert_id = mine.advert_id
              JOIN smsdist.programs pr ON pr.package_id = a.package_id AND pr.program_name = a.program_name
              LEFT JOIN LATERAL (
                  SELECT max(l.source_version) AS version,
                         jsonb_agg(l.path ORDER BY l.site_system_id) AS paths
                    FROM smsdist.package_locations l
                   WHERE l.package_id = a.package_id AND l.site_code = r.site_code) loc ON true),
            '[]'::jsonb),
        'maintenance_windows', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'collection_id', w.collection_id, 'name', w.name,
                'start', to_char(w.start_time, 'HH24:MI'), 'duration_minutes', w.duration_minutes,
                'days', (SELECT jsonb_agg(d ORDER BY d) FROM unnest(w.days) d))
                ORDER BY w.start_time, w.duration_minutes, w.collection_id, w.name)
              FROM smsdist.maintenance_windows w
              JOIN smsdist.collection_members m ON m.collection_id = w.collection_id AND m.sms_id = r.sms_id
             WHERE w.enabled), '[]'::jsonb))
      FROM smsdist.system_resources r WHERE r.sms_id = p_sms_id
$$;

ALTER TABLE machine_policies ADD COLUMN policy jsonb;
COMMENT ON COLUMN machine_policies.policy IS
    'compute_machine_policy() as the Offer Manager last computed it; machine_policy() serves it';

-- What an agent calls: the stored policy, or, for a machine no advertisement
-- targets, the policy computed now.  (A change of a machine's site or
-- platform wakes the Offer Manager, which stores its policy again.)
CREATE OR REPLACE FUNCTION machine_policy(p_sms_id text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL, not SQL: its plan is kept across calls
    RETURN (SELECT coalesce(mp.policy, smsdist.compute_machine_policy(r.sms_id))
              FROM smsdist.system_resources r
              LEFT JOIN smsdist.machine_policies mp ON mp.sms_id = r.sms_id
             WHERE r.sms_id = p_sms_id);
END
$$;
REVOKE ALL ON FUNCTION compute_machine_policy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compute_machine_policy(text) TO smsdist_reader;

-------------------------------------------------------------------------------
-- Advertisements at child sites.  As in SMS, an advertisement made at a site
-- is sent to each of its child sites, with what the child needs to act on
-- it alone: the package and program definitions, the schedule, and each
-- targeted collection (the advertisement's, and its subcollections when it
-- includes them) with its maintenance windows and its members -- the
-- machines behind that child, and every user and user group.  At the child
-- these collections are copies kept by the parent (collections.source_site):
-- direct rules naming the members, which the child's Collection Evaluator
-- turns into membership, so its Offer Manager writes the files for its
-- CAPs and its management point serves the policy.  The child sends them on
-- to its own children the same way.  A disabled advertisement is sent
-- disabled; a deleted one is deleted at the child.
-------------------------------------------------------------------------------
ALTER TABLE collections ADD COLUMN source_site site_code;
ALTER TABLE advertisements ADD COLUMN source_site site_code;
COMMENT ON COLUMN collections.source_site IS
    'set for a copy kept by that parent site: its rules are replaced whenever the parent sends them';
COMMENT ON COLUMN advertisements.source_site IS
    'set for an advertisement made at that parent site and sent here';

-- What the Sender last told each child site about each advertisement.
CREATE TABLE advertisement_pushes (
    advert_id        sms_id NOT NULL,
    hop              site_code NOT NULL,
    payload_md5      text,                  -- of what the child has; NULL: nothing yet
    pushed_at        timestamptz,
    attempted_at     timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    PRIMARY KEY (advert_id, hop)
);
REVOKE ALL ON advertisement_pushes FROM PUBLIC;
GRANT SELECT ON advertisement_pushes TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.advertisement_pushes', '');

-- The collections an advertisement targets: its own, and its
-- subcollections (recursively) when it includes them.
CREATE FUNCTION advertisement_collections(p_advert_id text) RETURNS SETOF text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE c(collection_id, depth) AS (
        SELECT a.collection_id::text, 0 FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id
        UNION
        SELECT s.child_collection_id::text, c.depth + 1
          FROM c JOIN smsdist.collection_subcollections s ON s.parent_collection_id = c.collection_id
         WHERE c.depth < 100
           AND (SELECT a.include_subcollections FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id))
    SELECT DISTINCT collection_id FROM c
$$;

-- What child site p_hop needs of an advertisement (see above).
CREATE FUNCTION advertisement_details(p_advert_id text, p_hop text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'advert', jsonb_build_object(
            'advert_id', a.advert_id, 'name', a.name, 'package_id', a.package_id,
            'program_name', a.program_name, 'collection_id', a.collection_id,
            'include_subcollections', a.include_subcollections,
            'offer_time', a.offer_time, 'offer_time_utc', a.offer_time_utc,
            'expires_time', a.expires_time, 'expires_time_utc', a.expires_time_utc,
            'enabled', a.enabled, 'comment', a.comment),
        'package', jsonb_build_object(
            'package_id', p.package_id, 'name', p.name, 'version', p.version,
            'manufacturer', p.manufacturer, 'language', p.language,
            'source_directory', p.source_directory),
        'program', jsonb_build_object(
            'program_name', pr.program_name, 'command_line', pr.command_line,
            'platforms', to_jsonb(pr.platforms), 'max_run_minutes', pr.max_run_minutes),
        'assignments', coalesce((
            SELECT jsonb_agg(jsonb_build_object('assign_time', s.assign_time, 'assign_time_utc', s.assign_time_utc,
                                                'recur_every', s.recur_every)
                             ORDER BY s.assign_time, s.assign_time_utc, s.recur_every)
              FROM smsdist.advertisement_assignments s WHERE s.advert_id = a.advert_id), '[]'::jsonb),
        'collections', (
            SELECT jsonb_agg(jsonb_build_object(
                'collection_id', c.collection_id, 'name', c.name,
                'subcollections', coalesce((
                    SELECT jsonb_agg(s.child_collection_id ORDER BY s.child_collection_id)
                      FROM smsdist.collection_subcollections s
                     WHERE s.parent_collection_id = c.collection_id
                       AND s.child_collection_id IN (SELECT smsdist.advertisement_collections(a.advert_id))),
                    '[]'::jsonb),
                'windows', coalesce((
                    SELECT jsonb_agg(jsonb_build_object('name', w.name, 'start_time', w.start_time,
                                                        'duration_minutes', w.duration_minutes,
                                                        'days', to_jsonb(w.days), 'enabled', w.enabled)
                                     ORDER BY w.name)
                      FROM smsdist.maintenance_windows w WHERE w.collection_id = c.collection_id), '[]'::jsonb),
                'machines', coalesce((
                    SELECT jsonb_agg(jsonb_build_object('sms_id', r.sms_id, 'name', r.name, 'domain', r.domain,
                                                        'site_code', r.site_code, 'platform', r.platform)
                                     ORDER BY r.sms_id)
                      FROM smsdist.collection_members m JOIN smsdist.system_resources r ON r.sms_id = m.sms_id
                     WHERE m.collection_id = c.collection_id
                       AND r.site_code IN (SELECT s.site_code FROM smsdist.sites s
                                            WHERE s.site_code = p_hop OR smsdist.route_hop(s.site_code) = p_hop)),
                    '[]'::jsonb),
                'users', coalesce((
                    SELECT jsonb_agg(jsonb_build_object('domain', u.domain, 'user_name', u.user_name)
                                     ORDER BY u.domain, u.user_name)
                      FROM smsdist.collection_user_members u WHERE u.collection_id = c.collection_id), '[]'::jsonb),
                'groups', coalesce((
                    SELECT jsonb_agg(jsonb_build_object('domain', g.domain, 'group_name', g.group_name)
                                     ORDER BY g.domain, g.group_name)
                      FROM smsdist.collection_group_members g WHERE g.collection_id = c.collection_id), '[]'::jsonb))
                ORDER BY c.collection_id)
              FROM smsdist.collections c
             WHERE c.collection_id IN (SELECT smsdist.advertisement_collections(a.advert_id))))
      FROM smsdist.advertisements a
      JOIN smsdist.packages p ON p.package_id = a.package_id
      JOIN smsdist.programs pr ON pr.package_id = a.package_id AND pr.program_name = a.program_name
     WHERE a.advert_id = p_advert_id
$$;

-- Each (advertisement, child site) whose child does not have its current
-- details, or that the child must delete: what the Sender does next.
-- details is NULL for a deletion (also of one the child never took: that
-- is a no-op there, and forgets the failed attempt here).  A failed push waits 2^attempts seconds
-- (at most 60) before the next try.
CREATE FUNCTION advertisement_pushes_due() RETURNS TABLE (advert_id text, hop text, details jsonb, conninfo text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH hops AS (
        SELECT s.site_code::text AS hop FROM smsdist.sites s
         WHERE s.parent_site_code = current_setting('smsdist.site_code')::smsdist.site_code),
    wanted AS (
        SELECT a.advert_id::text AS advert_id, h.hop, smsdist.advertisement_details(a.advert_id, h.hop) AS details
          FROM smsdist.advertisements a CROSS JOIN hops h),
    due AS (
        SELECT w.advert_id, w.hop, w.details FROM wanted w
          LEFT JOIN smsdist.advertisement_pushes p ON p.advert_id = w.advert_id AND p.hop = w.hop
         WHERE w.details IS NOT NULL AND p.payload_md5 IS DISTINCT FROM md5(w.details::text)
        UNION ALL
        SELECT p.advert_id, p.hop, NULL FROM smsdist.advertisement_pushes p
         WHERE NOT EXISTS (SELECT 1 FROM wanted w WHERE w.advert_id = p.advert_id AND w.hop = p.hop))
    SELECT d.advert_id, d.hop, d.details,
           (SELECT sa.conninfo::text FROM smsdist.sender_addresses sa
             WHERE sa.target_site_code = d.hop AND sa.enabled ORDER BY sa.priority LIMIT 1)
      FROM due d
      LEFT JOIN smsdist.advertisement_pushes p ON p.advert_id = d.advert_id AND p.hop = d.hop
     WHERE p.last_error IS NULL
        OR p.attempted_at + make_interval(secs => least(60, power(2, least(p.attempts, 6)))) <= clock_timestamp()
     ORDER BY d.hop, d.advert_id
$$;

-- At the child: take an advertisement sent by the parent (the connecting
-- role must be a member of smsdist_site).
CREATE FUNCTION receive_advertisement(details jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ad jsonb := details->'advert';
    pkg jsonb := details->'package';
    prog jsonb := details->'program';
    parent smsdist.site_code;
    here text := current_setting('smsdist.site_code');
    c jsonb;
    local_one text;
BEGIN
    SELECT s.parent_site_code INTO parent FROM smsdist.sites s WHERE s.site_code = here::smsdist.site_code;
    IF parent IS NULL THEN
        RAISE EXCEPTION 'site % has no parent site to take advertisement % from', here, ad->>'advert_id'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF ad IS NULL OR pkg IS NULL OR prog IS NULL OR jsonb_typeof(details->'collections') <> 'array' THEN
        RAISE EXCEPTION 'incomplete advertisement details: advert, package, program and collections are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the parent's collections must not replace this site's own
    SELECT x.collection_id INTO local_one
      FROM jsonb_array_elements(details->'collections') e
      JOIN smsdist.collections x ON x.collection_id = e->>'collection_id'
     WHERE x.source_site IS NULL LIMIT 1;
    IF local_one IS NOT NULL THEN
        RAISE EXCEPTION 'collection % of advertisement % exists at site % as a collection of its own',
            local_one, ad->>'advert_id', here
            USING ERRCODE = 'unique_violation',
                  HINT = 'Rename or delete this site''s collection: the parent''s has the same ID.';
    END IF;
    IF EXISTS (SELECT 1 FROM smsdist.advertisements x WHERE x.advert_id = ad->>'advert_id' AND x.source_site IS NULL) THEN
        RAISE EXCEPTION 'advertisement % exists at site % as an advertisement of its own', ad->>'advert_id', here
            USING ERRCODE = 'unique_violation';
    END IF;

    INSERT INTO smsdist.packages (package_id, name, version, manufacturer, language, source_directory)
    VALUES (pkg->>'package_id', pkg->>'name', pkg->>'version', pkg->>'manufacturer', pkg->>'language',
            pkg->>'source_directory')
    ON CONFLICT (package_id) DO UPDATE
       SET name = EXCLUDED.name, version = EXCLUDED.version, manufacturer = EXCLUDED.manufacturer,
           language = EXCLUDED.language
     WHERE (packages.name, packages.version, packages.manufacturer, packages.language)
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.version, EXCLUDED.manufacturer, EXCLUDED.language);
    INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes)
    VALUES (pkg->>'package_id', prog->>'program_name', prog->>'command_line',
            (SELECT array_agg(p::smsdist.platform) FROM jsonb_array_elements_text(
                 CASE WHEN jsonb_typeof(prog->'platforms') = 'array' THEN prog->'platforms' END) p),
            (prog->>'max_run_minutes')::integer)
    ON CONFLICT (package_id, program_name) DO UPDATE
       SET command_line = EXCLUDED.command_line, platforms = EXCLUDED.platforms,
           max_run_minutes = EXCLUDED.max_run_minutes
     WHERE (programs.command_line, programs.platforms, programs.max_run_minutes)
           IS DISTINCT FROM (EXCLUDED.command_line, EXCLUDED.platforms, EXCLUDED.max_run_minutes);

    FOR c IN SELECT * FROM jsonb_array_elements(details->'collections') LOOP
        INSERT INTO smsdist.collections (collection_id, name, comment, source_site)
        VALUES (c->>'collection_id', c->>'name', 'kept by site ' || parent, parent)
        ON CONFLICT (collection_id) DO UPDATE SET name = EXCLUDED.name, source_site = EXCLUDED.source_site
         WHERE (collections.name, collections.source_site) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.source_site);

        -- members: direct rules, changed by difference (the evaluator does the rest)
        PERFORM smsdist.record_machines(c->'machines');
        INSERT INTO smsdist.users (domain, user_name)
        SELECT u->>'domain', u->>'user_name' FROM jsonb_array_elements(c->'users') u
        ON CONFLICT DO NOTHING;
        INSERT INTO smsdist.user_groups (domain, group_name)
        SELECT g->>'domain', g->>'group_name' FROM jsonb_array_elements(c->'groups') g
        ON CONFLICT DO NOTHING;
        WITH want AS (
            SELECT m->>'sms_id' AS sms_id, NULL::text AS ud, NULL::text AS un, NULL::text AS gd, NULL::text AS gn
              FROM jsonb_array_elements(c->'machines') m
             WHERE EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id = m->>'sms_id')
            UNION ALL
            SELECT NULL, u->>'domain', u->>'user_name', NULL, NULL FROM jsonb_array_elements(c->'users') u
            UNION ALL
            SELECT NULL, NULL, NULL, g->>'domain', g->>'group_name' FROM jsonb_array_elements(c->'groups') g),
        gone AS (
            DELETE FROM smsdist.collection_rules r
             WHERE r.collection_id = c->>'collection_id'
               AND NOT EXISTS (SELECT 1 FROM want w
                                WHERE r.rule_type = 'direct'
                                  AND w.sms_id IS NOT DISTINCT FROM r.resource_sms_id::text
                                  AND w.ud IS NOT DISTINCT FROM r.user_domain::text
                                  AND w.un IS NOT DISTINCT FROM r.user_name::text
                                  AND w.gd IS NOT DISTINCT FROM r.group_domain::text
                                  AND w.gn IS NOT DISTINCT FROM r.group_name::text)
            RETURNING 1)
        INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id,
                                              user_domain, user_name, group_domain, group_name)
        SELECT c->>'collection_id', 'direct', w.sms_id, w.ud, w.un, w.gd, w.gn FROM want w
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.collection_rules r
                            WHERE r.collection_id = c->>'collection_id' AND r.rule_type = 'direct'
                              AND w.sms_id IS NOT DISTINCT FROM r.resource_sms_id::text
                              AND w.ud IS NOT DISTINCT FROM r.user_domain::text
                              AND w.un IS NOT DISTINCT FROM r.user_name::text
                              AND w.gd IS NOT DISTINCT FROM r.group_domain::text
                              AND w.gn IS NOT DISTINCT FROM r.group_name::text);

        -- windows: replaced when they differ
        IF (SELECT coalesce(jsonb_agg(jsonb_build_object('name', w.name, 'start_time', w.start_time,
                                                         'duration_minutes', w.duration_minutes,
                                                         'days', to_jsonb(w.days), 'enabled', w.enabled)
                                      ORDER BY w.name), '[]'::jsonb)
              FROM smsdist.maintenance_windows w WHERE w.collection_id = c->>'collection_id')
           IS DISTINCT FROM c->'windows' THEN
            DELETE FROM smsdist.maintenance_windows w WHERE w.collection_id = c->>'collection_id';
            INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days, enabled)
            SELECT c->>'collection_id', w->>'name', (w->>'start_time')::time, (w->>'duration_minutes')::integer,
                   (SELECT array_agg(d::smsdist.weekday) FROM jsonb_array_elements_text(w->'days') d),
                   (w->>'enabled')::boolean
              FROM jsonb_array_elements(c->'windows') w;
        END IF;
    END LOOP;

    -- subcollection links among the parent's collections, as the parent has them
    DELETE FROM smsdist.collection_subcollections s
     WHERE s.parent_collection_id IN (SELECT e->>'collection_id' FROM jsonb_array_elements(details->'collections') e)
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(details->'collections') e,
                                     jsonb_array_elements_text(e->'subcollections') k
                        WHERE e->>'collection_id' = s.parent_collection_id AND k = s.child_collection_id);
    INSERT INTO smsdist.collection_subcollections (parent_collection_id, child_collection_id)
    SELECT e->>'collection_id', k FROM jsonb_array_elements(details->'collections') e,
                                       jsonb_array_elements_text(e->'subcollections') k
    ON CONFLICT DO NOTHING;

    INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id,
                                        include_subcollections, offer_time, offer_time_utc,
                                        expires_time, expires_time_utc, enabled, comment, source_site)
    VALUES (ad->>'advert_id', ad->>'name', ad->>'package_id', ad->>'program_name', ad->>'collection_id',
            (ad->>'include_subcollections')::boolean, (ad->>'offer_time')::timestamp,
            (ad->>'offer_time_utc')::boolean, (ad->>'expires_time')::timestamp,
            (ad->>'expires_time_utc')::boolean, (ad->>'enabled')::boolean, ad->>'comment', parent)
    ON CONFLICT (advert_id) DO UPDATE
       SET name = EXCLUDED.name, package_id = EXCLUDED.package_id, program_name = EXCLUDED.program_name,
           collection_id = EXCLUDED.collection_id, include_subcollections = EXCLUDED.include_subcollections,
           offer_time = EXCLUDED.offer_time, offer_time_utc = EXCLUDED.offer_time_utc,
           expires_time = EXCLUDED.expires_time, expires_time_utc = EXCLUDED.expires_time_utc,
           enabled = EXCLUDED.enabled, comment = EXCLUDED.comment, source_site = EXCLUDED.source_site;

    IF (SELECT coalesce(jsonb_agg(jsonb_build_object('assign_time', s.assign_time, 'assign_time_utc', s.assign_time_utc,
                                                     'recur_every', s.recur_every)
                                  ORDER BY s.assign_time, s.assign_time_utc, s.recur_every), '[]'::jsonb)
          FROM smsdist.advertisement_assignments s WHERE s.advert_id = ad->>'advert_id')
       IS DISTINCT FROM details->'assignments' THEN
        DELETE FROM smsdist.advertisement_assignments s WHERE s.advert_id = ad->>'advert_id';
        INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc, recur_every)
        SELECT ad->>'advert_id', (x->>'assign_time')::timestamp, (x->>'assign_time_utc')::boolean,
               (x->>'recur_every')::interval
          FROM jsonb_array_elements(details->'assignments') x;
    END IF;
    PERFORM smsdist.remove_unused_parent_collections();
END
$$;

-- At the child: delete a parent's advertisement (the parent deleted it).
CREATE FUNCTION remove_advertisement(p_advert_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id AND a.source_site IS NULL) THEN
        RAISE EXCEPTION 'advertisement % is this site''s own: a parent cannot remove it', p_advert_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id;
    PERFORM smsdist.remove_unused_parent_collections();
END
$$;

-- The parent's copies that no advertisement here targets any more (nor a
-- collection of this site uses) are removed.
CREATE FUNCTION remove_unused_parent_collections() RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE used(collection_id, depth) AS (
        SELECT a.collection_id::text, 0 FROM smsdist.advertisements a
        UNION
        SELECT s.child_collection_id::text, u.depth + 1
          FROM used u JOIN smsdist.collection_subcollections s ON s.parent_collection_id = u.collection_id
         WHERE u.depth < 100)
    DELETE FROM smsdist.collections c
     WHERE c.source_site IS NOT NULL
       AND c.collection_id NOT IN (SELECT collection_id FROM used)
       AND NOT EXISTS (SELECT 1 FROM smsdist.collections o WHERE o.limiting_collection_id = c.collection_id)
       AND NOT EXISTS (SELECT 1 FROM smsdist.collection_rules r WHERE r.ref_collection_id = c.collection_id
                                                              AND r.collection_id <> c.collection_id)
       AND NOT EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.target_collection_id = c.collection_id)
$$;

REVOKE ALL ON FUNCTION advertisement_collections(text), advertisement_details(text, text),
    advertisement_pushes_due(), receive_advertisement(jsonb), remove_advertisement(text),
    remove_unused_parent_collections() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION advertisement_collections(text), advertisement_details(text, text)
    TO smsdist_reader;
GRANT EXECUTE ON FUNCTION receive_advertisement(jsonb), remove_advertisement(text) TO smsdist_site;

-- The Sender sends changed advertisements on: it is woken by what they
-- carry.  (Membership changes wake it through collections.members_changed_at.)
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON advertisements
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON advertisement_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');
CREATE TRIGGER notify_sender AFTER UPDATE OF members_changed_at, name ON collections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON collection_subcollections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');
CREATE TRIGGER notify_sender AFTER UPDATE ON programs
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');
CREATE TRIGGER notify_sender AFTER INSERT OR DELETE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-------------------------------------------------------------------------------
-- Status messages from client agents.  The Status Manager takes each file
-- an agent writes to its CAP's statmsgs.box into status_messages: at is
-- when the site took it, client_at the agent's own clock, client_sequence
-- the agent's message number.  A file read twice (a crash between the
-- insert and the removal of the file) is recorded once.
-------------------------------------------------------------------------------
ALTER TABLE status_messages
    ADD COLUMN client_at timestamptz,
    ADD COLUMN client_sequence bigint CHECK (client_sequence BETWEEN 0 AND 9999999999);
CREATE UNIQUE INDEX status_messages_client_once ON status_messages (machine, client_sequence, client_at)
    WHERE client_sequence IS NOT NULL;

-- Per advertisement: how many machines of this site it targets, and how
-- many agents have reported it offered (10001), its package downloaded
-- (10003), its program succeeded (10008) or failed (10009), with the last
-- report.
CREATE VIEW advertisement_status AS
SELECT a.advert_id, a.name, a.enabled,
       (SELECT count(DISTINCT m.sms_id)
          FROM smsdist.collection_members m
          JOIN smsdist.system_resources r ON r.sms_id = m.sms_id
         WHERE m.collection_id IN (SELECT smsdist.advertisement_collections(a.advert_id))
           AND r.site_code = current_setting('smsdist.site_code')::smsdist.site_code) AS targeted,
       coalesce(s.offered, 0) AS offered, coalesce(s.downloaded, 0) AS downloaded,
       coalesce(s.succeeded, 0) AS succeeded, coalesce(s.failed, 0) AS failed, s.last_report_at
  FROM smsdist.advertisements a
  LEFT JOIN LATERAL (
      SELECT count(DISTINCT m.machine) FILTER (WHERE m.message_id = 10001) AS offered,
             count(DISTINCT m.machine) FILTER (WHERE m.message_id = 10003) AS downloaded,
             count(DISTINCT m.machine) FILTER (WHERE m.message_id = 10008) AS succeeded,
             count(DISTINCT m.machine) FILTER (WHERE m.message_id = 10009) AS failed,
             max(m.at) FILTER (WHERE m.client_sequence IS NOT NULL) AS last_report_at
        FROM smsdist.status_messages m WHERE m.advert_id = a.advert_id) s ON true;

-- Per run-command job: its machines at this site, and how many agents
-- have reported it offered (10002), succeeded (10008) or failed (10009).
CREATE VIEW job_status AS
SELECT j.job_id, j.state,
       (SELECT count(*) FROM smsdist.job_target_status t
         WHERE t.job_id = j.job_id
           AND t.site_code = current_setting('smsdist.site_code')::smsdist.site_code) AS targeted,
       coalesce(s.offered, 0) AS offered, coalesce(s.succeeded, 0) AS succeeded,
       coalesce(s.failed, 0) AS failed, s.last_report_at
  FROM smsdist.jobs j
  LEFT JOIN LATERAL (
      SELECT count(DISTINCT m.machine) FILTER (WHERE m.message_id = 10002) AS offered,
             count(DISTINCT m.machine) FILTER (WHERE m.message_id = 10008) AS succeeded,
             count(DISTINCT m.machine) FILTER (WHERE m.message_id = 10009) AS failed,
             max(m.at) FILTER (WHERE m.client_sequence IS NOT NULL) AS last_report_at
        FROM smsdist.status_messages m WHERE m.job_id = j.job_id) s ON true
 WHERE j.job_type = 'run_command';

GRANT SELECT ON advertisement_status, job_status TO smsdist_reader;

-- Advanced clients send their status messages through the management
-- point instead of a CAP's inbox: the same row, recorded once per (machine,
-- sequence, client time).  Granted to smsdist_client.
CREATE FUNCTION client_status(p_machine text, p_sequence bigint, p_client_at timestamptz,
                              p_message_id integer, p_severity text, p_component text, p_text text,
                              p_advert_id text DEFAULT NULL, p_job_id text DEFAULT NULL,
                              p_package_id text DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    site smsdist.site_code;
BEGIN
    SELECT r.site_code INTO site FROM smsdist.system_resources r WHERE r.sms_id = p_machine;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown machine %', p_machine USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF p_component !~ '^[A-Za-z0-9_. -]{1,64}$' THEN
        RAISE EXCEPTION 'invalid component "%": 1-64 of A-Z a-z 0-9 _ . - and space', p_component
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
REVOKE ALL ON FUNCTION client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text) TO smsdist_client;

-------------------------------------------------------------------------------
-- Status summaries travel up: each site's Status Manager sends its parent,
-- per advertisement and per run-command job that came from above, how many
-- of its machines were targeted, offered, downloaded, succeeded and failed
-- (its own and those its children reported to it).  The parent keeps them
-- per reporting site.  The child reaches its parent through a
-- sender_addresses row for the parent's site code.
-------------------------------------------------------------------------------
CREATE TABLE site_status_reports (
    site_code        site_code NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('advertisement', 'job')),
    object_id        sms_id NOT NULL,
    targeted         integer NOT NULL CHECK (targeted >= 0),
    offered          integer NOT NULL CHECK (offered >= 0),
    downloaded       integer NOT NULL CHECK (downloaded >= 0),
    succeeded        integer NOT NULL CHECK (succeeded >= 0),
    failed           integer NOT NULL CHECK (failed >= 0),
    reported_by      site_code NOT NULL,
    reported_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (site_code, kind, object_id)
);
REVOKE ALL ON site_status_reports FROM PUBLIC;
GRANT SELECT ON site_status_reports TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.site_status_reports', '');

-- What this site sends its parent: its own counts for the parent's
-- advertisements and jobs, and the rows its children sent it.
CREATE FUNCTION status_report_for_parent() RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(r ORDER BY r->>'site_code', r->>'kind', r->>'object_id'), '[]'::jsonb) FROM (
        SELECT jsonb_build_object('site_code', current_setting('smsdist.site_code'), 'kind', 'advertisement',
                                  'object_id', s.advert_id, 'targeted', s.targeted, 'offered', s.offered,
                                  'downloaded', s.downloaded, 'succeeded', s.succeeded, 'failed', s.failed) AS r
          FROM smsdist.advertisement_status s
          JOIN smsdist.advertisements a ON a.advert_id = s.advert_id
         WHERE a.source_site IS NOT NULL
        UNION ALL
        SELECT jsonb_build_object('site_code', current_setting('smsdist.site_code'), 'kind', 'job',
                                  'object_id', s.job_id, 'targeted', s.targeted, 'offered', s.offered,
                                  'downloaded', 0, 'succeeded', s.succeeded, 'failed', s.failed)
          FROM smsdist.job_status s
         WHERE left(s.job_id, 3) <> current_setting('smsdist.site_code')
        UNION ALL
        SELECT jsonb_build_object('site_code', x.site_code, 'kind', x.kind, 'object_id', x.object_id,
                                  'targeted', x.targeted, 'offered', x.offered, 'downloaded', x.downloaded,
                                  'succeeded', x.succeeded, 'failed', x.failed)
          FROM smsdist.site_status_reports x) q(r)
$$;

-- At the parent: a child's report replaces what that child reported before
-- (the connecting role must be a member of smsdist_site).
CREATE FUNCTION receive_status_report(p_child text, report jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code = p_child
                      AND s.parent_site_code = current_setting('smsdist.site_code')::smsdist.site_code) THEN
        RAISE EXCEPTION 'site % is not a child of site %', p_child, current_setting('smsdist.site_code')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF jsonb_typeof(report) <> 'array' THEN
        RAISE EXCEPTION 'a status report is a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM smsdist.site_status_reports WHERE reported_by = p_child;
    INSERT INTO smsdist.site_status_reports (site_code, kind, object_id, targeted, offered, downloaded,
                                             succeeded, failed, reported_by)
    SELECT r->>'site_code', r->>'kind', r->>'object_id', (r->>'targeted')::integer, (r->>'offered')::integer,
           (r->>'downloaded')::integer, (r->>'succeeded')::integer, (r->>'failed')::integer, p_child
      FROM jsonb_array_elements(report) r
     -- a child speaks for itself and the sites below it, nobody else
     WHERE r->>'site_code' = p_child OR smsdist.route_hop((r->>'site_code')::smsdist.site_code) = p_child
    ON CONFLICT (site_code, kind, object_id) DO UPDATE
       SET targeted = EXCLUDED.targeted, offered = EXCLUDED.offered, downloaded = EXCLUDED.downloaded,
           succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed, reported_by = EXCLUDED.reported_by,
           reported_at = clock_timestamp();
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION status_report_for_parent(), receive_status_report(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION status_report_for_parent() TO smsdist_reader;
GRANT EXECUTE ON FUNCTION receive_status_report(text, jsonb) TO smsdist_site;
-- a report from a child is passed on up at once
CREATE TRIGGER notify_status_manager AFTER INSERT OR UPDATE OR DELETE ON site_status_reports
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('status_manager');
