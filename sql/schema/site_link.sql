-- The site link: what sites call at each other.
--
-- Down the hierarchy, a parent site's Sender logs in here with a role
-- granted smsdist_parent_site and calls the receive_* functions: a package
-- file in chunks (receive_begin, receive_chunk, receive_total for a file
-- sent while it was compressed, receive_end), a job's machines, an
-- advertisement and its removal, a change of a job's state; and it asks
-- for distribution, location and progress reports.  Up the hierarchy, a
-- child site's Status Manager logs in at its parent with a role granted
-- smsdist_child_site and calls receive_status_report, receive_target_report
-- and receive_cache_report.  Each receive_* function is SECURITY DEFINER:
-- it checks that the login speaks for the calling site (calling_site(),
-- site_logins) and that what it changes came from that site
-- (require_sent_by()), then hands over to a record_* function that runs
-- with the caller's rights.

-- From the parent: packages and jobs
\ir ../functions/receive_begin.sql
\ir ../functions/receive_chunk.sql
\ir ../functions/receive_total.sql
\ir ../functions/run_job_details.sql
\ir ../functions/record_machines.sql
\ir ../functions/record_run_job.sql
\ir ../functions/receive_end.sql
\ir ../functions/record_job_targets.sql
\ir ../functions/receive_job_targets.sql
\ir ../functions/receive_job_state.sql

-- From the parent: advertisements
\ir ../functions/receive_advertisement.sql
\ir ../functions/remove_advertisement.sql

-- Reports the parent asks for
\ir ../functions/distribution_report.sql
\ir ../functions/location_report.sql
\ir ../functions/progress_report.sql

-- To the parent: status summaries and targets (cache inventories: caches.sql)
\ir ../functions/status_report_for_parent.sql
\ir ../functions/record_status_report.sql
\ir ../functions/receive_status_report.sql
\ir ../functions/target_report_for_parent.sql
\ir ../functions/targets_reported.sql
\ir ../functions/receive_target_report.sql
