-- When this site last heard from a machine's agent, in words.
CREATE OR REPLACE FUNCTION agent_last_heard(p_sms_id text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT format('its agent last reported at %s (%s ago, message %s)',
                       smsdist.explain_time(m.at), smsdist.explain_duration(clock_timestamp() - m.at), m.message_id)
           FROM smsdist.status_messages m
          WHERE m.machine = p_sms_id AND m.client_sequence IS NOT NULL
          ORDER BY m.client_sequence DESC LIMIT 1),
        'no message from its agent has ever reached this site')
$$;
REVOKE ALL ON FUNCTION agent_last_heard(text) FROM PUBLIC;
