-- The parent's copies that no advertisement here targets any more (nor a
-- collection of this site uses) are removed.
CREATE OR REPLACE FUNCTION remove_unused_parent_collections() RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE used(collection_id, depth) AS (
        SELECT a.collection_id::text, 0 FROM smsdist.advertisements a
        UNION
        SELECT s.child_collection_id::text, u.depth + 1
          FROM used u JOIN smsdist.collection_subcollections s ON s.parent_collection_id = u.collection_id
         WHERE u.depth < 100)
    DELETE FROM smsdist.collections c
     WHERE c.source_site IS NOT NULL
       AND c.collection_id NOT IN (SELECT collection_id FROM used)
       AND NOT EXISTS (SELECT 1 FROM smsdist.collections o WHERE o.limiting_collection_id = c.collection_id)
       AND NOT EXISTS (SELECT 1 FROM smsdist.collection_rules r WHERE r.ref_collection_id = c.collection_id
                                                              AND r.collection_id <> c.collection_id)
       AND NOT EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.target_collection_id = c.collection_id)
$$;
REVOKE ALL ON FUNCTION remove_unused_parent_collections() FROM PUBLIC;
