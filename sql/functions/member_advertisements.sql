-- The enabled advertisements whose collection (with its subcollections,
-- when the advertisement includes them, 100 levels deep at most) has
-- these members: the Offer Manager's lookup files, walked from the member
-- up.  p_kind: 'system' (p_names are SMS IDs), 'user' or 'user_group'
-- (DOMAIN\name, matched as lookup_name_key() does).
CREATE OR REPLACE FUNCTION member_advertisements(p_kind text, p_names text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    -- one plan for every call: planning each call again cost more than
    -- the query (these run once per machine of every policy computed)
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    direct text[];
    keys text[];
BEGIN
    -- PL/pgSQL, not SQL: each query's plan is kept across calls
    IF p_kind = 'system' THEN
        direct := ARRAY(SELECT m.collection_id::text FROM smsdist.collection_members m
                         WHERE m.sms_id = ANY (p_names));
    ELSIF p_kind IN ('user', 'user_group') THEN
        keys := ARRAY(SELECT smsdist.lookup_name_key(n) FROM unnest(p_names) n);
        IF p_kind = 'user' THEN
            direct := ARRAY(SELECT m.collection_id::text FROM smsdist.collection_user_members m
                             WHERE smsdist.lookup_name_key(m.domain || '\' || m.user_name) = ANY (keys));
        ELSE
            direct := ARRAY(SELECT m.collection_id::text FROM smsdist.collection_group_members m
                             WHERE smsdist.lookup_name_key(m.domain || '\' || m.group_name) = ANY (keys));
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown member kind "%": system, user or user_group', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(direct) = 0 THEN
        RETURN '{}';
    END IF;
    RETURN (
        WITH RECURSIVE up(collection_id, depth) AS (
            SELECT DISTINCT d, 0 FROM unnest(direct) d
            UNION
            SELECT s.parent_collection_id::text, u.depth + 1
              FROM up u JOIN smsdist.collection_subcollections s ON s.child_collection_id = u.collection_id
             WHERE u.depth < 100)
        SELECT coalesce(array_agg(DISTINCT a.advert_id::text ORDER BY a.advert_id::text), '{}')
          FROM up JOIN smsdist.advertisements a ON a.collection_id = up.collection_id
         WHERE a.enabled AND (up.depth = 0 OR a.include_subcollections));
END
$$;
REVOKE ALL ON FUNCTION member_advertisements(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION member_advertisements(text, text[]) TO smsdist_reader;
