-- A child reports for itself and its subtree, under its own name only
-- (record_status_report() keeps the report).
CREATE OR REPLACE FUNCTION receive_status_report(p_child text, report jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller smsdist.site_code := smsdist.calling_site('child');
BEGIN
    PERFORM smsdist.require_default_collation(p_child, 'receive_status_report');
    IF caller IS NOT NULL AND caller IS DISTINCT FROM p_child THEN
        RAISE EXCEPTION 'login "%" speaks for site %, not for site %', session_user, caller, p_child
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF octet_length(report::text) > 64 * 1024 * 1024 THEN
        RAISE EXCEPTION 'status report of site % is too large: % bytes (at most 64 MB)', p_child,
            octet_length(report::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN smsdist.record_status_report(p_child, report);
END
$$;
REVOKE ALL ON FUNCTION receive_status_report(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_status_report(text, jsonb) TO smsdist_child_site;
