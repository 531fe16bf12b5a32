-- What operators watch: per (job, site, phase), with the rate of the
-- attempt under way and an estimated completion time (eta).
CREATE VIEW job_progress AS
SELECT s.job_id, j.package_id, j.source_version, s.site_code, s.phase, s.state,
       s.bytes_done, s.bytes_total,
       CASE WHEN s.bytes_total > 0
            THEN least(round(100.0 * s.bytes_done / s.bytes_total, 1),
                       CASE WHEN s.bytes_total_estimated THEN 99.9 ELSE 100 END)
       END AS percent,
       r.rate AS bytes_per_second,
       s.delta_base, s.full_package_required, s.started_at, s.finished_at,
       coalesce(s.finished_at, clock_timestamp()) - s.started_at AS elapsed,
       s.attempts, s.detail, s.last_error,
       s.bytes_total_estimated,
       CASE WHEN s.state = 'done' THEN s.finished_at
            WHEN s.state <> 'running' THEN NULL
            WHEN s.phase = 'distribute' AND s.site_code <> current_setting('smsdist.site_code', true)
            THEN CASE WHEN s.reported_eta >= clock_timestamp() THEN s.reported_eta END
            WHEN s.phase = 'send' AND s.bytes_total IS NOT NULL
            THEN smsdist.transfer_eta(greatest(s.bytes_total - s.bytes_done, 0), r.rate,
                                      a.throttle, a.hourly_rate_pct, clock_timestamp())
       END AS eta,
       s.attempt_bytes,
       r.attempt_end - s.attempt_started_at AS attempt_elapsed
  FROM smsdist.job_site_status s
  JOIN smsdist.jobs j USING (job_id)
  LEFT JOIN LATERAL (
        SELECT x.attempt_end,
               CASE WHEN s.attempt_bytes > 0 AND x.attempt_end > s.attempt_started_at
                    THEN round(s.attempt_bytes / extract(epoch FROM x.attempt_end - s.attempt_started_at))::bigint
               END AS rate
          FROM (SELECT CASE WHEN s.state = 'running'
                                 AND (s.phase = 'send' OR s.site_code = current_setting('smsdist.site_code', true))
                            THEN clock_timestamp()
                            ELSE coalesce(s.finished_at, s.updated_at) END AS attempt_end) x) r ON true
  LEFT JOIN LATERAL (
        SELECT a.throttle, a.hourly_rate_pct FROM smsdist.sender_addresses a
         WHERE s.phase = 'send' AND a.target_site_code = smsdist.route_hop(s.site_code) AND a.enabled
         ORDER BY a.priority LIMIT 1) a ON true;
REVOKE ALL ON job_progress FROM PUBLIC;
GRANT SELECT ON job_progress TO smsdist_reader;
