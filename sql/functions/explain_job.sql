-- explain() of a job.
CREATE OR REPLACE FUNCTION explain_job(p_job_id text, p_sms_id text) RETURNS SETOF explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j smsdist.jobs;
    gate smsdist.explanation;
    n bigint := 0;
    r smsdist.explanation;
BEGIN
    SELECT * INTO j FROM smsdist.jobs WHERE job_id = p_job_id;
    gate := smsdist.explain_job_gate(p_job_id);
    IF j.job_type <> 'run_command' THEN
        -- the targets of sharing and removing are sites
        FOR r IN
            SELECT g.*
              FROM (SELECT DISTINCT x.site_code::text AS site_code FROM smsdist.job_site_status x
                     WHERE x.job_id = p_job_id) s
              CROSS JOIN LATERAL smsdist.explain_job_site(p_job_id, s.site_code) g
             ORDER BY s.site_code
        LOOP
            IF r.reason IS NOT NULL AND gate.reason IS NULL THEN
                n := n + 1;
                RETURN NEXT r;
            END IF;
        END LOOP;
        IF n = 0 AND gate.reason IS NOT NULL THEN
            RETURN NEXT gate;
        END IF;
        RETURN;
    END IF;

    IF p_sms_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = p_job_id AND t.sms_id = p_sms_id) THEN
        r := gate;
        r.sms_id := p_sms_id;
        r.site_code := (SELECT x.site_code FROM smsdist.system_resources x WHERE x.sms_id = p_sms_id);
        IF j.state = 'pending' AND gate.reason IS NOT NULL THEN
            r.reason := r.reason || '; the machine''s part is known once the job is active (targets: '
                        || smsdist.describe_targets(p_job_id) || ')';
        ELSE
            r.state := 'not a target';
            r.since := NULL;
            r.next_attempt_at := NULL;
            r.waiting_on := NULL;
            r.reason := CASE
                WHEN r.site_code IS NULL THEN format('machine %s is not in system_resources', p_sms_id)
                WHEN j.target_type = 'collection' AND NOT EXISTS (
                        SELECT 1 FROM smsdist.collection_members m
                         WHERE m.collection_id = j.target_collection_id AND m.sms_id = p_sms_id)
                    THEN format('machine %s is not a target of job %s: it is not a member of collection %s (any more)',
                                p_sms_id, p_job_id, j.target_collection_id)
                WHEN j.target_type = 'machines' AND NOT (p_sms_id = ANY (j.target_machines))
                    THEN format('machine %s is not a target of job %s: it is not one of the job''s listed machines',
                                p_sms_id, p_job_id)
                ELSE format('machine %s is not a target of job %s: it became a member after the job''s targets were recorded, or its site is not one the job reaches',
                            p_sms_id, p_job_id) END;
        END IF;
        RETURN NEXT r;
        RETURN;
    END IF;

    RETURN QUERY
    WITH open AS (
        SELECT t FROM smsdist.job_target_status t
         WHERE t.job_id = p_job_id
           AND (CASE WHEN p_sms_id IS NULL THEN NOT smsdist.target_state_is_final(t.state)
                     ELSE t.sms_id = p_sms_id END)),
    sites AS MATERIALIZED (
        SELECT s.site_code, smsdist.explain_job_site(p_job_id, s.site_code) AS g
          FROM (SELECT DISTINCT (o.t).site_code::text AS site_code FROM open o) s)
    SELECT (o.t).sms_id::text, (o.t).site_code::text, (o.t).state::text,
           (x.e).reason, (x.e).waiting_on, (x.e).since, (x.e).next_attempt_at
      FROM open o
      JOIN sites s ON s.site_code = (o.t).site_code
      -- (OFFSET 0: the reason is computed once per target, not per column)
      CROSS JOIN LATERAL (
          SELECT CASE WHEN smsdist.target_state_is_final((o.t).state) THEN smsdist.explain_job_target(o.t)
                      WHEN gate.reason IS NOT NULL THEN gate
                      WHEN (s.g).reason IS NOT NULL THEN s.g
                      ELSE smsdist.explain_job_target(o.t) END AS e
          OFFSET 0) x
     ORDER BY (o.t).site_code, (o.t).sms_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 AND p_sms_id IS NULL THEN
        IF gate.reason IS NOT NULL THEN
            RETURN NEXT gate;
        ELSIF j.state = 'active' AND NOT EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = p_job_id) THEN
            r.state := j.state::text;
            r.reason := 'the job has no target machine yet: ' || smsdist.describe_targets(p_job_id);
            r.since := j.activated_at;
            r.waiting_on := 'collection evaluator';
            RETURN NEXT r;
        END IF;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION explain_job(text, text) FROM PUBLIC;
