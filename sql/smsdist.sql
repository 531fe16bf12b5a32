-- smsdist: the data model, the wake-up triggers and the roles.
--
-- The source of the extension's current base script: make builds
-- sql/smsdist--<version>.sql from this file by expanding each \ir line with
-- the file it names (tools/expand-sql), so that CREATE EXTENSION runs one
-- script.  Every object is written once, in the file of its area; each
-- function has a file of its own in sql/functions/ and each view one in
-- sql/views/, so that an update script can include the current definition
-- (sql/updates/).  The order is the order of creation: an area's tables,
-- triggers, views and SQL-language functions use only what the areas
-- before it define (a PL/pgSQL body is resolved when it runs).  Every
-- table is documented in docs/data-model.md; the wake-up channels in
-- docs/workers.md.
\echo Use "CREATE EXTENSION smsdist" to load this file. \quit

\ir schema/roles.sql
\ir schema/types.sql
\ir schema/workers.sql
\ir schema/sites.sql
\ir schema/throughput.sql
\ir schema/inventory.sql
\ir schema/caches.sql
\ir schema/packages.sql
\ir schema/icons.sql
\ir schema/collections.sql
\ir schema/jobs.sql
\ir schema/job_retries.sql
\ir schema/advertisements.sql
\ir schema/status.sql
\ir schema/content.sql
\ir schema/policy.sql
\ir schema/site_link.sql
\ir schema/explain.sql
\ir schema/import.sql
\ir schema/views.sql
\ir schema/metrics.sql

-- Tell the workers the extension is here (at commit).
SELECT wake('supervisor'), wake('scheduler');
