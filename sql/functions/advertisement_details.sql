-- What child site p_hop needs of an advertisement to act on it alone: the
-- package and program, the schedule, and each targeted collection with its
-- maintenance windows and members behind that child.  The package's icon
-- file only when it has one: a site before 0.9 ignores the key, and the
-- details of a package without an icon stay as they were (their MD5 is
-- what the Replication Manager compares).
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
            'enabled', a.enabled, 'comment', a.comment, 'rerun_behaviour', a.rerun_behaviour),
        'package', jsonb_build_object(
            'package_id', p.package_id, 'name', p.name, 'version', p.version,
            'manufacturer', p.manufacturer, 'language', p.language,
            'source_directory', p.source_directory)
            || CASE WHEN p.icon_file IS NOT NULL THEN jsonb_build_object('icon_file', p.icon_file)
                    ELSE '{}'::jsonb END,
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
REVOKE ALL ON FUNCTION advertisement_details(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION advertisement_details(text, text) TO smsdist_reader;
