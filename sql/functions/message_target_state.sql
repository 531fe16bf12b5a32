-- What an agent's status message says about its target (NULL: nothing).
CREATE OR REPLACE FUNCTION message_target_state(message_id integer) RETURNS target_state
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE message_id
               WHEN 10001 THEN 'offered'
               WHEN 10002 THEN 'offered'
               WHEN 10003 THEN 'downloaded'
               WHEN 10005 THEN 'running'
               WHEN 10007 THEN 'not_applicable'
               WHEN 10008 THEN 'succeeded'
               WHEN 10009 THEN 'failed'
           END::smsdist.target_state
$$;
