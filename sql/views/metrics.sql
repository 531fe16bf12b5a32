-- Metrics in the shape Prometheus expects: one row per series (metric
-- name, labels, value) with its type and help text.  The names follow
-- Prometheus' conventions (units in the name, _total for counters) and are
-- the names docs/postgres_exporter.yml gives them.  Cheap on a big site:
-- the counters are a few rows of metric_counts per series; of
-- job_target_status only the targets of live jobs (pending, active) are
-- read, through its key, never those of the jobs that ended; open
-- transfers come from the partial index on job_site_status; jobs and
-- workers are few.  docs/metrics.md.
CREATE VIEW metrics AS
WITH counts AS (
    SELECT metric, label, sum(value) AS value FROM metric_counts GROUP BY metric, label),
job_counts AS MATERIALIZED (
    SELECT state, count(*) AS n FROM jobs GROUP BY state),
live_targets AS MATERIALIZED (
    -- each live job's targets through the key (OFFSET 0: not a hash join
    -- over the whole table, which the planner prefers as soon as it
    -- guesses more than a few live jobs)
    SELECT t.state, count(*) AS n
      FROM jobs j
     CROSS JOIN LATERAL (SELECT state FROM job_target_status jt WHERE jt.job_id = j.job_id OFFSET 0) t
     WHERE j.state IN ('pending', 'active')
     GROUP BY t.state),
children AS (
    SELECT site_code::text AS site FROM sites
     WHERE parent_site_code::text = current_setting('smsdist.site_code', true)),
queued AS (
    -- the send rows of one transfer (the sites behind a hop) share it: once
    SELECT hop, sum(remaining) AS bytes
      FROM (SELECT route_hop(s.site_code)::text AS hop,
                   max(greatest(coalesce(s.bytes_total, b.bytes, 0) - s.bytes_done, 0)) AS remaining
              FROM job_site_status s
              JOIN jobs j USING (job_id)
              LEFT JOIN package_builds b
                ON b.package_id = j.package_id AND b.source_version = j.source_version
             WHERE s.state IN ('waiting', 'running', 'retrying') AND s.phase = 'send'
             GROUP BY s.job_id, 1) per_transfer
     GROUP BY hop)
SELECT 'smsdist_jobs'::text AS metric, jsonb_build_object('state', st::text) AS labels,
       coalesce((SELECT n FROM job_counts WHERE state = st), 0)::double precision AS value,
       'gauge'::text AS type, 'Jobs in each state.'::text AS help
  FROM unnest(enum_range(NULL::job_state)) st
UNION ALL
SELECT 'smsdist_job_targets', jsonb_build_object('state', st::text),
       coalesce((SELECT n FROM live_targets WHERE state = st), 0),
       'gauge', 'Targets (job and machine) of the pending and active jobs in each state, at this site and the sites below it.'
  FROM unnest(enum_range(NULL::target_state)) st
UNION ALL
SELECT 'smsdist_bytes_sent_total', jsonb_build_object('site', site),
       coalesce((SELECT value FROM counts WHERE metric = 'smsdist_bytes_sent_total' AND label = site), 0),
       'counter', 'Bytes of package files (full or delta) sent to each child site.'
  FROM (SELECT site FROM children
        UNION SELECT label FROM counts WHERE metric = 'smsdist_bytes_sent_total') s
UNION ALL
SELECT 'smsdist_bytes_queued', jsonb_build_object('site', site),
       coalesce((SELECT bytes FROM queued WHERE hop = site), 0),
       'gauge', 'Bytes still to send to each child site for the open transfers.'
  FROM (SELECT site FROM children UNION SELECT hop FROM queued WHERE hop IS NOT NULL) s
UNION ALL
SELECT 'smsdist_transfer_rate_bytes_per_second',
       jsonb_build_object('site', target_site_code::text, 'address', address_id::text),
       bytes_per_second, 'gauge',
       'Throughput of each sender address over its latest transfers (throttling pauses not counted).'
  FROM link_throughput WHERE bytes_per_second IS NOT NULL
UNION ALL
SELECT 'smsdist_worker_up', jsonb_build_object('worker', component),
       (pid IS NOT NULL)::integer, 'gauge', '1 while the worker process runs.'
  FROM worker_status()
UNION ALL
SELECT 'smsdist_worker_backing_off', jsonb_build_object('worker', component),
       (state LIKE 'backing off%')::integer, 'gauge',
       '1 while the worker waits to retry after an error.'
  FROM worker_status()
UNION ALL
SELECT 'smsdist_worker_last_step_timestamp_seconds', jsonb_build_object('worker', component),
       extract(epoch FROM last_step_at), 'gauge', 'When the worker last ran a step (Unix time).'
  FROM worker_status() WHERE last_step_at IS NOT NULL
UNION ALL
SELECT 'smsdist_worker_steps_total', jsonb_build_object('worker', component),
       steps, 'counter', 'Steps the worker ran since the server started.'
  FROM worker_status()
UNION ALL
SELECT 'smsdist_status_messages_total', jsonb_build_object('severity', sv::text),
       coalesce((SELECT value FROM counts WHERE metric = 'smsdist_status_messages_total' AND label = sv::text), 0),
       'counter', 'Status messages taken in, by severity.'
  FROM unnest(enum_range(NULL::severity)) sv
UNION ALL
SELECT 'smsdist_cache_full_reports_total', jsonb_build_object('site', site),
       coalesce((SELECT value FROM counts WHERE metric = 'smsdist_cache_full_reports_total' AND label = site), 0),
       'counter', 'Status messages 10006 (a package did not fit in an agent''s cache), by site.'
  FROM (SELECT nullif(current_setting('smsdist.site_code', true), '') AS site
        UNION SELECT label FROM counts WHERE metric = 'smsdist_cache_full_reports_total') s
 WHERE site IS NOT NULL;
COMMENT ON VIEW metrics IS
    'one row per Prometheus series: metric name, labels, value, type and help (docs/metrics.md)';
REVOKE ALL ON metrics FROM PUBLIC;
GRANT SELECT ON metrics TO smsdist_reader;
