-- Publish a package's tree on a distribution point's share (C).
CREATE OR REPLACE FUNCTION publish_tree(source_directory text, share text, package_id text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_publish_tree';
REVOKE ALL ON FUNCTION publish_tree(text, text, text) FROM PUBLIC;
