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
-- time_zone, by default log_timezone, the server's local time the Sender
-- uses); an hour at 0 % moves nothing.  NULL when it cannot be known: no
-- remaining figure, no rate, or more than 31 days away.
CREATE FUNCTION transfer_eta(remaining bigint, rate numeric, throttle throttle_mode,
                             hourly_rate_pct smallint[], from_time timestamptz,
                             time_zone text DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := coalesce(time_zone, current_setting('log_timezone'));
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

-- The policy's advertisement entries say when their package was removed
-- from the site (package_removed), so that an agent tells "removed" from
-- "not here yet": no location at the site, and a removal of the package
-- reached the site after any job that distributed it.
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
        'package_removed', loc.paths IS NULL AND EXISTS (
            SELECT 1 FROM smsdist.jobs rj
              JOIN smsdist.job_site_status rs
                ON rs.job_id = rj.job_id AND rs.site_code = p_site AND rs.phase = 'distribute'
             WHERE rj.job_type = 'remove_package' AND rj.package_id = a.package_id
               AND rj.state IN ('active', 'completed')
               AND NOT EXISTS (SELECT 1 FROM smsdist.jobs sj
                                WHERE sj.package_id = a.package_id AND sj.job_type <> 'remove_package'
                                  AND sj.state IN ('pending', 'active', 'completed')
                                  AND sj.created_at > rj.created_at)))
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
    progress_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION transfer_eta(bigint, numeric, throttle_mode, smallint[], timestamptz, text)
    TO smsdist_reader;
GRANT EXECUTE ON FUNCTION progress_report(text) TO smsdist_parent_site;

-------------------------------------------------------------------------------
-- Preview and cache inventory
-------------------------------------------------------------------------------
