-- Why one target of a run-command job has not finished, once its package is
-- on its site's distribution points (or why it ended, for a final one).
CREATE OR REPLACE FUNCTION explain_job_target(t job_target_status) RETURNS explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j smsdist.jobs;
    p smsdist.programs;
    here text := current_setting('smsdist.site_code', true);
    e smsdist.explanation;
    pcm smsdist.pcm_files;
    cf record;
    queued timestamptz;
    pol timestamptz;
    s text;
    last_site_report timestamptz;
BEGIN
    SELECT * INTO j FROM smsdist.jobs WHERE job_id = t.job_id;
    SELECT * INTO p FROM smsdist.programs WHERE package_id = j.package_id AND program_name = j.program_name;
    e.sms_id := t.sms_id;
    e.site_code := t.site_code;
    e.state := t.state::text;
    e.since := coalesce(t.client_at, t.updated_at);
    IF t.state = 'succeeded' THEN
        e.reason := format('its program succeeded at %s%s', smsdist.explain_time(e.since),
                           coalesce(' (exit code ' || t.exit_code || ')', ''));
        RETURN e;
    ELSIF t.state = 'failed' THEN
        e.reason := format('its program failed at %s%s: %s; a job runs its program once, so it will not run again: '
                           'an advertisement with rerun behaviour rerun_if_failed, or a new job, runs it again',
                           smsdist.explain_time(e.since), coalesce(' with exit code ' || t.exit_code, ''),
                           coalesce(nullif(rtrim(t.detail, '. '), ''), 'no detail'));
        IF t.detail LIKE 'job % failed%' THEN
            e.reason := format('it ended with its job: %s; retrying the job runs it again', t.detail);
        END IF;
        e.waiting_on := 'operator';
        RETURN e;
    ELSIF smsdist.target_state_is_final(t.state) THEN
        e.reason := format('it is %s since %s: %s', replace(t.state::text, '_', ' '), smsdist.explain_time(e.since),
                           coalesce(nullif(rtrim(t.detail, '. '), ''), 'no detail'));
        RETURN e;
    END IF;

    IF t.site_code IS DISTINCT FROM here THEN
        -- a machine of a child or grandchild site: what that site reported
        SELECT max(x.updated_at) INTO last_site_report FROM smsdist.job_target_status x
         WHERE x.job_id = t.job_id AND x.site_code = t.site_code AND x.client_at IS NOT NULL;
        IF t.state = 'waiting' THEN
            e.reason := format('the package is on the distribution points of site %s; site %s has reported no message of this machine''s agent on this job%s',
                               t.site_code, t.site_code,
                               coalesce(' (its last report of a machine on this job: ' || smsdist.explain_time(last_site_report) || ')', ''));
            e.waiting_on := 'agent';
            e.since := (SELECT s2.finished_at FROM smsdist.job_site_status s2
                         WHERE s2.job_id = t.job_id AND s2.site_code = t.site_code AND s2.phase = 'distribute');
            RETURN e;
        END IF;
    ELSIF t.state = 'waiting' THEN
        IF NOT EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id = t.sms_id) THEN
            e.reason := 'the machine is not in system_resources any more';
            e.waiting_on := 'operator';
            RETURN e;
        END IF;
        s := smsdist.platform_mismatch(j.package_id, j.program_name, t.sms_id);
        IF s IS NOT NULL THEN
            e.reason := s;
            e.waiting_on := 'agent';
            RETURN e;
        END IF;
        IF j.offer_after > clock_timestamp() THEN
            e.reason := format('its Offer After time, %s, has not come (in %s): the agent offers the job then',
                               smsdist.explain_time(j.offer_after), smsdist.explain_duration(j.offer_after - clock_timestamp()));
            e.waiting_on := 'agent';
            e.since := j.activated_at;
            e.next_attempt_at := j.offer_after;
            RETURN e;
        END IF;
        SELECT q.queued_at INTO queued FROM smsdist.pcm_queue q WHERE q.sms_id = t.sms_id;
        SELECT * INTO pcm FROM smsdist.pcm_files f WHERE f.sms_id = t.sms_id AND t.job_id = ANY (f.jobs);
        SELECT mp.changed_at INTO pol FROM smsdist.machine_policies mp
         WHERE mp.sms_id = t.sms_id AND mp.policy -> 'jobs' @> jsonb_build_array(jsonb_build_object('job_id', t.job_id));
        IF pcm.sms_id IS NULL AND pol IS NULL THEN
            IF queued IS NOT NULL THEN
                e.reason := format('its PCM file and policy are queued for the Run phase since %s', smsdist.explain_time(queued));
                e.since := queued;
            ELSE
                e.reason := 'no PCM file or policy of this machine holds the job yet: the Despooler writes them at its next step';
            END IF;
            e.waiting_on := 'despooler';
            RETURN e;
        END IF;
        e.reason := concat_ws('; ',
            CASE WHEN pcm.sms_id IS NOT NULL THEN format('its PCM file was written at %s on %s logon server(s)',
                                                         smsdist.explain_time(pcm.written_at), pcm.copies) END,
            CASE WHEN pol IS NOT NULL THEN format('its policy holds the job since %s', smsdist.explain_time(pol)) END,
            'the agent has not reported on this job since: ' || smsdist.agent_last_heard(t.sms_id));
        e.waiting_on := 'agent';
        e.since := least(pcm.written_at, pol);
        RETURN e;
    END IF;

    -- offered, downloaded or running, from the agent's own reports
    IF t.state = 'running' THEN
        e.reason := smsdist.running_reason(t.client_at, p.max_run_minutes);
        e.waiting_on := 'agent';
        e.next_attempt_at := t.client_at + make_interval(mins => p.max_run_minutes);
        RETURN e;
    END IF;
    cf := smsdist.cache_full(t.sms_id, t.detail, e.since);
    IF cf.reason IS NOT NULL THEN
        e.reason := cf.reason;
        e.waiting_on := 'agent';
        e.next_attempt_at := cf.first_unlock;
        RETURN e;
    END IF;
    IF t.state = 'offered' THEN
        e.reason := format('offered at %s%s; the agent downloads the package at its next poll',
                           smsdist.explain_time(e.since),
                           CASE WHEN t.detail ~ 'not downloaded' THEN '; its last download failed: ' || t.detail ELSE '' END);
    ELSE
        e.reason := format('the package was downloaded at %s', smsdist.explain_time(e.since));
    END IF;
    IF j.mandatory_at > clock_timestamp() THEN
        e.reason := e.reason || format('; the program runs at its mandatory time, %s (in %s), or when the user runs it',
                                       smsdist.explain_time(j.mandatory_at), smsdist.explain_duration(j.mandatory_at - clock_timestamp()));
        e.next_attempt_at := j.mandatory_at;
    ELSIF j.mandatory_at IS NOT NULL THEN
        e.reason := e.reason || format('; its mandatory time passed at %s: the agent runs the program at its next poll',
                                       smsdist.explain_time(j.mandatory_at));
    ELSE
        e.reason := e.reason || '; the job has no mandatory time: the program runs when the user runs it';
    END IF;
    IF t.site_code = here THEN
        e.reason := e.reason || '; ' || smsdist.agent_last_heard(t.sms_id);
    END IF;
    e.waiting_on := 'agent';
    RETURN e;
END
$$;
REVOKE ALL ON FUNCTION explain_job_target(job_target_status) FROM PUBLIC;
