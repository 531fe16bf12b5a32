-- The bytes of the regular files of a manifest that a delta from base would
-- carry (added or changed: path, size, mode, modification time or SHA-256),
-- and of all its regular files.  (Manifest lines: <sha256 or 64 '-' or 64
-- '@'> <size> <mode> [<mtime>] <path>; the mtime is in version 2 only, so a
-- file of a version 1 base counts as changed, as package_delta.c decides.)
CREATE OR REPLACE FUNCTION manifest_delta_bytes(base text, target text, OUT sent_bytes numeric, OUT all_bytes numeric)
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (SELECT m[1] AS digest, m[2]::numeric AS size, m[3] AS mode, coalesce(m[4], '') AS mtime, m[5] AS path
                 FROM regexp_matches(target, '^([0-9a-f]{64}) ([0-9]+) ([0-7]{4}) (-?[0-9]+\.[0-9]{9} )?(.*)$', 'gn') m),
         b AS (SELECT m[1] AS digest, m[2]::numeric AS size, m[3] AS mode, coalesce(m[4], '') AS mtime, m[5] AS path
                 FROM regexp_matches(base, '^([0-9a-f]{64}) ([0-9]+) ([0-7]{4}) (-?[0-9]+\.[0-9]{9} )?(.*)$', 'gn') m)
    SELECT coalesce(sum(t.size) FILTER (WHERE b.path IS NULL), 0), coalesce(sum(t.size), 0)
      FROM t LEFT JOIN b ON b.path = t.path AND b.digest = t.digest AND b.size = t.size AND b.mode = t.mode
                        AND b.mtime = t.mtime
$$;
REVOKE ALL ON FUNCTION manifest_delta_bytes(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION manifest_delta_bytes(text, text) TO smsdist_reader;
