-- The parent's machines of a run-command job changed: the parent that sent
-- the job, and nobody else, may retarget it (record_job_targets() does).
CREATE OR REPLACE FUNCTION receive_job_targets(p_job_id text, machines jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    PERFORM smsdist.require_default_collation(p_job_id, 'receive_job_targets');
    IF EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = p_job_id) THEN
        PERFORM smsdist.require_sent_by('job', p_job_id, source);
    END IF;
    RETURN smsdist.record_job_targets(p_job_id, machines);
END
$$;
REVOKE ALL ON FUNCTION receive_job_targets(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_job_targets(text, jsonb) TO smsdist_parent_site;
