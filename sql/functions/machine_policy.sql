-- The management point: what an agent connected as a member of
-- smsdist_client calls (it LISTENs on smsdist_policy_<sms id in lower
-- case>, which store_machine_policies() notifies), and readers too.  In C
-- (src/core/machine_policy.c): every agent asks at every poll, and a plain
-- request (no user and groups, a stored policy) is three index lookups;
-- answer_machine_policy() answers the others.  jsonb: agents take the
-- policy apart in the same query with the jsonb functions.
CREATE OR REPLACE FUNCTION machine_policy(p_sms_id text, p_user text DEFAULT NULL, p_groups text[] DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'smsdist_machine_policy';
COMMENT ON FUNCTION machine_policy(text, text, text[]) IS
    'An agent''s policy: its machine''s advertisements, maintenance windows and run-command jobs, and the advertisements for its logged-on user and the user''s groups (docs/advertisements.md).';
REVOKE ALL ON FUNCTION machine_policy(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION machine_policy(text, text, text[]) TO smsdist_client, smsdist_reader;
