-- Throughput and transfer times: how fast each link to a child site is,
-- and when a transfer over it will end.
--
-- The Sender measures each completed transfer (link_measurements); a
-- sender address's throttle decides when it may send (rate_limited: a
-- percentage of the link per hour of the server's time zone).  The
-- progress views and preview() estimate completion times from them.

-- The link's measured throughput: one row per completed transfer to a child
-- site, the bytes the child took and the seconds spent sending them
-- (chunks on the wire and the child's writes, not the throttling pauses),
-- the ten newest per sender address.  The Sender writes them.
CREATE TABLE link_measurements (
    address_id    integer NOT NULL REFERENCES sender_addresses ON DELETE CASCADE,
    measured_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    job_id        sms_id NOT NULL,
    bytes         bigint NOT NULL CHECK (bytes > 0),
    seconds       double precision NOT NULL CHECK (seconds > 0),
    PRIMARY KEY (address_id, measured_at)
);
COMMENT ON TABLE link_measurements IS
    'bytes and seconds of the latest completed transfers over each sender address (throttling pauses not counted)';
REVOKE ALL ON link_measurements FROM PUBLIC;
GRANT SELECT ON link_measurements TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.link_measurements', '');
\ir ../views/link_throughput.sql

-- Throttling schedules and transfer times
\ir ../functions/server_time_zone.sql
\ir ../functions/sending_resumes_at.sql
\ir ../functions/transfer_eta.sql
\ir ../functions/transfer_seconds.sql
