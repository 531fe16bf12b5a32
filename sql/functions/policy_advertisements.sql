-- The policy's advertisement entries say when their package was removed
-- from the site (package_removed_at), and carry the package's icon as the
-- Offer Manager accepted it (package_icons): its file in the published
-- tree and its SHA-256, which the agent checks before it keeps it.
CREATE OR REPLACE FUNCTION policy_advertisements(p_adverts text[], p_site text, p_target text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    -- one plan for every call: planning each call again cost more than
    -- the query (these run once per machine of every policy computed)
    SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- PL/pgSQL, not SQL: its plan is kept across calls
    RETURN (SELECT jsonb_agg(jsonb_build_object(
        'advert_id', a.advert_id, 'name', a.name, 'collection_id', a.collection_id,
        'target', p_target, 'rerun_behaviour', a.rerun_behaviour,
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
        'package_sha256', (SELECT coalesce(b.manifest_sha256, encode(sha256(convert_to(b.manifest, 'UTF8')), 'hex'), b.sha256)
                             FROM smsdist.package_builds b
                            WHERE b.package_id = a.package_id AND b.source_version = loc.version),
        'locations', coalesce(loc.paths, '[]'::jsonb),
        'package_removed', loc.paths IS NULL AND smsdist.package_removed_at(a.package_id, p_site),
        'icon', CASE WHEN ic.sha256 IS NOT NULL
                     THEN jsonb_build_object('file', ic.icon_file, 'sha256', ic.sha256) END)
        ORDER BY a.advert_id)
      FROM smsdist.advertisements a
      JOIN smsdist.programs pr ON pr.package_id = a.package_id AND pr.program_name = a.program_name
      LEFT JOIN LATERAL (
          SELECT max(l.source_version) AS version,
                 jsonb_agg(l.path ORDER BY l.site_system_id) AS paths
            FROM smsdist.package_locations l
           WHERE l.package_id = a.package_id AND l.site_code = p_site) loc ON true
      LEFT JOIN smsdist.package_icons ic
        ON ic.package_id = a.package_id AND ic.source_version = loc.version AND ic.sha256 IS NOT NULL
     WHERE a.advert_id = ANY (p_adverts));
END
$$;
REVOKE ALL ON FUNCTION policy_advertisements(text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION policy_advertisements(text[], text, text) TO smsdist_reader;
