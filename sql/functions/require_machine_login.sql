-- An error unless the calling login may speak for machine p_sms_id: it is
-- bound to it in machine_logins, or it has the privileges of
-- smsdist_reader (which reads every machine's policy anyway), or it is a
-- superuser.
CREATE OR REPLACE FUNCTION require_machine_login(p_sms_id text) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    login name := session_user;
    bound text;
BEGIN
    PERFORM smsdist.require_default_collation(p_sms_id, 'require_machine_login');
    SELECT l.sms_id INTO bound FROM smsdist.machine_logins l WHERE l.role_name = login;
    IF bound IS NOT NULL AND bound = p_sms_id THEN
        RETURN;
    END IF;
    IF bound IS NULL AND pg_has_role(login, 'smsdist_reader', 'USAGE') THEN
        RETURN;
    END IF;
    IF bound IS NULL THEN
        RAISE EXCEPTION 'permission denied: login "%" does not speak for any machine', login
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An administrator binds each agent''s login to its machine: INSERT INTO smsdist.machine_logins (role_name, sms_id).';
    END IF;
    RAISE EXCEPTION 'permission denied: login "%" speaks for machine %, not for machine %', login, bound, p_sms_id
        USING ERRCODE = 'insufficient_privilege';
END
$$;
REVOKE ALL ON FUNCTION require_machine_login(text) FROM PUBLIC;
