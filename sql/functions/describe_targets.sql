-- What a job targets and what that resolves to, in one line (the reason of
-- a job that found nothing to reach).
CREATE OR REPLACE FUNCTION describe_targets(p_job_id sms_id) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE j.target_type
        WHEN 'collection' THEN
            (SELECT CASE
                 WHEN c.collection_id IS NULL THEN format('collection %s does not exist', j.target_collection_id)
                 WHEN m.n = 0 THEN format('collection %s has no members%s', c.collection_id,
                     CASE WHEN c.evaluation_error IS NOT NULL
                          THEN ' (its last evaluation failed: ' || c.evaluation_error || ')'
                          ELSE '' END)
                 WHEN m.below = 0 THEN format('collection %s has %s member(s), none of them at this site or below it',
                                              c.collection_id, m.n)
                 ELSE format('collection %s has %s member(s) at %s site(s) at or below this one',
                             c.collection_id, m.below, m.sites) END
               FROM (SELECT 1) one
               LEFT JOIN smsdist.collections c ON c.collection_id = j.target_collection_id
               CROSS JOIN LATERAL (
                   SELECT count(*) AS n,
                          count(*) FILTER (WHERE r.site_code = current_setting('smsdist.site_code', true)
                                              OR smsdist.route_hop(r.site_code) IS NOT NULL) AS below,
                          count(DISTINCT r.site_code) FILTER (
                              WHERE r.site_code = current_setting('smsdist.site_code', true)
                                 OR smsdist.route_hop(r.site_code) IS NOT NULL) AS sites
                     FROM smsdist.collection_members cm
                     JOIN smsdist.system_resources r ON r.sms_id = cm.sms_id
                    WHERE cm.collection_id = j.target_collection_id) m)
        WHEN 'machines' THEN
            format('%s listed machine(s), %s of them in system_resources', cardinality(j.target_machines),
                   (SELECT count(*) FROM smsdist.system_resources r WHERE r.sms_id = ANY (j.target_machines)))
        ELSE
            format('%s listed site(s)%s, %s of them in sites', cardinality(j.target_sites),
                   CASE WHEN j.include_subsites THEN ' with their subsites' ELSE '' END,
                   (SELECT count(*) FROM smsdist.sites s WHERE s.site_code = ANY (j.target_sites)))
        END
      FROM smsdist.jobs j WHERE j.job_id = p_job_id
$$;
REVOKE ALL ON FUNCTION describe_targets(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION describe_targets(sms_id) TO smsdist_reader;
