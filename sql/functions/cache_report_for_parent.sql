-- Up the hierarchy: the inventories of this site's machines, and those
-- its children sent, go to the parent site, so that preview() there knows
-- the caches of every site below it.  At most p_limit rows that changed
-- since the parent last heard, each with the time it was recorded here
-- (caches_reported() clears a row only if it has not changed since).
CREATE OR REPLACE FUNCTION cache_report_for_parent(p_limit integer) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'sms_id', c.sms_id, 'reported_at', c.reported_at,
               'client_at', to_char(c.client_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'inventory', jsonb_build_object(
                   'size_limit_bytes', c.size_limit_bytes, 'used_bytes', c.used_bytes,
                   'locked_bytes', c.locked_bytes, 'utc_offset_seconds', c.utc_offset_seconds,
                   'packages', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                  'package_id', p.package_id, 'source_version', p.source_version, 'bytes', p.bytes,
                                  'downloaded_at', to_char(p.downloaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'locked_until', to_char(p.locked_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'last_run_at', to_char(p.last_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                                  ORDER BY p.package_id, p.source_version)
                                FROM smsdist.machine_cache_packages p WHERE p.sms_id = c.sms_id), '[]'::jsonb)))
               ORDER BY c.sms_id), '[]'::jsonb)
      FROM (SELECT * FROM smsdist.machine_caches WHERE report_pending ORDER BY sms_id LIMIT p_limit) c
$$;
REVOKE ALL ON FUNCTION cache_report_for_parent(integer) FROM PUBLIC;
