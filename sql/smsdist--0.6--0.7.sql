/* smsdist 0.6 -> 0.7: trust boundaries.
 *
 * Every path to a command line is a path to root on the workstations, so
 * each login now speaks for one thing: a parent site's login at this site
 * for that parent, a child site's login for that child and its subtree, a
 * machine's login for that machine.  What a site receives records where it
 * came from and may be changed only from there; what a site made itself is
 * never changed through what another site sends.  docs/security.md. */

\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.7'" to load this file. \quit

-------------------------------------------------------------------------------
-- Site identity
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Machine identity
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Signed instruction files and authenticated status files
-------------------------------------------------------------------------------

-- machine keys and status files
--
-- Each machine registered in system_resources gets a random key (32 bytes
-- from pg_strong_random); its agent is given the key (--machine-key) and
-- signs every status file it writes to a CAP with HMAC-SHA256; the Status
-- Manager verifies the file with the key of the machine it names, and
-- keeps a file that does not verify as <name>.bad.  Only the administrator
-- reads keys out (machine_key) or replaces them (rotate_machine_key);
-- nobody reads the table.  docs/agent.md, docs/security.md.
CREATE FUNCTION strong_random_bytes(n integer) RETURNS bytea
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_strong_random_bytes';
REVOKE ALL ON FUNCTION strong_random_bytes(integer) FROM PUBLIC;

CREATE TABLE machine_keys (
    sms_id      sms_id PRIMARY KEY REFERENCES system_resources ON DELETE CASCADE,
    key         bytea NOT NULL CHECK (length(key) = 32),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON machine_keys FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('smsdist.machine_keys', '');

-- A new machine gets its key in the same transaction as its row, whoever
-- inserts it (an administrator, a parent site's record_machines).
CREATE FUNCTION issue_machine_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_SCHEMA <> 'smsdist' OR TG_TABLE_NAME <> 'system_resources'
       OR TG_OP <> 'INSERT' OR TG_LEVEL <> 'STATEMENT' THEN
        RAISE EXCEPTION 'issue_machine_key() fires only once per INSERT statement on smsdist.system_resources, not on %.%',
            TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    INSERT INTO smsdist.machine_keys (sms_id, key)
    SELECT sms_id, smsdist.strong_random_bytes(32) FROM new_machines
    ON CONFLICT (sms_id) DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION issue_machine_key() FROM PUBLIC;
-- once per statement, like the other inventory triggers: a bulk COPY is one call
CREATE TRIGGER issue_machine_key AFTER INSERT ON system_resources
    REFERENCING NEW TABLE AS new_machines
    FOR EACH STATEMENT EXECUTE FUNCTION issue_machine_key();

-- the machines registered before this version
INSERT INTO machine_keys (sms_id, key)
SELECT sms_id, strong_random_bytes(32) FROM system_resources
ON CONFLICT (sms_id) DO NOTHING;

-- The key to give the machine's agent (its --machine-key file), in hex.
CREATE FUNCTION machine_key(machine sms_id) RETURNS text
    LANGUAGE plpgsql STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k bytea;
BEGIN
    SELECT key INTO k FROM smsdist.machine_keys WHERE sms_id = machine;
    IF k IS NULL THEN
        RAISE EXCEPTION 'machine % is not in smsdist.system_resources', machine
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN encode(k, 'hex');
END
$$;

-- A new key for the machine, in hex; status files signed with the old key
-- are refused from now on (give the agent the new one first: docs/agent.md).
CREATE FUNCTION rotate_machine_key(machine sms_id) RETURNS text
    LANGUAGE plpgsql STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k bytea := smsdist.strong_random_bytes(32);
BEGIN
    UPDATE smsdist.machine_keys SET key = k, created_at = clock_timestamp()
     WHERE sms_id = machine;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'machine % is not in smsdist.system_resources', machine
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN encode(k, 'hex');
END
$$;
REVOKE ALL ON FUNCTION machine_key(sms_id), rotate_machine_key(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION machine_key(sms_id), rotate_machine_key(sms_id) TO smsdist_admin;

-- NULL if a status message's text and client time are within the site's
-- limits (smsdist.status_text_max, smsdist.client_time_window; no control
-- character but tab), else the reason.  The Status Manager applies it to
-- status files; client_status() can apply it to what advanced clients send.
CREATE FUNCTION status_problem(message text, client_at timestamptz) RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'smsdist_status_problem';
REVOKE ALL ON FUNCTION status_problem(text, timestamptz) FROM PUBLIC;


-------------------------------------------------------------------------------
-- Limits and quarantine
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Safe SQL: every SECURITY DEFINER function sets its search_path and is
-- executable only by the roles that need it
-------------------------------------------------------------------------------
