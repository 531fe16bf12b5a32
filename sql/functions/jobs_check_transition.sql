-- The allowed changes of a job's state, and the timestamps each one sets
-- (docs/architecture.md).
CREATE OR REPLACE FUNCTION jobs_check_transition() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the bookkeeping columns belong to this trigger, not to the writer
    NEW.created_at := OLD.created_at;
    NEW.created_by := OLD.created_by;
    NEW.state_changed_by := OLD.state_changed_by;
    NEW.activated_at := OLD.activated_at;
    NEW.finished_at := OLD.finished_at;

    IF OLD.state <> 'pending' AND (NEW.job_id, NEW.job_type, NEW.package_id, NEW.program_name,
            NEW.target_type, NEW.target_collection_id, NEW.target_machines, NEW.target_sites,
            NEW.include_subsites, NEW.start_after)
          IS DISTINCT FROM (OLD.job_id, OLD.job_type, OLD.package_id, OLD.program_name,
            OLD.target_type, OLD.target_collection_id, OLD.target_machines, OLD.target_sites,
            OLD.include_subsites, OLD.start_after)
    THEN
        RAISE EXCEPTION 'job % is % and its type, package, program, targets and Start After can no longer change',
            OLD.job_id, OLD.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Create a new job instead (cancel this one first if it is still pending or active).';
    END IF;

    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF NOT ((OLD.state = 'pending' AND NEW.state IN ('active', 'cancelled', 'expired'))
             OR (OLD.state = 'active'  AND NEW.state IN ('completed', 'failed', 'cancelled', 'expired'))
             OR (OLD.state = 'failed'  AND NEW.state = 'pending'))
        THEN
            RAISE EXCEPTION 'job % cannot go from % to %', OLD.job_id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation',
                      HINT = 'Allowed: pending to active, cancelled or expired; active to completed, failed, cancelled or expired; failed to pending (retry).';
        END IF;
        IF NEW.state_reason IS NOT DISTINCT FROM OLD.state_reason THEN
            NEW.state_reason := NULL;   -- a reason belongs to one transition
        END IF;
        NEW.state_changed_by := current_user;
        IF NEW.state = 'pending' THEN
            NEW.activated_at := NULL;
            NEW.finished_at := NULL;
        ELSIF NEW.state = 'active' THEN
            NEW.activated_at := clock_timestamp();
        ELSE
            NEW.finished_at := clock_timestamp();
        END IF;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION jobs_check_transition() FROM PUBLIC;
