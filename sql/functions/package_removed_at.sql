-- Whether a package was removed from a site: a removal of the package
-- reached the site after any job that distributed it.  With no location
-- of it at the site, the agent tells "removed" from "not here yet" (the
-- policy's package_removed, a NAL file with removed=true).
CREATE OR REPLACE FUNCTION package_removed_at(p_package_id text, p_site text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM smsdist.jobs rj
          JOIN smsdist.job_site_status rs
            ON rs.job_id = rj.job_id AND rs.site_code = p_site AND rs.phase = 'distribute'
         WHERE rj.job_type = 'remove_package' AND rj.package_id = p_package_id
           AND rj.state IN ('active', 'completed')
           AND NOT EXISTS (SELECT 1 FROM smsdist.jobs sj
                            WHERE sj.package_id = p_package_id AND sj.job_type <> 'remove_package'
                              AND sj.state IN ('pending', 'active', 'completed')
                              AND sj.created_at > rj.created_at))
$$;
REVOKE ALL ON FUNCTION package_removed_at(text, text) FROM PUBLIC;
