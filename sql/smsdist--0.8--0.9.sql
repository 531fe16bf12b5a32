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
    t timestamp := start AT TIME ZONE current_setting('log_timezone');
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
