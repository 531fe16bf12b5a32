-- At the parent, granted to smsdist_child_site: a child's inventories.  The
-- login speaks for the child (site_logins), and the child for its own
-- machines and those of the sites below it, no others; each row is checked
-- as an agent's report is, and a bad row is refused alone.  Answers
-- {"recorded": n, "refused": n, "reasons": [the first ten]}.
CREATE OR REPLACE FUNCTION receive_cache_report(p_child text, report jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller smsdist.site_code := smsdist.calling_site('child');
    r jsonb;
    machine_site text;
    why text;
    t timestamptz;
    recorded integer := 0;
    refused integer := 0;
    reasons text[] := '{}';
BEGIN
    PERFORM smsdist.require_default_collation(p_child, 'receive_cache_report');
    IF caller IS NOT NULL AND caller IS DISTINCT FROM p_child THEN
        RAISE EXCEPTION 'login "%" speaks for site %, not for site %', session_user, caller, p_child
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code = p_child
                      AND s.parent_site_code = current_setting('smsdist.site_code')::smsdist.site_code) THEN
        RAISE EXCEPTION 'site % is not a child of site %', p_child, current_setting('smsdist.site_code')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF jsonb_typeof(report) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'a cache report is a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(report) > 1000 OR octet_length(report::text) > 64 * 1024 * 1024 THEN
        RAISE EXCEPTION 'cache report of site % is too large: % rows, % bytes (at most 1000 rows and 64 MB)', p_child,
            jsonb_array_length(report), octet_length(report::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR r IN SELECT e FROM jsonb_array_elements(report) e LOOP
        why := NULL;
        SELECT m.site_code INTO machine_site FROM smsdist.system_resources m
         WHERE jsonb_typeof(r) = 'object' AND m.sms_id::text = r->>'sms_id';
        IF machine_site IS NULL THEN
            why := format('machine %s is unknown here', left(coalesce(r->>'sms_id', 'NULL'), 40));
        ELSIF machine_site <> p_child AND smsdist.route_hop(machine_site::smsdist.site_code) IS DISTINCT FROM p_child THEN
            why := format('machine %s is at site %s, not at site %s or below it', r->>'sms_id', machine_site, p_child);
        ELSE
            BEGIN
                t := (r->>'client_at')::timestamptz;
            EXCEPTION WHEN OTHERS THEN
                t := NULL;
            END;
            why := smsdist.record_cache_inventory(r->>'sms_id', t, (r->'inventory')::text);
            IF why IS NOT NULL THEN
                why := format('machine %s: %s', r->>'sms_id', why);
            END IF;
        END IF;
        IF why IS NULL THEN
            recorded := recorded + 1;
        ELSE
            refused := refused + 1;
            IF refused <= 10 THEN
                reasons := reasons || why;
            END IF;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('recorded', recorded, 'refused', refused, 'reasons', to_jsonb(reasons));
END
$$;
REVOKE ALL ON FUNCTION receive_cache_report(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_cache_report(text, jsonb) TO smsdist_child_site;
