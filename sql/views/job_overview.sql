-- One row per job: its state, and how many of its sites are done and
-- machines it has.
CREATE VIEW job_overview AS
SELECT j.job_id, j.job_type, j.package_id, p.name AS package_name, j.program_name,
       j.state, j.state_reason, j.priority, j.start_after, j.activated_at, j.finished_at,
       coalesce(c.sites, 0) AS sites, coalesce(c.sites_done, 0) AS sites_done,
       (SELECT count(*) FROM smsdist.job_target_status t WHERE t.job_id = j.job_id) AS machines
  FROM smsdist.jobs j JOIN smsdist.packages p USING (package_id)
  LEFT JOIN LATERAL (
        SELECT count(*) AS sites, count(*) FILTER (WHERE x.all_done) AS sites_done
          FROM (SELECT bool_and(s.state = 'done') AS all_done FROM smsdist.job_site_status s
                 WHERE s.job_id = j.job_id GROUP BY s.site_code) x) c ON true;
REVOKE ALL ON job_overview FROM PUBLIC;
GRANT SELECT ON job_overview TO smsdist_reader;
