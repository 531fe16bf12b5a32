-- The collections an advertisement targets: its own, and its
-- subcollections (recursively) when it includes them.
CREATE OR REPLACE FUNCTION advertisement_collections(p_advert_id text) RETURNS SETOF text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE c(collection_id, depth) AS (
        SELECT a.collection_id::text, 0 FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id
        UNION
        SELECT s.child_collection_id::text, c.depth + 1
          FROM c JOIN smsdist.collection_subcollections s ON s.parent_collection_id = c.collection_id
         WHERE c.depth < 100
           AND (SELECT a.include_subcollections FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id))
    SELECT DISTINCT collection_id FROM c
$$;
REVOKE ALL ON FUNCTION advertisement_collections(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION advertisement_collections(text) TO smsdist_reader;
