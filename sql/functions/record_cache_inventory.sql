-- Take in one machine's inventory: NULL when it was recorded (or was not
-- newer than the one kept: a file read twice, or put back), else why it was
-- refused.  Never raises for a bad report, so that the Status Manager's
-- batch goes on; the caller says who the machine is (the Status Manager
-- from a file signed with its key, client_cache_inventory() from the login).
CREATE OR REPLACE FUNCTION record_cache_inventory(p_machine text, p_client_at timestamptz, p_report text)
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
REVOKE ALL ON FUNCTION record_cache_inventory(text, timestamp with time zone, text) FROM PUBLIC;
