-- Keeps retrying_since and next_attempt_at of a job_site_status row right,
-- whoever writes the row.
CREATE OR REPLACE FUNCTION job_site_status_retry_clock() RETURNS trigger
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
            -- the Sender's back-off: 2^attempts seconds, at most a minute;
            -- a distribute row's is the Despooler's to set (a full disk)
            NEW.next_attempt_at := CASE WHEN NEW.phase = 'send'
                THEN clock_timestamp() + make_interval(secs => least(60, power(2, least(NEW.attempts, 6))))
                ELSE NEW.next_attempt_at END;
        END IF;
    ELSIF NEW.state = 'running' THEN
        -- an attempt is under way; bytes that move end a transfer's run of
        -- failures (a distribution's progress does not: a full disk stops
        -- it after it has published elsewhere)
        NEW.next_attempt_at := NULL;
        IF TG_OP = 'UPDATE' AND NEW.phase = 'send' AND NEW.bytes_done > coalesce(OLD.bytes_done, 0) THEN
            NEW.retrying_since := NULL;
        END IF;
    ELSE
        NEW.retrying_since := NULL;
        NEW.next_attempt_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION job_site_status_retry_clock() FROM PUBLIC;
