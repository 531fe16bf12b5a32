-- Each worker's state, wake-ups and last error (the view workers).
CREATE OR REPLACE FUNCTION worker_status(
    OUT component text, OUT title text, OUT pid integer, OUT state text,
    OUT wake_requests bigint, OUT steps bigint, OUT started_at timestamptz,
    OUT last_wake_at timestamptz, OUT last_step_at timestamptz,
    OUT next_step_at timestamptz, OUT last_error text)
    RETURNS SETOF record
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_worker_status';
REVOKE ALL ON FUNCTION worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION worker_status() TO smsdist_reader;
