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
-- The state of one target.  The order is progress: a target moves only
-- forward through waiting .. running, and from there to a final state.
-- ('received' of 0.1-0.7 is now 'downloaded'; 'not_applicable' is new.)
ALTER TYPE target_state RENAME TO target_state_0_7;
CREATE TYPE target_state AS ENUM (
    'waiting', 'offered', 'downloaded', 'running',
    'succeeded', 'failed', 'not_applicable', 'cancelled', 'expired');
ALTER TABLE job_target_status ALTER COLUMN state DROP DEFAULT;
ALTER TABLE job_target_status ALTER COLUMN state TYPE target_state
    USING (CASE state::text WHEN 'received' THEN 'downloaded' ELSE state::text END)::target_state;
ALTER TABLE job_target_status ALTER COLUMN state SET DEFAULT 'waiting';
DROP TYPE target_state_0_7;

CREATE FUNCTION target_state_is_final(state target_state) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT state >= 'succeeded'::smsdist.target_state $$;

-- What an agent's status message says about its target (NULL: nothing).
CREATE FUNCTION message_target_state(message_id integer) RETURNS target_state
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

-- The message that set a target's state (NULL: the site set it), the
-- agent's order of that message, and whether the parent site still has to
-- be told (a target of a job or advertisement the parent sent).
ALTER TABLE job_target_status
    ADD COLUMN status_id bigint,
    ADD COLUMN client_sequence bigint,
    ADD COLUMN client_at timestamptz,
    ADD COLUMN report_pending boolean NOT NULL DEFAULT false;
CREATE INDEX job_target_status_live ON job_target_status (job_id)
    WHERE state < 'succeeded';
CREATE INDEX job_target_status_report ON job_target_status (job_id, sms_id)
    WHERE report_pending;

CREATE TABLE advertisement_target_status (
    advert_id          sms_id NOT NULL REFERENCES advertisements ON DELETE CASCADE,
    sms_id             sms_id NOT NULL REFERENCES system_resources ON DELETE CASCADE,
    site_code          site_code NOT NULL,
    state              target_state NOT NULL DEFAULT 'waiting',
    detail             text,
    exit_code          integer,
    -- a machine met through its user or a user group, not as a member
    through_user       boolean NOT NULL DEFAULT false,
    status_id          bigint,
    client_sequence    bigint,
    client_at          timestamptz,
    report_pending     boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (advert_id, sms_id)
);
CREATE INDEX ON advertisement_target_status (sms_id);
CREATE INDEX advertisement_target_status_report ON advertisement_target_status (advert_id, sms_id)
    WHERE report_pending;
GRANT SELECT ON advertisement_target_status TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('advertisement_target_status', '');

-- History stays in status_messages; these say what a message did.
ALTER TABLE status_messages
    ADD COLUMN exit_code integer,
    ADD COLUMN target_effect text;

-- A target row changed: the parent site must hear of it (if it sent the
-- job or advertisement), and a LISTENer on smsdist_targets sees it.
CREATE FUNCTION target_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'job_target_status' THEN 'job' ELSE 'advertisement' END;
    id text;
BEGIN
    IF (NEW.state, NEW.detail, NEW.exit_code) IS NOT DISTINCT FROM (OLD.state, OLD.detail, OLD.exit_code) THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := clock_timestamp();
    IF kind = 'job' THEN
        id := NEW.job_id;
        NEW.report_pending := EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = NEW.job_id
                                         AND j.source_site IS NOT NULL);
    ELSE
        id := NEW.advert_id;
        NEW.report_pending := EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = NEW.advert_id
                                         AND a.source_site IS NOT NULL);
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('smsdist_targets',
                          json_build_object('kind', kind, 'id', id, 'sms_id', NEW.sms_id,
                                            'site', NEW.site_code, 'state', NEW.state,
                                            'from', OLD.state)::text);
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER touch_updated_at ON job_target_status;
CREATE TRIGGER target_changed BEFORE UPDATE ON job_target_status
    FOR EACH ROW EXECUTE FUNCTION target_changed();
CREATE TRIGGER target_changed BEFORE UPDATE ON advertisement_target_status
    FOR EACH ROW EXECUTE FUNCTION target_changed();

-- A machine the site took out of a job (it left the job's collection)
-- must be taken out at the child sites too: the Sender pushes each hop
-- its machines (run_job_details).  A target row whose report is newly
-- pending wakes the Status Manager, which sends it up.
CREATE TRIGGER notify_sender_not_applicable AFTER UPDATE OF state ON job_target_status
    FOR EACH ROW WHEN (NEW.state = 'not_applicable' AND NEW.status_id IS NULL AND OLD.state <> 'not_applicable')
    EXECUTE FUNCTION notify_change('sender', 'job_id');
CREATE TRIGGER notify_status_manager AFTER UPDATE ON job_target_status
    FOR EACH ROW WHEN (NEW.report_pending AND NOT OLD.report_pending)
    EXECUTE FUNCTION notify_change('status_manager', 'job_id');
CREATE TRIGGER notify_status_manager AFTER UPDATE ON advertisement_target_status
    FOR EACH ROW WHEN (NEW.report_pending AND NOT OLD.report_pending)
    EXECUTE FUNCTION notify_change('status_manager', 'advert_id');

-- A target that leaves the PCM file (not applicable, cancelled or expired
-- while its job goes on): the machine's file is due.
CREATE FUNCTION queue_pcm_for_target() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    INSERT INTO smsdist.pcm_queue (sms_id) VALUES (NEW.sms_id)
    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_pcm_for_target AFTER UPDATE OF state ON job_target_status
    FOR EACH ROW WHEN (NEW.state IN ('not_applicable', 'cancelled', 'expired') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION queue_pcm_for_target();

-- What a hop is told of a run-command job: its machines are the targets
-- behind it that the job still has (not cancelled, expired, or not
-- applicable any more).
CREATE OR REPLACE FUNCTION run_job_details(p_job_id text, p_hop text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'program_name', j.program_name, 'command_line', pr.command_line,
        'platforms', to_jsonb(pr.platforms), 'max_run_minutes', pr.max_run_minutes, 'run_with', pr.run_with,
        'offer_after', coalesce(j.offer_after, j.start_after), 'mandatory_at', j.mandatory_at,
        'expires_at', j.expires_at, 'priority', j.priority,
        'machines', coalesce((
            SELECT jsonb_agg(jsonb_build_object('sms_id', r.sms_id, 'name', r.name, 'domain', r.domain,
                                                'site_code', r.site_code, 'platform', r.platform)
                             ORDER BY r.sms_id)
              FROM smsdist.job_target_status t JOIN smsdist.system_resources r ON r.sms_id = t.sms_id
             WHERE t.job_id = j.job_id AND t.state NOT IN ('cancelled', 'expired', 'not_applicable')
               AND (r.site_code = p_hop OR smsdist.route_hop(r.site_code) = p_hop)), '[]'::jsonb))
      FROM smsdist.jobs j
      JOIN smsdist.programs pr ON pr.package_id = j.package_id AND pr.program_name = j.program_name
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command'
$$;

-- "98 succeeded, 2 failed, 3 not applicable": a job's targets by state.
CREATE FUNCTION job_target_counts(p_job_id text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(string_agg(n || ' ' || replace(state::text, '_', ' '), ', ' ORDER BY state), 'no targets')
      FROM (SELECT t.state, count(*) AS n FROM smsdist.job_target_status t
             WHERE t.job_id = p_job_id GROUP BY t.state) c
$$;

-- A run-command job ends when none of its targets, at any site, is still
-- on its way.  The job's row is locked first: of two transactions that
-- finish its last two targets at once, the second sees the first's.
CREATE FUNCTION finish_job_if_done(p_job_id text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM smsdist.jobs j WHERE j.job_id = p_job_id AND j.state = 'active'
                                   AND j.job_type = 'run_command' FOR NO KEY UPDATE;
    IF NOT FOUND
       OR NOT EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = p_job_id)
       OR EXISTS (SELECT 1 FROM smsdist.job_target_status t
                   WHERE t.job_id = p_job_id AND t.state < 'succeeded') THEN
        RETURN false;
    END IF;
    UPDATE smsdist.jobs SET state = 'completed',
           state_reason = CASE WHEN EXISTS (SELECT 1 FROM smsdist.job_target_status t
                                             WHERE t.job_id = p_job_id AND t.state = 'failed')
                               THEN 'with failures: ' ELSE '' END
                          || smsdist.job_target_counts(p_job_id)
     WHERE job_id = p_job_id;
    RETURN true;
END
$$;

-- The Scheduler's safety net, at every step: a job whose last targets were
-- made final by a way that did not finish it (none known; cheap to check).
CREATE FUNCTION finish_done_jobs() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j text;
    n integer := 0;
BEGIN
    FOR j IN SELECT x.job_id FROM smsdist.jobs x
              WHERE x.state = 'active' AND x.job_type = 'run_command'
                AND EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = x.job_id)
                AND NOT EXISTS (SELECT 1 FROM smsdist.job_target_status t
                                 WHERE t.job_id = x.job_id AND t.state < 'succeeded') LOOP
        IF smsdist.finish_job_if_done(j) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- An advertisement's targets that have not ended when it expires are
-- expired.  An expiry in local time has passed on every machine 12 hours
-- after it passed in UTC (the westernmost time zone).  The Scheduler calls
-- this at every step.
CREATE FUNCTION expire_advertisement_targets() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE smsdist.advertisement_target_status t
       SET state = 'expired', status_id = NULL,
           detail = format('advertisement %s expired at %s%s', a.advert_id,
                           to_char(a.expires_time, 'YYYY-MM-DD HH24:MI'),
                           CASE WHEN a.expires_time_utc THEN ' UTC' ELSE ' local time' END)
      FROM smsdist.advertisements a
     WHERE a.advert_id = t.advert_id AND t.state < 'succeeded' AND a.expires_time IS NOT NULL
       AND (a.expires_time AT TIME ZONE 'UTC')
           + CASE WHEN a.expires_time_utc THEN interval '0' ELSE interval '12 hours' END <= clock_timestamp();
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- An agent's status message moves its target, in the transaction that
-- records it.  Messages are ordered by the agent's own (client time,
-- sequence); one that is not newer than the message that set the target's
-- state, that would move it back, or that would take a final target out
-- of its final state is recorded and moves nothing; target_effect says
-- what it did or why not.
CREATE FUNCTION move_target() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    to_state smsdist.target_state;
    detail_only boolean;
    kind text;
    obj text;
    cur record;
    code integer;
    site smsdist.site_code;
    why text;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.machine IS NULL OR NEW.client_sequence IS NULL OR NEW.client_at IS NULL
       OR (NEW.job_id IS NULL AND NEW.advert_id IS NULL) THEN
        RETURN NEW;
    END IF;
    to_state := smsdist.message_target_state(NEW.message_id);
    detail_only := NEW.message_id IN (10004, 10006, 10011);
    IF to_state IS NULL AND NOT detail_only THEN
        RETURN NEW;
    END IF;
    code := coalesce(NEW.exit_code,
                     CASE NEW.message_id
                         WHEN 10008 THEN 0
                         WHEN 10009 THEN substring(NEW.message FROM 'exit code (-?[0-9]{1,9})')::integer
                     END);
    IF NEW.message_id IN (10008, 10009) THEN
        NEW.exit_code := code;
    END IF;
    IF NEW.job_id IS NOT NULL THEN
        kind := 'job';
        obj := NEW.job_id;
        SELECT t.state, t.client_at, t.client_sequence INTO cur
          FROM smsdist.job_target_status t
         WHERE t.job_id = NEW.job_id AND t.sms_id = NEW.machine FOR UPDATE;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = NEW.job_id) THEN
                NEW.target_effect := format('not applied: machine %s is not a target of job %s', NEW.machine, NEW.job_id);
            ELSE
                NEW.target_effect := format('not applied: job %s is unknown at site %s', NEW.job_id,
                                            current_setting('smsdist.site_code'));
            END IF;
            RETURN NEW;
        END IF;
    ELSE
        kind := 'advertisement';
        obj := NEW.advert_id;
        SELECT t.state, t.client_at, t.client_sequence INTO cur
          FROM smsdist.advertisement_target_status t
         WHERE t.advert_id = NEW.advert_id AND t.sms_id = NEW.machine FOR UPDATE;
        IF NOT FOUND THEN
            IF NOT EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = NEW.advert_id) THEN
                NEW.target_effect := format('not applied: advertisement %s is unknown at site %s', NEW.advert_id,
                                            current_setting('smsdist.site_code'));
                RETURN NEW;
            END IF;
            -- met through its logged-on user or a user group: the agent
            -- read this machine's user in a lookup file, the site cannot
            -- tell which user was logged on
            IF NOT EXISTS (SELECT 1 FROM smsdist.advertisement_collections(NEW.advert_id) c(id)
                            WHERE EXISTS (SELECT 1 FROM smsdist.collection_user_members u WHERE u.collection_id = c.id)
                               OR EXISTS (SELECT 1 FROM smsdist.collection_group_members g WHERE g.collection_id = c.id)) THEN
                NEW.target_effect := format('not applied: machine %s is not a target of advertisement %s',
                                            NEW.machine, NEW.advert_id);
                RETURN NEW;
            END IF;
            SELECT r.site_code INTO site FROM smsdist.system_resources r WHERE r.sms_id = NEW.machine;
            INSERT INTO smsdist.advertisement_target_status (advert_id, sms_id, site_code, through_user)
            VALUES (NEW.advert_id, NEW.machine, coalesce(site, NEW.site_code), true)
            ON CONFLICT DO NOTHING;
            SELECT t.state, t.client_at, t.client_sequence INTO cur
              FROM smsdist.advertisement_target_status t
             WHERE t.advert_id = NEW.advert_id AND t.sms_id = NEW.machine FOR UPDATE;
        END IF;
    END IF;

    IF cur.client_at IS NOT NULL
       AND (NEW.client_at, NEW.client_sequence) <= (cur.client_at, cur.client_sequence) THEN
        why := format('it is not newer than message %s of %s that set the target''s state',
                      cur.client_sequence, to_char(cur.client_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    ELSIF detail_only AND smsdist.target_state_is_final(cur.state) THEN
        why := format('the target is already %s', cur.state);
    ELSIF NOT detail_only AND smsdist.target_state_is_final(cur.state) AND NOT smsdist.target_state_is_final(to_state) THEN
        why := format('the target is already %s and does not go back to %s', cur.state, to_state);
    ELSIF to_state = 'not_applicable' AND smsdist.target_state_is_final(cur.state) THEN
        -- "not for this machine" says nothing new about a target that has
        -- ended (a cancelled job's offer that left the machine's files)
        why := format('the target is already %s', cur.state);
    ELSIF NOT detail_only AND NOT smsdist.target_state_is_final(to_state) AND to_state < cur.state THEN
        why := format('the target is already %s and does not go back to %s', cur.state, to_state);
    END IF;
    IF why IS NOT NULL THEN
        NEW.target_effect := format('not applied to %s %s: %s', kind, obj, why);
        RETURN NEW;
    END IF;

    IF detail_only THEN
        to_state := cur.state;
        code := NULL;
    END IF;
    IF kind = 'job' THEN
        UPDATE smsdist.job_target_status t
           SET state = to_state, detail = left(NEW.message, 2000),
               exit_code = CASE WHEN detail_only THEN t.exit_code ELSE code END,
               status_id = NEW.status_id, client_sequence = NEW.client_sequence, client_at = NEW.client_at
         WHERE t.job_id = NEW.job_id AND t.sms_id = NEW.machine;
    ELSE
        UPDATE smsdist.advertisement_target_status t
           SET state = to_state, detail = left(NEW.message, 2000),
               exit_code = CASE WHEN detail_only THEN t.exit_code ELSE code END,
               status_id = NEW.status_id, client_sequence = NEW.client_sequence, client_at = NEW.client_at
         WHERE t.advert_id = NEW.advert_id AND t.sms_id = NEW.machine;
    END IF;
    IF detail_only THEN
        NEW.target_effect := format('%s %s: %s, detail only', kind, obj, cur.state);
    ELSE
        NEW.target_effect := format('%s %s: %s -> %s', kind, obj, cur.state, to_state);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER move_target BEFORE INSERT ON status_messages
    FOR EACH ROW EXECUTE FUNCTION move_target();

-- After each INSERT of status messages (the Status Manager inserts a batch
-- in one statement): the jobs whose targets they made final complete if
-- none is left open.  Once per job and statement, not once per message.
CREATE FUNCTION finish_jobs_of_messages() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j text;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    FOR j IN SELECT DISTINCT n.job_id FROM new_rows n
              WHERE n.job_id IS NOT NULL AND n.target_effect LIKE 'job %' LOOP
        PERFORM smsdist.finish_job_if_done(j);
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER finish_jobs AFTER INSERT ON status_messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finish_jobs_of_messages();

-- A job that ends otherwise than by its targets takes them with it: what
-- has not ended is cancelled or expired with the job, or fails with it
-- (its reason in each target's detail).
CREATE FUNCTION end_job_targets() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.state IN ('cancelled', 'expired', 'failed') AND NEW.state IS DISTINCT FROM OLD.state
       AND NEW.job_type = 'run_command' THEN
        UPDATE smsdist.job_target_status t
           SET state = NEW.state::text::smsdist.target_state,
               detail = format('job %s %s%s', NEW.job_id, NEW.state,
                               CASE WHEN NEW.state_reason IS NOT NULL THEN ': ' || NEW.state_reason ELSE '' END),
               exit_code = NULL, status_id = NULL
         WHERE t.job_id = NEW.job_id AND t.state < 'succeeded';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER end_job_targets AFTER UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION end_job_targets();

-- The machines an advertisement targets as members (not through a user):
-- the members of its collections.  Called when members or the
-- advertisement change.  A member that is new gets a waiting row; one that
-- left before its target ended is not applicable (and waiting again if it
-- comes back before an agent said anything about it).
CREATE FUNCTION sync_advertisement_targets(p_advert_id text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
    m integer;
BEGIN
    WITH members AS (
        SELECT DISTINCT m.sms_id, r.site_code
          FROM smsdist.advertisement_collections(p_advert_id) c(id)
          JOIN smsdist.collection_members m ON m.collection_id = c.id
          JOIN smsdist.system_resources r ON r.sms_id = m.sms_id)
    INSERT INTO smsdist.advertisement_target_status AS t (advert_id, sms_id, site_code)
    SELECT p_advert_id, m.sms_id, m.site_code FROM members m
    ON CONFLICT (advert_id, sms_id) DO UPDATE
       SET through_user = false,
           state = CASE WHEN t.state = 'not_applicable' AND t.status_id IS NULL THEN 'waiting' ELSE t.state END,
           detail = CASE WHEN t.state = 'not_applicable' AND t.status_id IS NULL THEN NULL ELSE t.detail END
     WHERE t.through_user OR (t.state = 'not_applicable' AND t.status_id IS NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE smsdist.advertisement_target_status t
       SET state = 'not_applicable',
           detail = format('the machine left the collection of advertisement %s before its program ran', p_advert_id),
           status_id = NULL
     WHERE t.advert_id = p_advert_id AND t.state < 'succeeded' AND NOT t.through_user
       AND NOT EXISTS (SELECT 1 FROM smsdist.advertisement_collections(p_advert_id) c(id)
                         JOIN smsdist.collection_members m ON m.collection_id = c.id
                        WHERE m.sms_id = t.sms_id);
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;

CREATE FUNCTION advertisement_targets_follow() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a text;
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    -- An advertisement and the members of its collection may be written by
    -- two transactions at once (an INSERT and the Collection Evaluator):
    -- each would see the other's rows uncommitted and sync nothing.  Taken
    -- in turn, the second one's statements see what the first committed.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('smsdist.advertisement_target_status'));
    IF TG_TABLE_NAME = 'advertisements' THEN
        PERFORM smsdist.sync_advertisement_targets(NEW.advert_id);
        RETURN NULL;
    END IF;
    -- collection_members: every advertisement whose collections include
    -- one that changed (through subcollections too)
    FOR a IN SELECT ad.advert_id FROM smsdist.advertisements ad
              WHERE EXISTS (SELECT 1 FROM smsdist.advertisement_collections(ad.advert_id) c(id)
                             WHERE c.id IN (SELECT collection_id FROM changed_rows)) LOOP
        PERFORM smsdist.sync_advertisement_targets(a);
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER advertisement_targets AFTER INSERT OR UPDATE OF collection_id, include_subcollections
    ON advertisements FOR EACH ROW EXECUTE FUNCTION advertisement_targets_follow();
CREATE TRIGGER advertisement_targets_added AFTER INSERT ON collection_members
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION advertisement_targets_follow();
CREATE TRIGGER advertisement_targets_removed AFTER DELETE ON collection_members
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION advertisement_targets_follow();
-- advertisements of 0.7 and before
SELECT sync_advertisement_targets(advert_id) FROM advertisements;

-- An advanced agent's status message (status files come through the
-- Status Manager); now with the program's exit code.
DROP FUNCTION client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text);
CREATE FUNCTION client_status(p_machine text, p_sequence bigint, p_client_at timestamptz, p_message_id integer,
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
GRANT EXECUTE ON FUNCTION client_status(text, bigint, timestamptz, integer, text, text, text, text, text, text, integer)
    TO smsdist_client;

-- Counts of current states: each target counts once, in the state it is
-- in now (a machine that failed and then succeeded is one success).
DROP VIEW job_status;
CREATE VIEW job_status AS
SELECT j.job_id, j.state, j.state_reason,
       coalesce(c.targeted, 0) AS targeted,
       coalesce(c.waiting, 0) AS waiting,
       coalesce(c.offered, 0) AS offered,
       coalesce(c.downloaded, 0) AS downloaded,
       coalesce(c.running, 0) AS running,
       coalesce(c.succeeded, 0) AS succeeded,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.not_applicable, 0) AS not_applicable,
       coalesce(c.cancelled, 0) AS cancelled,
       coalesce(c.expired, 0) AS expired,
       c.last_report_at
  FROM jobs j
  LEFT JOIN LATERAL (
      SELECT count(*) AS targeted,
             count(*) FILTER (WHERE t.state = 'waiting') AS waiting,
             count(*) FILTER (WHERE t.state = 'offered') AS offered,
             count(*) FILTER (WHERE t.state = 'downloaded') AS downloaded,
             count(*) FILTER (WHERE t.state = 'running') AS running,
             count(*) FILTER (WHERE t.state = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE t.state = 'failed') AS failed,
             count(*) FILTER (WHERE t.state = 'not_applicable') AS not_applicable,
             count(*) FILTER (WHERE t.state = 'cancelled') AS cancelled,
             count(*) FILTER (WHERE t.state = 'expired') AS expired,
             max(t.updated_at) FILTER (WHERE t.state <> 'waiting') AS last_report_at
        FROM job_target_status t WHERE t.job_id = j.job_id) c ON true
 WHERE j.job_type = 'run_command';

DROP VIEW advertisement_status;
CREATE VIEW advertisement_status AS
SELECT a.advert_id, a.name, a.enabled,
       coalesce(c.targeted, 0) AS targeted,
       coalesce(c.waiting, 0) AS waiting,
       coalesce(c.offered, 0) AS offered,
       coalesce(c.downloaded, 0) AS downloaded,
       coalesce(c.running, 0) AS running,
       coalesce(c.succeeded, 0) AS succeeded,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.not_applicable, 0) AS not_applicable,
       coalesce(c.cancelled, 0) AS cancelled,
       coalesce(c.expired, 0) AS expired,
       c.last_report_at
  FROM advertisements a
  LEFT JOIN LATERAL (
      SELECT count(*) AS targeted,
             count(*) FILTER (WHERE t.state = 'waiting') AS waiting,
             count(*) FILTER (WHERE t.state = 'offered') AS offered,
             count(*) FILTER (WHERE t.state = 'downloaded') AS downloaded,
             count(*) FILTER (WHERE t.state = 'running') AS running,
             count(*) FILTER (WHERE t.state = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE t.state = 'failed') AS failed,
             count(*) FILTER (WHERE t.state = 'not_applicable') AS not_applicable,
             count(*) FILTER (WHERE t.state = 'cancelled') AS cancelled,
             count(*) FILTER (WHERE t.state = 'expired') AS expired,
             max(t.updated_at) FILTER (WHERE t.state <> 'waiting') AS last_report_at
        FROM advertisement_target_status t WHERE t.advert_id = a.advert_id) c ON true;
GRANT SELECT ON advertisement_status, job_status TO smsdist_reader;

-- The per-site summaries the parent keeps (site_status_reports): this
-- site's own targets, by current state, for the parent's jobs and
-- advertisements; and what this site's children sent.
CREATE OR REPLACE FUNCTION status_report_for_parent() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(r ORDER BY r->>'site_code', r->>'kind', r->>'object_id'), '[]'::jsonb) FROM (
        SELECT jsonb_build_object('site_code', current_setting('smsdist.site_code'), 'kind', 'advertisement',
                                  'object_id', a.advert_id, 'targeted', count(t.sms_id),
                                  'offered', count(*) FILTER (WHERE t.state = 'offered'),
                                  'downloaded', count(*) FILTER (WHERE t.state = 'downloaded'),
                                  'succeeded', count(*) FILTER (WHERE t.state = 'succeeded'),
                                  'failed', count(*) FILTER (WHERE t.state = 'failed')) AS r
          FROM smsdist.advertisements a
          LEFT JOIN smsdist.advertisement_target_status t
            ON t.advert_id = a.advert_id AND t.site_code = current_setting('smsdist.site_code')::smsdist.site_code
         WHERE a.source_site IS NOT NULL
         GROUP BY a.advert_id
        UNION ALL
        SELECT jsonb_build_object('site_code', current_setting('smsdist.site_code'), 'kind', 'job',
                                  'object_id', j.job_id, 'targeted', count(t.sms_id),
                                  'offered', count(*) FILTER (WHERE t.state = 'offered'),
                                  'downloaded', count(*) FILTER (WHERE t.state = 'downloaded'),
                                  'succeeded', count(*) FILTER (WHERE t.state = 'succeeded'),
                                  'failed', count(*) FILTER (WHERE t.state = 'failed'))
          FROM smsdist.jobs j
          LEFT JOIN smsdist.job_target_status t
            ON t.job_id = j.job_id AND t.site_code = current_setting('smsdist.site_code')::smsdist.site_code
         WHERE j.job_type = 'run_command' AND j.source_site IS NOT NULL
         GROUP BY j.job_id
        UNION ALL
        SELECT jsonb_build_object('site_code', x.site_code, 'kind', x.kind, 'object_id', x.object_id,
                                  'targeted', x.targeted, 'offered', x.offered, 'downloaded', x.downloaded,
                                  'succeeded', x.succeeded, 'failed', x.failed)
          FROM smsdist.site_status_reports x) q(r)
$$;

-- Per-target states travel up.  The child's Status Manager sends the rows
-- whose report is pending (at most p_limit), the parent takes them
-- (receive_target_report), and the child then clears what it sent unless
-- the row changed again meanwhile.
CREATE FUNCTION target_report_for_parent(p_limit integer) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(r), '[]'::jsonb) FROM (
        (SELECT jsonb_build_object('kind', 'job', 'id', t.job_id, 'sms_id', t.sms_id, 'state', t.state,
                                   'detail', left(t.detail, 2000), 'exit_code', t.exit_code,
                                   'at', t.updated_at) AS r
           FROM smsdist.job_target_status t WHERE t.report_pending LIMIT p_limit)
        UNION ALL
        (SELECT jsonb_build_object('kind', 'advertisement', 'id', t.advert_id, 'sms_id', t.sms_id,
                                   'state', t.state, 'detail', left(t.detail, 2000), 'exit_code', t.exit_code,
                                   'at', t.updated_at)
           FROM smsdist.advertisement_target_status t WHERE t.report_pending LIMIT p_limit)) q
$$;

CREATE FUNCTION targets_reported(report jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
    m integer;
BEGIN
    UPDATE smsdist.job_target_status t SET report_pending = false
      FROM jsonb_array_elements(report) r
     WHERE r->>'kind' = 'job' AND t.job_id = r->>'id' AND t.sms_id = r->>'sms_id'
       AND t.updated_at = (r->>'at')::timestamptz;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE smsdist.advertisement_target_status t SET report_pending = false
      FROM jsonb_array_elements(report) r
     WHERE r->>'kind' = 'advertisement' AND t.advert_id = r->>'id' AND t.sms_id = r->>'sms_id'
       AND t.updated_at = (r->>'at')::timestamptz;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;

-- At the parent: a child's targets.  A child speaks for the machines of
-- its own subtree, for jobs and advertisements this site has; anything
-- else is refused row by row (counted, the first reason returned).
CREATE FUNCTION receive_target_report(p_child text, report jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller smsdist.site_code := smsdist.calling_site('child');
    r jsonb;
    applied integer := 0;
    refused integer := 0;
    first_reason text;
    why text;
    st smsdist.target_state;
    msite smsdist.site_code;
    jobs_done text[] := '{}';
    j text;
BEGIN
    IF caller IS NOT NULL AND caller IS DISTINCT FROM p_child THEN
        RAISE EXCEPTION 'login "%" speaks for site %, not for site %', session_user, caller, p_child
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code = p_child
                      AND s.parent_site_code = current_setting('smsdist.site_code')::smsdist.site_code) THEN
        RAISE EXCEPTION 'site % is not a child of site %', p_child, current_setting('smsdist.site_code')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF jsonb_typeof(report) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'a target report is a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(report) > 20000 OR octet_length(report::text) > 64 * 1024 * 1024 THEN
        RAISE EXCEPTION 'target report of site % is too large: % rows, % bytes (at most 20000 rows, 64 MB)',
            p_child, jsonb_array_length(report), octet_length(report::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR r IN SELECT x FROM jsonb_array_elements(report) x LOOP
        why := NULL;
        st := NULL;
        msite := NULL;
        IF jsonb_typeof(r) IS DISTINCT FROM 'object' OR r->>'kind' NOT IN ('job', 'advertisement')
           OR coalesce(r->>'id', '') !~ '^[A-Z0-9]{8}$' OR coalesce(r->>'sms_id', '') !~ '^[A-Z0-9]{8}$' THEN
            why := 'not a target row (kind job or advertisement, id, sms_id)';
        ELSIF NOT (r->>'state' = ANY (enum_range(NULL::smsdist.target_state)::text[])) THEN
            why := format('%s is not a target state', left(r->>'state', 40));
        ELSIF length(r->>'detail') > 2000 OR r->>'detail' ~ '[\x01-\x08\x0b-\x1f\x7f]' THEN
            why := 'its detail is longer than 2000 characters or has a control character';
        ELSIF jsonb_typeof(r->'exit_code') NOT IN ('number', 'null')
              OR (jsonb_typeof(r->'exit_code') = 'number'
                  AND (r->>'exit_code' !~ '^-?[0-9]{1,9}$')) THEN
            why := 'its exit code is not an integer';
        ELSE
            st := (r->>'state')::smsdist.target_state;
            SELECT m.site_code INTO msite FROM smsdist.system_resources m WHERE m.sms_id = r->>'sms_id';
            IF msite IS NULL THEN
                why := format('machine %s is unknown here', r->>'sms_id');
            ELSIF msite IS DISTINCT FROM p_child AND smsdist.route_hop(msite) IS DISTINCT FROM p_child THEN
                why := format('machine %s is of site %s, which is not site %s or behind it', r->>'sms_id', msite, p_child);
            END IF;
        END IF;
        IF why IS NULL AND r->>'kind' = 'job'
           AND EXISTS (SELECT 1 FROM smsdist.job_control_pushes p
                        WHERE p.job_id = r->>'id' AND p.hop = p_child AND p.state = 'pending') THEN
            -- a row the child sent before this site's retry reached it
            why := format('job %s was retried here and the retry has not reached site %s yet: the row is from before',
                          r->>'id', p_child);
        ELSIF why IS NULL AND r->>'kind' = 'job' THEN
            UPDATE smsdist.job_target_status t
               SET state = st, detail = r->>'detail', exit_code = (r->>'exit_code')::integer
             WHERE t.job_id = r->>'id' AND t.sms_id = r->>'sms_id';
            IF NOT FOUND THEN
                why := format('machine %s is not a target of job %s here', r->>'sms_id', r->>'id');
            ELSIF smsdist.target_state_is_final(st) AND NOT (r->>'id' = ANY (jobs_done)) THEN
                jobs_done := jobs_done || (r->>'id');
            END IF;
        ELSIF why IS NULL THEN
            IF NOT EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = r->>'id') THEN
                why := format('advertisement %s is unknown here', r->>'id');
            ELSE
                INSERT INTO smsdist.advertisement_target_status AS t
                       (advert_id, sms_id, site_code, state, detail, exit_code, through_user)
                VALUES (r->>'id', r->>'sms_id', msite, st, r->>'detail', (r->>'exit_code')::integer, true)
                ON CONFLICT (advert_id, sms_id) DO UPDATE
                   SET state = EXCLUDED.state, detail = EXCLUDED.detail, exit_code = EXCLUDED.exit_code;
            END IF;
        END IF;
        IF why IS NULL THEN
            applied := applied + 1;
        ELSE
            refused := refused + 1;
            first_reason := coalesce(first_reason, why);
        END IF;
    END LOOP;
    FOREACH j IN ARRAY jobs_done LOOP
        PERFORM smsdist.finish_job_if_done(j);
    END LOOP;
    RETURN jsonb_build_object('applied', applied, 'refused', refused, 'reason', first_reason);
END
$$;
REVOKE ALL ON FUNCTION receive_target_report(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_target_report(text, jsonb) TO smsdist_child_site;

-- A child's targets of a run-command job, as its parent sends them: a
-- machine no longer sent was taken out of the job before its program ran
-- here (not applicable); one that comes back and nobody reported on is
-- waiting again.
CREATE OR REPLACE FUNCTION record_job_targets(p_job_id text, machines jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted text[];
    n integer;
    m integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM smsdist.jobs WHERE job_id = p_job_id AND job_type = 'run_command') THEN
        RAISE EXCEPTION 'run-command job % is not at site %', p_job_id, current_setting('smsdist.site_code')
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM smsdist.record_machines(machines);
    SELECT coalesce(array_agg(x->>'sms_id'), '{}') INTO wanted FROM jsonb_array_elements(machines) x;
    UPDATE smsdist.job_target_status t
       SET state = 'not_applicable',
           detail = format('the machine is no longer a target of job %s (it left the job''s collection) before its program ran', p_job_id),
           status_id = NULL
     WHERE t.job_id = p_job_id AND NOT t.sms_id = ANY (wanted) AND t.state < 'running';
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO smsdist.job_target_status AS t (job_id, sms_id, site_code)
    SELECT p_job_id, r.sms_id, r.site_code FROM smsdist.system_resources r
     WHERE r.sms_id = ANY (wanted)
       AND EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = p_job_id AND j.state IN ('pending', 'active'))
    ON CONFLICT (job_id, sms_id) DO UPDATE SET state = 'waiting', detail = NULL
     WHERE t.state = 'not_applicable' AND t.status_id IS NULL;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;


-------------------------------------------------------------------------------
-- Job control across the hierarchy (cancel, expire, retry)
-------------------------------------------------------------------------------

-- What each child site must still be told about a job: its copy there
-- follows the job here when the job is cancelled or expires (by an operator
-- or the Scheduler) and when a failed job is retried (failed -> pending).
-- One row per (job, hop): the newest change replaces one not sent yet.  The
-- Sender works the rows off (src/job_control.c) and deletes each once the
-- hop has taken it; a hop that is down keeps its rows, tried again after
-- 2^attempts seconds (at most 60), also after a restart of either site.
CREATE TABLE job_control_pushes (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    state            job_state NOT NULL
                     CONSTRAINT a_child_copy_is_cancelled_expired_or_retried
                     CHECK (state IN ('cancelled', 'expired', 'pending')),
    reason           text,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempted_at     timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    PRIMARY KEY (job_id, hop)
);
COMMENT ON TABLE job_control_pushes IS
    'a job''s cancellation, expiry or retry that the child site hop (and the sites behind it) has not taken yet';
REVOKE ALL ON job_control_pushes FROM PUBLIC;
GRANT SELECT ON job_control_pushes TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_control_pushes', '');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE ON job_control_pushes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-- A job's state changed: queue what its copies below must follow, and
-- bring this site's rows of the job in line.
--   cancelled, expired: the send and distribute rows still open end
--     ('cancelled', the detail says why); the targets are the target
--     lifecycle's.
--   failed -> pending (retry): every per-site row goes, the per-target rows
--     are waiting again, so that the job runs again from the start (the
--     Scheduler makes the per-site rows anew) and no old failure fails it
--     again.
-- The hops are those of every site the job has a row for, and those that
-- still wait for an earlier change (a retry not sent yet, which a cancel
-- replaces): a hop that never received the job answers that it is not
-- there.  A retry is sent once the job is active again here (the Sender),
-- so that a copy does not run before its job.
CREATE FUNCTION jobs_control_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here text := current_setting('smsdist.site_code', true);
    retry boolean := OLD.state = 'failed' AND NEW.state = 'pending';
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.state IS NOT DISTINCT FROM OLD.state
       OR NOT (retry OR NEW.state IN ('cancelled', 'expired')) THEN
        RETURN NULL;
    END IF;

    INSERT INTO smsdist.job_control_pushes AS c (job_id, hop, state, reason)
    SELECT NEW.job_id, h.hop, NEW.state,
           left(format('%s at site %s by %s%s', CASE WHEN retry THEN 'retried' ELSE NEW.state::text END,
                       here, NEW.state_changed_by, ': ' || NEW.state_reason), 1000)
      FROM (SELECT smsdist.route_hop(s.site_code) AS hop
              FROM smsdist.job_site_status s
             WHERE s.job_id = NEW.job_id AND s.site_code::text IS DISTINCT FROM here
             UNION
            SELECT c.hop FROM smsdist.job_control_pushes c WHERE c.job_id = NEW.job_id) h
     WHERE h.hop IS NOT NULL
    ON CONFLICT (job_id, hop) DO UPDATE
       SET state = EXCLUDED.state, reason = EXCLUDED.reason, queued_at = clock_timestamp(),
           attempted_at = NULL, attempts = 0, last_error = NULL;

    IF retry THEN
        DELETE FROM smsdist.job_site_status s WHERE s.job_id = NEW.job_id;
        -- the targets the job's failure ended (end_job_targets: "job X
        -- failed: ..."; at a parent, as a child reported its copy's) wait
        -- again, without what the last run left (the message, sequence and
        -- client time that set them).  A target an agent ended keeps its
        -- state: its program ran (or cannot run there), and the agent,
        -- which remembers that, would never report it again.  (A copy's
        -- reset is reported to its parent: target_changed.)
        UPDATE smsdist.job_target_status t
           SET state = 'waiting', detail = NULL, exit_code = NULL, status_id = NULL,
               client_sequence = NULL, client_at = NULL
         WHERE t.job_id = NEW.job_id
           AND (t.state < 'succeeded' OR t.detail LIKE 'job ' || NEW.job_id || ' failed%');
    ELSE
        UPDATE smsdist.job_site_status s
           SET state = 'cancelled', detail = 'the job was ' || NEW.state::text,
               finished_at = clock_timestamp()
         WHERE s.job_id = NEW.job_id AND s.state IN ('waiting', 'running', 'retrying');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_control_change AFTER UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_control_change();

-- Called by the parent's Sender: the parent's job p_job_id was cancelled
-- or expired (p_state), or retried (p_state 'pending'); the copy here
-- follows, and this site's Sender passes it on to the sites below (the
-- trigger above).  Only the parent that sent the job may do so.  Returns
-- what became of the copy: its new state, "unchanged: <state>" when there
-- is nothing to do (a copy that ended already, a retry of a copy that has
-- not failed), or "not here" when the job never reached this site.
CREATE FUNCTION receive_job_state(p_job_id text, p_state text, p_reason text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
    id smsdist.sms_id := p_job_id;
    cur smsdist.job_state;
    why text := left(regexp_replace(coalesce(p_reason, ''), '[[:cntrl:]]', ' ', 'g'), 1000);
    want smsdist.job_state;
BEGIN
    IF p_state IS NULL OR p_state NOT IN ('cancelled', 'expired', 'pending') THEN
        RAISE EXCEPTION 'invalid job state "%": a parent site sets its copies cancelled, expired or pending (retry)',
            left(p_state, 100)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    want := p_state::smsdist.job_state;
    SELECT j.state INTO cur FROM smsdist.jobs j WHERE j.job_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not here';
    END IF;
    PERFORM smsdist.require_sent_by('job', id, source);
    IF (want IN ('cancelled', 'expired') AND cur NOT IN ('pending', 'active'))
       OR (want = 'pending' AND cur <> 'failed') THEN
        RETURN 'unchanged: ' || cur::text;
    END IF;
    UPDATE smsdist.jobs j
       SET state = want,
           state_reason = CASE want WHEN 'pending' THEN 'retried' ELSE want::text END
                          || ' at parent site ' || coalesce(source::text, '(none)')
                          || CASE WHEN why <> '' THEN ' (' || why || ')' ELSE '' END
     WHERE j.job_id = id;
    INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message, job_id, package_id)
    SELECT current_setting('smsdist.site_code'), 'despooler', 'informational', 3322,
           format('Job %s %s by parent site %s%s.', j.job_id,
                  CASE want WHEN 'pending' THEN 'retried' ELSE want::text END,
                  coalesce(source::text, '(none)'), CASE WHEN why <> '' THEN ' (' || why || ')' ELSE '' END),
           j.job_id, j.package_id
      FROM smsdist.jobs j WHERE j.job_id = id;
    RETURN want::text;
END
$$;
REVOKE ALL ON FUNCTION receive_job_state(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_job_state(text, text, text) TO smsdist_parent_site;
REVOKE ALL ON FUNCTION jobs_control_change() FROM PUBLIC;

-- Jobs cancelled or expired before 0.8 left their copies below running:
-- they are told now (a copy that ended meanwhile stays as it is; a child
-- not updated yet answers with an error and is asked again).
INSERT INTO job_control_pushes (job_id, hop, state, reason)
SELECT DISTINCT j.job_id, route_hop(s.site_code), j.state,
       j.state::text || ' at site ' || current_setting('smsdist.site_code', true) || ' before 0.8'
  FROM jobs j JOIN job_site_status s ON s.job_id = j.job_id
 WHERE j.state IN ('cancelled', 'expired') AND s.phase = 'send' AND s.state = 'done'
   AND route_hop(s.site_code) IS NOT NULL
ON CONFLICT DO NOTHING;


-------------------------------------------------------------------------------
-- Advanced-mode parity (run-command jobs, user and group advertisements)
-------------------------------------------------------------------------------

-- The run-command jobs a machine of site p_site is to be offered: its PCM
-- file says exactly these (src/pcm_writer.c reads them from here), and its
-- policy (compute_machine_policy(), "jobs") too.  A job is live for a
-- machine when it is an active run-command job, not past its expiry, whose
-- package is distributed at the machine's site (its 'distribute' row there
-- is done, with at least one location), and the machine is its target in a
-- state that still wants the job (not cancelled, expired or not
-- applicable).  An SQL function that the planner inlines: a caller's
-- condition on sms_id reaches the index.
CREATE FUNCTION live_run_jobs(p_sms_ids text[], p_site text)
    RETURNS TABLE (sms_id text, job_id text, package_id text, package_name text,
                   source_version integer, program_name text, command_line text,
                   platforms text[], offer_after timestamptz, mandatory_at timestamptz,
                   expires_at timestamptz, max_run_minutes integer, locations text[],
                   package_sha256 text, run_with text)
    LANGUAGE sql STABLE
AS $$
    SELECT t.sms_id::text, j.job_id::text, j.package_id::text, p.name::text,
           j.source_version, j.program_name::text, pr.command_line::text,
           pr.platforms::text[], coalesce(j.offer_after, j.start_after), j.mandatory_at,
           j.expires_at, pr.max_run_minutes, loc.paths,
           coalesce(encode(pg_catalog.sha256(pg_catalog.convert_to(b.manifest, 'UTF8')), 'hex'), b.sha256),
           pr.run_with
      FROM smsdist.job_target_status t
      JOIN smsdist.system_resources r ON r.sms_id = t.sms_id AND r.site_code = p_site
      JOIN smsdist.jobs j ON j.job_id = t.job_id
      JOIN smsdist.packages p ON p.package_id = j.package_id
      JOIN smsdist.programs pr ON pr.package_id = j.package_id AND pr.program_name = j.program_name
      JOIN smsdist.package_builds b ON b.package_id = j.package_id AND b.source_version = j.source_version
      JOIN smsdist.job_site_status d ON d.job_id = j.job_id AND d.site_code = p_site
       AND d.phase = 'distribute' AND d.state = 'done'
      CROSS JOIN LATERAL (SELECT array_agg(l.path::text ORDER BY l.site_system_id) AS paths
                            FROM smsdist.package_locations l
                           WHERE l.package_id = j.package_id AND l.site_code = p_site
                             -- only where the job's version is: never a path to other content
                             AND l.source_version = j.source_version) loc
     WHERE t.sms_id = ANY (p_sms_ids)
       -- (as text: the same test whatever the states' type has)
       AND t.state::text NOT IN ('cancelled', 'expired', 'not_applicable')
       AND j.job_type = 'run_command' AND j.state = 'active'
       AND (j.expires_at IS NULL OR j.expires_at > pg_catalog.clock_timestamp())
       AND loc.paths IS NOT NULL
$$;
REVOKE ALL ON FUNCTION live_run_jobs(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION live_run_jobs(text[], text) TO smsdist_reader;
COMMENT ON FUNCTION live_run_jobs(text[], text) IS
    'The run-command jobs the PCM files and policies of these machines of site p_site carry.';

-- User and user-group names as the lookup files hold them (DOMAIN\name)
-- and agents match them: equal when equal ignoring the case of A-Z only.
CREATE FUNCTION lookup_name_key(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.translate(p_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
GRANT EXECUTE ON FUNCTION lookup_name_key(text) TO PUBLIC;
CREATE INDEX collection_user_members_lookup
    ON collection_user_members (lookup_name_key(domain || '\' || user_name));
CREATE INDEX collection_group_members_lookup
    ON collection_group_members (lookup_name_key(domain || '\' || group_name));

-- The policy's advertisement entries for these advertisement IDs, as a
-- machine of site p_site gets them, each saying why it is there
-- (p_target: machine, user or user_group); NULL for none.
CREATE FUNCTION policy_advertisements(p_adverts text[], p_site text, p_target text) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL, not SQL: its plan is kept across calls
    RETURN (SELECT jsonb_agg(jsonb_build_object(
        'advert_id', a.advert_id, 'name', a.name, 'collection_id', a.collection_id,
        'target', p_target, 'rerun_behaviour', a.rerun_behaviour,
        'package_id', a.package_id, 'program', a.program_name,
        'command_line', pr.command_line, 'platforms', to_jsonb(pr.platforms),
        'max_run_minutes', pr.max_run_minutes, 'run_with', pr.run_with,
        'offer_time', a.offer_time, 'offer_time_utc', a.offer_time_utc,
        'expires_time', a.expires_time, 'expires_time_utc', a.expires_time_utc,
        'assignments', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'time', s.assign_time, 'time_utc', s.assign_time_utc,
                'recur_every_minutes', (extract(epoch FROM s.recur_every) / 60)::bigint)
                ORDER BY s.assign_time)
            FROM smsdist.advertisement_assignments s WHERE s.advert_id = a.advert_id), '[]'::jsonb),
        'package_version', loc.version,
        -- the package hash: of the manifest published beside the package
        'package_sha256', (SELECT coalesce(encode(sha256(convert_to(b.manifest, 'UTF8')), 'hex'), b.sha256)
                             FROM smsdist.package_builds b
                            WHERE b.package_id = a.package_id AND b.source_version = loc.version),
        'locations', coalesce(loc.paths, '[]'::jsonb))
        ORDER BY a.advert_id)
      FROM smsdist.advertisements a
      JOIN smsdist.programs pr ON pr.package_id = a.package_id AND pr.program_name = a.program_name
      LEFT JOIN LATERAL (
          SELECT max(l.source_version) AS version,
                 jsonb_agg(l.path ORDER BY l.site_system_id) AS paths
            FROM smsdist.package_locations l
           WHERE l.package_id = a.package_id AND l.site_code = p_site) loc ON true
     WHERE a.advert_id = ANY (p_adverts));
END
$$;
REVOKE ALL ON FUNCTION policy_advertisements(text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION policy_advertisements(text[], text, text) TO smsdist_reader;

-- The enabled advertisements whose collection (with its subcollections,
-- when the advertisement includes them, 100 levels deep at most) has
-- these members: the Offer Manager's lookup files, walked from the member
-- up.  p_kind: 'system' (p_names are SMS IDs), 'user' or 'user_group'
-- (DOMAIN\name, matched as lookup_name_key() does).
CREATE FUNCTION member_advertisements(p_kind text, p_names text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    direct text[];
    keys text[];
BEGIN
    -- PL/pgSQL, not SQL: each query's plan is kept across calls
    IF p_kind = 'system' THEN
        direct := ARRAY(SELECT m.collection_id::text FROM smsdist.collection_members m
                         WHERE m.sms_id = ANY (p_names));
    ELSIF p_kind IN ('user', 'user_group') THEN
        keys := ARRAY(SELECT smsdist.lookup_name_key(n) FROM unnest(p_names) n);
        IF p_kind = 'user' THEN
            direct := ARRAY(SELECT m.collection_id::text FROM smsdist.collection_user_members m
                             WHERE smsdist.lookup_name_key(m.domain || '\' || m.user_name) = ANY (keys));
        ELSE
            direct := ARRAY(SELECT m.collection_id::text FROM smsdist.collection_group_members m
                             WHERE smsdist.lookup_name_key(m.domain || '\' || m.group_name) = ANY (keys));
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown member kind "%": system, user or user_group', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(direct) = 0 THEN
        RETURN '{}';
    END IF;
    RETURN (
        WITH RECURSIVE up(collection_id, depth) AS (
            SELECT DISTINCT d, 0 FROM unnest(direct) d
            UNION
            SELECT s.parent_collection_id::text, u.depth + 1
              FROM up u JOIN smsdist.collection_subcollections s ON s.child_collection_id = u.collection_id
             WHERE u.depth < 100)
        SELECT coalesce(array_agg(DISTINCT a.advert_id::text ORDER BY a.advert_id::text), '{}')
          FROM up JOIN smsdist.advertisements a ON a.collection_id = up.collection_id
         WHERE a.enabled AND (up.depth = 0 OR a.include_subcollections));
END
$$;
REVOKE ALL ON FUNCTION member_advertisements(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION member_advertisements(text, text[]) TO smsdist_reader;

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
    SELECT jsonb_build_object(
        'machine', r.sms_id, 'site', r.site_code, 'platform', r.platform,
        'advertisements', coalesce(smsdist.policy_advertisements(
            smsdist.member_advertisements('system', ARRAY[r.sms_id::text]), r.site_code, 'machine'), '[]'::jsonb),
        'maintenance_windows', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'collection_id', w.collection_id, 'name', w.name,
                'start', to_char(w.start_time, 'HH24:MI'), 'duration_minutes', w.duration_minutes,
                'days', (SELECT jsonb_agg(d ORDER BY d) FROM unnest(w.days) d))
                ORDER BY w.start_time, w.duration_minutes, w.collection_id, w.name)
              FROM smsdist.maintenance_windows w
              JOIN smsdist.collection_members m ON m.collection_id = w.collection_id AND m.sms_id = r.sms_id
             WHERE w.enabled), '[]'::jsonb),
        'jobs', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'job_id', lj.job_id, 'package_id', lj.package_id, 'package_name', lj.package_name,
                'package_version', lj.source_version, 'program', lj.program_name,
                'command_line', lj.command_line, 'platforms', to_jsonb(lj.platforms),
                'offer_after', lj.offer_after, 'mandatory_at', lj.mandatory_at, 'expires_at', lj.expires_at,
                'max_run_minutes', lj.max_run_minutes, 'run_with', lj.run_with,
                'package_sha256', lj.package_sha256, 'locations', to_jsonb(lj.locations))
                ORDER BY lj.job_id)
              FROM smsdist.live_run_jobs(ARRAY[r.sms_id::text],
                                         current_setting('smsdist.site_code', true)) lj), '[]'::jsonb))
      FROM smsdist.system_resources r WHERE r.sms_id = p_sms_id
$$;

-- What an agent calls: its machine's policy (the stored copy, or computed
-- now for a machine nothing targets yet) and, when the agent says who is
-- logged on, the advertisements for that user ("target": "user") and for
-- the user's groups ("user_group"), computed at each call, as the user and
-- user-group lookup files give them to a legacy agent.  Names are DOMAIN\name
-- (matched ignoring the case of A-Z), at most smsdist's lookup-name length;
-- at most 256 groups.  Called with the machine alone, it costs what it did.
DROP FUNCTION machine_policy(text);
CREATE FUNCTION machine_policy(p_sms_id text, p_user text DEFAULT NULL, p_groups text[] DEFAULT NULL)
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
BEGIN
    PERFORM smsdist.require_machine_login(p_sms_id);
    -- PL/pgSQL, not SQL: its plan is kept across calls
    SELECT coalesce(mp.policy, smsdist.compute_machine_policy(r.sms_id)), r.site_code
      INTO pol, site
      FROM smsdist.system_resources r
      LEFT JOIN smsdist.machine_policies mp ON mp.sms_id = r.sms_id
     WHERE r.sms_id = p_sms_id;
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
REVOKE ALL ON FUNCTION machine_policy(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION machine_policy(text, text, text[]) TO smsdist_client, smsdist_reader;
COMMENT ON FUNCTION machine_policy(text, text, text[]) IS
    'An agent''s policy: its machine''s advertisements, maintenance windows and run-command jobs, and the advertisements for its logged-on user and the user''s groups (docs/advertisements.md).';

-- Every stored policy is computed again (it gained "jobs" and "target"):
-- the Offer Manager recomputes those it stored, the PCM writer those of
-- machines with a PCM file (and stores them, notifying the agents).
UPDATE machine_policies SET policy = NULL;
INSERT INTO pcm_queue (sms_id) SELECT sms_id FROM pcm_files
    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;


-- Store the policies of these machines (compute_machine_policy()) in
-- machine_policies, which machine_policy() serves, and notify
-- smsdist_policy_<sms id> for each one that changed since it was last
-- stored.  The PCM writer (the machines of a batch) and the Offer Manager
-- (the machines advertisements target) both call it, holding the policies'
-- lock.  Returns the number notified.
CREATE FUNCTION store_machine_policies(p_sms_ids text[]) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pol AS (
        SELECT r.sms_id::text AS sms_id, smsdist.compute_machine_policy(r.sms_id) AS p
          FROM smsdist.system_resources r
         WHERE r.sms_id = ANY (p_sms_ids)),
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

-- The rerun behaviour travels wherever an advertisement goes: each
-- machine's policy (policy_advertisements, above) and the details pushed to
-- child sites (advertisement_details, taken in by record_advertisement).
-- These two are patched in place, each fragment found in the current
-- definition, rather than written out again; a fragment that is not there
-- stops the update.
DO $$
DECLARE
    p record;
    src text;
    n integer;
BEGIN
    FOR p IN SELECT * FROM (VALUES
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
