-- What a hop is told of a run-command job: its machines are the targets
-- behind it that the job still has (not cancelled, expired, or not
-- applicable any more).
-- (PL/pgSQL, which keeps its plan for the session: the Sender asks for
-- every run-command job it follows, and an SQL function with a SET clause
-- is planned at every call.)  The sites behind the hop are found once, not
-- a route for every machine: for 100,000 machines the filter took 240 ms
-- with route_hop() a machine, 143 ms with it a site.
CREATE OR REPLACE FUNCTION run_job_details(p_job_id text, p_hop text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (
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
             WHERE t.job_id = j.job_id AND t.state NOT IN ('cancelled', 'expired', 'not_applicable')
               AND (r.site_code = p_hop
                    OR r.site_code IN (SELECT s.site_code FROM smsdist.sites s
                                        WHERE smsdist.route_hop(s.site_code) = p_hop))), '[]'::jsonb))
      FROM smsdist.jobs j
      JOIN smsdist.programs pr ON pr.package_id = j.package_id AND pr.program_name = j.program_name
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command');
END
$$;
REVOKE ALL ON FUNCTION run_job_details(text, text) FROM PUBLIC;
