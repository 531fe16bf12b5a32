-- Advertisements from the parent: its own, for its own packages
-- (record_advertisement() takes them in).
CREATE OR REPLACE FUNCTION receive_advertisement(details jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    -- (NULL: a superuser at a site with no parent, which record_advertisement refuses)
    IF source IS NOT NULL THEN
        IF jsonb_typeof(details) IS DISTINCT FROM 'object' OR jsonb_typeof(details->'advert') IS DISTINCT FROM 'object'
           OR jsonb_typeof(details->'package') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'incomplete advertisement details: advert, package, program and collections are required'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM smsdist.require_sent_by('advertisement', details->'advert'->>'advert_id', source);
        PERFORM smsdist.require_sent_by('package', details->'package'->>'package_id', source);
        -- a new package is the parent's from its first row (its source is
        -- the parent's path, never checked or built here)
        INSERT INTO smsdist.packages (package_id, name, source_directory, source_site)
        VALUES (details->'package'->>'package_id', details->'package'->>'name',
                details->'package'->>'source_directory', source)
        ON CONFLICT (package_id) DO NOTHING;
    END IF;
    PERFORM smsdist.record_advertisement(details);
    UPDATE smsdist.packages p SET source_site = source
     WHERE p.package_id = details->'package'->>'package_id' AND p.source_site IS DISTINCT FROM source;
END
$$;
REVOKE ALL ON FUNCTION receive_advertisement(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_advertisement(jsonb) TO smsdist_parent_site;
