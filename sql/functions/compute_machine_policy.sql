-- A machine's policy, computed: its advertisements ("target": "machine"),
-- its maintenance windows, and its live run-command jobs (what its PCM
-- file says).  machine_policies keeps it: the Offer Manager stores it for
-- every machine an advertisement targets, the PCM writer for every machine
-- whose PCM file it writes or removes, and each notifies
-- smsdist_policy_<sms id> when it changed.
CREATE OR REPLACE FUNCTION compute_machine_policy(p_sms_id text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- one definition of a policy: compute_machine_policies() for one machine
    SELECT c.policy FROM smsdist.compute_machine_policies(ARRAY[p_sms_id]) c
$$;
REVOKE ALL ON FUNCTION compute_machine_policy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compute_machine_policy(text) TO smsdist_reader;
