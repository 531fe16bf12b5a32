-- Metrics for Prometheus: the view smsdist.metrics (one row per series:
-- metric name, labels, value) and the counters it reads that the tables do
-- not hold.
--
-- A counter (bytes sent to each child site, status messages taken in,
-- cache-full reports) must only grow, but the tables hold current state:
-- a transfer's bytes are overwritten by the next attempt, status messages
-- are deleted.  So statement triggers count each event where it happens,
-- in the transaction that makes it: a rolled-back event is not counted, a
-- committed one is counted once.  They only ever INSERT a row of amounts
-- to add (metric_counts), never update a shared row, so two transactions
-- that count at once never wait for each other; now and then one of them
-- folds the rows into one per series (compact_metric_counts()).  Gauges
-- are read from the tables when the view is read.  docs/metrics.md.

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
\ir ../functions/count_status_messages.sql
\ir ../functions/count_bytes_sent.sql

CREATE TRIGGER count_status_messages AFTER INSERT ON status_messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION count_status_messages();

CREATE TRIGGER count_bytes_sent AFTER UPDATE ON job_site_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_bytes_sent();

\ir ../views/metrics.sql
