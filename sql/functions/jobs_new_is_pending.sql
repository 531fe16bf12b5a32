-- A new job must start in 'pending'.
CREATE OR REPLACE FUNCTION jobs_new_is_pending() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.state <> 'pending' THEN
        RAISE EXCEPTION 'a new job starts in state pending, not %', NEW.state
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.activated_at := NULL;
    NEW.finished_at := NULL;
    NEW.created_at := clock_timestamp();
    NEW.created_by := current_user;
    NEW.state_changed_by := current_user;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION jobs_new_is_pending() FROM PUBLIC;
