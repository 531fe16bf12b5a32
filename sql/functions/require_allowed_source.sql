CREATE OR REPLACE FUNCTION require_allowed_source(path text) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'smsdist_require_allowed_source';
GRANT EXECUTE ON FUNCTION require_allowed_source(text) TO smsdist_operator;
