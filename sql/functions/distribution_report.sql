-- What the parent asks about its own jobs here (PL/pgSQL: the caller is
-- checked before anything is read, whether there are rows or not).
CREATE OR REPLACE FUNCTION distribution_report(p_job_id text)
    RETURNS TABLE (site_code text, state text, detail text, last_error text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    PERFORM smsdist.require_default_collation(p_job_id, 'distribution_report');
    RETURN QUERY
    SELECT t.site_code::text,
           CASE WHEN d.state IS NOT NULL THEN d.state::text
                WHEN s.state = 'failed' THEN 'failed'
                ELSE 'running' END,
           coalesce(d.detail, s.detail),
           coalesce(d.last_error, s.last_error)
      FROM (SELECT DISTINCT x.site_code FROM smsdist.job_site_status x WHERE x.job_id = p_job_id) t
      JOIN smsdist.jobs j ON j.job_id = p_job_id AND j.source_site IS NOT DISTINCT FROM source
      LEFT JOIN smsdist.job_site_status d
        ON d.job_id = p_job_id AND d.site_code = t.site_code AND d.phase = 'distribute'
      LEFT JOIN smsdist.job_site_status s
        ON s.job_id = p_job_id AND s.site_code = t.site_code AND s.phase = 'send';
END
$$;
REVOKE ALL ON FUNCTION distribution_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION distribution_report(text) TO smsdist_parent_site;
