-- The regular files' bytes and count of a package's source tree, for a
-- version not built yet: at most 100,000 entries and 32 levels (complete is
-- false beyond), only below smsdist.source_roots.  NULL bytes when the
-- directory cannot be read.  Called by preview() as the extension's owner.
CREATE OR REPLACE FUNCTION source_tree_size(p_dir text, OUT bytes bigint, OUT files bigint, OUT complete boolean)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    complete := false;
    BEGIN
        PERFORM smsdist.require_allowed_source(p_dir);
        IF NOT coalesce((pg_stat_file(p_dir, true)).isdir, false) THEN
            RETURN;
        END IF;
        WITH RECURSIVE walk(path, isdir, size, depth) AS (
            SELECT p_dir, true, 0::bigint, 0
          UNION ALL
            SELECT w.path || '/' || f, st.isdir, st.size, w.depth + 1
              FROM walk w
              CROSS JOIN LATERAL pg_ls_dir(w.path, true, false) f
              CROSS JOIN LATERAL pg_stat_file(w.path || '/' || f, true) st
             WHERE w.isdir AND w.depth < 32)
        SELECT coalesce(sum(x.size) FILTER (WHERE NOT x.isdir), 0), count(*) FILTER (WHERE NOT x.isdir), count(*)
          INTO bytes, files, n
          FROM (SELECT * FROM walk LIMIT 100001) x;
        complete := n <= 100000;
    EXCEPTION WHEN OTHERS THEN
        bytes := NULL;
        files := NULL;
    END;
END
$$;
REVOKE ALL ON FUNCTION source_tree_size(text) FROM PUBLIC;
