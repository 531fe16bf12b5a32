-- Whether a package was removed from a site: a removal of the package
-- reached the site after any job that distributed it.  With no location
-- of it at the site, the agent tells "removed" from "not here yet" (the
-- policy's package_removed, a NAL file with removed=true).
CREATE OR REPLACE FUNCTION package_removed_at(p_package_id text, p_site text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
    -- one plan for every call: planning each call again cost more than
    -- the query (these run once per machine of every policy computed)
    SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- PL/pgSQL, not SQL: it is called once for each advertisement of a
    -- policy, and a SQL function with a SET clause is never inlined, so it
    -- would be parsed and planned again at every call (2 ms); PL/pgSQL
    -- keeps the plan for the session.
    RETURN EXISTS (
        SELECT 1 FROM smsdist.jobs rj
          JOIN smsdist.job_site_status rs
            ON rs.job_id = rj.job_id AND rs.site_code = p_site AND rs.phase = 'distribute'
         WHERE rj.job_type = 'remove_package' AND rj.package_id = p_package_id
           AND rj.state IN ('active', 'completed')
           AND NOT EXISTS (SELECT 1 FROM smsdist.jobs sj
                            WHERE sj.package_id = p_package_id AND sj.job_type <> 'remove_package'
                              AND sj.state IN ('pending', 'active', 'completed')
                              AND sj.created_at > rj.created_at));
END
$$;
REVOKE ALL ON FUNCTION package_removed_at(text, text) FROM PUBLIC;
