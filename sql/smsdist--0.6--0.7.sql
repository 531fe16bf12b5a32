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

-- signing keys
-- Every instruction file the site writes for workstations is signed with
-- the site's Ed25519 key (smsdist.signing_key); agents verify it with the
-- public key this function gives (smsdist-agent --site-key).  The PCM
-- files record the key that signed them, so that a new key re-signs them.
CREATE FUNCTION site_public_key() RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_site_public_key';
REVOKE ALL ON FUNCTION site_public_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION site_public_key() TO smsdist_reader;
COMMENT ON FUNCTION site_public_key() IS
    'The site''s public key (PEM) that agents verify instruction files with (smsdist-agent --site-key).';

ALTER TABLE pcm_files ADD COLUMN key_id text;
COMMENT ON COLUMN pcm_files.key_id IS
    'The key ID of the site key that signed the file (docs/formats.md, Signatures).';

-------------------------------------------------------------------------------
-- Limits and quarantine
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Safe SQL: every SECURITY DEFINER function sets its search_path and is
-- executable only by the roles that need it
-------------------------------------------------------------------------------
