-- Per sender address: the throughput measured over its latest transfers.
CREATE VIEW link_throughput AS
SELECT a.address_id, a.target_site_code, a.throttle, count(m.*) AS transfers,
       sum(m.bytes)::bigint AS bytes, sum(m.seconds) AS seconds,
       (sum(m.bytes) / nullif(sum(m.seconds), 0))::bigint AS bytes_per_second,
       max(m.measured_at) AS last_measured_at
  FROM sender_addresses a
  LEFT JOIN link_measurements m ON m.address_id = a.address_id
 GROUP BY a.address_id;
COMMENT ON VIEW link_throughput IS
    'each sender address''s measured throughput over its latest transfers (NULL: never measured)';
REVOKE ALL ON link_throughput FROM PUBLIC;
GRANT SELECT ON link_throughput TO smsdist_reader;
