-- The machines a parent names: added to the inventory if unknown here, and
-- only for sites at or below this one (a parent cannot place machines at
-- itself or at a sibling through this site).
CREATE OR REPLACE FUNCTION record_machines(machines jsonb) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    SELECT m.sms_id, m.name, m.domain, m.site_code, m.platform::smsdist.platform
      FROM jsonb_to_recordset(CASE WHEN jsonb_typeof(machines) = 'array' THEN machines ELSE '[]' END)
           AS m(sms_id text, name text, domain text, site_code text, platform text)
     WHERE EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code = m.site_code)
       AND (m.site_code = current_setting('smsdist.site_code')
            OR smsdist.route_hop(m.site_code::smsdist.site_code) IS NOT NULL)
    ON CONFLICT DO NOTHING
$$;
REVOKE ALL ON FUNCTION record_machines(jsonb) FROM PUBLIC;
