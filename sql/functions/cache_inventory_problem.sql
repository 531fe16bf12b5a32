-- Why an inventory cannot be taken in, or NULL when it can.  The report of
-- either mode is one JSON object:
--   {"size_limit_bytes": N, "used_bytes": N, "locked_bytes": N,
--    "utc_offset_seconds": N, "packages": [{"package_id": "CEN00B01",
--    "source_version": 1, "bytes": N, "downloaded_at": "2026-12-01T00:00:00Z",
--    "locked_until": "..." or null, "last_run_at": "..." or null}, ...]}
-- Sizes are whole numbers from 0 to 1 PiB (the agent's largest cache), at
-- most 1,000 packages, the offset within 14 hours either way, IDs valid SMS
-- IDs, no package twice, and the totals must be the packages' sums.
CREATE OR REPLACE FUNCTION cache_inventory_problem(inventory jsonb) RETURNS text
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
