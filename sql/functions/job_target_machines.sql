-- The systems a run-command job targets.
CREATE OR REPLACE FUNCTION job_target_machines(p_job_id sms_id)
    RETURNS TABLE (sms_id sms_id, site_code site_code)
    LANGUAGE sql STABLE
AS $$
    SELECT r.sms_id, r.site_code
      FROM smsdist.jobs j
      CROSS JOIN LATERAL unnest(j.target_machines) AS m(sms_id)
      JOIN smsdist.system_resources r ON r.sms_id = m.sms_id
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command' AND j.target_type = 'machines'
    UNION
    SELECT r.sms_id, r.site_code
      FROM smsdist.jobs j
      JOIN smsdist.collection_members c ON c.collection_id = j.target_collection_id
      JOIN smsdist.system_resources r ON r.sms_id = c.sms_id
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command' AND j.target_type = 'collection'
$$;
REVOKE ALL ON FUNCTION job_target_machines(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION job_target_machines(sms_id) TO smsdist_reader;
