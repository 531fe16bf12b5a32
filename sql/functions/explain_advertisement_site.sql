-- Why an advertisement is held at one site, or NULL.
CREATE OR REPLACE FUNCTION explain_advertisement_site(p_advert_id text, p_site text) RETURNS explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a smsdist.advertisements;
    here text := current_setting('smsdist.site_code', true);
    next_hop text;
    pu smsdist.advertisement_pushes;
    share text;
    e smsdist.explanation;
BEGIN
    SELECT * INTO a FROM smsdist.advertisements WHERE advert_id = p_advert_id;
    e.site_code := p_site;
    IF p_site IS DISTINCT FROM here THEN
        next_hop := smsdist.route_hop(p_site);
        SELECT * INTO pu FROM smsdist.advertisement_pushes x WHERE x.advert_id = p_advert_id AND x.hop = next_hop;
        IF pu.advert_id IS NOT NULL AND pu.pushed_at IS NULL THEN
            e.state := 'not replicated';
            e.reason := format('the advertisement has not reached site %s yet%s',
                               next_hop, CASE WHEN pu.last_error IS NOT NULL
                                         THEN format(' (%s attempt(s), the last at %s): %s', pu.attempts,
                                                     smsdist.explain_time(pu.attempted_at), pu.last_error)
                                         ELSE ': the Sender replicates it at its next step' END);
            e.waiting_on := CASE WHEN pu.last_error IS NOT NULL THEN 'child site' ELSE 'sender' END;
            e.since := pu.attempted_at;
            RETURN e;
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM smsdist.package_locations l
                    WHERE l.package_id = a.package_id AND l.site_code = p_site) THEN
        SELECT string_agg(j.job_id, ', ' ORDER BY j.job_id) INTO share FROM smsdist.jobs j
         WHERE j.package_id = a.package_id AND j.job_type = 'share_package' AND j.state IN ('pending', 'active');
        e.state := 'package not distributed';
        e.reason := format('package %s is not on the distribution points of site %s%s', a.package_id, p_site,
                           CASE WHEN share IS NOT NULL THEN format(': job %s is distributing it (see explain(''%s''))',
                                                                  share, split_part(share, ',', 1))
                                ELSE ': a share-package job distributes it' END);
        e.waiting_on := CASE WHEN share IS NULL THEN 'operator' ELSE 'despooler' END;
        RETURN e;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION explain_advertisement_site(text, text) FROM PUBLIC;
