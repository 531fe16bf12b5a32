-- An advertisement's targets follow its collections: when it is created
-- or retargeted, and when members join or leave (sync_advertisement_targets()).
CREATE OR REPLACE FUNCTION advertisement_targets_follow() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a text;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    -- An advertisement and the members of its collection may be written by
    -- two transactions at once (an INSERT and the Collection Evaluator):
    -- each would see the other's rows uncommitted and sync nothing.  Taken
    -- in turn, the second one's statements see what the first committed.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('smsdist.advertisement_target_status'));
    IF TG_TABLE_NAME = 'advertisements' THEN
        PERFORM smsdist.sync_advertisement_targets(NEW.advert_id);
        RETURN NULL;
    END IF;
    -- collection_members: every advertisement whose collections include
    -- one that changed (through subcollections too)
    FOR a IN SELECT ad.advert_id FROM smsdist.advertisements ad
              WHERE EXISTS (SELECT 1 FROM smsdist.advertisement_collections(ad.advert_id) c(id)
                             WHERE c.id IN (SELECT collection_id FROM changed_rows)) LOOP
        PERFORM smsdist.sync_advertisement_targets(a);
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION advertisement_targets_follow() FROM PUBLIC;
