/* smsdist 0.8 -> 0.9: why not yet, what if, and how long.
 *
 * explain() says why each open target has not finished, preview() what a
 * job would cost before it is committed, and the progress views give
 * figures that can be trusted, with an estimated completion time.
 * docs/troubleshooting.md, docs/preview.md and docs/data-model.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.9'" to load this file. \quit

-------------------------------------------------------------------------------
-- Explain
-------------------------------------------------------------------------------
-- Times and durations as explain() writes them.
CREATE FUNCTION explain_time(t timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN to_char(t, 'YYYY-MM-DD HH24:MI:SSOF');

CREATE FUNCTION explain_duration(d interval) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE WHEN s < 100 THEN round(s) || ' s'
                        WHEN s < 6000 THEN round(s / 60) || ' min'
                        WHEN s < 172800 THEN round(s / 3600, 1) || ' h'
                        ELSE round(s / 86400, 1) || ' days' END
              FROM (SELECT greatest(extract(epoch FROM d), 0) AS s) x);


-- When the current run of failures of a row began, and when its worker will
-- try again.  Kept by a trigger so that every writer of a row (the Sender,
-- the Despooler, the reports of child sites) keeps them right.
ALTER TABLE job_site_status
    ADD COLUMN retrying_since timestamptz,
    ADD COLUMN next_attempt_at timestamptz;

-- Per job and child: when the child last answered the Sender's
-- distribution report (about once a second while a row of a site behind
-- it is open), and why it could not be asked since.  A table of its own:
-- writing it must neither wake the workers nor move job_site_status's
-- updated_at, which times a child's refused reports.
CREATE TABLE distribution_report_answers (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    reported_at      timestamptz,
    report_error     text,
    error_since      timestamptz,
    PRIMARY KEY (job_id, hop)
);
REVOKE ALL ON distribution_report_answers FROM PUBLIC;
GRANT SELECT ON distribution_report_answers TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.distribution_report_answers', '');

CREATE FUNCTION job_site_status_retry_clock() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM smsdist.require_extension_table(TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF NEW.state = 'retrying' THEN
        IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM 'retrying' OR NEW.attempts IS DISTINCT FROM OLD.attempts THEN
            -- a pause (an hour at 0 %) and a failure are two kinds of
            -- trouble: each has its own start
            IF TG_OP = 'UPDATE' AND (coalesce(OLD.last_error, '') LIKE 'paused:%')
                                    IS DISTINCT FROM (coalesce(NEW.last_error, '') LIKE 'paused:%') THEN
                NEW.retrying_since := NULL;
            END IF;
            NEW.retrying_since := coalesce(NEW.retrying_since, clock_timestamp());
            -- the Sender's back-off: 2^attempts seconds, at most a minute
            NEW.next_attempt_at := CASE WHEN NEW.phase = 'send'
                THEN clock_timestamp() + make_interval(secs => least(60, power(2, least(NEW.attempts, 6))))
                END;
        END IF;
    ELSIF NEW.state = 'running' THEN
        -- an attempt is under way; bytes that move end the run of failures
        NEW.next_attempt_at := NULL;
        IF TG_OP = 'UPDATE' AND NEW.bytes_done > coalesce(OLD.bytes_done, 0) THEN
            NEW.retrying_since := NULL;
        END IF;
    ELSE
        NEW.retrying_since := NULL;
        NEW.next_attempt_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER retry_clock BEFORE INSERT OR UPDATE ON job_site_status
    FOR EACH ROW EXECUTE FUNCTION job_site_status_retry_clock();


-- What a job targets and what that resolves to, in one line (the reason of
-- a job that found nothing to reach).
CREATE OR REPLACE FUNCTION describe_targets(p_job_id sms_id) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE j.target_type
        WHEN 'collection' THEN
            (SELECT CASE
                 WHEN c.collection_id IS NULL THEN format('collection %s does not exist', j.target_collection_id)
                 WHEN m.n = 0 THEN format('collection %s has no members%s', c.collection_id,
                     CASE WHEN c.evaluation_error IS NOT NULL
                          THEN ' (its last evaluation failed: ' || c.evaluation_error || ')'
                          ELSE '' END)
                 WHEN m.below = 0 THEN format('collection %s has %s member(s), none of them at this site or below it',
                                              c.collection_id, m.n)
                 ELSE format('collection %s has %s member(s) at %s site(s) at or below this one',
                             c.collection_id, m.below, m.sites) END
               FROM (SELECT 1) one
               LEFT JOIN smsdist.collections c ON c.collection_id = j.target_collection_id
               CROSS JOIN LATERAL (
                   SELECT count(*) AS n,
                          count(*) FILTER (WHERE r.site_code = current_setting('smsdist.site_code', true)
                                              OR smsdist.route_hop(r.site_code) IS NOT NULL) AS below,
                          count(DISTINCT r.site_code) FILTER (
                              WHERE r.site_code = current_setting('smsdist.site_code', true)
                                 OR smsdist.route_hop(r.site_code) IS NOT NULL) AS sites
                     FROM smsdist.collection_members cm
                     JOIN smsdist.system_resources r ON r.sms_id = cm.sms_id
                    WHERE cm.collection_id = j.target_collection_id) m)
        WHEN 'machines' THEN
            format('%s listed machine(s), %s of them in system_resources', cardinality(j.target_machines),
                   (SELECT count(*) FROM smsdist.system_resources r WHERE r.sms_id = ANY (j.target_machines)))
        ELSE
            format('%s listed site(s)%s, %s of them in sites', cardinality(j.target_sites),
                   CASE WHEN j.include_subsites THEN ' with their subsites' ELSE '' END,
                   (SELECT count(*) FROM smsdist.sites s WHERE s.site_code = ANY (j.target_sites)))
        END
      FROM smsdist.jobs j WHERE j.job_id = p_job_id
$$;


-------------------------------------------------------------------------------
-- explain(): why each open target of a job or an advertisement has not
-- finished yet, in words, with who it waits for and when something will
-- next happen.  Computed from the rows alone: this site's own, and what
-- child sites reported for theirs.  docs/troubleshooting.md.
-------------------------------------------------------------------------------
CREATE TYPE explanation AS (
    sms_id           text,          -- the target machine (NULL: the job or a site)
    site_code        text,          -- its site
    state            text,          -- its target state (or the job's, or a phase's)
    reason           text,          -- why it has not finished, for an operator
    waiting_on       text,          -- a component, 'agent', 'child site', 'parent site' or 'operator'
    since            timestamptz,   -- when this reason began
    next_attempt_at  timestamptz    -- when something will next happen, if known
);


-- The time zone whose hours a sender address's hourly_rate_pct counts: the
-- server's timezone setting (what the Sender's session has), not the
-- caller's session.
CREATE FUNCTION server_time_zone() RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT s.reset_val FROM pg_catalog.pg_settings s WHERE s.name = 'TimeZone');

-- The first hour, after at, in which a rate-limited sender address may send
-- (its hourly_rate_pct, hours of the server's time zone as the Sender
-- reads them); NULL if it never may.
CREATE FUNCTION sending_resumes_at(hourly_rate_pct smallint[], at timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := smsdist.server_time_zone();
    local_hour timestamp := date_trunc('hour', at AT TIME ZONE tz);
BEGIN
    FOR h IN 1..24 LOOP
        IF coalesce(hourly_rate_pct[extract(hour FROM local_hour + make_interval(hours => h))::int + 1], 0) > 0 THEN
            RETURN (local_hour + make_interval(hours => h)) AT TIME ZONE tz;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The maintenance windows of a machine (those of every collection it is a
-- member of) at its local time local_now: whether it is inside one, and
-- which opens next.  has_windows is false when the machine has none.
CREATE FUNCTION maintenance_window_at(p_sms_id text, local_now timestamp,
        OUT has_windows boolean, OUT inside boolean, OUT next_window text, OUT next_opens timestamp)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT w.name, w.start_time, w.duration_minutes, w.days
          FROM smsdist.maintenance_windows w
          JOIN smsdist.collection_members m ON m.collection_id = w.collection_id AND m.sms_id = p_sms_id
         WHERE w.enabled),
    starts AS (
        SELECT w.name, date_trunc('day', local_now) + make_interval(days => d) + w.start_time AS opens,
               w.duration_minutes
          FROM w CROSS JOIN generate_series(-7, 7) d
         WHERE (ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])
                   [extract(dow FROM date_trunc('day', local_now) + make_interval(days => d))::int + 1]::smsdist.weekday
               = ANY (w.days))
    SELECT EXISTS (SELECT 1 FROM w),
           EXISTS (SELECT 1 FROM starts s
                    WHERE s.opens <= local_now AND local_now < s.opens + make_interval(mins => s.duration_minutes)),
           (SELECT s.name::text FROM starts s WHERE s.opens > local_now ORDER BY s.opens, s.name LIMIT 1),
           (SELECT min(s.opens) FROM starts s WHERE s.opens > local_now)
$$;

-- The UTC offset (seconds) a machine's agent last reported, or NULL.
CREATE FUNCTION machine_utc_offset(p_sms_id text) RETURNS integer
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL: machine_caches is made further down this script)
    RETURN (SELECT c.utc_offset_seconds FROM smsdist.machine_caches c WHERE c.sms_id = p_sms_id);
END
$$;


-- A machine's wall-clock time at an instant: from the UTC offset its agent
-- last reported with its cache inventory, else the site's time zone.
CREATE FUNCTION machine_local_time(p_sms_id text, at timestamptz) RETURNS timestamp
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (at AT TIME ZONE 'UTC') + make_interval(secs => smsdist.machine_utc_offset(p_sms_id)),
        at AT TIME ZONE smsdist.server_time_zone())
$$;

-- The instant a machine's wall-clock time reads local.
CREATE FUNCTION machine_instant(p_sms_id text, local timestamp) RETURNS timestamptz
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (local - make_interval(secs => smsdist.machine_utc_offset(p_sms_id))) AT TIME ZONE 'UTC',
        local AT TIME ZONE smsdist.server_time_zone())
$$;

-- When this site last heard from a machine's agent, in words.
CREATE FUNCTION agent_last_heard(p_sms_id text) RETURNS text
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

-- Whether a job or an advertisement waits for its program's platform: the
-- sentence, or NULL when the program runs on the machine's platform (or
-- either is not known).
CREATE FUNCTION platform_mismatch(p_package_id text, p_program text, p_sms_id text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('program "%s" runs on %s; this machine is %s: its agent will report that it does not apply here (10007)',
                  p.program_name, array_to_string(p.platforms, ', '), r.platform)
      FROM smsdist.programs p, smsdist.system_resources r
     WHERE p.package_id = p_package_id AND p.program_name = p_program AND r.sms_id = p_sms_id
       AND p.platforms IS NOT NULL AND cardinality(p.platforms) > 0
       AND r.platform IS NOT NULL AND NOT (r.platform = ANY (p.platforms))
$$;

-- What the target's last agent report says about the download cache, when
-- the cache had no room (10006), as an explanation; else NULL.
CREATE FUNCTION cache_full_reason(p_detail text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_detail ~* '(cache is full|larger than the whole cache)'
                THEN 'the download cache of its agent has no room for the package: '
                     || regexp_replace(p_detail, '^.*not downloaded: ', '') END
$$;

-- What a machine's last cache inventory adds to a full cache: how much is
-- locked and when the first lock ends (when room may come), or NULL.
CREATE FUNCTION cache_locks(p_sms_id text, OUT said text, OUT first_unlock timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL: the inventory tables are made further down this script)
    SELECT format('; its agent reported at %s a cache of %s, %s used, %s locked%s',
                  smsdist.explain_time(c.reported_at), pg_size_pretty(c.size_limit_bytes),
                  pg_size_pretty(c.used_bytes), pg_size_pretty(c.locked_bytes),
                  CASE WHEN l.first IS NOT NULL
                       THEN format(', the first lock ends at %s (package %s)', smsdist.explain_time(l.first), l.package_id)
                       ELSE '' END),
           l.first
      INTO said, first_unlock
      FROM smsdist.machine_caches c
      LEFT JOIN LATERAL (SELECT p.locked_until AS first, p.package_id
                           FROM smsdist.machine_cache_packages p
                          WHERE p.sms_id = c.sms_id AND p.locked_until > clock_timestamp()
                          ORDER BY p.locked_until LIMIT 1) l ON true
     WHERE c.sms_id = p_sms_id;
END
$$;

-- A running program, in words: since when, and when the agent stops it.
CREATE FUNCTION running_reason(client_at timestamptz, max_run_minutes integer) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    RETURN format('its program is running since %s (%s)%s', smsdist.explain_time(client_at),
                  smsdist.explain_duration(clock_timestamp() - client_at),
                  CASE WHEN max_run_minutes IS NOT NULL
                       THEN format('; the agent stops it at %s if it still runs (maximum run time %s min)',
                                   smsdist.explain_time(client_at + make_interval(mins => max_run_minutes)),
                                   max_run_minutes) ELSE '' END);

-- A target whose agent last said its cache had no room: the reason, with
-- what the agent's cache inventory adds, and when the first lock ends (or
-- NULLs when the detail is not about the cache).
CREATE FUNCTION cache_full(p_sms_id text, p_detail text, p_reported timestamptz,
        OUT reason text, OUT first_unlock timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := smsdist.cache_full_reason(p_detail);
    cl record;
BEGIN
    IF s IS NULL THEN
        RETURN;
    END IF;
    cl := smsdist.cache_locks(p_sms_id);
    reason := format('%s (reported at %s; the agent tries again at each poll)%s', s, smsdist.explain_time(p_reported),
                     coalesce(cl.said, ''));
    first_unlock := cl.first_unlock;
END
$$;

-- Why a job is held before any of its targets can move (the job's own
-- state, its package build), or NULL when it is not held.
CREATE FUNCTION explain_job_gate(p_job_id text) RETURNS explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j smsdist.jobs;
    b smsdist.package_builds;
    q timestamptz;
    e smsdist.explanation;
    here text := current_setting('smsdist.site_code', true);
BEGIN
    SELECT * INTO j FROM smsdist.jobs WHERE job_id = p_job_id;
    e.state := j.state::text;
    IF j.state = 'pending' THEN
        IF j.start_after > clock_timestamp() THEN
            e.reason := format('its Start After time, %s, has not come (in %s): the Scheduler activates the job then',
                               smsdist.explain_time(j.start_after), smsdist.explain_duration(j.start_after - clock_timestamp()));
            e.waiting_on := 'scheduler';
            e.since := j.created_at;
            e.next_attempt_at := j.start_after;
            RETURN e;
        END IF;
        SELECT queued_at INTO q FROM smsdist.collection_evaluation_queue
         WHERE collection_id = j.target_collection_id;
        IF j.target_type = 'collection' AND q IS NOT NULL THEN
            e.reason := format('Start After passed at %s; activation waits for the evaluation of collection %s, queued at %s',
                               smsdist.explain_time(j.start_after), j.target_collection_id, smsdist.explain_time(q));
            e.waiting_on := 'collection evaluator';
            e.since := q;
        ELSE
            e.reason := format('Start After passed at %s; the Scheduler activates the job at its next step',
                               smsdist.explain_time(j.start_after));
            e.waiting_on := 'scheduler';
            e.since := greatest(j.start_after, j.created_at);
        END IF;
        RETURN e;
    ELSIF j.state IN ('failed', 'cancelled', 'expired') THEN
        e.reason := format('the job %s at %s: %s', CASE j.state WHEN 'failed' THEN 'failed' WHEN 'cancelled' THEN 'was cancelled'
                                                                 ELSE 'expired' END,
                           smsdist.explain_time(j.finished_at), coalesce(j.state_reason, 'no reason recorded'));
        IF j.state = 'failed' THEN
            e.reason := e.reason || '; once the cause is fixed, an operator retries it (UPDATE smsdist.jobs SET state = ''pending'')';
            e.waiting_on := 'operator';
        END IF;
        e.since := j.finished_at;
        RETURN e;
    ELSIF j.state = 'completed' OR j.job_type = 'remove_package'
          OR coalesce(j.source_site, here) IS DISTINCT FROM here THEN
        RETURN NULL;            -- nothing to build here
    END IF;
    SELECT * INTO b FROM smsdist.package_builds
     WHERE package_id = j.package_id AND source_version = j.source_version;
    IF NOT FOUND THEN
        e.reason := format('package %s version %s has not started compressing: the Scheduler starts a package builder at its next step',
                           j.package_id, j.source_version);
        e.waiting_on := 'scheduler';
        e.since := j.activated_at;
    ELSIF b.state = 'building' THEN
        e.reason := format('package %s version %s is being compressed: %s of %s of source read%s, since %s (%s)',
                           j.package_id, j.source_version,
                           pg_size_pretty(coalesce(b.bytes_done, 0)),
                           coalesce(pg_size_pretty(b.source_bytes), 'an unknown size'),
                           CASE WHEN b.source_bytes > 0
                                THEN format(' (%s %%)', round(100.0 * least(coalesce(b.bytes_done, 0), b.source_bytes) / b.source_bytes))
                                ELSE '' END,
                           smsdist.explain_time(coalesce(b.started_at, b.created_at)),
                           CASE WHEN b.attempts > 1 THEN format('attempt %s', b.attempts) ELSE 'first attempt' END);
        e.waiting_on := 'package builder';
        e.since := coalesce(b.started_at, b.created_at);
    ELSIF b.state = 'failed' THEN
        e.reason := format('compressing package %s version %s failed at %s: %s',
                           j.package_id, j.source_version, smsdist.explain_time(b.finished_at),
                           coalesce(b.error, 'no reason recorded'));
        e.waiting_on := 'operator';
        e.since := b.finished_at;
    ELSE
        RETURN NULL;
    END IF;
    RETURN e;
END
$$;

-- Why a job has not finished at one site (its send and distribute rows),
-- or NULL when the package is on that site's distribution points.
CREATE FUNCTION explain_job_site(p_job_id text, p_site text) RETURNS explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j smsdist.jobs;
    snd smsdist.job_site_status;
    dst smsdist.job_site_status;
    here text := current_setting('smsdist.site_code', true);
    hop text;
    via text := '';
    adr smsdist.sender_addresses;
    ans smsdist.distribution_report_answers;
    resumes timestamptz;
    e smsdist.explanation;
BEGIN
    SELECT * INTO j FROM smsdist.jobs WHERE job_id = p_job_id;
    SELECT * INTO snd FROM smsdist.job_site_status WHERE job_id = p_job_id AND site_code = p_site AND phase = 'send';
    SELECT * INTO dst FROM smsdist.job_site_status WHERE job_id = p_job_id AND site_code = p_site AND phase = 'distribute';
    SELECT * INTO ans FROM smsdist.distribution_report_answers a WHERE a.job_id = p_job_id AND a.hop = smsdist.route_hop(p_site);
    e.site_code := p_site;
    IF p_site IS DISTINCT FROM here THEN
        hop := smsdist.route_hop(p_site);
        IF hop IS NULL THEN
            e.reason := format('site %s is not below this site: nothing can reach it from here', p_site);
            e.waiting_on := 'operator';
            RETURN e;
        END IF;
        IF hop <> p_site THEN
            via := format(' (through site %s)', hop);
        END IF;
        IF snd.state IS NOT NULL AND snd.state <> 'done' THEN
            e.state := 'send ' || snd.state;
            SELECT * INTO adr FROM smsdist.sender_addresses a
             WHERE a.target_site_code = hop AND a.enabled ORDER BY a.priority LIMIT 1;
            IF snd.state = 'waiting' THEN
                IF adr.address_id IS NULL THEN
                    e.reason := format('waiting to be sent to site %s%s: there is no enabled sender address for site %s',
                                       p_site, via, hop);
                    e.waiting_on := 'operator';
                ELSE
                    e.reason := format('waiting to be sent to site %s%s: %s', p_site, via,
                                       coalesce(nullif(snd.detail, ''), 'the Sender has not taken it yet'));
                    e.waiting_on := 'sender';
                END IF;
                e.since := snd.updated_at;
            ELSIF snd.state = 'retrying' AND snd.last_error LIKE 'paused: the rate limit%' THEN
                resumes := smsdist.sending_resumes_at(adr.hourly_rate_pct, clock_timestamp());
                e.reason := format('the sender address to site %s allows no sending in this hour (its hourly rate is 0 %%): sending to site %s resumes at %s',
                                   hop, p_site, coalesce(smsdist.explain_time(resumes), 'no hour (every hour is 0 %)'));
                e.waiting_on := 'sender';
                e.since := snd.retrying_since;
                e.next_attempt_at := resumes;
                IF resumes IS NULL THEN
                    e.waiting_on := 'operator';
                END IF;
            ELSIF snd.state = 'retrying' THEN
                e.reason := format('site %s cannot be reached%s since %s (%s, %s attempt(s)): %s; next attempt at %s',
                                   hop, CASE WHEN hop <> p_site THEN format(' on the way to site %s', p_site) ELSE '' END,
                                   smsdist.explain_time(coalesce(snd.retrying_since, snd.updated_at)),
                                   smsdist.explain_duration(clock_timestamp() - coalesce(snd.retrying_since, snd.updated_at)),
                                   snd.attempts, coalesce(snd.last_error, 'no error recorded'),
                                   coalesce(smsdist.explain_time(snd.next_attempt_at), 'the Sender''s next step'));
                e.waiting_on := 'child site';
                e.since := coalesce(snd.retrying_since, snd.updated_at);
                e.next_attempt_at := snd.next_attempt_at;
            ELSIF snd.state = 'running' THEN
                e.reason := format('being sent to site %s%s: %s%s (attempt %s)%s', p_site, via,
                                   CASE WHEN snd.bytes_total > 0
                                        THEN format('%s of %s (%s %%)', pg_size_pretty(coalesce(snd.bytes_done, 0)),
                                                    pg_size_pretty(snd.bytes_total),
                                                    round(100.0 * coalesce(snd.bytes_done, 0) / snd.bytes_total))
                                        ELSE format('%s so far', pg_size_pretty(coalesce(snd.bytes_done, 0))) END,
                                   CASE WHEN adr.throttle = 'rate_limited' THEN format(', rate-limited to %s %% of the link in this hour',
                                        adr.hourly_rate_pct[extract(hour FROM clock_timestamp() AT TIME ZONE
                                            smsdist.server_time_zone())::int + 1])
                                        WHEN adr.throttle = 'pulse' THEN format(', in pulses of %s KB every %s ms', adr.pulse_block_kb, adr.pulse_delay_ms)
                                        ELSE '' END,
                                   snd.attempts,
                                   CASE WHEN snd.retrying_since IS NOT NULL
                                        THEN format('; it has failed since %s: %s', smsdist.explain_time(snd.retrying_since), snd.last_error)
                                        ELSE '' END);
                e.waiting_on := 'sender';
                e.since := coalesce(snd.started_at, snd.updated_at);
            ELSE
                e.reason := format('sending to site %s%s %s at %s: %s', p_site, via,
                                   CASE snd.state WHEN 'failed' THEN 'failed' ELSE 'was ' || snd.state END,
                                   smsdist.explain_time(coalesce(snd.finished_at, snd.updated_at)),
                                   coalesce(snd.last_error, snd.detail, 'no reason recorded'));
                e.waiting_on := CASE snd.state WHEN 'failed' THEN 'operator' END;
                e.since := coalesce(snd.finished_at, snd.updated_at);
            END IF;
            RETURN e;
        END IF;
        -- sent: what the child reported of its distribution
        IF dst.state IS NULL THEN
            e.state := CASE WHEN snd.state IS NULL THEN 'not started' ELSE 'sent' END;
            e.reason := CASE WHEN snd.state IS NULL
                             THEN format('the job has no send or distribution row for site %s', p_site)
                             ELSE format('the package reached site %s at %s; site %s has reported nothing of its distribution since',
                                         p_site, smsdist.explain_time(snd.finished_at), p_site) END;
            e.waiting_on := 'child site';
            e.since := snd.finished_at;
            RETURN e;
        END IF;
        IF dst.state = 'done' THEN
            RETURN NULL;
        END IF;
        e.state := 'distribute ' || dst.state;
        IF dst.state = 'failed' THEN
            e.reason := format('distribution at site %s failed at %s: %s', p_site,
                               smsdist.explain_time(coalesce(dst.finished_at, dst.updated_at)),
                               coalesce(dst.last_error, dst.detail, 'no reason recorded'));
            e.waiting_on := 'operator';
            e.since := coalesce(dst.finished_at, dst.updated_at);
        ELSE
            e.reason := format('site %s reports its distribution %s%s, as of its last report at %s (%s ago)',
                               p_site, dst.state, coalesce(': ' || nullif(dst.detail, ''), ''),
                               smsdist.explain_time(coalesce(ans.reported_at, dst.updated_at)),
                               smsdist.explain_duration(clock_timestamp() - coalesce(ans.reported_at, dst.updated_at)));
            IF dst.last_error IS NOT NULL AND dst.state = 'retrying' THEN
                e.reason := e.reason || '; its last error: ' || dst.last_error;
            END IF;
            IF ans.report_error IS NOT NULL THEN
                e.reason := e.reason || format('; %s has not answered since %s: %s',
                                               CASE WHEN hop = p_site THEN 'it' ELSE 'site ' || hop END,
                                               smsdist.explain_time(ans.error_since), ans.report_error);
            END IF;
            e.waiting_on := 'child site';
            e.since := coalesce(ans.reported_at, dst.updated_at);
        END IF;
        RETURN e;
    END IF;
    -- this site
    IF dst.state IS NULL OR dst.state = 'done' THEN
        RETURN NULL;
    END IF;
    e.state := 'distribute ' || dst.state;
    IF dst.state = 'waiting' THEN
        e.reason := format('not on this site''s distribution points yet: waiting for the Despooler (%s)',
                           coalesce(nullif(dst.detail, ''), 'it has not taken the package yet'));
        e.waiting_on := CASE WHEN dst.full_package_required OR dst.detail ILIKE '%parent%' THEN 'parent site' ELSE 'despooler' END;
        e.since := dst.updated_at;
    ELSIF dst.state = 'running' THEN
        e.reason := format('not on this site''s distribution points yet: the Despooler is publishing package %s version %s on %s distribution point(s) since %s%s',
                           j.package_id, j.source_version,
                           (SELECT count(*) FROM smsdist.site_systems s
                             WHERE s.site_code = here AND s.role = 'distribution_point' AND s.enabled),
                           smsdist.explain_time(coalesce(dst.started_at, dst.updated_at)),
                           coalesce(': ' || nullif(dst.detail, ''), ''));
        e.waiting_on := 'despooler';
        e.since := coalesce(dst.started_at, dst.updated_at);
    ELSE
        e.reason := format('distribution at this site %s at %s: %s',
                           CASE dst.state WHEN 'failed' THEN 'failed' ELSE 'is ' || dst.state END,
                           smsdist.explain_time(coalesce(dst.finished_at, dst.updated_at)),
                           coalesce(dst.last_error, dst.detail, 'no reason recorded'));
        e.waiting_on := CASE dst.state WHEN 'failed' THEN 'operator' WHEN 'retrying' THEN 'despooler' END;
        e.since := coalesce(dst.finished_at, dst.updated_at);
        e.next_attempt_at := dst.next_attempt_at;
    END IF;
    RETURN e;
END
$$;

-- Why one target of a run-command job has not finished, once its package is
-- on its site's distribution points (or why it ended, for a final one).
CREATE FUNCTION explain_job_target(t job_target_status) RETURNS explanation
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

-- explain() of a job.
CREATE FUNCTION explain_job(p_job_id text, p_sms_id text) RETURNS SETOF explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j smsdist.jobs;
    gate smsdist.explanation;
    n bigint := 0;
    r smsdist.explanation;
BEGIN
    SELECT * INTO j FROM smsdist.jobs WHERE job_id = p_job_id;
    gate := smsdist.explain_job_gate(p_job_id);
    IF j.job_type <> 'run_command' THEN
        -- the targets of sharing and removing are sites
        FOR r IN
            SELECT g.*
              FROM (SELECT DISTINCT x.site_code::text AS site_code FROM smsdist.job_site_status x
                     WHERE x.job_id = p_job_id) s
              CROSS JOIN LATERAL smsdist.explain_job_site(p_job_id, s.site_code) g
             ORDER BY s.site_code
        LOOP
            IF r.reason IS NOT NULL AND gate.reason IS NULL THEN
                n := n + 1;
                RETURN NEXT r;
            END IF;
        END LOOP;
        IF n = 0 AND gate.reason IS NOT NULL THEN
            RETURN NEXT gate;
        END IF;
        RETURN;
    END IF;

    IF p_sms_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = p_job_id AND t.sms_id = p_sms_id) THEN
        r := gate;
        r.sms_id := p_sms_id;
        r.site_code := (SELECT x.site_code FROM smsdist.system_resources x WHERE x.sms_id = p_sms_id);
        IF j.state = 'pending' AND gate.reason IS NOT NULL THEN
            r.reason := r.reason || '; the machine''s part is known once the job is active (targets: '
                        || smsdist.describe_targets(p_job_id) || ')';
        ELSE
            r.state := 'not a target';
            r.since := NULL;
            r.next_attempt_at := NULL;
            r.waiting_on := NULL;
            r.reason := CASE
                WHEN r.site_code IS NULL THEN format('machine %s is not in system_resources', p_sms_id)
                WHEN j.target_type = 'collection' AND NOT EXISTS (
                        SELECT 1 FROM smsdist.collection_members m
                         WHERE m.collection_id = j.target_collection_id AND m.sms_id = p_sms_id)
                    THEN format('machine %s is not a target of job %s: it is not a member of collection %s (any more)',
                                p_sms_id, p_job_id, j.target_collection_id)
                WHEN j.target_type = 'machines' AND NOT (p_sms_id = ANY (j.target_machines))
                    THEN format('machine %s is not a target of job %s: it is not one of the job''s listed machines',
                                p_sms_id, p_job_id)
                ELSE format('machine %s is not a target of job %s: it became a member after the job''s targets were recorded, or its site is not one the job reaches',
                            p_sms_id, p_job_id) END;
        END IF;
        RETURN NEXT r;
        RETURN;
    END IF;

    RETURN QUERY
    WITH open AS (
        SELECT t FROM smsdist.job_target_status t
         WHERE t.job_id = p_job_id
           AND (CASE WHEN p_sms_id IS NULL THEN NOT smsdist.target_state_is_final(t.state)
                     ELSE t.sms_id = p_sms_id END)),
    sites AS MATERIALIZED (
        SELECT s.site_code, smsdist.explain_job_site(p_job_id, s.site_code) AS g
          FROM (SELECT DISTINCT (o.t).site_code::text AS site_code FROM open o) s)
    SELECT (o.t).sms_id::text, (o.t).site_code::text, (o.t).state::text,
           (x.e).reason, (x.e).waiting_on, (x.e).since, (x.e).next_attempt_at
      FROM open o
      JOIN sites s ON s.site_code = (o.t).site_code
      -- (OFFSET 0: the reason is computed once per target, not per column)
      CROSS JOIN LATERAL (
          SELECT CASE WHEN smsdist.target_state_is_final((o.t).state) THEN smsdist.explain_job_target(o.t)
                      WHEN gate.reason IS NOT NULL THEN gate
                      WHEN (s.g).reason IS NOT NULL THEN s.g
                      ELSE smsdist.explain_job_target(o.t) END AS e
          OFFSET 0) x
     ORDER BY (o.t).site_code, (o.t).sms_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 AND p_sms_id IS NULL THEN
        IF gate.reason IS NOT NULL THEN
            RETURN NEXT gate;
        ELSIF j.state = 'active' AND NOT EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = p_job_id) THEN
            r.state := j.state::text;
            r.reason := 'the job has no target machine yet: ' || smsdist.describe_targets(p_job_id);
            r.since := j.activated_at;
            r.waiting_on := 'collection evaluator';
            RETURN NEXT r;
        END IF;
    END IF;
END
$$;

-- The mandatory times of an advertisement on one machine: the last that
-- passed and the next to come (assignment times in UTC, or in the
-- machine's own time; recurring ones repeat).
CREATE FUNCTION advertisement_mandatory_times(p_advert_id text, p_sms_id text,
        OUT last_passed timestamptz, OUT next_due timestamptz)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH base AS (
        SELECT CASE WHEN a.assign_time_utc THEN a.assign_time AT TIME ZONE 'UTC'
                    ELSE smsdist.machine_instant(p_sms_id, a.assign_time) END AS t0,
               a.recur_every
          FROM smsdist.advertisement_assignments a WHERE a.advert_id = p_advert_id),
    k AS (
        SELECT t0, recur_every,
               CASE WHEN recur_every IS NULL OR recur_every <= interval '0' OR t0 > clock_timestamp() THEN 0
                    ELSE floor(extract(epoch FROM clock_timestamp() - t0) / extract(epoch FROM recur_every))::bigint END AS n
          FROM base)
    SELECT max(CASE WHEN t0 <= clock_timestamp() THEN t0 + coalesce(recur_every, interval '0') * n END),
           min(CASE WHEN t0 > clock_timestamp() THEN t0
                    WHEN recur_every > interval '0' THEN t0 + recur_every * (n + 1) END)
      FROM k
$$;

-- Why an advertisement is held at one site, or NULL.
CREATE FUNCTION explain_advertisement_site(p_advert_id text, p_site text) RETURNS explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a smsdist.advertisements;
    here text := current_setting('smsdist.site_code', true);
    hop text;
    pu smsdist.advertisement_pushes;
    share text;
    e smsdist.explanation;
BEGIN
    SELECT * INTO a FROM smsdist.advertisements WHERE advert_id = p_advert_id;
    e.site_code := p_site;
    IF p_site IS DISTINCT FROM here THEN
        hop := smsdist.route_hop(p_site);
        SELECT * INTO pu FROM smsdist.advertisement_pushes x WHERE x.advert_id = p_advert_id AND x.hop = hop;
        IF pu.advert_id IS NOT NULL AND pu.pushed_at IS NULL THEN
            e.state := 'not replicated';
            e.reason := format('the advertisement has not reached site %s yet%s',
                               hop, CASE WHEN pu.last_error IS NOT NULL
                                         THEN format(' (%s attempt(s), the last at %s): %s', pu.attempts,
                                                     smsdist.explain_time(pu.attempted_at), pu.last_error)
                                         ELSE ': the Sender replicates it at its next step' END);
            e.waiting_on := CASE WHEN pu.last_error IS NOT NULL THEN 'child site' ELSE 'sender' END;
            e.since := pu.attempted_at;
            RETURN e;
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM smsdist.package_locations l
                    WHERE l.package_id = a.package_id AND l.site_code = p_site) THEN
        SELECT string_agg(j.job_id, ', ' ORDER BY j.job_id) INTO share FROM smsdist.jobs j
         WHERE j.package_id = a.package_id AND j.job_type = 'share_package' AND j.state IN ('pending', 'active');
        e.state := 'package not distributed';
        e.reason := format('package %s is not on the distribution points of site %s%s', a.package_id, p_site,
                           CASE WHEN share IS NOT NULL THEN format(': job %s is distributing it (see explain(''%s''))',
                                                                  share, split_part(share, ',', 1))
                                ELSE ': a share-package job distributes it' END);
        e.waiting_on := CASE WHEN share IS NULL THEN 'operator' ELSE 'despooler' END;
        RETURN e;
    END IF;
    RETURN NULL;
END
$$;

-- Why one target of an advertisement has not finished (or what will
-- happen next, for a final one).
CREATE FUNCTION explain_advertisement_target(t advertisement_target_status) RETURNS explanation
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

-- explain() of an advertisement.
CREATE FUNCTION explain_advertisement(p_advert_id text, p_sms_id text) RETURNS SETOF explanation
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a smsdist.advertisements;
    n bigint;
    r smsdist.explanation;
BEGIN
    SELECT * INTO a FROM smsdist.advertisements WHERE advert_id = p_advert_id;
    IF p_sms_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM smsdist.advertisement_target_status t
             WHERE t.advert_id = p_advert_id AND t.sms_id = p_sms_id) THEN
        r.sms_id := p_sms_id;
        r.site_code := (SELECT x.site_code FROM smsdist.system_resources x WHERE x.sms_id = p_sms_id);
        r.state := 'not a target';
        r.reason := CASE WHEN r.site_code IS NULL THEN format('machine %s is not in system_resources', p_sms_id)
                         ELSE format('machine %s is not a target of advertisement %s: it is not a member of collection %s%s (a machine reached through its user or group becomes a target with its first report)',
                                     p_sms_id, p_advert_id, a.collection_id,
                                     CASE WHEN a.include_subcollections THEN ' or its subcollections' ELSE '' END) END;
        RETURN NEXT r;
        RETURN;
    END IF;
    RETURN QUERY
    WITH open AS (
        SELECT t FROM smsdist.advertisement_target_status t
         WHERE t.advert_id = p_advert_id
           AND (CASE WHEN p_sms_id IS NULL THEN NOT smsdist.target_state_is_final(t.state)
                     ELSE t.sms_id = p_sms_id END)),
    sites AS MATERIALIZED (
        SELECT s.site_code, smsdist.explain_advertisement_site(p_advert_id, s.site_code) AS g
          FROM (SELECT DISTINCT (o.t).site_code::text AS site_code FROM open o) s)
    SELECT (o.t).sms_id::text, (o.t).site_code::text, (o.t).state::text,
           (x.e).reason, (x.e).waiting_on, (x.e).since, (x.e).next_attempt_at
      FROM open o
      JOIN sites s ON s.site_code = (o.t).site_code
      CROSS JOIN LATERAL (
          SELECT CASE WHEN (o.t).state = 'waiting' AND (s.g).reason IS NOT NULL THEN s.g
                      ELSE smsdist.explain_advertisement_target(o.t) END AS e
          OFFSET 0) x
     ORDER BY (o.t).site_code, (o.t).sms_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 AND p_sms_id IS NULL AND NOT EXISTS (
            SELECT 1 FROM smsdist.advertisement_target_status t WHERE t.advert_id = p_advert_id) THEN
        r.state := CASE WHEN a.enabled THEN 'enabled' ELSE 'disabled' END;
        r.reason := format('the advertisement has no target machine: collection %s%s has no member at this site or below it',
                           a.collection_id, CASE WHEN a.include_subcollections THEN ' with its subcollections' ELSE '' END);
        r.waiting_on := 'collection evaluator';
        RETURN NEXT r;
    END IF;
END
$$;

-- Why the targets of a job or an advertisement have not finished: one row
-- per target that is not final (or for one machine, whatever its state).
CREATE FUNCTION explain(object_id text, sms_id text DEFAULT NULL) RETURNS SETOF explanation
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF object_id IS NULL THEN
        RAISE EXCEPTION 'explain() needs a job ID or an advertisement ID'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- (reasons quote errors of other programs: one line each)
    IF EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = explain.object_id) THEN
        RETURN QUERY SELECT e.sms_id, e.site_code, e.state, regexp_replace(e.reason, '\s*[\r\n]\s*', ' ', 'g'),
                            e.waiting_on, e.since, e.next_attempt_at
                       FROM smsdist.explain_job(explain.object_id, explain.sms_id) e;
    ELSIF EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = explain.object_id) THEN
        RETURN QUERY SELECT e.sms_id, e.site_code, e.state, regexp_replace(e.reason, '\s*[\r\n]\s*', ' ', 'g'),
                            e.waiting_on, e.since, e.next_attempt_at
                       FROM smsdist.explain_advertisement(explain.object_id, explain.sms_id) e;
    ELSE
        RAISE EXCEPTION 'there is no job or advertisement "%" at site %', explain.object_id,
                        coalesce(current_setting('smsdist.site_code', true), '(unset)')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Job IDs are in smsdist.jobs, advertisement IDs in smsdist.advertisements.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION explain(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION explain(text, text) TO smsdist_reader;

-- The parts of explain() are its own: nobody calls them but it.
REVOKE ALL ON FUNCTION
    job_site_status_retry_clock(),
    cache_locks(text),
    running_reason(timestamptz, integer),
    cache_full(text, text, timestamptz),
    sending_resumes_at(smallint[], timestamptz),
    maintenance_window_at(text, timestamp),
    machine_utc_offset(text),
    machine_local_time(text, timestamptz),
    machine_instant(text, timestamp),
    agent_last_heard(text),
    platform_mismatch(text, text, text),
    cache_full_reason(text),
    explain_job_gate(text),
    explain_job_site(text, text),
    explain_job_target(job_target_status),
    explain_job(text, text),
    advertisement_mandatory_times(text, text),
    explain_advertisement_site(text, text),
    explain_advertisement_target(advertisement_target_status),
    explain_advertisement(text, text)
    FROM PUBLIC;
-- describe_targets() is the readers' too, and writes its times so.
REVOKE ALL ON FUNCTION explain_time(timestamptz), explain_duration(interval), server_time_zone() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION explain_time(timestamptz), explain_duration(interval), server_time_zone() TO smsdist_reader;


-------------------------------------------------------------------------------
-- Progress
-------------------------------------------------------------------------------

-- Figures of the attempt in progress (or the last one), so that a rate is
-- computed from the bytes this attempt moved and the time it took, never
-- from a total carried over from an earlier attempt or already at the site;
-- an estimated total while the package is still being compressed; and, for
-- the rows of sites below a child, the completion time the child estimated.
ALTER TABLE job_site_status
    ADD COLUMN bytes_total_estimated boolean NOT NULL DEFAULT false,
    ADD COLUMN attempt_started_at timestamptz,
    ADD COLUMN attempt_bytes bigint CHECK (attempt_bytes >= 0),
    ADD COLUMN reported_eta timestamptz;

-- When remaining bytes will have moved at rate bytes per second, starting at
-- from_time, under a sender address's throttling.  rate_limited: the rate
-- measured is taken as the rate of the current hour's share of the link, and
-- each later hour moves its own share (hourly_rate_pct, hours of the day in
-- time_zone, by default the server's timezone setting, as the Sender reads
-- them); an hour at 0 % moves nothing.  NULL when it cannot be known: no
-- remaining figure, no rate, or more than 31 days away.
CREATE FUNCTION transfer_eta(remaining bigint, rate numeric, throttle throttle_mode,
                             hourly_rate_pct smallint[], from_time timestamptz,
                             time_zone text DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := coalesce(time_zone, smsdist.server_time_zone());
    t timestamptz := from_time;
    left_bytes numeric := remaining;
    full_rate numeric;
    pct_now integer;
    hour_rate numeric;
    hour_end timestamptz;
    capacity numeric;
BEGIN
    IF remaining IS NULL OR rate IS NULL OR rate <= 0 OR from_time IS NULL THEN
        RETURN NULL;
    END IF;
    IF remaining <= 0 THEN
        RETURN from_time;
    END IF;
    IF throttle IS DISTINCT FROM 'rate_limited' OR hourly_rate_pct IS NULL
       OR cardinality(hourly_rate_pct) <> 24 THEN
        IF remaining / rate > 31 * 86400 THEN
            RETURN NULL;
        END IF;
        RETURN from_time + make_interval(secs => (remaining / rate)::double precision);
    END IF;
    pct_now := hourly_rate_pct[extract(hour FROM from_time AT TIME ZONE tz)::integer + 1];
    full_rate := CASE WHEN pct_now > 0 THEN rate * 100 / pct_now ELSE rate END;
    FOR i IN 1 .. 31 * 24 + 1 LOOP
        hour_rate := full_rate * hourly_rate_pct[extract(hour FROM t AT TIME ZONE tz)::integer + 1] / 100;
        hour_end := (date_trunc('hour', t AT TIME ZONE tz) + interval '1 hour') AT TIME ZONE tz;
        capacity := hour_rate * extract(epoch FROM hour_end - t);
        IF hour_rate > 0 AND capacity >= left_bytes THEN
            RETURN t + make_interval(secs => (left_bytes / hour_rate)::double precision);
        END IF;
        left_bytes := left_bytes - capacity;
        t := hour_end;
    END LOOP;
    RETURN NULL;
END
$$;

-- What a child tells its parent of the progress of each site of a job: the
-- figures of the leg under way (the send to the site, else its distribution,
-- which for a site further down holds what that site's parent reported).
-- The parent keeps them in its distribute row of the site.
CREATE FUNCTION progress_report(p_job_id text)
RETURNS TABLE (site_code text, bytes_done bigint, bytes_total bigint,
               bytes_total_estimated boolean, attempt_bytes bigint,
               attempt_seconds numeric, eta_seconds numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source smsdist.site_code := smsdist.calling_site('parent');
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (p.site_code) p.site_code::text, p.bytes_done, p.bytes_total,
           p.bytes_total_estimated, p.attempt_bytes,
           round(extract(epoch FROM p.attempt_elapsed)::numeric, 3),
           round(extract(epoch FROM p.eta - clock_timestamp())::numeric, 3)
      FROM smsdist.job_progress p
      JOIN smsdist.jobs j ON j.job_id = p.job_id AND j.source_site IS NOT DISTINCT FROM source
     WHERE p.job_id = p_job_id AND p.phase IN ('send', 'distribute')
     ORDER BY p.site_code, (p.state = 'done'), p.phase;
END
$$;

DROP VIEW job_progress;
CREATE VIEW job_progress AS
SELECT s.job_id, j.package_id, j.source_version, s.site_code, s.phase, s.state,
       s.bytes_done, s.bytes_total,
       CASE WHEN s.bytes_total > 0
            THEN least(round(100.0 * s.bytes_done / s.bytes_total, 1),
                       CASE WHEN s.bytes_total_estimated THEN 99.9 ELSE 100 END)
       END AS percent,
       r.rate AS bytes_per_second,
       s.delta_base, s.full_package_required, s.started_at, s.finished_at,
       coalesce(s.finished_at, clock_timestamp()) - s.started_at AS elapsed,
       s.attempts, s.detail, s.last_error,
       s.bytes_total_estimated,
       CASE WHEN s.state = 'done' THEN s.finished_at
            WHEN s.state <> 'running' THEN NULL
            WHEN s.phase = 'distribute' AND s.site_code <> current_setting('smsdist.site_code', true)
            THEN CASE WHEN s.reported_eta >= clock_timestamp() THEN s.reported_eta END
            WHEN s.phase = 'send' AND s.bytes_total IS NOT NULL
            THEN smsdist.transfer_eta(greatest(s.bytes_total - s.bytes_done, 0), r.rate,
                                      a.throttle, a.hourly_rate_pct, clock_timestamp())
       END AS eta,
       s.attempt_bytes,
       r.attempt_end - s.attempt_started_at AS attempt_elapsed
  FROM smsdist.job_site_status s
  JOIN smsdist.jobs j USING (job_id)
  LEFT JOIN LATERAL (
        SELECT x.attempt_end,
               CASE WHEN s.attempt_bytes > 0 AND x.attempt_end > s.attempt_started_at
                    THEN round(s.attempt_bytes / extract(epoch FROM x.attempt_end - s.attempt_started_at))::bigint
               END AS rate
          FROM (SELECT CASE WHEN s.state = 'running'
                                 AND (s.phase = 'send' OR s.site_code = current_setting('smsdist.site_code', true))
                            THEN clock_timestamp()
                            ELSE coalesce(s.finished_at, s.updated_at) END AS attempt_end) x) r ON true
  LEFT JOIN LATERAL (
        SELECT a.throttle, a.hourly_rate_pct FROM smsdist.sender_addresses a
         WHERE s.phase = 'send' AND a.target_site_code = smsdist.route_hop(s.site_code) AND a.enabled
         ORDER BY a.priority LIMIT 1) a ON true;

DROP VIEW job_overview;
CREATE VIEW job_overview AS
SELECT j.job_id, j.job_type, j.package_id, p.name AS package_name, j.program_name,
       j.state, j.state_reason, j.priority, j.start_after, j.activated_at, j.finished_at,
       coalesce(c.sites, 0) AS sites, coalesce(c.sites_done, 0) AS sites_done,
       (SELECT count(*) FROM smsdist.job_target_status t WHERE t.job_id = j.job_id) AS machines
  FROM smsdist.jobs j JOIN smsdist.packages p USING (package_id)
  LEFT JOIN LATERAL (
        SELECT count(*) AS sites, count(*) FILTER (WHERE x.all_done) AS sites_done
          FROM (SELECT bool_and(s.state = 'done') AS all_done FROM smsdist.job_site_status s
                 WHERE s.job_id = j.job_id GROUP BY s.site_code) x) c ON true;

DROP VIEW build_progress;
CREATE VIEW build_progress AS
SELECT b.package_id, p.name AS package_name, b.source_version, b.state, b.source_bytes, b.bytes_done,
       CASE WHEN b.state = 'ready' THEN 100::numeric
            WHEN b.source_bytes > 0
            THEN least(round(100.0 * b.bytes_done / b.source_bytes, 1),
                       CASE WHEN b.state = 'building' THEN 99.9 ELSE 100 END)
       END AS percent,
       b.bytes AS compressed_bytes,
       CASE WHEN b.source_bytes > 0 AND b.bytes IS NOT NULL
            THEN round(100.0 * b.bytes / b.source_bytes, 1) END AS compressed_percent,
       b.file_count, b.attempts, b.error, b.started_at, b.finished_at,
       coalesce(b.finished_at, clock_timestamp()) - b.started_at AS elapsed,
       b.updated_at AS progress_at
  FROM smsdist.package_builds b JOIN smsdist.packages p USING (package_id);

-- Whether a package was removed from a site: a removal of the package
-- reached the site after any job that distributed it.  With no location
-- of it at the site, the agent tells "removed" from "not here yet" (the
-- policy's package_removed, a NAL file with removed=true).
CREATE FUNCTION package_removed_at(p_package_id text, p_site text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM smsdist.jobs rj
          JOIN smsdist.job_site_status rs
            ON rs.job_id = rj.job_id AND rs.site_code = p_site AND rs.phase = 'distribute'
         WHERE rj.job_type = 'remove_package' AND rj.package_id = p_package_id
           AND rj.state IN ('active', 'completed')
           AND NOT EXISTS (SELECT 1 FROM smsdist.jobs sj
                            WHERE sj.package_id = p_package_id AND sj.job_type <> 'remove_package'
                              AND sj.state IN ('pending', 'active', 'completed')
                              AND sj.created_at > rj.created_at))
$$;

-- The policy's advertisement entries say when their package was removed
-- from the site (package_removed_at).
CREATE OR REPLACE FUNCTION policy_advertisements(p_adverts text[], p_site text, p_target text) RETURNS jsonb
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
        'locations', coalesce(loc.paths, '[]'::jsonb),
        'package_removed', loc.paths IS NULL AND smsdist.package_removed_at(a.package_id, p_site))
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

REVOKE ALL ON job_progress, job_overview, build_progress FROM PUBLIC;
GRANT SELECT ON job_progress, job_overview, build_progress TO smsdist_reader;
REVOKE ALL ON FUNCTION transfer_eta(bigint, numeric, throttle_mode, smallint[], timestamptz, text),
    progress_report(text), package_removed_at(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION transfer_eta(bigint, numeric, throttle_mode, smallint[], timestamptz, text)
    TO smsdist_reader;
GRANT EXECUTE ON FUNCTION progress_report(text) TO smsdist_parent_site;

-------------------------------------------------------------------------------
-- Preview and cache inventory
-------------------------------------------------------------------------------

-- What each machine's download cache holds, as its agent last reported it
-- (legacy mode: a signed <MACHINE>.INV file in the CAP's status inbox, taken
-- in by the Status Manager; advanced mode: client_cache_inventory()).  One
-- row per machine, replaced by each newer report; preview() reads it to say
-- which machines would have to evict packages, or have no room.
CREATE TABLE machine_caches (
    sms_id              sms_id PRIMARY KEY REFERENCES system_resources ON DELETE CASCADE,
    site_code           site_code NOT NULL,
    reported_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    client_at           timestamptz NOT NULL,
    size_limit_bytes    bigint NOT NULL CHECK (size_limit_bytes >= 0),
    used_bytes          bigint NOT NULL CHECK (used_bytes >= 0),
    locked_bytes        bigint NOT NULL CHECK (locked_bytes BETWEEN 0 AND used_bytes),
    utc_offset_seconds  integer NOT NULL CHECK (utc_offset_seconds BETWEEN -50400 AND 50400),
    package_count       integer NOT NULL CHECK (package_count BETWEEN 0 AND 1000),
    -- changed since the parent site last heard (status_manager.c sends it up)
    report_pending      boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE machine_caches IS
    'each machine''s download cache as its agent last reported it: size limit, bytes used and locked, and the machine''s UTC offset';
REVOKE ALL ON machine_caches FROM PUBLIC;
GRANT SELECT ON machine_caches TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.machine_caches', '');
-- an inventory an agent reported over libpq goes up to the parent site soon
CREATE TRIGGER notify_status_manager AFTER INSERT OR UPDATE ON machine_caches
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('status_manager');

CREATE TABLE machine_cache_packages (
    sms_id          sms_id NOT NULL REFERENCES machine_caches ON DELETE CASCADE,
    package_id      sms_id NOT NULL,
    source_version  integer NOT NULL CHECK (source_version >= 1),
    bytes           bigint NOT NULL CHECK (bytes >= 0),
    downloaded_at   timestamptz NOT NULL,
    locked_until    timestamptz,
    last_run_at     timestamptz,
    PRIMARY KEY (sms_id, package_id, source_version)
);
COMMENT ON TABLE machine_cache_packages IS
    'the packages in each machine''s download cache, as its agent last reported them (locked_until NULL: unlocked)';
REVOKE ALL ON machine_cache_packages FROM PUBLIC;
GRANT SELECT ON machine_cache_packages TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.machine_cache_packages', '');

-- Why an inventory cannot be taken in, or NULL when it can.  The report of
-- either mode is one JSON object:
--   {"size_limit_bytes": N, "used_bytes": N, "locked_bytes": N,
--    "utc_offset_seconds": N, "packages": [{"package_id": "CEN00B01",
--    "source_version": 1, "bytes": N, "downloaded_at": "2026-12-01T00:00:00Z",
--    "locked_until": "..." or null, "last_run_at": "..." or null}, ...]}
-- Sizes are whole numbers from 0 to 1 PiB (the agent's largest cache), at
-- most 1,000 packages, the offset within 14 hours either way, IDs valid SMS
-- IDs, no package twice, and the totals must be the packages' sums.
CREATE FUNCTION cache_inventory_problem(inventory jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    p jsonb;
    i integer := 0;
    n integer;
    used numeric := 0;
    locked numeric := 0;
    seen text[] := '{}';
    id text;
    max_bytes CONSTANT numeric := 1125899906842624;  -- 1 PiB
BEGIN
    IF inventory IS NULL OR jsonb_typeof(inventory) <> 'object' THEN
        RETURN 'an inventory is a JSON object';
    END IF;
    IF octet_length(inventory::text) > 256 * 1024 THEN
        RETURN format('the inventory is %s bytes, more than 262144', octet_length(inventory::text));
    END IF;
    SELECT string_agg(key, ', ' ORDER BY key) INTO k FROM jsonb_object_keys(inventory) key
     WHERE key NOT IN ('size_limit_bytes', 'used_bytes', 'locked_bytes', 'utc_offset_seconds', 'packages');
    IF k IS NOT NULL THEN
        RETURN format('unknown key(s) %s', left(k, 200));
    END IF;
    FOREACH k IN ARRAY ARRAY['size_limit_bytes', 'used_bytes', 'locked_bytes'] LOOP
        IF jsonb_typeof(inventory->k) IS DISTINCT FROM 'number'
           OR (inventory->>k)::numeric <> trunc((inventory->>k)::numeric)
           OR (inventory->>k)::numeric NOT BETWEEN 0 AND max_bytes THEN
            RETURN format('%s must be a whole number of bytes from 0 to %s, not %s', k, max_bytes,
                          left(coalesce((inventory->k)::text, 'nothing'), 40));
        END IF;
    END LOOP;
    IF jsonb_typeof(inventory->'utc_offset_seconds') IS DISTINCT FROM 'number'
       OR (inventory->>'utc_offset_seconds')::numeric <> trunc((inventory->>'utc_offset_seconds')::numeric)
       OR (inventory->>'utc_offset_seconds')::numeric NOT BETWEEN -50400 AND 50400 THEN
        RETURN format('utc_offset_seconds must be a whole number of seconds from -50400 to 50400 (14 hours), not %s',
                      left(coalesce((inventory->'utc_offset_seconds')::text, 'nothing'), 40));
    END IF;
    IF jsonb_typeof(inventory->'packages') IS DISTINCT FROM 'array' THEN
        RETURN 'packages must be a JSON array';
    END IF;
    n := jsonb_array_length(inventory->'packages');
    IF n > 1000 THEN
        RETURN format('it lists %s packages, more than 1000', n);
    END IF;
    FOR p IN SELECT e FROM jsonb_array_elements(inventory->'packages') e LOOP
        i := i + 1;
        IF jsonb_typeof(p) <> 'object' THEN
            RETURN format('package %s is not a JSON object', i);
        END IF;
        SELECT string_agg(key, ', ' ORDER BY key) INTO k FROM jsonb_object_keys(p) key
         WHERE key NOT IN ('package_id', 'source_version', 'bytes', 'downloaded_at', 'locked_until', 'last_run_at');
        IF k IS NOT NULL THEN
            RETURN format('package %s: unknown key(s) %s', i, left(k, 200));
        END IF;
        id := p->>'package_id';
        IF jsonb_typeof(p->'package_id') IS DISTINCT FROM 'string' THEN
            RETURN format('package %s: package_id %s is not an SMS ID', i,
                          left(coalesce((p->'package_id')::text, 'missing'), 40));
        END IF;
        BEGIN
            PERFORM id::smsdist.sms_id;     -- the domain's own check
        EXCEPTION WHEN OTHERS THEN
            RETURN format('package %s: package_id %s is not an SMS ID', i, left((p->'package_id')::text, 40));
        END;
        IF jsonb_typeof(p->'source_version') IS DISTINCT FROM 'number'
           OR (p->>'source_version')::numeric <> trunc((p->>'source_version')::numeric)
           OR (p->>'source_version')::numeric NOT BETWEEN 1 AND 2147483647 THEN
            RETURN format('package %s (%s): source_version must be a whole number from 1 to 2147483647, not %s', i, id,
                          left(coalesce((p->'source_version')::text, 'nothing'), 40));
        END IF;
        IF (id || '.' || (p->>'source_version')) = ANY (seen) THEN
            RETURN format('package %s version %s is listed twice', id, p->>'source_version');
        END IF;
        seen := seen || (id || '.' || (p->>'source_version'));
        IF jsonb_typeof(p->'bytes') IS DISTINCT FROM 'number'
           OR (p->>'bytes')::numeric <> trunc((p->>'bytes')::numeric)
           OR (p->>'bytes')::numeric NOT BETWEEN 0 AND max_bytes THEN
            RETURN format('package %s (%s): bytes must be a whole number from 0 to %s, not %s', i, id, max_bytes,
                          left(coalesce((p->'bytes')::text, 'nothing'), 40));
        END IF;
        FOREACH k IN ARRAY ARRAY['downloaded_at', 'locked_until', 'last_run_at'] LOOP
            CONTINUE WHEN k <> 'downloaded_at' AND coalesce(jsonb_typeof(p->k), 'null') = 'null';
            IF jsonb_typeof(p->k) IS DISTINCT FROM 'string'
               OR (p->>k) !~ '^(19[7-9][0-9]|2[0-9]{3})-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z$' THEN
                RETURN format('package %s (%s): %s must be a UTC time like 2026-12-01T08:00:00Z%s, not %s', i, id, k,
                              CASE WHEN k = 'downloaded_at' THEN '' ELSE ' or null' END,
                              left(coalesce((p->k)::text, 'nothing'), 40));
            END IF;
            BEGIN
                PERFORM (p->>k)::timestamptz;
            EXCEPTION WHEN OTHERS THEN
                RETURN format('package %s (%s): %s %s is not a valid time', i, id, k, p->>k);
            END;
        END LOOP;
        used := used + (p->>'bytes')::numeric;
        IF coalesce(jsonb_typeof(p->'locked_until'), 'null') <> 'null' THEN
            locked := locked + (p->>'bytes')::numeric;
        END IF;
    END LOOP;
    IF used <> (inventory->>'used_bytes')::numeric THEN
        RETURN format('used_bytes is %s, but its packages hold %s bytes', inventory->>'used_bytes', used);
    END IF;
    IF locked <> (inventory->>'locked_bytes')::numeric THEN
        RETURN format('locked_bytes is %s, but its locked packages hold %s bytes', inventory->>'locked_bytes', locked);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION cache_inventory_problem(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cache_inventory_problem(jsonb) TO smsdist_reader, smsdist_client;

-- Take in one machine's inventory: NULL when it was recorded (or was not
-- newer than the one kept: a file read twice, or put back), else why it was
-- refused.  Never raises for a bad report, so that the Status Manager's
-- batch goes on; the caller says who the machine is (the Status Manager
-- from a file signed with its key, client_cache_inventory() from the login).
CREATE FUNCTION record_cache_inventory(p_machine text, p_client_at timestamptz, p_report text)
    RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    site smsdist.site_code;
    problem text;
    kept timestamptz;
    p_inventory jsonb;
BEGIN
    IF octet_length(p_report) > 256 * 1024 THEN
        RETURN format('the inventory is %s bytes, more than 262144', octet_length(p_report));
    END IF;
    BEGIN
        p_inventory := p_report::jsonb;
    EXCEPTION WHEN OTHERS THEN
        RETURN 'the inventory is not valid JSON: ' || SQLERRM;
    END;
    SELECT r.site_code INTO site FROM smsdist.system_resources r WHERE r.sms_id = p_machine;
    IF NOT FOUND THEN
        RETURN format('machine %s is unknown here', p_machine);
    END IF;
    IF p_client_at IS NULL THEN
        RETURN 'it has no client time';
    END IF;
    -- the same window as a status message's client time
    problem := smsdist.status_problem('', p_client_at);
    IF problem IS NULL THEN
        problem := smsdist.cache_inventory_problem(p_inventory);
    END IF;
    IF problem IS NOT NULL THEN
        RETURN problem;
    END IF;
    SELECT c.client_at INTO kept FROM smsdist.machine_caches c WHERE c.sms_id = p_machine FOR UPDATE;
    IF kept IS NOT NULL AND kept >= p_client_at THEN
        RETURN NULL;            -- this one or a newer one is kept already
    END IF;
    BEGIN
        INSERT INTO smsdist.machine_caches AS c (sms_id, site_code, client_at, size_limit_bytes, used_bytes,
                                                 locked_bytes, utc_offset_seconds, package_count)
        VALUES (p_machine, site, p_client_at, (p_inventory->>'size_limit_bytes')::bigint,
                (p_inventory->>'used_bytes')::bigint, (p_inventory->>'locked_bytes')::bigint,
                (p_inventory->>'utc_offset_seconds')::integer, jsonb_array_length(p_inventory->'packages'))
        ON CONFLICT (sms_id) DO UPDATE
           SET site_code = EXCLUDED.site_code, reported_at = clock_timestamp(), client_at = EXCLUDED.client_at,
               size_limit_bytes = EXCLUDED.size_limit_bytes, used_bytes = EXCLUDED.used_bytes,
               locked_bytes = EXCLUDED.locked_bytes, utc_offset_seconds = EXCLUDED.utc_offset_seconds,
               package_count = EXCLUDED.package_count, report_pending = true;
        DELETE FROM smsdist.machine_cache_packages p WHERE p.sms_id = p_machine;
        INSERT INTO smsdist.machine_cache_packages (sms_id, package_id, source_version, bytes, downloaded_at,
                                                    locked_until, last_run_at)
        SELECT p_machine, e->>'package_id', (e->>'source_version')::integer, (e->>'bytes')::bigint,
               (e->>'downloaded_at')::timestamptz, (e->>'locked_until')::timestamptz, (e->>'last_run_at')::timestamptz
          FROM jsonb_array_elements(p_inventory->'packages') e;
    EXCEPTION WHEN OTHERS THEN
        RETURN 'it could not be recorded: ' || SQLERRM;
    END;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION record_cache_inventory(text, timestamptz, text) FROM PUBLIC;

-- Advanced mode: an agent reports its own cache.  The login must speak for
-- the machine (machine_logins); a bad report is refused with the reason.
-- True when recorded, false when a newer report is kept already.
CREATE FUNCTION client_cache_inventory(p_machine text, p_client_at timestamptz, p_inventory jsonb)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
    before timestamptz;
BEGIN
    PERFORM smsdist.require_machine_login(p_machine);
    IF p_inventory IS NOT NULL AND octet_length(p_inventory::text) > 256 * 1024 THEN
        RAISE EXCEPTION 'cache inventory of machine % refused: it is % bytes, more than 262144',
            p_machine, octet_length(p_inventory::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    SELECT c.client_at INTO before FROM smsdist.machine_caches c WHERE c.sms_id = p_machine;
    problem := smsdist.record_cache_inventory(p_machine, p_client_at, p_inventory::text);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'cache inventory of machine % refused: %', p_machine, problem
            USING ERRCODE = CASE WHEN problem LIKE 'machine % is unknown here' THEN 'foreign_key_violation'
                                 ELSE 'invalid_parameter_value' END;
    END IF;
    RETURN before IS NULL OR before < p_client_at;
END
$$;
REVOKE ALL ON FUNCTION client_cache_inventory(text, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION client_cache_inventory(text, timestamptz, jsonb) TO smsdist_client;

-- Up the hierarchy: the inventories of this site's machines, and those
-- its children sent, go to the parent site, so that preview() there knows
-- the caches of every site below it.  At most p_limit rows that changed
-- since the parent last heard, each with the time it was recorded here
-- (caches_reported() clears a row only if it has not changed since).
CREATE FUNCTION cache_report_for_parent(p_limit integer) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'sms_id', c.sms_id, 'reported_at', c.reported_at,
               'client_at', to_char(c.client_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'inventory', jsonb_build_object(
                   'size_limit_bytes', c.size_limit_bytes, 'used_bytes', c.used_bytes,
                   'locked_bytes', c.locked_bytes, 'utc_offset_seconds', c.utc_offset_seconds,
                   'packages', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                  'package_id', p.package_id, 'source_version', p.source_version, 'bytes', p.bytes,
                                  'downloaded_at', to_char(p.downloaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'locked_until', to_char(p.locked_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'last_run_at', to_char(p.last_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                                  ORDER BY p.package_id, p.source_version)
                                FROM smsdist.machine_cache_packages p WHERE p.sms_id = c.sms_id), '[]'::jsonb)))
               ORDER BY c.sms_id), '[]'::jsonb)
      FROM (SELECT * FROM smsdist.machine_caches WHERE report_pending ORDER BY sms_id LIMIT p_limit) c
$$;
REVOKE ALL ON FUNCTION cache_report_for_parent(integer) FROM PUBLIC;

CREATE FUNCTION caches_reported(report jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE smsdist.machine_caches c SET report_pending = false
      FROM jsonb_array_elements(report) r
     WHERE c.sms_id = r->>'sms_id' AND c.reported_at = (r->>'reported_at')::timestamptz;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION caches_reported(jsonb) FROM PUBLIC;

-- At the parent, granted to smsdist_child_site: a child's inventories.  The
-- login speaks for the child (site_logins), and the child for its own
-- machines and those of the sites below it, no others; each row is checked
-- as an agent's report is, and a bad row is refused alone.  Answers
-- {"recorded": n, "refused": n, "reasons": [the first ten]}.
CREATE FUNCTION receive_cache_report(p_child text, report jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller smsdist.site_code := smsdist.calling_site('child');
    r jsonb;
    machine_site text;
    why text;
    t timestamptz;
    recorded integer := 0;
    refused integer := 0;
    reasons text[] := '{}';
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
        RAISE EXCEPTION 'a cache report is a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(report) > 1000 OR octet_length(report::text) > 64 * 1024 * 1024 THEN
        RAISE EXCEPTION 'cache report of site % is too large: % rows, % bytes (at most 1000 rows and 64 MB)', p_child,
            jsonb_array_length(report), octet_length(report::text)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR r IN SELECT e FROM jsonb_array_elements(report) e LOOP
        why := NULL;
        SELECT m.site_code INTO machine_site FROM smsdist.system_resources m
         WHERE jsonb_typeof(r) = 'object' AND m.sms_id::text = r->>'sms_id';
        IF machine_site IS NULL THEN
            why := format('machine %s is unknown here', left(coalesce(r->>'sms_id', 'NULL'), 40));
        ELSIF machine_site <> p_child AND smsdist.route_hop(machine_site::smsdist.site_code) IS DISTINCT FROM p_child THEN
            why := format('machine %s is at site %s, not at site %s or below it', r->>'sms_id', machine_site, p_child);
        ELSE
            BEGIN
                t := (r->>'client_at')::timestamptz;
            EXCEPTION WHEN OTHERS THEN
                t := NULL;
            END;
            why := smsdist.record_cache_inventory(r->>'sms_id', t, (r->'inventory')::text);
            IF why IS NOT NULL THEN
                why := format('machine %s: %s', r->>'sms_id', why);
            END IF;
        END IF;
        IF why IS NULL THEN
            recorded := recorded + 1;
        ELSE
            refused := refused + 1;
            IF refused <= 10 THEN
                reasons := reasons || why;
            END IF;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('recorded', recorded, 'refused', refused, 'reasons', to_jsonb(reasons));
END
$$;
REVOKE ALL ON FUNCTION receive_cache_report(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_cache_report(text, jsonb) TO smsdist_child_site;

-- The link's measured throughput: one row per completed transfer to a child
-- site, the bytes the child took and the seconds spent sending them
-- (chunks on the wire and the child's writes, not the throttling pauses),
-- the ten newest per sender address.  The Sender writes them.
CREATE TABLE link_measurements (
    address_id    integer NOT NULL REFERENCES sender_addresses ON DELETE CASCADE,
    measured_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    job_id        sms_id NOT NULL,
    bytes         bigint NOT NULL CHECK (bytes > 0),
    seconds       double precision NOT NULL CHECK (seconds > 0),
    PRIMARY KEY (address_id, measured_at)
);
COMMENT ON TABLE link_measurements IS
    'bytes and seconds of the latest completed transfers over each sender address (throttling pauses not counted)';
REVOKE ALL ON link_measurements FROM PUBLIC;
GRANT SELECT ON link_measurements TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.link_measurements', '');

CREATE VIEW link_throughput AS
SELECT a.address_id, a.target_site_code, a.throttle, count(m.*) AS transfers,
       sum(m.bytes)::bigint AS bytes, sum(m.seconds) AS seconds,
       (sum(m.bytes) / nullif(sum(m.seconds), 0))::bigint AS bytes_per_second,
       max(m.measured_at) AS last_measured_at
  FROM sender_addresses a
  LEFT JOIN link_measurements m ON m.address_id = a.address_id
 GROUP BY a.address_id;
COMMENT ON VIEW link_throughput IS
    'each sender address''s measured throughput over its latest transfers (NULL: never measured)';
REVOKE ALL ON link_throughput FROM PUBLIC;
GRANT SELECT ON link_throughput TO smsdist_reader;

-- Seconds to send bytes over address a, whose link carries rate bytes per
-- second while it sends, as its throttling schedule lets it from start on;
-- NULL when unknown (no rate) or never (every hour at 0 %).
CREATE FUNCTION transfer_seconds(bytes bigint, a smsdist.sender_addresses, rate numeric,
                                 start timestamptz DEFAULT now())
    RETURNS numeric
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    left_bytes numeric := bytes;
    total numeric := 0;
    block numeric;
    chunks numeric;
    -- the Sender reads the hour in the server's local time
    t timestamp := start AT TIME ZONE smsdist.server_time_zone();
    in_hour numeric;
    pct integer;
    can numeric;
BEGIN
    IF bytes IS NULL THEN
        RETURN NULL;
    END IF;
    IF bytes = 0 THEN
        RETURN 0;
    END IF;
    IF rate IS NULL OR rate <= 0 THEN
        RETURN NULL;
    END IF;
    IF a.throttle = 'pulse' THEN
        -- a block, then a pause, after every block but the last
        block := least(8 * 1024 * 1024, CASE WHEN coalesce(a.pulse_block_kb, 0) > 0
                                              THEN a.pulse_block_kb * 1024 ELSE 8 * 1024 * 1024 END);
        chunks := ceil(bytes / block);
        RETURN round(bytes / rate + (chunks - 1) * coalesce(a.pulse_delay_ms, 0) / 1000.0, 1);
    ELSIF a.throttle = 'rate_limited' THEN
        IF a.hourly_rate_pct IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(a.hourly_rate_pct) p WHERE p > 0) THEN
            RETURN NULL;
        END IF;
        -- hour by hour: at p % the link carries p % of its rate; at 0 % nothing
        FOR i IN 1 .. 24 * 8 LOOP
            in_hour := extract(epoch FROM date_trunc('hour', t) + interval '1 hour' - t);
            pct := coalesce(a.hourly_rate_pct[extract(hour FROM t)::integer + 1], 100);
            can := rate * pct / 100.0 * in_hour;
            IF pct > 0 AND can >= left_bytes THEN
                RETURN round(total + left_bytes / (rate * pct / 100.0), 1);
            END IF;
            left_bytes := left_bytes - greatest(can, 0);
            total := total + in_hour;
            t := date_trunc('hour', t) + interval '1 hour';
        END LOOP;
        RETURN NULL;
    END IF;
    RETURN round(bytes / rate, 1);
END
$$;
REVOKE ALL ON FUNCTION transfer_seconds(bigint, sender_addresses, numeric, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION transfer_seconds(bigint, sender_addresses, numeric, timestamptz) TO smsdist_reader;

-- The bytes of the regular files of a manifest that a delta from base would
-- carry (added or changed: path, size, mode or SHA-256), and of all its
-- regular files.  (Manifest lines: <sha256 or 64 '-'> <size> <mode> <path>.)
CREATE FUNCTION manifest_delta_bytes(base text, target text, OUT sent_bytes numeric, OUT all_bytes numeric)
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (SELECT m[1] AS digest, m[2]::numeric AS size, m[3] AS mode, m[4] AS path
                 FROM regexp_matches(target, '^([0-9a-f]{64}) ([0-9]+) ([0-7]{4}) (.*)$', 'gn') m),
         b AS (SELECT m[1] AS digest, m[2]::numeric AS size, m[3] AS mode, m[4] AS path
                 FROM regexp_matches(base, '^([0-9a-f]{64}) ([0-9]+) ([0-7]{4}) (.*)$', 'gn') m)
    SELECT coalesce(sum(t.size) FILTER (WHERE b.path IS NULL), 0), coalesce(sum(t.size), 0)
      FROM t LEFT JOIN b ON b.path = t.path AND b.digest = t.digest AND b.size = t.size AND b.mode = t.mode
$$;
REVOKE ALL ON FUNCTION manifest_delta_bytes(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION manifest_delta_bytes(text, text) TO smsdist_reader;

-- The regular files' bytes and count of a package's source tree, for a
-- version not built yet: at most 100,000 entries and 32 levels (complete is
-- false beyond), only below smsdist.source_roots.  NULL bytes when the
-- directory cannot be read.  Called by preview() as the extension's owner.
CREATE FUNCTION source_tree_size(p_dir text, OUT bytes bigint, OUT files bigint, OUT complete boolean)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    complete := false;
    BEGIN
        PERFORM smsdist.require_allowed_source(p_dir);
        IF NOT coalesce((pg_stat_file(p_dir, true)).isdir, false) THEN
            RETURN;
        END IF;
        WITH RECURSIVE walk(path, isdir, size, depth) AS (
            SELECT p_dir, true, 0::bigint, 0
          UNION ALL
            SELECT w.path || '/' || f, st.isdir, st.size, w.depth + 1
              FROM walk w
              CROSS JOIN LATERAL pg_ls_dir(w.path, true, false) f
              CROSS JOIN LATERAL pg_stat_file(w.path || '/' || f, true) st
             WHERE w.isdir AND w.depth < 32)
        SELECT coalesce(sum(x.size) FILTER (WHERE NOT x.isdir), 0), count(*) FILTER (WHERE NOT x.isdir), count(*)
          INTO bytes, files, n
          FROM (SELECT * FROM walk LIMIT 100001) x;
        complete := n <= 100000;
    EXCEPTION WHEN OTHERS THEN
        bytes := NULL;
        files := NULL;
    END;
END
$$;
REVOKE ALL ON FUNCTION source_tree_size(text) FROM PUBLIC;

-- What a job would cost, before it is committed: one row per site it would
-- reach.  Works on a job inserted in the same transaction (BEGIN; INSERT
-- INTO smsdist.jobs ...; SELECT * FROM smsdist.preview(job_id); ROLLBACK;)
-- and writes nothing (STABLE: the executor refuses any write).  SECURITY
-- DEFINER to read the throttling schedules of sender_addresses (readers may
-- not read their conninfo), which it does not return.  docs/preview.md.
CREATE FUNCTION preview(p_job_id text)
    RETURNS TABLE (site_code smsdist.site_code, sent_via smsdist.site_code, machines integer,
                   bytes_to_send bigint, delta_from_version integer, estimated_seconds numeric,
                   cache_evictions integer, cache_no_room integer, cache_unknown integer, note text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j smsdist.jobs;
    here smsdist.site_code := nullif(current_setting('smsdist.site_code', true), '')::smsdist.site_code;
    version integer;
    b smsdist.package_builds;
    full_bytes bigint;          -- the package file
    need_bytes bigint;          -- its files, unpacked, in a machine's cache
    size_note text;
    s record;
    h record;
    a smsdist.sender_addresses;
    rate numeric;
    base integer;
    d record;
    hop_bytes bigint;
    hop_note text;
    tree record;
BEGIN
    SELECT * INTO j FROM smsdist.jobs x WHERE x.job_id = p_job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', p_job_id USING ERRCODE = 'no_data_found';
    END IF;
    -- the version a pending job would send is the package's current one
    version := coalesce(j.source_version,
                        (SELECT p.source_version FROM smsdist.packages p WHERE p.package_id = j.package_id));
    SELECT * INTO b FROM smsdist.package_builds x
     WHERE x.package_id = j.package_id AND x.source_version = version;
    IF j.job_type = 'remove_package' THEN
        full_bytes := 0;
        size_note := 'a removal: nothing is sent';
    ELSIF b.state = 'ready' THEN
        full_bytes := b.bytes;
        need_bytes := b.source_bytes;
        size_note := format('version %s is built: %s bytes', version, b.bytes);
    ELSE
        -- not built yet: its source tree as it is now, compressed as the
        -- newest version built before was (or not at all)
        SELECT * INTO b FROM smsdist.package_builds x
         WHERE x.package_id = j.package_id AND x.state = 'ready' AND x.source_version < version
         ORDER BY x.source_version DESC LIMIT 1;
        SELECT * INTO tree FROM smsdist.source_tree_size(
            (SELECT p.source_directory FROM smsdist.packages p WHERE p.package_id = j.package_id));
        IF tree.bytes IS NOT NULL AND tree.complete THEN
            need_bytes := tree.bytes;
            IF b.source_bytes > 0 THEN
                full_bytes := ceil(tree.bytes::numeric * b.bytes / b.source_bytes)::bigint;
                size_note := format('version %s is not built yet: estimated from its source tree (%s bytes in %s files) compressed as version %s was',
                                    version, tree.bytes, tree.files, b.source_version);
            ELSE
                full_bytes := tree.bytes;
                size_note := format('version %s is not built yet: estimated from its source tree (%s bytes in %s files), as if it did not compress',
                                    version, tree.bytes, tree.files);
            END IF;
        ELSIF b.bytes IS NOT NULL THEN
            full_bytes := b.bytes;
            need_bytes := b.source_bytes;
            size_note := format('version %s is not built yet and its source tree cannot be measured: sizes estimated from version %s',
                                version, b.source_version);
        ELSE
            size_note := format('version %s is not built yet and its source tree cannot be measured: sizes unknown', version);
        END IF;
        b := NULL;              -- no manifest of this version: no delta
    END IF;

    FOR s IN
        SELECT t.site_code AS code, smsdist.route_hop(t.site_code) AS hop
          FROM smsdist.job_target_sites(p_job_id) t ORDER BY t.site_code
    LOOP
        site_code := s.code;
        sent_via := s.hop;
        delta_from_version := NULL;
        estimated_seconds := NULL;
        -- machines, and their caches as last reported
        SELECT count(*)::integer,
               count(*) FILTER (WHERE c.sms_id IS NOT NULL AND NOT c.has_it AND need_bytes IS NOT NULL
                                  AND c.used_bytes + need_bytes > c.size_limit_bytes
                                  AND c.used_bytes - c.freeable + need_bytes <= c.size_limit_bytes)::integer,
               count(*) FILTER (WHERE c.sms_id IS NOT NULL AND NOT c.has_it AND need_bytes IS NOT NULL
                                  AND c.used_bytes - c.freeable + need_bytes > c.size_limit_bytes)::integer,
               count(*) FILTER (WHERE c.sms_id IS NULL OR (NOT c.has_it AND need_bytes IS NULL))::integer
          INTO machines, cache_evictions, cache_no_room, cache_unknown
          FROM smsdist.job_target_machines(p_job_id) m
          LEFT JOIN LATERAL (
                SELECT mc.sms_id, mc.size_limit_bytes, mc.used_bytes,
                       coalesce((SELECT sum(cp.bytes) FROM smsdist.machine_cache_packages cp
                                  WHERE cp.sms_id = mc.sms_id
                                    AND (cp.locked_until IS NULL OR cp.locked_until <= now())), 0) AS freeable,
                       EXISTS (SELECT 1 FROM smsdist.machine_cache_packages cp
                                WHERE cp.sms_id = mc.sms_id AND cp.package_id = j.package_id
                                  AND cp.source_version = version) AS has_it
                  FROM smsdist.machine_caches mc WHERE mc.sms_id = m.sms_id) c ON true
         WHERE m.site_code = s.code;

        IF s.code = here THEN
            bytes_to_send := 0;
            estimated_seconds := 0;
            note := 'this site: nothing to send; ' || size_note;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF s.hop IS NULL THEN
            bytes_to_send := NULL;
            note := format('site %s is not below this site: it cannot be reached from here', s.code);
            RETURN NEXT;
            CONTINUE;
        END IF;

        -- what the Sender would send to the hop (sender.c, common_base_version):
        -- a delta when every target site behind it holds one and the same
        -- older version whose manifest is known here
        hop_bytes := full_bytes;
        hop_note := size_note;
        base := NULL;
        IF j.job_type <> 'remove_package' AND full_bytes IS NOT NULL THEN
            WITH held AS (
                SELECT t.site_code, min(l.source_version) AS lo, max(l.source_version) AS hi
                  FROM smsdist.job_target_sites(p_job_id) t
                  LEFT JOIN smsdist.package_locations l
                    ON l.package_id = j.package_id AND l.site_code = t.site_code
                 WHERE smsdist.route_hop(t.site_code) = s.hop
                 GROUP BY t.site_code)
            SELECT min(h2.lo) AS lo, bool_and(h2.lo IS NOT NULL AND h2.lo = h2.hi) AND min(h2.lo) = max(h2.lo) AS same
              INTO h FROM held h2;
            IF h.same AND h.lo = version THEN
                hop_bytes := 0;
                hop_note := format('every target site behind %s holds version %s already', s.hop, version);
            ELSIF h.same AND h.lo < version AND b.manifest IS NOT NULL THEN
                SELECT x.bytes INTO d FROM smsdist.package_deltas x
                 WHERE x.package_id = j.package_id AND x.base_version = h.lo AND x.source_version = version;
                IF FOUND THEN
                    IF d.bytes < full_bytes THEN
                        hop_bytes := d.bytes;
                        base := h.lo;
                        hop_note := format('the delta from version %s (made already: %s of %s bytes)', h.lo,
                                           d.bytes, full_bytes);
                    END IF;
                ELSE
                    SELECT (SELECT m.sent_bytes FROM smsdist.manifest_delta_bytes(o.manifest, b.manifest) m) AS sent,
                           b.source_bytes AS src
                      INTO d
                      FROM smsdist.package_builds o
                     WHERE o.package_id = j.package_id AND o.source_version = h.lo AND o.manifest IS NOT NULL;
                    IF FOUND AND d.src > 0 THEN
                        -- the changed files' share of the source, compressed as the whole package is
                        IF ceil(full_bytes * d.sent / d.src) < full_bytes THEN
                            hop_bytes := ceil(full_bytes * d.sent / d.src)::bigint;
                            base := h.lo;
                            hop_note := format('the delta from version %s (estimated from the manifests: %s of %s source bytes changed)',
                                               h.lo, d.sent, d.src);
                        END IF;
                    END IF;
                END IF;
            END IF;
        END IF;
        bytes_to_send := hop_bytes;
        delta_from_version := base;
        note := hop_note;
        -- a site that holds the version itself needs nothing, whatever the
        -- sites behind the same hop need
        IF j.job_type <> 'remove_package' AND hop_bytes > 0 AND EXISTS (
                SELECT 1 FROM smsdist.package_locations l
                 WHERE l.package_id = j.package_id AND l.site_code = s.code AND l.source_version = version) THEN
            bytes_to_send := 0;
            delta_from_version := NULL;
            note := format('site %s holds version %s already', s.code, version);
        END IF;

        SELECT * INTO a FROM smsdist.sender_addresses x
         WHERE x.target_site_code = s.hop AND x.enabled ORDER BY x.priority LIMIT 1;
        IF NOT FOUND THEN
            note := note || format('; no enabled sender address for %s: it cannot be sent', s.hop);
        ELSE
            SELECT sum(lm.bytes) / nullif(sum(lm.seconds), 0) INTO rate
              FROM smsdist.link_measurements lm WHERE lm.address_id = a.address_id;
            -- the schedule from when the transfer can begin: Start After, or now
            estimated_seconds := smsdist.transfer_seconds(bytes_to_send, a, rate, greatest(now(), j.start_after));
            IF rate IS NULL AND coalesce(bytes_to_send, 1) > 0 THEN
                note := note || format('; the link to %s was never measured: no time estimate', s.hop);
            ELSIF bytes_to_send > 0 AND estimated_seconds IS NULL AND a.throttle = 'rate_limited' THEN
                note := note || format('; every hour of the schedule of the address for %s is 0 %%: it would never be sent', s.hop);
            ELSIF bytes_to_send > 0 THEN
                note := note || format('; %s bytes/s measured to %s, %s', round(rate), s.hop,
                                       CASE a.throttle WHEN 'pulse' THEN format('pulses of %s kB every %s ms',
                                                                                a.pulse_block_kb, a.pulse_delay_ms)
                                                       WHEN 'rate_limited' THEN 'rate limited by the hour'
                                                       ELSE 'unthrottled' END);
            END IF;
        END IF;
        IF s.hop <> s.code THEN
            note := note || format('; sent through %s, whose own transfer onwards is not counted', s.hop);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION preview(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION preview(text) TO smsdist_reader;
