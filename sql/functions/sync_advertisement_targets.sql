-- The machines an advertisement targets as members (not through a user):
-- the members of its collections.  Called when members or the
-- advertisement change.  A member that is new gets a waiting row; one that
-- left before its target ended is not applicable (and waiting again if it
-- comes back before an agent said anything about it).
CREATE OR REPLACE FUNCTION sync_advertisement_targets(p_advert_id text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
    m integer;
BEGIN
    WITH members AS (
        SELECT DISTINCT m.sms_id, r.site_code
          FROM smsdist.advertisement_collections(p_advert_id) c(id)
          JOIN smsdist.collection_members m ON m.collection_id = c.id
          JOIN smsdist.system_resources r ON r.sms_id = m.sms_id)
    INSERT INTO smsdist.advertisement_target_status AS t (advert_id, sms_id, site_code)
    SELECT p_advert_id, m.sms_id, m.site_code FROM members m
    ON CONFLICT (advert_id, sms_id) DO UPDATE
       SET through_user = false,
           state = CASE WHEN t.state = 'not_applicable' AND t.status_id IS NULL THEN 'waiting' ELSE t.state END,
           detail = CASE WHEN t.state = 'not_applicable' AND t.status_id IS NULL THEN NULL ELSE t.detail END
     WHERE t.through_user OR (t.state = 'not_applicable' AND t.status_id IS NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE smsdist.advertisement_target_status t
       SET state = 'not_applicable',
           detail = format('the machine left the collection of advertisement %s before its program ran', p_advert_id),
           status_id = NULL
     WHERE t.advert_id = p_advert_id AND t.state < 'succeeded' AND NOT t.through_user
       AND NOT EXISTS (SELECT 1 FROM smsdist.advertisement_collections(p_advert_id) c(id)
                         JOIN smsdist.collection_members m ON m.collection_id = c.id
                        WHERE m.sms_id = t.sms_id);
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
