-- An agent's status message moves its target, in the transaction that
-- records it.  Messages are ordered by the agent's own (client time,
-- sequence); one that is not newer than the message that set the target's
-- state, that would move it back, or that would take a final target out
-- of its final state is recorded and moves nothing; target_effect says
-- what it did or why not.
CREATE OR REPLACE FUNCTION move_target() RETURNS trigger
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
REVOKE ALL ON FUNCTION move_target() FROM PUBLIC;
