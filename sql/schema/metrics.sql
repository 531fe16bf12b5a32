-- Metrics for Prometheus: the view smsdist.metrics (one row per series:
-- metric name, labels, value) and the counts it reads that the tables do
-- not hold as current state.
--
-- A counter (bytes sent to each child site, status messages taken in,
-- cache-full reports) must only grow, and "targets by state" must not cost
-- a scan of job_target_status on a site of 100,000 machines.  So triggers
-- count each event where it happens, in the transaction that makes it:
-- a rolled-back event is not counted, a committed one is counted once.
-- They only ever INSERT a row of amounts to add (metric_counts), never
-- update a shared row, so two transactions that count at once never wait
-- for each other; now and then one of them folds the rows into one per
-- series (compact_metric_counts()).  docs/metrics.md.

-- Amounts to add per series: the value of (metric, label) is the sum of
-- its rows.  label is the value of the metric's one label ('' when none).
-- Dumped by pg_dump like the tables it counts, in the same snapshot: the
-- documented restore runs with triggers off (docs/operations.md), so the
-- counts come back as they were, with the rows they count.
CREATE TABLE metric_counts (
    metric  text NOT NULL,
    label   text NOT NULL DEFAULT '',
    value   bigint NOT NULL
);
COMMENT ON TABLE metric_counts IS
    'amounts the metric triggers added per (metric, label): a series'' value is the sum of its rows (the view metrics)';
REVOKE ALL ON metric_counts FROM PUBLIC;
GRANT SELECT ON metric_counts TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.metric_counts', '');

\ir ../functions/compact_metric_counts.sql
\ir ../functions/count_targets.sql
\ir ../functions/count_status_messages.sql
\ir ../functions/count_bytes_sent.sql

-- Targets by state, kept as each statement adds, moves or removes them.
-- (A trigger with transition tables has one event.)
CREATE TRIGGER count_targets_insert AFTER INSERT ON job_target_status
    REFERENCING NEW TABLE AS new_targets
    FOR EACH STATEMENT EXECUTE FUNCTION count_targets();
CREATE TRIGGER count_targets_update AFTER UPDATE ON job_target_status
    REFERENCING OLD TABLE AS old_targets NEW TABLE AS new_targets
    FOR EACH STATEMENT EXECUTE FUNCTION count_targets();
CREATE TRIGGER count_targets_delete AFTER DELETE ON job_target_status
    REFERENCING OLD TABLE AS old_targets
    FOR EACH STATEMENT EXECUTE FUNCTION count_targets();
CREATE TRIGGER count_targets_truncate AFTER TRUNCATE ON job_target_status
    FOR EACH STATEMENT EXECUTE FUNCTION count_targets();
-- The targets there are already (an update from 0.8).
INSERT INTO metric_counts (metric, label, value)
SELECT 'smsdist_job_targets', state::text, count(*) FROM job_target_status GROUP BY state;

CREATE TRIGGER count_status_messages AFTER INSERT ON status_messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION count_status_messages();

CREATE TRIGGER count_bytes_sent AFTER UPDATE ON job_site_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_bytes_sent();

\ir ../views/metrics.sql
