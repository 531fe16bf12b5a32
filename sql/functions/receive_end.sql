-- Checks the whole file, makes it a ready build, records the job.  run: for
-- a run-command job, run_job_details() of the parent (NULL: a share job).
CREATE OR REPLACE FUNCTION receive_end(package_id text, source_version integer, job_id text,
        job_type text, target_sites text[], include_subsites boolean,
        run jsonb DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_end';
REVOKE ALL ON FUNCTION receive_end(text, integer, text, text, text[], boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_end(text, integer, text, text, text[], boolean, jsonb) TO smsdist_parent_site;
