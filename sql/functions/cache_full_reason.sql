-- What the target's last agent report says about the download cache, when
-- the cache had no room (10006), as an explanation; else NULL.
CREATE OR REPLACE FUNCTION cache_full_reason(p_detail text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_detail ~* '(cache is full|larger than the whole cache)'
                THEN 'the download cache of its agent has no room for the package: '
                     || regexp_replace(p_detail, '^.*not downloaded: ', '') END
$$;
REVOKE ALL ON FUNCTION cache_full_reason(text) FROM PUBLIC;
