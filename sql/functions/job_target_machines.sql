-- The systems a run-command job targets.  A job targets machines or a
-- collection, never both, and a collection has each member once (its
-- key): only the named machines need DISTINCT.  (A UNION hashed the
-- 100,000 members of a job's collection to find no duplicate, spilling to
-- disk, twice in each activation: 45 ms each.)
CREATE OR REPLACE FUNCTION job_target_machines(p_job_id sms_id)
    RETURNS TABLE (sms_id sms_id, site_code site_code)
    LANGUAGE sql STABLE
AS $$
    SELECT DISTINCT r.sms_id, r.site_code
      FROM smsdist.jobs j
      CROSS JOIN LATERAL unnest(j.target_machines) AS m(sms_id)
      JOIN smsdist.system_resources r ON r.sms_id = m.sms_id
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command' AND j.target_type = 'machines'
    UNION ALL
    SELECT r.sms_id, r.site_code
      FROM smsdist.jobs j
      JOIN smsdist.collection_members c ON c.collection_id = j.target_collection_id
      JOIN smsdist.system_resources r ON r.sms_id = c.sms_id
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command' AND j.target_type = 'collection'
$$;
REVOKE ALL ON FUNCTION job_target_machines(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION job_target_machines(sms_id) TO smsdist_reader;
