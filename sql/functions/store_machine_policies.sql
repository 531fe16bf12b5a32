-- Store the policies of these machines (compute_machine_policies()) in
-- machine_policies, which machine_policy() serves, and notify
-- smsdist_policy_<sms id> for each one that changed since it was last
-- stored.  The PCM writer (the machines of a batch) and the Offer Manager
-- (the machines advertisements target) both call it, holding the policies'
-- lock.  Returns the number notified.
CREATE OR REPLACE FUNCTION store_machine_policies(p_sms_ids text[]) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
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
    SELECT count(pg_notify('smsdist_policy_' || lower(sms_id), 'changed')) FROM changed
$$;
REVOKE ALL ON FUNCTION store_machine_policies(text[]) FROM PUBLIC;
