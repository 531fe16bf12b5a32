-- Why a job has not finished at one site (its send and distribute rows),
-- or NULL when the package is on that site's distribution points.
-- Longer than 150 lines: the send row's reasons, then the distribute
-- row's, one branch each, in the order the phases happen.
CREATE OR REPLACE FUNCTION explain_job_site(p_job_id text, p_site text) RETURNS explanation
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
            ELSIF snd.state = 'retrying' AND snd.last_error LIKE '%package store of site % is full (%' THEN
                -- the child answers, but its disk is full: it goes on once room is made there
                e.reason := format('site %s has no room for the package since %s (%s, %s attempt(s)): %s; next attempt at %s',
                                   hop, smsdist.explain_time(coalesce(snd.retrying_since, snd.updated_at)),
                                   smsdist.explain_duration(clock_timestamp() - coalesce(snd.retrying_since, snd.updated_at)),
                                   snd.attempts, snd.last_error,
                                   coalesce(smsdist.explain_time(snd.next_attempt_at), 'the Sender''s next step'));
                e.waiting_on := 'child site';
                e.since := coalesce(snd.retrying_since, snd.updated_at);
                e.next_attempt_at := snd.next_attempt_at;
            ELSIF snd.state = 'retrying' AND adr.address_id IS NULL THEN
                -- (every job behind the hop takes a failed attempt as its own)
                e.reason := format('waiting to be sent to site %s%s: there is no enabled sender address for site %s (since %s, %s attempt(s)); next attempt at %s',
                                   p_site, via, hop, smsdist.explain_time(coalesce(snd.retrying_since, snd.updated_at)),
                                   snd.attempts, coalesce(smsdist.explain_time(snd.next_attempt_at), 'the Sender''s next step'));
                e.waiting_on := 'operator';
                e.since := coalesce(snd.retrying_since, snd.updated_at);
                e.next_attempt_at := snd.next_attempt_at;
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
    ELSIF dst.state = 'retrying' AND dst.next_attempt_at IS NOT NULL THEN
        -- a full disk: the Despooler tries again by itself
        e.reason := format('not on this site''s distribution points yet: the Despooler has been waiting for room since %s (%s, %s attempt(s)): %s; next attempt at %s',
                           smsdist.explain_time(coalesce(dst.retrying_since, dst.updated_at)),
                           smsdist.explain_duration(clock_timestamp() - coalesce(dst.retrying_since, dst.updated_at)),
                           dst.attempts, coalesce(dst.last_error, 'no error recorded'),
                           smsdist.explain_time(dst.next_attempt_at));
        e.waiting_on := 'despooler';
        e.since := coalesce(dst.retrying_since, dst.updated_at);
        e.next_attempt_at := dst.next_attempt_at;
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
REVOKE ALL ON FUNCTION explain_job_site(text, text) FROM PUBLIC;
