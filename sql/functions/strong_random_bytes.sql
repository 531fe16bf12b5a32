-- machine keys and status files
--
-- Each machine registered in system_resources gets a random key (32 bytes
-- from pg_strong_random); its agent is given the key (--machine-key) and
-- signs every status file it writes to a CAP with HMAC-SHA256; the Status
-- Manager verifies the file with the key of the machine it names, and
-- keeps a file that does not verify as <name>.bad.  Only the administrator
-- reads keys out (machine_key) or replaces them (rotate_machine_key);
-- nobody reads the table.  docs/agent.md, docs/security.md.
CREATE OR REPLACE FUNCTION strong_random_bytes(n integer) RETURNS bytea
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_strong_random_bytes';
REVOKE ALL ON FUNCTION strong_random_bytes(integer) FROM PUBLIC;
