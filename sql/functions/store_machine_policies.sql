-- Store the policies of these machines (compute_machine_policies()) in
-- machine_policies, which machine_policy() serves, and notify
-- smsdist_policy_<sms id> for each one that changed since it was last
-- stored.  The PCM writer (the machines of a batch) and the Offer Manager
-- (the machines advertisements target) both call it, holding the policies'
-- lock.  Returns the number notified.
--
-- For a few machines the joins of compute_machine_policies() are planned
-- in the order written (the machines' rows first, then each by its key):
-- planned freely, in every order, they took 7 ms to plan against 1 ms to
-- run for one machine; in that order, 1.7 ms, and the plan it keeps for a
-- few machines is made that way.  Not for many: in that order a batch of
-- 20,000 was joined in a nested loop, 26 s instead of 1 s.  The SET
-- clauses (PostgreSQL's defaults) keep the change inside this function.
-- No machine, no statement: most Offer Manager steps and the PCM files of
-- other sites' machines have none, and its planning is the call's cost.
CREATE OR REPLACE FUNCTION store_machine_policies(p_sms_ids text[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET join_collapse_limit = 8
SET from_collapse_limit = 8
AS $$
DECLARE
    n bigint;
BEGIN
    IF coalesce(cardinality(p_sms_ids), 0) = 0 THEN
        RETURN 0;
    END IF;
    IF cardinality(p_sms_ids) <= 16 THEN
        PERFORM set_config('join_collapse_limit', '1', true),
                set_config('from_collapse_limit', '1', true);
    END IF;
    WITH pol AS (
        SELECT c.sms_id, c.policy AS p FROM smsdist.compute_machine_policies(p_sms_ids) c),
    changed AS (
        INSERT INTO smsdist.machine_policies (sms_id, policy_md5, policy)
        SELECT sms_id, md5(coalesce(p::text, '')), p FROM pol
            ON CONFLICT (sms_id) DO UPDATE
           SET policy_md5 = EXCLUDED.policy_md5, policy = EXCLUDED.policy,
               changed_at = clock_timestamp()
         -- (policy is NULL once, for rows kept from 0.3)
         WHERE machine_policies.policy_md5 <> EXCLUDED.policy_md5
            OR machine_policies.policy IS NULL
        RETURNING sms_id)
    SELECT count(pg_notify('smsdist_policy_' || lower(changed.sms_id), 'changed')) INTO n FROM changed;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION store_machine_policies(text[]) FROM PUBLIC;
