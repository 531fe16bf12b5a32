-- What operators watch while a package is compressed.
CREATE VIEW build_progress AS
SELECT b.package_id, p.name AS package_name, b.source_version, b.state, b.source_bytes, b.bytes_done,
       CASE WHEN b.state = 'ready' THEN 100::numeric
            WHEN b.source_bytes > 0
            THEN least(round(100.0 * b.bytes_done / b.source_bytes, 1),
                       CASE WHEN b.state = 'building' THEN 99.9 ELSE 100 END)
       END AS percent,
       b.bytes AS compressed_bytes,
       CASE WHEN b.source_bytes > 0 AND b.bytes IS NOT NULL
            THEN round(100.0 * b.bytes / b.source_bytes, 1) END AS compressed_percent,
       b.file_count, b.attempts, b.error, b.started_at, b.finished_at,
       coalesce(b.finished_at, clock_timestamp()) - b.started_at AS elapsed,
       b.updated_at AS progress_at
  FROM smsdist.package_builds b JOIN smsdist.packages p USING (package_id);
REVOKE ALL ON build_progress FROM PUBLIC;
GRANT SELECT ON build_progress TO smsdist_reader;
