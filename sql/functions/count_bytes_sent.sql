-- Trigger on job_site_status (after each UPDATE statement): count the
-- bytes the Sender put on the wire to each child site
-- (smsdist_bytes_sent_total, labelled with the child, the hop).  The
-- Sender records an attempt's bytes so far in attempt_bytes of every send
-- row of the sites behind the hop at once, and starts each attempt at 0
-- with a new attempt_started_at; so what a statement sent is, per job and
-- hop, the growth of attempt_bytes within one attempt, taken once.
CREATE OR REPLACE FUNCTION count_bytes_sent() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE phase = 'send' AND attempt_bytes > 0) THEN
        RETURN NULL;
    END IF;
    INSERT INTO smsdist.metric_counts (metric, label, value)
    SELECT 'smsdist_bytes_sent_total', hop, sum(sent)
      FROM (SELECT smsdist.route_hop(n.site_code)::text AS hop,
                   max(n.attempt_bytes
                       - CASE WHEN o.attempt_started_at IS NOT DISTINCT FROM n.attempt_started_at
                              THEN coalesce(o.attempt_bytes, 0) ELSE 0 END) AS sent
              FROM new_rows n
              JOIN old_rows o USING (job_id, site_code, phase)
             WHERE n.phase = 'send' AND n.attempt_bytes > 0
               AND n.attempt_bytes IS DISTINCT FROM o.attempt_bytes
             GROUP BY n.job_id, 1) per_transfer
     WHERE sent > 0 AND hop IS NOT NULL
     GROUP BY hop;
    PERFORM smsdist.compact_metric_counts();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION count_bytes_sent() FROM PUBLIC;
