-- After each INSERT of status messages (the Status Manager inserts a batch
-- in one statement): the jobs whose targets they made final complete if
-- none is left open.  Once per job and statement, not once per message.
CREATE OR REPLACE FUNCTION finish_jobs_of_messages() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j text;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    FOR j IN SELECT DISTINCT n.job_id FROM new_rows n
              WHERE n.job_id IS NOT NULL AND n.target_effect LIKE 'job %' LOOP
        PERFORM smsdist.finish_job_if_done(j);
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION finish_jobs_of_messages() FROM PUBLIC;
