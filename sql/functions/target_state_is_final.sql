-- Whether a target has ended: succeeded, failed, not applicable, cancelled
-- or expired (the states from 'succeeded' on).
CREATE OR REPLACE FUNCTION target_state_is_final(state target_state) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT state >= 'succeeded'::smsdist.target_state $$;
