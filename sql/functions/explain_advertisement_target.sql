-- Why one target of an advertisement has not finished (or what will
-- happen next, for a final one).
-- Longer than 150 lines: one IF chain over the target's state, from a
-- final result (and what the rerun behaviour does next) back to a target
-- still waiting, each reason one branch.
CREATE OR REPLACE FUNCTION explain_advertisement_target(t advertisement_target_status) RETURNS explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a smsdist.advertisements;
    p smsdist.programs;
    here text := current_setting('smsdist.site_code', true);
    e smsdist.explanation;
    s text;
    offer timestamptz;
    expires timestamptz;
    mt record;
    mw record;
    cf record;
    pol timestamptz;
    files timestamptz;
    ran boolean;
BEGIN
    SELECT * INTO a FROM smsdist.advertisements WHERE advert_id = t.advert_id;
    SELECT * INTO p FROM smsdist.programs WHERE package_id = a.package_id AND program_name = a.program_name;
    e.sms_id := t.sms_id;
    e.site_code := t.site_code;
    e.state := t.state::text;
    e.since := coalesce(t.client_at, t.updated_at);
    mt := smsdist.advertisement_mandatory_times(t.advert_id, t.sms_id);
    IF t.state IN ('succeeded', 'failed') THEN
        e.reason := format('its program %s at %s%s%s', t.state, smsdist.explain_time(e.since),
                           coalesce(' with exit code ' || t.exit_code, ''),
                           CASE WHEN t.state = 'failed' THEN coalesce(': ' || nullif(rtrim(t.detail, '. '), ''), '') ELSE '' END);
        ran := CASE a.rerun_behaviour
                   WHEN 'always_rerun' THEN true
                   WHEN 'never_rerun' THEN false
                   WHEN 'rerun_if_failed' THEN t.state = 'failed'
                   WHEN 'rerun_if_succeeded' THEN t.state = 'succeeded' END;
        IF NOT ran THEN
            e.reason := e.reason || format('; its rerun behaviour, %s, does not run it again at a mandatory time (a user can still run it)',
                                           a.rerun_behaviour);
        ELSIF mt.next_due IS NOT NULL THEN
            e.reason := e.reason || format('; its rerun behaviour, %s, runs it again at the next mandatory time, %s',
                                           a.rerun_behaviour, smsdist.explain_time(mt.next_due));
            e.next_attempt_at := mt.next_due;
            e.waiting_on := 'agent';
        ELSE
            e.reason := e.reason || format('; its rerun behaviour, %s, would run it again, but no mandatory time is left (a user can still run it)',
                                           a.rerun_behaviour);
        END IF;
        IF t.state = 'failed' AND e.waiting_on IS NULL THEN
            e.waiting_on := 'operator';
        END IF;
        RETURN e;
    ELSIF smsdist.target_state_is_final(t.state) THEN
        e.reason := format('it is %s since %s: %s', replace(t.state::text, '_', ' '), smsdist.explain_time(e.since),
                           coalesce(nullif(rtrim(t.detail, '. '), ''), 'no detail'));
        RETURN e;
    END IF;

    IF NOT a.enabled THEN
        e.reason := 'the advertisement is disabled: its agents offer nothing until it is enabled';
        e.waiting_on := 'operator';
        RETURN e;
    END IF;
    IF t.site_code = here AND NOT t.through_user AND NOT EXISTS (
            SELECT 1 FROM smsdist.collection_members m
             WHERE m.sms_id = t.sms_id
               AND m.collection_id IN (SELECT smsdist.advertisement_collections(t.advert_id))) THEN
        e.reason := format('the machine is not in collection %s any more: its target ends as not applicable at the next evaluation',
                           a.collection_id);
        e.waiting_on := 'collection evaluator';
        RETURN e;
    END IF;
    IF t.state = 'running' THEN
        e.reason := smsdist.running_reason(t.client_at, p.max_run_minutes);
        e.waiting_on := 'agent';
        e.next_attempt_at := t.client_at + make_interval(mins => p.max_run_minutes);
        RETURN e;
    END IF;
    IF t.state = 'waiting' THEN
        IF t.site_code = here THEN
            s := smsdist.platform_mismatch(a.package_id, a.program_name, t.sms_id);
            IF s IS NOT NULL THEN
                e.reason := s;
                e.waiting_on := 'agent';
                RETURN e;
            END IF;
        END IF;
        offer := CASE WHEN a.offer_time_utc THEN a.offer_time AT TIME ZONE 'UTC'
                      ELSE smsdist.machine_instant(t.sms_id, a.offer_time) END;
        IF offer > clock_timestamp() THEN
            e.reason := format('its offer time, %s%s, has not come (in %s): the agent offers it then',
                               smsdist.explain_time(offer),
                               CASE WHEN a.offer_time_utc THEN '' ELSE format(' (%s the machine''s own time)', a.offer_time) END,
                               smsdist.explain_duration(offer - clock_timestamp()));
            e.waiting_on := 'agent';
            e.next_attempt_at := offer;
            e.since := a.created_at;
            RETURN e;
        END IF;
        IF t.site_code IS DISTINCT FROM here THEN
            e.reason := format('site %s has reported no message of this machine''s agent on this advertisement', t.site_code);
            e.waiting_on := 'agent';
            RETURN e;
        END IF;
        SELECT mp.changed_at INTO pol FROM smsdist.machine_policies mp
         WHERE mp.sms_id = t.sms_id
           AND mp.policy -> 'advertisements' @> jsonb_build_array(jsonb_build_object('advert_id', t.advert_id));
        SELECT max(m.at) INTO files FROM smsdist.status_messages m
         WHERE m.advert_id = t.advert_id AND m.component = 'offer_manager';
        e.reason := concat_ws('; ',
            CASE WHEN files IS NOT NULL THEN format('the Offer Manager wrote its offer files at %s', smsdist.explain_time(files)) END,
            CASE WHEN pol IS NOT NULL THEN format('its policy holds the advertisement since %s', smsdist.explain_time(pol)) END,
            'the agent has not reported on it since: ' || smsdist.agent_last_heard(t.sms_id));
        e.waiting_on := 'agent';
        e.since := least(files, pol);
        RETURN e;
    END IF;
    cf := smsdist.cache_full(t.sms_id, t.detail, e.since);
    IF cf.reason IS NOT NULL THEN
        e.reason := cf.reason;
        e.waiting_on := 'agent';
        e.next_attempt_at := cf.first_unlock;
        RETURN e;
    END IF;
    e.reason := CASE t.state WHEN 'offered' THEN format('offered at %s', smsdist.explain_time(e.since))
                             ELSE format('the package was downloaded at %s', smsdist.explain_time(e.since)) END;
    IF t.state = 'offered' AND t.detail ~ 'not downloaded' THEN
        e.reason := e.reason || '; its last download failed: ' || t.detail;
    END IF;
    IF mt.last_passed IS NOT NULL THEN
        mw := smsdist.maintenance_window_at(t.sms_id, smsdist.machine_local_time(t.sms_id, clock_timestamp()));
        IF mw.has_windows AND NOT mw.inside THEN
            e.reason := e.reason || format('; its mandatory time %s passed, but the machine is outside its maintenance windows: the next, "%s", opens at %s (%s the machine''s own time)',
                                           smsdist.explain_time(mt.last_passed), mw.next_window,
                                           smsdist.explain_time(smsdist.machine_instant(t.sms_id, mw.next_opens)),
                                           to_char(mw.next_opens, 'Dy HH24:MI'));
            e.next_attempt_at := smsdist.machine_instant(t.sms_id, mw.next_opens);
        ELSE
            e.reason := e.reason || format('; its mandatory time %s passed: the agent runs the program at its next poll',
                                           smsdist.explain_time(mt.last_passed));
        END IF;
    ELSIF mt.next_due IS NOT NULL THEN
        e.reason := e.reason || format('; the program runs at its next mandatory time, %s (in %s), or when the user runs it',
                                       smsdist.explain_time(mt.next_due), smsdist.explain_duration(mt.next_due - clock_timestamp()));
        e.next_attempt_at := mt.next_due;
    ELSE
        e.reason := e.reason || '; it has no mandatory time: the program runs when the user runs it';
    END IF;
    expires := CASE WHEN a.expires_time_utc THEN a.expires_time AT TIME ZONE 'UTC'
                    ELSE smsdist.machine_instant(t.sms_id, a.expires_time) END;
    IF expires IS NOT NULL THEN
        e.reason := e.reason || format('; the advertisement expires at %s', smsdist.explain_time(expires));
    END IF;
    IF t.site_code = here THEN
        e.reason := e.reason || '; ' || smsdist.agent_last_heard(t.sms_id);
    END IF;
    e.waiting_on := 'agent';
    RETURN e;
END
$$;
REVOKE ALL ON FUNCTION explain_advertisement_target(advertisement_target_status) FROM PUBLIC;
