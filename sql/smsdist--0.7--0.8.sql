/* smsdist 0.7 -> 0.8: every job and every target ends in a true state.
 *
 * A target (a run-command job or an advertisement, times one machine) has
 * one current state, moved by the agent's own status messages in the same
 * transaction that records them; jobs end when every target at every site
 * is final; cancel, expire and retry reach every site that holds a copy.
 * docs/status-messages.md and docs/data-model.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.8'" to load this file. \quit

-------------------------------------------------------------------------------
-- Target lifecycle
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Job control across the hierarchy (cancel, expire, retry)
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Advanced-mode parity (run-command jobs, user and group advertisements)
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Rerun behaviour, recurrence, not applicable
-------------------------------------------------------------------------------

-- What a mandatory time (an assignment, each recurrence) does on a machine
-- where the program already ran: Configuration Manager's rerun behaviour.
-- The agent decides from its own record of runs (docs/agent.md).
ALTER TABLE advertisements ADD COLUMN rerun_behaviour text NOT NULL DEFAULT 'rerun_if_failed'
    CONSTRAINT advertisements_rerun_behaviour_check
    CHECK (rerun_behaviour IN ('never_rerun', 'always_rerun', 'rerun_if_failed', 'rerun_if_succeeded'));
COMMENT ON COLUMN advertisements.rerun_behaviour IS
    'never_rerun, always_rerun, rerun_if_failed (default) or rerun_if_succeeded: whether a mandatory time runs '
    'the program again on a machine where it already ran (by the outcome of its last run there)';

-- The rerun behaviour travels wherever an advertisement goes: the details
-- pushed to child sites (advertisement_details, taken in by
-- record_advertisement) and each machine's policy (compute_machine_policy).
-- These functions are patched in place, each fragment found in the current
-- definition, rather than written out again, so that this section composes
-- with the other sections of this script that redefine them; a fragment
-- that is not there stops the update.
DO $$
DECLARE
    p record;
    src text;
    n integer;
BEGIN
    FOR p IN SELECT * FROM (VALUES
        (1, 'smsdist.compute_machine_policy(text)'::regprocedure, true,
         $o$'advert_id', a.advert_id, 'name', a.name,$o$,
         $n$'advert_id', a.advert_id, 'name', a.name, 'rerun_behaviour', a.rerun_behaviour,$n$),
        (2, 'smsdist.advertisement_details(text, text)'::regprocedure, false,
         $o$'enabled', a.enabled, 'comment', a.comment),$o$,
         $n$'enabled', a.enabled, 'comment', a.comment, 'rerun_behaviour', a.rerun_behaviour),$n$),
        (3, 'smsdist.record_advertisement(jsonb)'::regprocedure, false,
         $o$expires_time, expires_time_utc, enabled, comment, source_site)$o$,
         $n$expires_time, expires_time_utc, enabled, comment, source_site, rerun_behaviour)$n$),
        (4, 'smsdist.record_advertisement(jsonb)'::regprocedure, false,
         $o$(ad->>'enabled')::boolean, ad->>'comment', parent)$o$,
         $n$(ad->>'enabled')::boolean, ad->>'comment', parent,
            coalesce(ad->>'rerun_behaviour', 'rerun_if_failed'))$n$),
        (5, 'smsdist.record_advertisement(jsonb)'::regprocedure, false,
         $o$enabled = EXCLUDED.enabled, comment = EXCLUDED.comment, source_site = EXCLUDED.source_site;$o$,
         $n$enabled = EXCLUDED.enabled, comment = EXCLUDED.comment, source_site = EXCLUDED.source_site,
           rerun_behaviour = EXCLUDED.rerun_behaviour;$n$))
        AS v(step, f, many, old, new) ORDER BY step
    LOOP
        src := pg_catalog.pg_get_functiondef(p.f);
        n := (length(src) - length(replace(src, p.old, ''))) / length(p.old);
        IF n = 0 OR (n > 1 AND NOT p.many) THEN
            RAISE EXCEPTION 'cannot add the rerun behaviour to %: "%" found % times in its definition', p.f, p.old, n
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        EXECUTE replace(src, p.old, p.new);
    END LOOP;
END
$$;

-- The exit code of a program, as the agent reports it with 10008/10009
-- (status files: exit_code=; advanced agents: client_status's p_exit_code).
-- The column and the parameter belong to the target lifecycle too: each is
-- made here only if that section has not made it already.
ALTER TABLE status_messages ADD COLUMN IF NOT EXISTS exit_code integer;
DO $do$
BEGIN
    IF to_regprocedure('smsdist.client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text, integer)') IS NULL THEN
        DROP FUNCTION IF EXISTS client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text);
        CREATE FUNCTION client_status(p_machine text, p_sequence bigint, p_client_at timestamptz,
                                      p_message_id integer, p_severity text, p_component text, p_text text,
                                      p_advert_id text DEFAULT NULL, p_job_id text DEFAULT NULL,
                                      p_package_id text DEFAULT NULL, p_exit_code integer DEFAULT NULL)
            RETURNS boolean
            LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
        AS $body$
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
            IF p_exit_code < 0 THEN
                RAISE EXCEPTION 'invalid exit code %: 0 or more', p_exit_code
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
        $body$;
        REVOKE ALL ON FUNCTION client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text, integer)
            FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text, integer)
            TO smsdist_client;
    END IF;
END
$do$;

-------------------------------------------------------------------------------
-- Package versions and live jobs
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Every SECURITY DEFINER function and every trigger function: no EXECUTE for
-- PUBLIC (those the roles need are granted in their sections).
-------------------------------------------------------------------------------
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = '@extschema@'::regnamespace
                AND (p.prosecdef OR p.prorettype = 'trigger'::regtype) LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
