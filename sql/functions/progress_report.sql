-- What a child tells its parent of the progress of each site of a job: the
-- figures of the leg under way (the send to the site, else its distribution,
-- which for a site further down holds what that site's parent reported).
-- The parent keeps them in its distribute row of the site.
CREATE OR REPLACE FUNCTION progress_report(p_job_id text)
RETURNS TABLE (site_code text, bytes_done bigint, bytes_total bigint,
               bytes_total_estimated boolean, attempt_bytes bigint,
               attempt_seconds numeric, eta_seconds numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    PERFORM smsdist.require_default_collation(p_job_id, 'progress_report');
    RETURN QUERY
    SELECT DISTINCT ON (p.site_code) p.site_code::text, p.bytes_done, p.bytes_total,
           p.bytes_total_estimated, p.attempt_bytes,
           round(extract(epoch FROM p.attempt_elapsed)::numeric, 3),
           round(extract(epoch FROM p.eta - clock_timestamp())::numeric, 3)
      FROM smsdist.job_progress p
      JOIN smsdist.jobs j ON j.job_id = p.job_id AND j.source_site IS NOT DISTINCT FROM source
     WHERE p.job_id = p_job_id AND p.phase IN ('send', 'distribute')
     ORDER BY p.site_code, (p.state = 'done'), p.phase;
END
$$;
REVOKE ALL ON FUNCTION progress_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION progress_report(text) TO smsdist_parent_site;
