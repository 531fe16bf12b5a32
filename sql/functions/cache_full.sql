-- A target whose agent last said its cache had no room: the reason, with
-- what the agent's cache inventory adds, and when the first lock ends (or
-- NULLs when the detail is not about the cache).
CREATE OR REPLACE FUNCTION cache_full(p_sms_id text, p_detail text, p_reported timestamptz,
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
REVOKE ALL ON FUNCTION cache_full(text, text, timestamp with time zone) FROM PUBLIC;
