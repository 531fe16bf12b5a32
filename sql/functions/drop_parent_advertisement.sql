-- At the child: delete a parent's advertisement (the parent deleted it).
CREATE OR REPLACE FUNCTION drop_parent_advertisement(p_advert_id text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id AND a.source_site IS NULL) THEN
        RAISE EXCEPTION 'advertisement % is this site''s own: a parent cannot remove it', p_advert_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM smsdist.advertisements a WHERE a.advert_id = p_advert_id;
    PERFORM smsdist.remove_unused_parent_collections();
END
$$;
REVOKE ALL ON FUNCTION drop_parent_advertisement(text) FROM PUBLIC;
