-- The sites a job targets: named sites (and, with include_subsites, every
-- site below them), or the sites of its target machines.
CREATE OR REPLACE FUNCTION job_target_sites(p_job_id sms_id)
    RETURNS TABLE (site_code site_code)
    LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE named AS (
        SELECT t.site_code, 0 AS depth
          FROM smsdist.jobs j
          CROSS JOIN LATERAL unnest(j.target_sites) AS t(site_code)
          JOIN smsdist.sites s ON s.site_code = t.site_code
         WHERE j.job_id = p_job_id AND j.target_type = 'sites'
        UNION ALL
        SELECT s.site_code, n.depth + 1
          FROM named n JOIN smsdist.sites s ON s.parent_site_code = n.site_code
          JOIN smsdist.jobs j ON j.job_id = p_job_id AND j.include_subsites
          WHERE n.depth < 100)
    SELECT DISTINCT site_code FROM named
    UNION
    SELECT DISTINCT m.site_code FROM smsdist.job_target_machines(p_job_id) m
$$;
REVOKE ALL ON FUNCTION job_target_sites(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION job_target_sites(sms_id) TO smsdist_reader;
