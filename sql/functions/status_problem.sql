-- NULL if a status message's text and client time are within the site's
-- limits (smsdist.status_text_max, smsdist.client_time_window; no control
-- character but tab), else the reason.  The Status Manager applies it to
-- status files; client_status() can apply it to what advanced clients send.
CREATE OR REPLACE FUNCTION status_problem(message text, client_at timestamptz) RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'smsdist_status_problem';
REVOKE ALL ON FUNCTION status_problem(text, timestamp with time zone) FROM PUBLIC;
