-- Why a job is held before any of its targets can move (the job's own
-- state, its package build), or NULL when it is not held.
CREATE OR REPLACE FUNCTION explain_job_gate(p_job_id text) RETURNS explanation
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
    ELSIF b.state = 'building' AND b.next_attempt_at IS NOT NULL THEN
        -- a full package store: the Scheduler starts a builder again by itself
        e.reason := format('package %s version %s cannot be compressed since %s (%s, %s attempt(s)): %s; next attempt at %s',
                           j.package_id, j.source_version,
                           smsdist.explain_time(coalesce(b.retrying_since, b.updated_at)),
                           smsdist.explain_duration(clock_timestamp() - coalesce(b.retrying_since, b.updated_at)),
                           b.attempts, coalesce(b.error, 'no reason recorded'),
                           smsdist.explain_time(b.next_attempt_at));
        e.waiting_on := 'package builder';
        e.since := coalesce(b.retrying_since, b.updated_at);
        e.next_attempt_at := b.next_attempt_at;
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
REVOKE ALL ON FUNCTION explain_job_gate(text) FROM PUBLIC;
