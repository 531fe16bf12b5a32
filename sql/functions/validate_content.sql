-- Queue a validation of every published package location of a site (NULL:
-- this site) and wake the Despooler, which checks each tree against its
-- manifest and repairs what differs.  Only this site's Despooler reaches its
-- distribution points: another site's code is refused.  Returns what was
-- queued.
CREATE OR REPLACE FUNCTION validate_content(p_site_code text DEFAULT NULL)
RETURNS TABLE (package_id text, site_system_id integer, source_version integer, path text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    here text := current_setting('smsdist.site_code', true);
    site text := coalesce(p_site_code, here);
BEGIN
    IF site IS NULL OR site = '' THEN
        RAISE EXCEPTION 'no site given and smsdist.site_code is not set'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code::text = site) THEN
        RAISE EXCEPTION 'unknown site %', site USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF site IS DISTINCT FROM here THEN
        RAISE EXCEPTION 'the distribution points of site % are validated by that site''s Despooler, not by site %',
                        site, coalesce(nullif(here, ''), '(not set)')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call validate_content() at that site.';
    END IF;
    RETURN QUERY
    INSERT INTO smsdist.content_validations AS v (package_id, site_code, site_system_id, requested_at, requested_by)
    SELECT l.package_id, l.site_code, l.site_system_id, clock_timestamp(), session_user
      FROM smsdist.package_locations l
      JOIN smsdist.site_systems d ON d.site_system_id = l.site_system_id AND d.site_code = l.site_code
     WHERE l.site_code::text = site AND d.role = 'distribution_point' AND d.enabled
    ON CONFLICT ON CONSTRAINT content_validations_pkey DO UPDATE
       SET requested_at = coalesce(v.requested_at, EXCLUDED.requested_at), requested_by = EXCLUDED.requested_by
    RETURNING v.package_id::text, v.site_system_id,
              (SELECT l.source_version FROM smsdist.package_locations l
                WHERE l.package_id = v.package_id AND l.site_code = v.site_code
                  AND l.site_system_id = v.site_system_id),
              (SELECT l.path FROM smsdist.package_locations l
                WHERE l.package_id = v.package_id AND l.site_code = v.site_code
                  AND l.site_system_id = v.site_system_id);
END
$$;
REVOKE ALL ON FUNCTION validate_content(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION validate_content(text) TO smsdist_admin;
