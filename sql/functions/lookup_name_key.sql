-- User and user-group names as the lookup files hold them (DOMAIN\name)
-- and agents match them: equal when equal ignoring the case of A-Z only.
CREATE OR REPLACE FUNCTION lookup_name_key(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.translate(p_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
GRANT EXECUTE ON FUNCTION lookup_name_key(text) TO PUBLIC;
