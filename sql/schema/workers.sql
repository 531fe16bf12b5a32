-- Workers and wake-ups.
--
-- Each background worker (Scheduler, Sender, Despooler, ...) sleeps until
-- a table it follows changes: the notify_* triggers written next to each
-- table call notify_change(), which wakes the components named when the
-- transaction commits (channels: docs/workers.md).  Inventory is bulk-loaded,
-- so its triggers fire once per statement, with payload '*'.
\ir ../functions/notify_change.sql
\ir ../functions/wake.sql
\ir ../functions/worker_status.sql
\ir ../functions/library_version.sql
\ir ../functions/touch_updated_at.sql
\ir ../functions/require_extension_table.sql
-- what pg_cron needs to run smsdist's schedules
\ir ../functions/pg_cron_check.sql
