-- Why a job's rows wait: when each will be tried again, and when each
-- child site last answered.
--
-- explain() reads these to say what a send or a distribution waits for
-- and when something will next happen.

-- Per job and child: when the child last answered the Sender's
-- distribution report (about once a second while a row of a site behind
-- it is open), and why it could not be asked since.  A table of its own:
-- writing it must neither wake the workers nor move job_site_status's
-- updated_at, which times a child's refused reports.
CREATE TABLE distribution_report_answers (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    reported_at      timestamptz,
    report_error     text,
    error_since      timestamptz,
    PRIMARY KEY (job_id, hop)
);
REVOKE ALL ON distribution_report_answers FROM PUBLIC;
GRANT SELECT ON distribution_report_answers TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.distribution_report_answers', '');

-- retrying_since and next_attempt_at of job_site_status
\ir ../functions/job_site_status_retry_clock.sql
CREATE TRIGGER retry_clock BEFORE INSERT OR UPDATE ON job_site_status
    FOR EACH ROW EXECUTE FUNCTION job_site_status_retry_clock();
