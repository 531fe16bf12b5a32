-- Where a job's package is published at the target sites at and below this
-- site: the parent's Sender copies it into its own package_locations.
CREATE OR REPLACE FUNCTION location_report(p_job_id text)
    RETURNS TABLE (package_id text, site_code text, site_system_id integer,
                   source_version integer, path text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    PERFORM smsdist.require_default_collation(p_job_id, 'location_report');
    RETURN QUERY
    SELECT l.package_id::text, l.site_code::text, l.site_system_id, l.source_version, l.path
      FROM smsdist.jobs j
      JOIN smsdist.package_locations l ON l.package_id = j.package_id
     WHERE j.job_id = p_job_id AND j.source_site IS NOT DISTINCT FROM source
       AND l.site_code IN (SELECT s.site_code FROM smsdist.job_site_status s WHERE s.job_id = p_job_id);
END
$$;
REVOKE ALL ON FUNCTION location_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION location_report(text) TO smsdist_parent_site;
