-- An advanced agent's status message (status files come through the
-- Status Manager): the same row as a status file, with the program's exit
-- code, recorded once per (machine, sequence, client time), for the
-- caller's own machine only, with the same limits as a status file
-- (status_problem(): smsdist.status_text_max, smsdist.client_time_window,
-- no control characters but tab).
CREATE OR REPLACE FUNCTION client_status(p_machine text, p_sequence bigint, p_client_at timestamptz, p_message_id integer,
                              p_severity text, p_component text, p_text text, p_advert_id text DEFAULT NULL,
                              p_job_id text DEFAULT NULL, p_package_id text DEFAULT NULL,
                              p_exit_code integer DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    site smsdist.site_code;
    problem text;
BEGIN
    PERFORM smsdist.require_machine_login(p_machine);
    SELECT r.site_code INTO site FROM smsdist.system_resources r WHERE r.sms_id = p_machine;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown machine %', p_machine USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF p_component !~ '^[A-Za-z0-9_. -]{1,64}$' THEN
        RAISE EXCEPTION 'invalid component "%": 1-64 of A-Z a-z 0-9 _ . - and space', p_component
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_sequence IS NULL OR p_sequence < 0 THEN
        RAISE EXCEPTION 'invalid sequence number %: 0 or more', coalesce(p_sequence::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_message_id IS NULL OR p_message_id NOT BETWEEN 1 AND 99999 THEN
        RAISE EXCEPTION 'invalid message ID %: 1-99999', coalesce(p_message_id::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_text IS NULL OR p_client_at IS NULL THEN
        RAISE EXCEPTION 'status message of machine % refused: it has no text or no client time', p_machine
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the same limits as a status file's (src/status_manager.c)
    problem := smsdist.status_problem(p_text, p_client_at);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'status message of machine % refused: %', p_machine, problem
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message,
                                         job_id, package_id, advert_id, client_sequence, client_at, exit_code)
    VALUES (site, p_component, p_machine, p_severity::smsdist.severity, p_message_id, p_text,
            p_job_id, p_package_id, p_advert_id, p_sequence, p_client_at, p_exit_code)
    ON CONFLICT (machine, client_sequence, client_at) WHERE client_sequence IS NOT NULL DO NOTHING;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION client_status(text, bigint, timestamp with time zone, integer, text, text, text, text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client_status(text, bigint, timestamp with time zone, integer, text, text, text, text, text, text, integer) TO smsdist_client;
