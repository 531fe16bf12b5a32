/* smsdist 0.6 -> 0.7: trust boundaries.
 *
 * Every path to a command line is a path to root on the workstations, so
 * each login now speaks for one thing: a parent site's login at this site
 * for that parent, a child site's login for that child and its subtree, a
 * machine's login for that machine.  What a site receives records where it
 * came from and may be changed only from there; what a site made itself is
 * never changed through what another site sends.  docs/security.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.7'" to load this file. \quit

-------------------------------------------------------------------------------
-- Site identity
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Machine identity
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Signed instruction files and authenticated status files
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Limits and quarantine
-------------------------------------------------------------------------------

-- A collection whose evaluation fails fails alone: the error and when it
-- happened stay on its row (collection_evaluator.c), the others go on.
ALTER TABLE collections ADD COLUMN evaluation_error_at timestamptz;
COMMENT ON COLUMN collections.evaluation_error_at IS
    'When the Collection Evaluator last failed to evaluate this collection (evaluation_error says why); NULL once an evaluation succeeds.';

-------------------------------------------------------------------------------
-- Safe SQL: every SECURITY DEFINER function sets its search_path and is
-- executable only by the roles that need it
-------------------------------------------------------------------------------
