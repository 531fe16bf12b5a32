-- Package sources only from directories a superuser allowed
-- (smsdist.source_roots): checked when an operator names a source, and
-- again by the builder on the directory it opens (src/source_roots.c).
CREATE OR REPLACE FUNCTION require_allowed_source(path text) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'smsdist_require_allowed_source';
GRANT EXECUTE ON FUNCTION require_allowed_source(text) TO smsdist_operator;
