-- Each (advertisement, child site) whose child does not have its current
-- details, or that the child must delete: what the Sender does next.
-- details is NULL for a deletion (also of one the child never took: that
-- is a no-op there, and forgets the failed attempt here).  A failed push waits 2^attempts seconds
-- (at most 60) before the next try.
-- (PL/pgSQL, which keeps its plan for the session: the Sender asks at every
-- step, and an SQL function with a SET clause is planned at every call.)
CREATE OR REPLACE FUNCTION advertisement_pushes_due() RETURNS TABLE (advert_id text, hop text, details jsonb, conninfo text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH hops AS (
        SELECT s.site_code::text AS hop FROM smsdist.sites s
         WHERE s.parent_site_code = current_setting('smsdist.site_code')::smsdist.site_code),
    wanted AS (
        SELECT a.advert_id::text AS advert_id, h.hop, smsdist.advertisement_details(a.advert_id, h.hop) AS details
          FROM smsdist.advertisements a CROSS JOIN hops h),
    due AS (
        SELECT w.advert_id, w.hop, w.details FROM wanted w
          LEFT JOIN smsdist.advertisement_pushes p ON p.advert_id = w.advert_id AND p.hop = w.hop
         WHERE w.details IS NOT NULL AND p.payload_md5 IS DISTINCT FROM md5(w.details::text)
        UNION ALL
        SELECT p.advert_id, p.hop, NULL FROM smsdist.advertisement_pushes p
         WHERE NOT EXISTS (SELECT 1 FROM wanted w WHERE w.advert_id = p.advert_id AND w.hop = p.hop))
    SELECT d.advert_id, d.hop, d.details,
           (SELECT sa.conninfo::text FROM smsdist.sender_addresses sa
             WHERE sa.target_site_code = d.hop AND sa.enabled ORDER BY sa.priority LIMIT 1)
      FROM due d
      LEFT JOIN smsdist.advertisement_pushes p ON p.advert_id = d.advert_id AND p.hop = d.hop
     WHERE p.last_error IS NULL
        OR p.attempted_at + make_interval(secs => least(60, power(2, least(p.attempts, 6)))) <= clock_timestamp()
     ORDER BY d.hop, d.advert_id;
END
$$;
REVOKE ALL ON FUNCTION advertisement_pushes_due() FROM PUBLIC;
