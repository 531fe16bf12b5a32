/* smsdist 0.4 -> 0.5: a program's run mode (seed 004: the program runs "as
 * the designated user").  As in SMS, a program runs with administrative
 * rights (the agent's own account) or with the logged-on user's rights; the
 * mode travels in the PCM file, the .PKG file, the management point's policy,
 * and to child sites with run-command jobs and advertisements.
 * docs/agent.md#running-programs, docs/formats.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.5'" to load this file. \quit

ALTER TABLE programs ADD COLUMN run_with text NOT NULL DEFAULT 'administrative_rights'
    CONSTRAINT run_with_known CHECK (run_with IN ('administrative_rights', 'user_rights'));
COMMENT ON COLUMN programs.run_with IS
    'administrative_rights: the agent''s own account runs the program; user_rights: the logged-on user''s account (the program waits for a user)';

-- A program changed: the PCM files of this site's machines that its active
-- run-command jobs target are written again (the command line, platforms,
-- maximum run time and run mode are in them).
CREATE FUNCTION queue_pcm_for_program() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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
CREATE TRIGGER queue_pcm_for_program AFTER UPDATE ON programs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm_for_program();

-- The functions below are those of 0.3 and 0.4 with run_with added.

CREATE OR REPLACE FUNCTION run_job_details(p_job_id text, p_hop text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'program_name', j.program_name, 'command_line', pr.command_line,
        'platforms', to_jsonb(pr.platforms), 'max_run_minutes', pr.max_run_minutes, 'run_with', pr.run_with,
        'offer_after', coalesce(j.offer_after, j.start_after), 'mandatory_at', j.mandatory_at,
        'expires_at', j.expires_at, 'priority', j.priority,
        'machines', coalesce((
            SELECT jsonb_agg(jsonb_build_object('sms_id', r.sms_id, 'name', r.name, 'domain', r.domain,
                                                'site_code', r.site_code, 'platform', r.platform)
                             ORDER BY r.sms_id)
              FROM smsdist.job_target_status t JOIN smsdist.system_resources r ON r.sms_id = t.sms_id
             WHERE t.job_id = j.job_id AND t.state NOT IN ('cancelled', 'expired')
               AND (r.site_code = p_hop OR smsdist.route_hop(r.site_code) = p_hop)), '[]'::jsonb))
      FROM smsdist.jobs j
      JOIN smsdist.programs pr ON pr.package_id = j.package_id AND pr.program_name = j.program_name
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command'
$$;

CREATE OR REPLACE FUNCTION record_run_job(p_job_id text, p_package_id text, run jsonb) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    machines text[];
    other record;
    offer timestamptz := (run->>'offer_after')::timestamptz;
BEGIN
    INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes, run_with)
    VALUES (p_package_id, run->>'program_name', run->>'command_line',
            (SELECT array_agg(p::smsdist.platform) FROM jsonb_array_elements_text(
                 CASE WHEN jsonb_typeof(run->'platforms') = 'array' THEN run->'platforms' END) p),
            (run->>'max_run_minutes')::integer, coalesce(run->>'run_with', 'administrative_rights'))
    ON CONFLICT (package_id, program_name) DO UPDATE
       SET command_line = EXCLUDED.command_line, platforms = EXCLUDED.platforms,
           max_run_minutes = EXCLUDED.max_run_minutes, run_with = EXCLUDED.run_with;
    PERFORM smsdist.record_machines(run->'machines');
    SELECT array_agg(m->>'sms_id' ORDER BY m->>'sms_id') INTO machines FROM jsonb_array_elements(run->'machines') m
     WHERE EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id = m->>'sms_id');
    IF machines IS NULL THEN
        RAISE EXCEPTION 'run-command job % names no machine known at site %', p_job_id,
            current_setting('smsdist.site_code')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines,
                              start_after, offer_after, mandatory_at, expires_at, priority, comment)
    VALUES (p_job_id, 'run_command', p_package_id, run->>'program_name', 'machines', machines,
            least(clock_timestamp(), offer), offer, (run->>'mandatory_at')::timestamptz,
            (run->>'expires_at')::timestamptz, coalesce((run->>'priority')::smsdist.job_priority, 'medium'),
            'sent by the parent site')
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

CREATE OR REPLACE FUNCTION compute_machine_policy(p_sms_id text) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION advertisement_details(p_advert_id text, p_hop text) RETURNS jsonb
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
            'platforms', to_jsonb(pr.platforms), 'max_run_minutes', pr.max_run_minutes,
            'run_with', pr.run_with),
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

CREATE OR REPLACE FUNCTION receive_advertisement(details jsonb) RETURNS void
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
    INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes, run_with)
    VALUES (pkg->>'package_id', prog->>'program_name', prog->>'command_line',
            (SELECT array_agg(p::smsdist.platform) FROM jsonb_array_elements_text(
                 CASE WHEN jsonb_typeof(prog->'platforms') = 'array' THEN prog->'platforms' END) p),
            (prog->>'max_run_minutes')::integer, coalesce(prog->>'run_with', 'administrative_rights'))
    ON CONFLICT (package_id, program_name) DO UPDATE
       SET command_line = EXCLUDED.command_line, platforms = EXCLUDED.platforms,
           max_run_minutes = EXCLUDED.max_run_minutes, run_with = EXCLUDED.run_with
     WHERE (programs.command_line, programs.platforms, programs.max_run_minutes, programs.run_with)
           IS DISTINCT FROM (EXCLUDED.command_line, EXCLUDED.platforms, EXCLUDED.max_run_minutes,
                             EXCLUDED.run_with);

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
