-- The advisory lock a package builder holds for as long as it works on a
-- build: a build in state 'building' whose lock is free has lost its builder.
CREATE OR REPLACE FUNCTION build_lock_key(package_id text, source_version integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.hashtextextended('smsdist build ' || package_id || '.' || source_version, 0);
GRANT EXECUTE ON FUNCTION build_lock_key(text, integer) TO smsdist_reader;
