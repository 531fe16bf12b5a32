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
REVOKE ALL ON FUNCTION compute_machine_policy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compute_machine_policy(text) TO smsdist_reader;
