-- Per advertisement: its targets by current state, counted as job_status
-- counts them.
CREATE VIEW advertisement_status AS
SELECT a.advert_id, a.name, a.enabled,
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
  FROM advertisements a
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
        FROM advertisement_target_status t WHERE t.advert_id = a.advert_id) c ON true;
REVOKE ALL ON advertisement_status FROM PUBLIC;
GRANT SELECT ON advertisement_status TO smsdist_reader;
