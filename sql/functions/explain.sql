-- Why the targets of a job or an advertisement have not finished: one row
-- per target that is not final (or for one machine, whatever its state).
CREATE OR REPLACE FUNCTION explain(object_id text, sms_id text DEFAULT NULL) RETURNS SETOF explanation
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF object_id IS NULL THEN
        RAISE EXCEPTION 'explain() needs a job ID or an advertisement ID'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- (reasons quote errors of other programs: one line each)
    IF EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = explain.object_id) THEN
        RETURN QUERY SELECT e.sms_id, e.site_code, e.state, regexp_replace(e.reason, '\s*[\r\n]\s*', ' ', 'g'),
                            e.waiting_on, e.since, e.next_attempt_at
                       FROM smsdist.explain_job(explain.object_id, explain.sms_id) e;
    ELSIF EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = explain.object_id) THEN
        RETURN QUERY SELECT e.sms_id, e.site_code, e.state, regexp_replace(e.reason, '\s*[\r\n]\s*', ' ', 'g'),
                            e.waiting_on, e.since, e.next_attempt_at
                       FROM smsdist.explain_advertisement(explain.object_id, explain.sms_id) e;
    ELSE
        RAISE EXCEPTION 'there is no job or advertisement "%" at site %', explain.object_id,
                        coalesce(current_setting('smsdist.site_code', true), '(unset)')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Job IDs are in smsdist.jobs, advertisement IDs in smsdist.advertisements.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION explain(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION explain(text, text) TO smsdist_reader;
