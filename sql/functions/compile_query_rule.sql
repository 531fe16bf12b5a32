-- The SQL condition a query rule compiles to (src/query_rule.c); an ERROR
-- that says what is wrong if it does not compile.
CREATE OR REPLACE FUNCTION compile_query_rule(rule text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'smsdist_compile_query_rule';
GRANT EXECUTE ON FUNCTION compile_query_rule(text) TO PUBLIC;
