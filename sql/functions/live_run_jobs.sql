-- The run-command jobs a machine of site p_site is to be offered: its PCM
-- file says exactly these (src/components/pcm_writer.c reads them from here), and its
-- policy (compute_machine_policy(), "jobs") too.  A job is live for a
-- machine when it is an active run-command job, not past its expiry, whose
-- package is distributed at the machine's site (its 'distribute' row there
-- is done, with at least one location), and the machine is its target in a
-- state that still wants the job (not cancelled, expired or not
-- applicable).  An SQL function that the planner inlines: a caller's
-- condition on sms_id reaches the index.
--
-- What a job carries is the same for all of its machines, and computed
-- once per job (the materialized "live"), then joined to the machines:
-- row by row, the package's hash -- the SHA-256 of its manifest, one line
-- per file, 300 kB for 5,000 files -- cost 0.6 ms a machine, twice for
-- every machine of a job (its PCM file, its policy): two minutes for a job
-- to 100,000 machines.
--
-- "live" is written from the machines' targets to their jobs, the order a
-- plan for a few machines must follow: compute_machine_policies() plans
-- its joins for a few machines in the order written, and from the jobs
-- first its kept plan read every active job of the site, and (planned
-- while the tables were small) every job again for each one, for each
-- machine's policy (42 ms a policy at a site with 200 live jobs).
--
-- policy_entry is the job as a policy lists it ("jobs" of
-- compute_machine_policies()), built once per job here: built for every
-- machine it was 40 % of computing a batch's policies.
CREATE OR REPLACE FUNCTION live_run_jobs(p_sms_ids text[], p_site text)
    RETURNS TABLE (sms_id text, job_id text, package_id text, package_name text,
                   source_version integer, program_name text, command_line text,
                   platforms text[], offer_after timestamptz, mandatory_at timestamptz,
                   expires_at timestamptz, max_run_minutes integer, locations text[],
                   package_sha256 text, run_with text, policy_entry jsonb)
    LANGUAGE sql STABLE
AS $$
    WITH live AS MATERIALIZED (
        SELECT j.job_id, j.package_id::text AS package_id, p.name::text AS package_name,
               j.source_version, j.program_name::text AS program_name,
               pr.command_line::text AS command_line, pr.platforms::text[] AS platforms,
               coalesce(j.offer_after, j.start_after) AS offer_after, j.mandatory_at,
               j.expires_at, pr.max_run_minutes, loc.paths,
               -- (computed here only if a load without triggers left it out)
               coalesce(b.manifest_sha256,
                        encode(pg_catalog.sha256(pg_catalog.convert_to(b.manifest, 'UTF8')), 'hex'),
                        b.sha256) AS package_sha256,
               pr.run_with
          FROM (SELECT DISTINCT t.job_id FROM smsdist.job_target_status t
                 WHERE t.sms_id = ANY (p_sms_ids)) tj
          JOIN smsdist.jobs j ON j.job_id = tj.job_id
          JOIN smsdist.packages p ON p.package_id = j.package_id
          JOIN smsdist.programs pr ON pr.package_id = j.package_id AND pr.program_name = j.program_name
          JOIN smsdist.package_builds b ON b.package_id = j.package_id AND b.source_version = j.source_version
          JOIN smsdist.job_site_status d ON d.job_id = j.job_id AND d.site_code = p_site
           AND d.phase = 'distribute' AND d.state = 'done'
          CROSS JOIN LATERAL (SELECT array_agg(l.path::text ORDER BY l.site_system_id) AS paths
                                FROM smsdist.package_locations l
                               WHERE l.package_id = j.package_id AND l.site_code = p_site
                                 -- only where the job's version is: never a path to other content
                                 AND l.source_version = j.source_version) loc
         WHERE j.job_type = 'run_command' AND j.state = 'active'
           AND (j.expires_at IS NULL OR j.expires_at > pg_catalog.clock_timestamp())
           AND loc.paths IS NOT NULL),
    entry AS MATERIALIZED (
        SELECT live.*, jsonb_build_object(
                   'job_id', live.job_id, 'package_id', live.package_id, 'package_name', live.package_name,
                   'package_version', live.source_version, 'program', live.program_name,
                   'command_line', live.command_line, 'platforms', to_jsonb(live.platforms),
                   'offer_after', live.offer_after, 'mandatory_at', live.mandatory_at,
                   'expires_at', live.expires_at, 'max_run_minutes', live.max_run_minutes,
                   'run_with', live.run_with, 'package_sha256', live.package_sha256,
                   'locations', to_jsonb(live.paths)) AS policy_entry
          FROM live)
    SELECT t.sms_id::text, live.job_id::text, live.package_id, live.package_name,
           live.source_version, live.program_name, live.command_line,
           live.platforms, live.offer_after, live.mandatory_at,
           live.expires_at, live.max_run_minutes, live.paths,
           live.package_sha256, live.run_with, live.policy_entry
      FROM smsdist.job_target_status t
      JOIN smsdist.system_resources r ON r.sms_id = t.sms_id AND r.site_code = p_site
      JOIN entry live ON live.job_id = t.job_id
     WHERE t.sms_id = ANY (p_sms_ids)
       -- (as text: the same test whatever the states' type has)
       AND t.state::text NOT IN ('cancelled', 'expired', 'not_applicable')
$$;
COMMENT ON FUNCTION live_run_jobs(text[], text) IS
    'The run-command jobs the PCM files and policies of these machines of site p_site carry.';
REVOKE ALL ON FUNCTION live_run_jobs(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION live_run_jobs(text[], text) TO smsdist_reader;
