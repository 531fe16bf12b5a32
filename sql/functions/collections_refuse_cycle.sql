-- Refuse an edge that closes a loop, naming it.  Serialized by an advisory
-- lock, so that two transactions cannot each add half of a loop.
CREATE OR REPLACE FUNCTION collections_refuse_cycle() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
    d text;
    loop_path text;
BEGIN
    PERFORM pg_advisory_xact_lock(pg_catalog.hashtextextended('smsdist collection graph', 0));
    IF TG_TABLE_NAME = 'collections' THEN
        c := NEW.collection_id; d := NEW.limiting_collection_id;
    ELSIF TG_TABLE_NAME = 'collection_subcollections' THEN
        c := NEW.parent_collection_id; d := NEW.child_collection_id;
    ELSE
        c := NEW.collection_id; d := NEW.ref_collection_id;
    END IF;
    IF d IS NULL OR d = c THEN
        RETURN NEW;             -- (the table's CHECK constraints refuse c = d)
    END IF;
    -- does d reach c?
    IF TG_TABLE_NAME = 'collection_subcollections' THEN
        WITH RECURSIVE walk(node, path) AS (
            SELECT d, ARRAY[c, d]
            UNION ALL
            SELECT s.child_collection_id::text, w.path || s.child_collection_id::text
              FROM walk w JOIN smsdist.collection_subcollections s ON s.parent_collection_id = w.node
             WHERE NOT s.child_collection_id = ANY (w.path[2:]) AND cardinality(w.path) < 1000)
        SELECT array_to_string(path, ' -> ') INTO loop_path FROM walk WHERE node = c LIMIT 1;
    ELSE
        WITH RECURSIVE walk(node, path) AS (
            SELECT d, ARRAY[c, d]
            UNION ALL
            SELECT e.depends_on::text, w.path || e.depends_on::text
              FROM walk w JOIN smsdist.collection_dependencies e ON e.collection_id = w.node
             WHERE NOT e.depends_on = ANY (w.path[2:]) AND cardinality(w.path) < 1000)
        SELECT array_to_string(path, ' -> ') INTO loop_path FROM walk WHERE node = c LIMIT 1;
    END IF;
    IF loop_path IS NOT NULL THEN
        RAISE EXCEPTION 'collection % cannot depend on collection %: that would make a loop', c, d
            USING ERRCODE = 'integrity_constraint_violation',
                  DETAIL = 'The loop: ' || loop_path || '.',
                  HINT = 'Collections include, exclude, limit and contain each other only without loops.';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION collections_refuse_cycle() FROM PUBLIC;
