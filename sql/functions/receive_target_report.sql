-- At the parent: a child's targets.  A child speaks for the machines of
-- its own subtree, for jobs and advertisements this site has; anything
-- else is refused row by row (counted, the first reason returned).
CREATE OR REPLACE FUNCTION receive_target_report(p_child text, report jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller smsdist.site_code := smsdist.calling_site('child');
    result record;
    j text;
BEGIN
    PERFORM smsdist.require_default_collation(p_child, 'receive_target_report');
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
    -- One statement for the whole report: every row checked on its own (its
    -- first failing check is its reason), then the rows that pass applied
    -- together.  When a report names a target twice, the last row wins, as
    -- if the rows were applied one after the other.
    WITH given AS (
        SELECT e.ord, e.x,
               CASE
                 WHEN jsonb_typeof(e.x) IS DISTINCT FROM 'object'
                      OR coalesce(e.x->>'kind', '') NOT IN ('job', 'advertisement')
                      OR coalesce(e.x->>'id', '') !~ '^[A-Z0-9]{8}$'
                      OR coalesce(e.x->>'sms_id', '') !~ '^[A-Z0-9]{8}$'
                   THEN 'not a target row (kind job or advertisement, id, sms_id)'
                 WHEN e.x->>'state' IS NULL THEN 'it has no state'
                 WHEN NOT (e.x->>'state' = ANY (enum_range(NULL::smsdist.target_state)::text[]))
                   THEN format('%s is not a target state', left(e.x->>'state', 40))
                 WHEN length(e.x->>'detail') > 2000 OR e.x->>'detail' ~ '[\x01-\x08\x0b-\x1f\x7f]'
                   THEN 'its detail is longer than 2000 characters or has a control character'
                 WHEN jsonb_typeof(e.x->'exit_code') NOT IN ('number', 'null')
                      OR (jsonb_typeof(e.x->'exit_code') = 'number' AND e.x->>'exit_code' !~ '^-?[0-9]{1,9}$')
                   THEN 'its exit code is not an integer'
               END AS why
          FROM jsonb_array_elements(report) WITH ORDINALITY AS e(x, ord)),
    hops AS (
        SELECT s.site_code::text AS site_code, smsdist.route_hop(s.site_code)::text AS hop
          FROM smsdist.sites s),
    checked AS (
        SELECT g.ord, g.x->>'kind' AS kind, g.x->>'id' AS id, g.x->>'sms_id' AS sms_id,
               CASE WHEN g.why IS NULL THEN (g.x->>'state')::smsdist.target_state END AS st,
               g.x->>'detail' AS detail,
               CASE WHEN g.why IS NULL THEN (g.x->>'exit_code')::integer END AS exit_code,
               m.site_code::text AS msite,
               CASE
                 WHEN g.why IS NOT NULL THEN g.why
                 WHEN m.sms_id IS NULL THEN format('machine %s is unknown here', g.x->>'sms_id')
                 WHEN m.site_code::text <> p_child AND h.hop IS DISTINCT FROM p_child
                   THEN format('machine %s is of site %s, which is not site %s or behind it',
                               g.x->>'sms_id', m.site_code, p_child)
                 WHEN g.x->>'kind' = 'job' AND EXISTS (
                        SELECT 1 FROM smsdist.job_control_pushes p
                         WHERE p.job_id = g.x->>'id' AND p.hop = p_child AND p.state = 'pending')
                   -- a row the child sent before this site's retry reached it
                   THEN format('job %s was retried here and the retry has not reached site %s yet: the row is from before',
                               g.x->>'id', p_child)
               END AS why
          FROM given g
          LEFT JOIN smsdist.system_resources m ON g.why IS NULL AND m.sms_id = g.x->>'sms_id'
          LEFT JOIN hops h ON h.site_code = m.site_code::text),
    last AS (
        SELECT DISTINCT ON (c.kind, c.id, c.sms_id) c.*
          FROM checked c WHERE c.why IS NULL
         ORDER BY c.kind, c.id, c.sms_id, c.ord DESC),
    moved AS (
        UPDATE smsdist.job_target_status t
           SET state = l.st, detail = l.detail, exit_code = l.exit_code
          FROM last l
         WHERE l.kind = 'job' AND t.job_id = l.id AND t.sms_id = l.sms_id
        RETURNING t.job_id::text AS id, t.sms_id::text AS sms_id),
    offered AS (
        INSERT INTO smsdist.advertisement_target_status AS t
               (advert_id, sms_id, site_code, state, detail, exit_code, through_user)
        SELECT l.id, l.sms_id, l.msite, l.st, l.detail, l.exit_code, true
          FROM last l
         WHERE l.kind = 'advertisement'
           AND EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = l.id)
        ON CONFLICT (advert_id, sms_id) DO UPDATE
           SET state = EXCLUDED.state, detail = EXCLUDED.detail, exit_code = EXCLUDED.exit_code
        RETURNING t.advert_id::text AS id, t.sms_id::text AS sms_id),
    outcome AS (
        SELECT c.ord, c.kind, c.id, c.st,
               CASE
                 WHEN c.why IS NOT NULL THEN c.why
                 WHEN c.kind = 'job' AND mv.id IS NULL
                   THEN format('machine %s is not a target of job %s here', c.sms_id, c.id)
                 WHEN c.kind = 'advertisement' AND o.id IS NULL
                   THEN format('advertisement %s is unknown here', c.id)
               END AS why
          FROM checked c
          LEFT JOIN moved mv ON c.kind = 'job' AND mv.id = c.id AND mv.sms_id = c.sms_id
          LEFT JOIN offered o ON c.kind = 'advertisement' AND o.id = c.id AND o.sms_id = c.sms_id)
    SELECT count(*) FILTER (WHERE why IS NULL)::integer AS applied,
           count(*) FILTER (WHERE why IS NOT NULL)::integer AS refused,
           (array_agg(why ORDER BY ord) FILTER (WHERE why IS NOT NULL))[1] AS first_reason,
           coalesce(array_agg(DISTINCT id) FILTER (WHERE why IS NULL AND kind = 'job'
                                                  AND smsdist.target_state_is_final(st)), '{}') AS jobs_done
      INTO result
      FROM outcome;
    FOREACH j IN ARRAY result.jobs_done LOOP
        PERFORM smsdist.finish_job_if_done(j);
    END LOOP;
    RETURN jsonb_build_object('applied', result.applied, 'refused', result.refused, 'reason', result.first_reason);
END
$$;
REVOKE ALL ON FUNCTION receive_target_report(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_target_report(text, jsonb) TO smsdist_child_site;
