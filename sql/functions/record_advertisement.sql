-- At the child: take an advertisement sent by the parent
-- (receive_advertisement() calls it, having checked the login).
-- Longer than 150 lines: it writes everything an advertisement brings
-- (package, program, collections with their members, windows and
-- subcollections, the advertisement, its assignments) in one transaction,
-- each part a block of its own.
CREATE OR REPLACE FUNCTION record_advertisement(details jsonb) RETURNS void
    LANGUAGE plpgsql
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

    -- the icon (a path in the package's tree, checked by the column's
    -- constraint) is read by this site's Offer Manager from its own copy
    INSERT INTO smsdist.packages (package_id, name, version, manufacturer, language, source_directory, icon_file)
    VALUES (pkg->>'package_id', pkg->>'name', pkg->>'version', pkg->>'manufacturer', pkg->>'language',
            pkg->>'source_directory', pkg->>'icon_file')
    ON CONFLICT (package_id) DO UPDATE
       SET name = EXCLUDED.name, version = EXCLUDED.version, manufacturer = EXCLUDED.manufacturer,
           language = EXCLUDED.language, icon_file = EXCLUDED.icon_file
     WHERE (packages.name, packages.version, packages.manufacturer, packages.language, packages.icon_file)
           IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.version, EXCLUDED.manufacturer, EXCLUDED.language,
                             EXCLUDED.icon_file);
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
                                        expires_time, expires_time_utc, enabled, comment, source_site, rerun_behaviour)
    VALUES (ad->>'advert_id', ad->>'name', ad->>'package_id', ad->>'program_name', ad->>'collection_id',
            (ad->>'include_subcollections')::boolean, (ad->>'offer_time')::timestamp,
            (ad->>'offer_time_utc')::boolean, (ad->>'expires_time')::timestamp,
            (ad->>'expires_time_utc')::boolean, (ad->>'enabled')::boolean, ad->>'comment', parent,
            coalesce(ad->>'rerun_behaviour', 'rerun_if_failed'))
    ON CONFLICT (advert_id) DO UPDATE
       SET name = EXCLUDED.name, package_id = EXCLUDED.package_id, program_name = EXCLUDED.program_name,
           collection_id = EXCLUDED.collection_id, include_subcollections = EXCLUDED.include_subcollections,
           offer_time = EXCLUDED.offer_time, offer_time_utc = EXCLUDED.offer_time_utc,
           expires_time = EXCLUDED.expires_time, expires_time_utc = EXCLUDED.expires_time_utc,
           enabled = EXCLUDED.enabled, comment = EXCLUDED.comment, source_site = EXCLUDED.source_site,
           rerun_behaviour = EXCLUDED.rerun_behaviour;

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
REVOKE ALL ON FUNCTION record_advertisement(jsonb) FROM PUBLIC;
