-- Called by receive_end (C) for a run-command job from site p_source: the
-- program and the machines, then the job itself, targeting the machines.
-- receive_end has checked that the package and the job are p_source's.
CREATE OR REPLACE FUNCTION record_run_job(p_job_id text, p_package_id text, run jsonb, p_source site_code)
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
