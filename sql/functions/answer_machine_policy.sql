-- What machine_policy() answers, every request it does not answer itself
-- (src/core/machine_policy.c answers a plain request: no user and groups,
-- a stored policy, the caller bound to the machine or a reader).  The
-- machine's policy (the stored copy, or computed now for a machine nothing
-- targets yet) and, when the agent says who is logged on, the
-- advertisements for that user ("target": "user") and for the user's groups
-- ("user_group"), computed at each call, as the user and user-group lookup
-- files give them to a legacy agent.  Names are DOMAIN\name (matched
-- ignoring the case of A-Z), at most smsdist's lookup-name length; at most
-- 256 groups.  Granted to nobody: machine_policy() calls it through the
-- function manager, and it makes every check again.
CREATE OR REPLACE FUNCTION answer_machine_policy(p_sms_id text, p_user text DEFAULT NULL, p_groups text[] DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol jsonb;
    site text;
    taken text[];
    ids text[];
    extra jsonb := '[]'::jsonb;
    name text;
    kind text;
    n integer;
    bound text;
    found_machine boolean;
BEGIN
    PERFORM smsdist.require_default_collation(p_sms_id, 'answer_machine_policy');
    -- PL/pgSQL, not SQL: its plans are kept across calls.  One query reads
    -- the caller's binding, the machine and its stored policy: what
    -- require_machine_login() checks, without a call and a query more.
    SELECT (SELECT l.sms_id FROM smsdist.machine_logins l WHERE l.role_name = session_user),
           r.sms_id IS NOT NULL, mp.policy, r.site_code
      INTO bound, found_machine, pol, site
      FROM (SELECT) one
      LEFT JOIN smsdist.system_resources r ON r.sms_id = p_sms_id
      LEFT JOIN smsdist.machine_policies mp ON mp.sms_id = r.sms_id;
    IF bound IS DISTINCT FROM p_sms_id
       AND NOT (bound IS NULL AND pg_has_role(session_user, 'smsdist_reader', 'USAGE')) THEN
        PERFORM smsdist.require_machine_login(p_sms_id);    -- raises the error
    END IF;
    IF pol IS NULL AND found_machine THEN
        -- a machine nothing targets yet: no policy stored
        pol := smsdist.compute_machine_policy(p_sms_id);
    END IF;
    IF p_user IS NULL AND p_groups IS NULL THEN
        RETURN pol;
    END IF;

    n := coalesce(cardinality(p_groups), 0);
    IF n > 256 THEN
        RAISE EXCEPTION 'too many groups: % (at most 256)', n
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF array_ndims(p_groups) > 1 THEN
        RAISE EXCEPTION 'the groups must be a one-dimensional array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR name, kind IN SELECT p_user, 'user' WHERE p_user IS NOT NULL
                      UNION ALL SELECT g, 'group' FROM unnest(p_groups) g LOOP
        IF name IS NULL OR octet_length(name) NOT BETWEEN 3 AND 256
           OR name !~ '^[A-Za-z0-9_][A-Za-z0-9_-]{0,14}\\[^\\]'
           OR name ~ '[\x01-\x1f\x7f]' OR name ~ ' $' THEN
            RAISE EXCEPTION 'invalid % name "%"', kind, coalesce(left(name, 300), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A user or group is DOMAIN\name: a NetBIOS domain of 1 to 15 of A-Z a-z 0-9 _ - (not starting with -), a backslash and a name; 3 to 256 bytes, no control characters, no trailing space.';
        END IF;
    END LOOP;
    IF pol IS NULL THEN
        RETURN NULL;            -- no such machine
    END IF;

    SELECT coalesce(array_agg(a->>'advert_id'), '{}') INTO taken
      FROM jsonb_array_elements(pol->'advertisements') a;
    IF p_user IS NOT NULL THEN
        ids := ARRAY(SELECT x FROM unnest(smsdist.member_advertisements('user', ARRAY[p_user])) x
                      WHERE x <> ALL (taken));
        IF cardinality(ids) > 0 THEN
            extra := extra || smsdist.policy_advertisements(ids, site, 'user');
            taken := taken || ids;
        END IF;
    END IF;
    IF n > 0 THEN
        ids := ARRAY(SELECT x FROM unnest(smsdist.member_advertisements('user_group', p_groups)) x
                      WHERE x <> ALL (taken));
        IF cardinality(ids) > 0 THEN
            extra := extra || smsdist.policy_advertisements(ids, site, 'user_group');
        END IF;
    END IF;
    RETURN pol || jsonb_build_object('advertisements', (pol->'advertisements') || extra,
                                     'user', p_user, 'groups', coalesce(to_jsonb(p_groups), '[]'::jsonb));
END
$$;
COMMENT ON FUNCTION answer_machine_policy(text, text, text[]) IS
    'Every request machine_policy() does not answer itself: users and groups, policies not stored yet, refusals.';
REVOKE ALL ON FUNCTION answer_machine_policy(text, text, text[]) FROM PUBLIC;
