-- What a job would cost, before it is committed: one row per site it would
-- reach.  Works on a job inserted in the same transaction (BEGIN; INSERT
-- INTO smsdist.jobs ...; SELECT * FROM smsdist.preview(job_id); ROLLBACK;)
-- and writes nothing (STABLE: the executor refuses any write).  SECURITY
-- DEFINER to read the throttling schedules of sender_addresses (readers may
-- not read their conninfo), which it does not return.  docs/preview.md.
-- Longer than 150 lines: one pass over the sites the job reaches, each
-- figure (bytes, time, caches) a commented block that uses the ones before.
CREATE OR REPLACE FUNCTION preview(p_job_id text)
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
