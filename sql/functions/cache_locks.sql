-- What a machine's last cache inventory adds to a full cache: how much is
-- locked and when the first lock ends (when room may come), or NULL.
CREATE OR REPLACE FUNCTION cache_locks(p_sms_id text, OUT said text, OUT first_unlock timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL: the inventory tables are made further down this script)
    SELECT format('; its agent reported at %s a cache of %s, %s used, %s locked%s',
                  smsdist.explain_time(c.reported_at), pg_size_pretty(c.size_limit_bytes),
                  pg_size_pretty(c.used_bytes), pg_size_pretty(c.locked_bytes),
                  CASE WHEN l.first IS NOT NULL
                       THEN format(', the first lock ends at %s (package %s)', smsdist.explain_time(l.first), l.package_id)
                       ELSE '' END),
           l.first
      INTO said, first_unlock
      FROM smsdist.machine_caches c
      LEFT JOIN LATERAL (SELECT p.locked_until AS first, p.package_id
                           FROM smsdist.machine_cache_packages p
                          WHERE p.sms_id = c.sms_id AND p.locked_until > clock_timestamp()
                          ORDER BY p.locked_until LIMIT 1) l ON true
     WHERE c.sms_id = p_sms_id;
END
$$;
REVOKE ALL ON FUNCTION cache_locks(text) FROM PUBLIC;
