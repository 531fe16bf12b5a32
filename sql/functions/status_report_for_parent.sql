-- The per-site summaries the parent keeps (site_status_reports): this
-- site's own targets, by current state, for the parent's jobs and
-- advertisements; and what this site's children sent.
-- (PL/pgSQL, which keeps its plan for the session: the Status Manager asks
-- at every step, and an SQL function with a SET clause is planned at every
-- call.)
CREATE OR REPLACE FUNCTION status_report_for_parent() RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (
    SELECT coalesce(jsonb_agg(r ORDER BY r->>'site_code', r->>'kind', r->>'object_id'), '[]'::jsonb) FROM (
        SELECT jsonb_build_object('site_code', current_setting('smsdist.site_code'), 'kind', 'advertisement',
                                  'object_id', a.advert_id, 'targeted', count(t.sms_id),
                                  'offered', count(*) FILTER (WHERE t.state = 'offered'),
                                  'downloaded', count(*) FILTER (WHERE t.state = 'downloaded'),
                                  'succeeded', count(*) FILTER (WHERE t.state = 'succeeded'),
                                  'failed', count(*) FILTER (WHERE t.state = 'failed')) AS r
          FROM smsdist.advertisements a
          LEFT JOIN smsdist.advertisement_target_status t
            ON t.advert_id = a.advert_id AND t.site_code = current_setting('smsdist.site_code')::smsdist.site_code
         WHERE a.source_site IS NOT NULL
         GROUP BY a.advert_id
        UNION ALL
        SELECT jsonb_build_object('site_code', current_setting('smsdist.site_code'), 'kind', 'job',
                                  'object_id', j.job_id, 'targeted', count(t.sms_id),
                                  'offered', count(*) FILTER (WHERE t.state = 'offered'),
                                  'downloaded', count(*) FILTER (WHERE t.state = 'downloaded'),
                                  'succeeded', count(*) FILTER (WHERE t.state = 'succeeded'),
                                  'failed', count(*) FILTER (WHERE t.state = 'failed'))
          FROM smsdist.jobs j
          LEFT JOIN smsdist.job_target_status t
            ON t.job_id = j.job_id AND t.site_code = current_setting('smsdist.site_code')::smsdist.site_code
         WHERE j.job_type = 'run_command' AND j.source_site IS NOT NULL
         GROUP BY j.job_id
        UNION ALL
        SELECT jsonb_build_object('site_code', x.site_code, 'kind', x.kind, 'object_id', x.object_id,
                                  'targeted', x.targeted, 'offered', x.offered, 'downloaded', x.downloaded,
                                  'succeeded', x.succeeded, 'failed', x.failed)
          FROM smsdist.site_status_reports x) q(r));
END
$$;
REVOKE ALL ON FUNCTION status_report_for_parent() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION status_report_for_parent() TO smsdist_reader;
