-- A target row changed (its state, detail or exit code): it is stamped
-- (updated_at), the parent site must hear of it if it sent the job or
-- advertisement (report_pending), and a LISTENer on smsdist_targets sees a
-- change of state.  In C (src/core/target_trigger.c): a child's report
-- changes up to 20,000 rows in one statement.  The triggers' WHEN clause
-- (sql/schema/status.sql) keeps updates that change none of the three from
-- calling it.
CREATE OR REPLACE FUNCTION target_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'smsdist_target_changed';
REVOKE ALL ON FUNCTION target_changed() FROM PUBLIC;
