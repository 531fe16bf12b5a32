-- Wake a component's worker now (at commit).
CREATE OR REPLACE FUNCTION wake(component text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_wake';
REVOKE ALL ON FUNCTION wake(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wake(text) TO smsdist_operator;
