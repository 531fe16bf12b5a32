/* smsdist 0.7 -> 0.8: every job and every target ends in a true state.
 *
 * A target (a run-command job or an advertisement, times one machine) has
 * one current state, moved by the agent's own status messages in the same
 * transaction that records them; jobs end when every target at every site
 * is final; cancel, expire and retry reach every site that holds a copy.
 * docs/status-messages.md and docs/data-model.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.8'" to load this file. \quit

-------------------------------------------------------------------------------
-- Target lifecycle
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Job control across the hierarchy (cancel, expire, retry)
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Advanced-mode parity (run-command jobs, user and group advertisements)
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Rerun behaviour, recurrence, not applicable
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Package versions and live jobs
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Every SECURITY DEFINER function and every trigger function: no EXECUTE for
-- PUBLIC (those the roles need are granted in their sections).
-------------------------------------------------------------------------------
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace
                AND (p.prosecdef OR p.prorettype = 'trigger'::regtype) LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
