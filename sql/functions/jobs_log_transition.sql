-- SECURITY DEFINER: operators change jobs but may not write the log directly.
CREATE OR REPLACE FUNCTION jobs_log_transition() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF TG_OP = 'INSERT' THEN
        INSERT INTO smsdist.job_transitions (job_id, from_state, to_state, by_role, reason)
        VALUES (NEW.job_id, NULL, NEW.state, NEW.state_changed_by, coalesce(NEW.state_reason, 'created'));
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO smsdist.job_transitions (job_id, from_state, to_state, by_role, reason)
        VALUES (NEW.job_id, OLD.state, NEW.state, NEW.state_changed_by,
                coalesce(NEW.state_reason, 'changed by ' || NEW.state_changed_by));
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION jobs_log_transition() FROM PUBLIC;
