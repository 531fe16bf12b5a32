-- At the parent: a child's targets.  A child speaks for the machines of
-- its own subtree, for jobs and advertisements this site has; anything
-- else is refused row by row (counted, the first reason returned).
CREATE OR REPLACE FUNCTION receive_target_report(p_child text, report jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller smsdist.site_code := smsdist.calling_site('child');
    r jsonb;
    applied integer := 0;
    refused integer := 0;
    first_reason text;
    why text;
    st smsdist.target_state;
    msite smsdist.site_code;
    jobs_done text[] := '{}';
    j text;
BEGIN
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
        RAISE EXCEPTION 'a target report is a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(report) > 20000 OR octet_length(report::text) > 64 * 1024 * 1024 THEN
        RAISE EXCEPTION 'target report of site % is too large: % rows, % bytes (at most 20000 rows, 64 MB)',
            p_child, jsonb_array_length(report), octet_length(report::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR r IN SELECT x FROM jsonb_array_elements(report) x LOOP
        why := NULL;
        st := NULL;
        msite := NULL;
        IF jsonb_typeof(r) IS DISTINCT FROM 'object' OR r->>'kind' NOT IN ('job', 'advertisement')
           OR coalesce(r->>'id', '') !~ '^[A-Z0-9]{8}$' OR coalesce(r->>'sms_id', '') !~ '^[A-Z0-9]{8}$' THEN
            why := 'not a target row (kind job or advertisement, id, sms_id)';
        ELSIF NOT (r->>'state' = ANY (enum_range(NULL::smsdist.target_state)::text[])) THEN
            why := format('%s is not a target state', left(r->>'state', 40));
        ELSIF length(r->>'detail') > 2000 OR r->>'detail' ~ '[\x01-\x08\x0b-\x1f\x7f]' THEN
            why := 'its detail is longer than 2000 characters or has a control character';
        ELSIF jsonb_typeof(r->'exit_code') NOT IN ('number', 'null')
              OR (jsonb_typeof(r->'exit_code') = 'number'
                  AND (r->>'exit_code' !~ '^-?[0-9]{1,9}$')) THEN
            why := 'its exit code is not an integer';
        ELSE
            st := (r->>'state')::smsdist.target_state;
            SELECT m.site_code INTO msite FROM smsdist.system_resources m WHERE m.sms_id = r->>'sms_id';
            IF msite IS NULL THEN
                why := format('machine %s is unknown here', r->>'sms_id');
            ELSIF msite IS DISTINCT FROM p_child AND smsdist.route_hop(msite) IS DISTINCT FROM p_child THEN
                why := format('machine %s is of site %s, which is not site %s or behind it', r->>'sms_id', msite, p_child);
            END IF;
        END IF;
        IF why IS NULL AND r->>'kind' = 'job'
           AND EXISTS (SELECT 1 FROM smsdist.job_control_pushes p
                        WHERE p.job_id = r->>'id' AND p.hop = p_child AND p.state = 'pending') THEN
            -- a row the child sent before this site's retry reached it
            why := format('job %s was retried here and the retry has not reached site %s yet: the row is from before',
                          r->>'id', p_child);
        ELSIF why IS NULL AND r->>'kind' = 'job' THEN
            UPDATE smsdist.job_target_status t
               SET state = st, detail = r->>'detail', exit_code = (r->>'exit_code')::integer
             WHERE t.job_id = r->>'id' AND t.sms_id = r->>'sms_id';
            IF NOT FOUND THEN
                why := format('machine %s is not a target of job %s here', r->>'sms_id', r->>'id');
            ELSIF smsdist.target_state_is_final(st) AND NOT (r->>'id' = ANY (jobs_done)) THEN
                jobs_done := jobs_done || (r->>'id');
            END IF;
        ELSIF why IS NULL THEN
            IF NOT EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = r->>'id') THEN
                why := format('advertisement %s is unknown here', r->>'id');
            ELSE
                INSERT INTO smsdist.advertisement_target_status AS t
                       (advert_id, sms_id, site_code, state, detail, exit_code, through_user)
                VALUES (r->>'id', r->>'sms_id', msite, st, r->>'detail', (r->>'exit_code')::integer, true)
                ON CONFLICT (advert_id, sms_id) DO UPDATE
                   SET state = EXCLUDED.state, detail = EXCLUDED.detail, exit_code = EXCLUDED.exit_code;
            END IF;
        END IF;
        IF why IS NULL THEN
            applied := applied + 1;
        ELSE
            refused := refused + 1;
            first_reason := coalesce(first_reason, why);
        END IF;
    END LOOP;
    FOREACH j IN ARRAY jobs_done LOOP
        PERFORM smsdist.finish_job_if_done(j);
    END LOOP;
    RETURN jsonb_build_object('applied', applied, 'refused', refused, 'reason', first_reason);
END
$$;
REVOKE ALL ON FUNCTION receive_target_report(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_target_report(text, jsonb) TO smsdist_child_site;
