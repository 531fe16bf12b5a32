-- Per-target states travel up.  The child's Status Manager sends the rows
-- whose report is pending (at most p_limit), the parent takes them
-- (receive_target_report), and the child then clears what it sent unless
-- the row changed again meanwhile.
CREATE OR REPLACE FUNCTION target_report_for_parent(p_limit integer) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(r), '[]'::jsonb) FROM (
        (SELECT jsonb_build_object('kind', 'job', 'id', t.job_id, 'sms_id', t.sms_id, 'state', t.state,
                                   'detail', left(t.detail, 2000), 'exit_code', t.exit_code,
                                   'at', t.updated_at) AS r
           FROM smsdist.job_target_status t WHERE t.report_pending LIMIT p_limit)
        UNION ALL
        (SELECT jsonb_build_object('kind', 'advertisement', 'id', t.advert_id, 'sms_id', t.sms_id,
                                   'state', t.state, 'detail', left(t.detail, 2000), 'exit_code', t.exit_code,
                                   'at', t.updated_at)
           FROM smsdist.advertisement_target_status t WHERE t.report_pending LIMIT p_limit)) q
$$;
