-- explain() and preview(): why not yet, and what if.
--
-- explain() says why each open target of a job or an advertisement has not
-- finished yet, in words, with who it waits for and when something will
-- next happen.  It is computed from the rows alone: this site's own, and
-- what child sites reported for theirs (docs/troubleshooting.md).
-- preview() says what a job would do before it is activated: which sites
-- and machines it reaches, what it sends, and which caches have no room.
-- The parts of explain() are its own: nobody calls them but it (readers
-- may call explain_time() and explain_duration(), which describe_targets()
-- uses too).
-- One reason explain() gives: why an open target of a job or an
-- advertisement has not finished yet (docs/troubleshooting.md).
CREATE TYPE explanation AS (
    sms_id           text,          -- the target machine (NULL: the job or a site)
    site_code        text,          -- its site
    state            text,          -- its target state (or the job's, or a phase's)
    reason           text,          -- why it has not finished, for an operator
    waiting_on       text,          -- a component, 'agent', 'child site', 'parent site' or 'operator'
    since            timestamptz,   -- when this reason began
    next_attempt_at  timestamptz    -- when something will next happen, if known
);

\ir ../functions/explain_time.sql
\ir ../functions/explain_duration.sql
\ir ../functions/platform_mismatch.sql
\ir ../functions/cache_full_reason.sql
\ir ../functions/cache_locks.sql
\ir ../functions/running_reason.sql
\ir ../functions/cache_full.sql
\ir ../functions/explain_job_gate.sql
\ir ../functions/explain_job_site.sql
\ir ../functions/explain_job_target.sql
\ir ../functions/explain_job.sql
\ir ../functions/explain_advertisement_site.sql
\ir ../functions/explain_advertisement_target.sql
\ir ../functions/explain_advertisement.sql
\ir ../functions/explain.sql
\ir ../functions/preview.sql
