-- Each worker's state, wake-ups and last error (worker_status()).
CREATE VIEW workers AS SELECT * FROM worker_status();
REVOKE ALL ON workers FROM PUBLIC;
GRANT SELECT ON workers TO smsdist_reader;
