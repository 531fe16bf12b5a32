-- Called by the parent's Sender: the parent's job p_job_id was cancelled
-- or expired (p_state), or retried (p_state 'pending'); the copy here
-- follows, and this site's Sender passes it on to the sites below (the
-- trigger above).  Only the parent that sent the job may do so.  Returns
-- what became of the copy: its new state, "unchanged: <state>" when there
-- is nothing to do (a copy that ended already, a retry of a copy that has
-- not failed), or "not here" when the job never reached this site.
CREATE OR REPLACE FUNCTION receive_job_state(p_job_id text, p_state text, p_reason text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
    id smsdist.sms_id := p_job_id;
    cur smsdist.job_state;
    why text := left(regexp_replace(coalesce(p_reason, ''), '[[:cntrl:]]', ' ', 'g'), 1000);
    want smsdist.job_state;
BEGIN
    PERFORM smsdist.require_default_collation(p_job_id, 'receive_job_state');
    IF p_state IS NULL OR p_state NOT IN ('cancelled', 'expired', 'pending') THEN
        RAISE EXCEPTION 'invalid job state "%": a parent site sets its copies cancelled, expired or pending (retry)',
            left(p_state, 100)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    want := p_state::smsdist.job_state;
    SELECT j.state INTO cur FROM smsdist.jobs j WHERE j.job_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not here';
    END IF;
    PERFORM smsdist.require_sent_by('job', id, source);
    IF (want IN ('cancelled', 'expired') AND cur NOT IN ('pending', 'active'))
       OR (want = 'pending' AND cur <> 'failed') THEN
        RETURN 'unchanged: ' || cur::text;
    END IF;
    UPDATE smsdist.jobs j
       SET state = want,
           state_reason = CASE want WHEN 'pending' THEN 'retried' ELSE want::text END
                          || ' at parent site ' || coalesce(source::text, '(none)')
                          || CASE WHEN why <> '' THEN ' (' || why || ')' ELSE '' END
     WHERE j.job_id = id;
    INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message, job_id, package_id)
    SELECT current_setting('smsdist.site_code'), 'despooler', 'informational', 3322,
           format('Job %s %s by parent site %s%s.', j.job_id,
                  CASE want WHEN 'pending' THEN 'retried' ELSE want::text END,
                  coalesce(source::text, '(none)'), CASE WHEN why <> '' THEN ' (' || why || ')' ELSE '' END),
           j.job_id, j.package_id
      FROM smsdist.jobs j WHERE j.job_id = id;
    RETURN want::text;
END
$$;
REVOKE ALL ON FUNCTION receive_job_state(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_job_state(text, text, text) TO smsdist_parent_site;
