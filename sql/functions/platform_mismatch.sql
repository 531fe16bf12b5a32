-- Whether a job or an advertisement waits for its program's platform: the
-- sentence, or NULL when the program runs on the machine's platform (or
-- either is not known).
CREATE OR REPLACE FUNCTION platform_mismatch(p_package_id text, p_program text, p_sms_id text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('program "%s" runs on %s; this machine is %s: its agent will report that it does not apply here (10007)',
                  p.program_name, array_to_string(p.platforms, ', '), r.platform)
      FROM smsdist.programs p, smsdist.system_resources r
     WHERE p.package_id = p_package_id AND p.program_name = p_program AND r.sms_id = p_sms_id
       AND p.platforms IS NOT NULL AND cardinality(p.platforms) > 0
       AND r.platform IS NOT NULL AND NOT (r.platform = ANY (p.platforms))
$$;
REVOKE ALL ON FUNCTION platform_mismatch(text, text, text) FROM PUBLIC;
