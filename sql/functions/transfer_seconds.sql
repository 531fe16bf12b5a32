-- Seconds to send bytes over address a, whose link carries rate bytes per
-- second while it sends, as its throttling schedule lets it from start on;
-- NULL when unknown (no rate) or never (every hour at 0 %).
CREATE OR REPLACE FUNCTION transfer_seconds(bytes bigint, a smsdist.sender_addresses, rate numeric,
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
REVOKE ALL ON FUNCTION transfer_seconds(bigint, sender_addresses, numeric, timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION transfer_seconds(bigint, sender_addresses, numeric, timestamp with time zone) TO smsdist_reader;
