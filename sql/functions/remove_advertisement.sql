-- The parent deleted one of its advertisements: the parent that sent it,
-- and nobody else, may remove it here (drop_parent_advertisement()).
CREATE OR REPLACE FUNCTION remove_advertisement(p_advert_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_default_collation(p_advert_id, 'remove_advertisement');
    PERFORM smsdist.require_sent_by('advertisement', p_advert_id, smsdist.calling_site('parent'));
    PERFORM smsdist.drop_parent_advertisement(p_advert_id);
END
$$;
REVOKE ALL ON FUNCTION remove_advertisement(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remove_advertisement(text) TO smsdist_parent_site;
