-- Per run-command job: its targets by current state.  Each target counts
-- once, in the state it is in now (a machine that failed and then
-- succeeded is one success).
CREATE VIEW job_status AS
SELECT j.job_id, j.state, j.state_reason,
       coalesce(c.targeted, 0) AS targeted,
       coalesce(c.waiting, 0) AS waiting,
       coalesce(c.offered, 0) AS offered,
       coalesce(c.downloaded, 0) AS downloaded,
       coalesce(c.running, 0) AS running,
       coalesce(c.succeeded, 0) AS succeeded,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.not_applicable, 0) AS not_applicable,
       coalesce(c.cancelled, 0) AS cancelled,
       coalesce(c.expired, 0) AS expired,
       c.last_report_at
  FROM jobs j
  LEFT JOIN LATERAL (
      SELECT count(*) AS targeted,
             count(*) FILTER (WHERE t.state = 'waiting') AS waiting,
             count(*) FILTER (WHERE t.state = 'offered') AS offered,
             count(*) FILTER (WHERE t.state = 'downloaded') AS downloaded,
             count(*) FILTER (WHERE t.state = 'running') AS running,
             count(*) FILTER (WHERE t.state = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE t.state = 'failed') AS failed,
             count(*) FILTER (WHERE t.state = 'not_applicable') AS not_applicable,
             count(*) FILTER (WHERE t.state = 'cancelled') AS cancelled,
             count(*) FILTER (WHERE t.state = 'expired') AS expired,
             max(t.updated_at) FILTER (WHERE t.state <> 'waiting') AS last_report_at
        FROM job_target_status t WHERE t.job_id = j.job_id) c ON true
 WHERE j.job_type = 'run_command';
REVOKE ALL ON job_status FROM PUBLIC;
GRANT SELECT ON job_status TO smsdist_reader;
