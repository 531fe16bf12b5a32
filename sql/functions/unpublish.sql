-- Take a package off a distribution point's share (C).
CREATE OR REPLACE FUNCTION unpublish(share text, package_id text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_unpublish';
REVOKE ALL ON FUNCTION unpublish(text, text) FROM PUBLIC;
