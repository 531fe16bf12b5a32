-- explain() of an advertisement.
CREATE OR REPLACE FUNCTION explain_advertisement(p_advert_id text, p_sms_id text) RETURNS SETOF explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a smsdist.advertisements;
    n bigint;
    r smsdist.explanation;
BEGIN
    SELECT * INTO a FROM smsdist.advertisements WHERE advert_id = p_advert_id;
    IF p_sms_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM smsdist.advertisement_target_status t
             WHERE t.advert_id = p_advert_id AND t.sms_id = p_sms_id) THEN
        r.sms_id := p_sms_id;
        r.site_code := (SELECT x.site_code FROM smsdist.system_resources x WHERE x.sms_id = p_sms_id);
        r.state := 'not a target';
        r.reason := CASE WHEN r.site_code IS NULL THEN format('machine %s is not in system_resources', p_sms_id)
                         ELSE format('machine %s is not a target of advertisement %s: it is not a member of collection %s%s (a machine reached through its user or group becomes a target with its first report)',
                                     p_sms_id, p_advert_id, a.collection_id,
                                     CASE WHEN a.include_subcollections THEN ' or its subcollections' ELSE '' END) END;
        RETURN NEXT r;
        RETURN;
    END IF;
    RETURN QUERY
    WITH open AS (
        SELECT t FROM smsdist.advertisement_target_status t
         WHERE t.advert_id = p_advert_id
           AND (CASE WHEN p_sms_id IS NULL THEN NOT smsdist.target_state_is_final(t.state)
                     ELSE t.sms_id = p_sms_id END)),
    sites AS MATERIALIZED (
        SELECT s.site_code, smsdist.explain_advertisement_site(p_advert_id, s.site_code) AS g
          FROM (SELECT DISTINCT (o.t).site_code::text AS site_code FROM open o) s)
    SELECT (o.t).sms_id::text, (o.t).site_code::text, (o.t).state::text,
           (x.e).reason, (x.e).waiting_on, (x.e).since, (x.e).next_attempt_at
      FROM open o
      JOIN sites s ON s.site_code = (o.t).site_code
      CROSS JOIN LATERAL (
          SELECT CASE WHEN (o.t).state = 'waiting' AND (s.g).reason IS NOT NULL THEN s.g
                      ELSE smsdist.explain_advertisement_target(o.t) END AS e
          OFFSET 0) x
     ORDER BY (o.t).site_code, (o.t).sms_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 AND p_sms_id IS NULL AND NOT EXISTS (
            SELECT 1 FROM smsdist.advertisement_target_status t WHERE t.advert_id = p_advert_id) THEN
        r.state := CASE WHEN a.enabled THEN 'enabled' ELSE 'disabled' END;
        r.reason := format('the advertisement has no target machine: collection %s%s has no member at this site or below it',
                           a.collection_id, CASE WHEN a.include_subcollections THEN ' with its subcollections' ELSE '' END);
        r.waiting_on := 'collection evaluator';
        RETURN NEXT r;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION explain_advertisement(text, text) FROM PUBLIC;
