-- An error unless a package or job is new here or came from site `source`.
CREATE OR REPLACE FUNCTION require_sent_by(kind text, object_id text, source site_code) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_it boolean;
    owner smsdist.site_code;
BEGIN
    IF kind = 'package' THEN
        SELECT true, p.source_site INTO found_it, owner FROM smsdist.packages p WHERE p.package_id = object_id;
    ELSIF kind = 'job' THEN
        SELECT true, j.source_site INTO found_it, owner FROM smsdist.jobs j WHERE j.job_id = object_id;
    ELSIF kind = 'advertisement' THEN
        SELECT true, a.source_site INTO found_it, owner FROM smsdist.advertisements a WHERE a.advert_id = object_id;
    ELSE
        RAISE EXCEPTION 'invalid object kind "%"', kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT coalesce(found_it, false) OR owner IS NOT DISTINCT FROM source THEN
        RETURN;
    END IF;
    IF owner IS NULL THEN
        RAISE EXCEPTION '% % was made at site %: site % may not change it', kind, object_id,
            current_setting('smsdist.site_code'), coalesce(source::text, '(none)')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION '% % came from site %: site % may not change it', kind, object_id, owner,
        coalesce(source::text, '(none)')
        USING ERRCODE = 'insufficient_privilege';
END
$$;
REVOKE ALL ON FUNCTION require_sent_by(text, text, site_code) FROM PUBLIC;
