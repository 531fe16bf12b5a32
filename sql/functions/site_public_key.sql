-- signing keys
-- Every instruction file the site writes for workstations is signed with
-- the site's Ed25519 key (smsdist.signing_key); agents verify it with the
-- public key this function gives (smsdist-agent --site-key).  The PCM
-- files record the key that signed them, so that a new key re-signs them.
CREATE OR REPLACE FUNCTION site_public_key() RETURNS text
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_site_public_key';
COMMENT ON FUNCTION site_public_key() IS
    'The site''s public key (PEM) that agents verify instruction files with (smsdist-agent --site-key).';
REVOKE ALL ON FUNCTION site_public_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION site_public_key() TO smsdist_reader;
