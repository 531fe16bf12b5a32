-- The child of this site through which a site below it is reached (NULL if
-- the site is not below this one).
-- (PL/pgSQL, which keeps its plan for the session: it is called for many
-- rows of the Sender's statements, and an SQL function that cannot be
-- inlined is planned again for each statement that calls it.)
CREATE OR REPLACE FUNCTION route_hop(target site_code) RETURNS site_code
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (
    WITH RECURSIVE up(code, parent, depth) AS (
        SELECT s.site_code, s.parent_site_code, 0 FROM smsdist.sites s WHERE s.site_code = target
        UNION ALL
        SELECT s.site_code, s.parent_site_code, up.depth + 1
          FROM smsdist.sites s JOIN up ON s.site_code = up.parent
         WHERE up.parent IS DISTINCT FROM current_setting('smsdist.site_code')::smsdist.site_code
           AND up.depth < 100)
    SELECT code FROM up WHERE parent = current_setting('smsdist.site_code')::smsdist.site_code LIMIT 1);
END
$$;
GRANT EXECUTE ON FUNCTION route_hop(site_code) TO smsdist_reader;
