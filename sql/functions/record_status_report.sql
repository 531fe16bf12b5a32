-- At the parent: a child's report replaces what that child reported before
-- (receive_status_report() calls it, having checked the login).
CREATE OR REPLACE FUNCTION record_status_report(p_child text, report jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code = p_child
                      AND s.parent_site_code = current_setting('smsdist.site_code')::smsdist.site_code) THEN
        RAISE EXCEPTION 'site % is not a child of site %', p_child, current_setting('smsdist.site_code')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF jsonb_typeof(report) <> 'array' THEN
        RAISE EXCEPTION 'a status report is a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM smsdist.site_status_reports WHERE reported_by = p_child;
    INSERT INTO smsdist.site_status_reports (site_code, kind, object_id, targeted, offered, downloaded,
                                             succeeded, failed, reported_by)
    SELECT r->>'site_code', r->>'kind', r->>'object_id', (r->>'targeted')::integer, (r->>'offered')::integer,
           (r->>'downloaded')::integer, (r->>'succeeded')::integer, (r->>'failed')::integer, p_child
      FROM jsonb_array_elements(report) r
     -- a child speaks for itself and the sites below it, nobody else
     WHERE r->>'site_code' = p_child OR smsdist.route_hop((r->>'site_code')::smsdist.site_code) = p_child
    ON CONFLICT (site_code, kind, object_id) DO UPDATE
       SET targeted = EXCLUDED.targeted, offered = EXCLUDED.offered, downloaded = EXCLUDED.downloaded,
           succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed, reported_by = EXCLUDED.reported_by,
           reported_at = clock_timestamp();
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION record_status_report(text, jsonb) FROM PUBLIC;
