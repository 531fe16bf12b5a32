-- Trigger on status_messages (after each INSERT statement): count the
-- messages taken in, by severity (smsdist_status_messages_total), and the
-- agents' reports that a package did not fit in the cache, message 10006,
-- by site (smsdist_cache_full_reports_total).
CREATE OR REPLACE FUNCTION count_status_messages() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    INSERT INTO smsdist.metric_counts (metric, label, value)
    SELECT 'smsdist_status_messages_total', severity::text, count(*)
      FROM new_messages GROUP BY severity
    UNION ALL
    SELECT 'smsdist_cache_full_reports_total', coalesce(site_code::text, ''), count(*)
      FROM new_messages WHERE message_id = 10006 GROUP BY site_code;
    PERFORM smsdist.compact_metric_counts();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION count_status_messages() FROM PUBLIC;
