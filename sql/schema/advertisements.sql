-- Advertisements: a program offered to the members of a collection.
--
-- An advertisement offers a program (from its offer time, until it expires)
-- to the machines of a collection, and its assignments make it mandatory at
-- given times.  Times are an instant when *_utc, else the wall-clock time of
-- each client (docs/schedules.md).  As in SMS, an advertisement made at a
-- site is sent to each of its child sites with what the child needs to act
-- on it alone: the package and program, the schedule, and each targeted
-- collection with its maintenance windows and members; at the child it has
-- source_site set and its collections are copies kept by the parent.  Its
-- targets (advertisement, machine) follow its collections' membership.
CREATE TABLE advertisements (
    advert_id              sms_id PRIMARY KEY DEFAULT @extschema@.new_sms_id('@extschema@.advert_id_seq'),
    name                   object_name NOT NULL,
    package_id             sms_id NOT NULL,
    program_name           object_name NOT NULL,
    collection_id          sms_id NOT NULL REFERENCES collections ON DELETE RESTRICT,
    include_subcollections boolean NOT NULL DEFAULT true,
    -- offer (available) time and expiry: an instant when *_utc, else the
    -- wall-clock time of each client (see docs/schedules.md)
    offer_time             timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    offer_time_utc         boolean NOT NULL DEFAULT true,
    expires_time           timestamp,
    expires_time_utc       boolean NOT NULL DEFAULT true,
    enabled                boolean NOT NULL DEFAULT true,
    comment                text CHECK (length(comment) <= 4000),
    created_at             timestamptz NOT NULL DEFAULT now(),
    source_site            site_code,
    -- What a mandatory time (an assignment, each recurrence) does on a
    -- machine where the program already ran: Configuration Manager's rerun
    -- behaviour.  The agent decides from its own record of runs
    -- (docs/agent.md).
    rerun_behaviour        text NOT NULL DEFAULT 'rerun_if_failed'
        CONSTRAINT advertisements_rerun_behaviour_check
        CHECK (rerun_behaviour IN ('never_rerun', 'always_rerun', 'rerun_if_failed', 'rerun_if_succeeded')),
    FOREIGN KEY (package_id, program_name) REFERENCES programs ON DELETE RESTRICT,
    -- Mixed UTC/local comparisons allow the widest time-zone spread (26 h).
    CONSTRAINT expiry_is_after_offer_time
        CHECK (expires_time IS NULL OR
               (offer_time_utc = expires_time_utc AND expires_time > offer_time) OR
               (offer_time_utc <> expires_time_utc AND expires_time > offer_time + interval '26 hours'))
);
CREATE INDEX ON advertisements (collection_id);
CREATE INDEX ON advertisements (package_id);
COMMENT ON COLUMN advertisements.source_site IS
    'set for an advertisement made at that parent site and sent here';
COMMENT ON COLUMN advertisements.rerun_behaviour IS
    'never_rerun, always_rerun, rerun_if_failed (default) or rerun_if_succeeded: whether a mandatory time runs '
    'the program again on a machine where it already ran (by the outcome of its last run there)';
REVOKE ALL ON advertisements FROM PUBLIC;
GRANT SELECT ON advertisements TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON advertisements TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.advertisements', '');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON advertisements
    FOR EACH ROW EXECUTE FUNCTION notify_change('offer_manager', 'advert_id');
-- The Sender sends changed advertisements on: it is woken by what they carry.
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON advertisements
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-- Mandatory assignments of an advertisement.
CREATE TABLE advertisement_assignments (
    assignment_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    advert_id              sms_id NOT NULL REFERENCES advertisements ON DELETE CASCADE,
    assign_time            timestamp NOT NULL,
    assign_time_utc        boolean NOT NULL DEFAULT true,
    recur_every            interval CHECK (recur_every IS NULL OR recur_every >= interval '1 hour'),
    UNIQUE (advert_id, assign_time, assign_time_utc)
);
REVOKE ALL ON advertisement_assignments FROM PUBLIC;
GRANT SELECT ON advertisement_assignments TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON advertisement_assignments TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.advertisement_assignments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.advertisement_assignments_assignment_id_seq', '');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON advertisement_assignments
    FOR EACH ROW EXECUTE FUNCTION notify_change('offer_manager', 'advert_id');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON advertisement_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-- What the Sender last told each child site about each advertisement.
CREATE TABLE advertisement_pushes (
    advert_id        sms_id NOT NULL,
    hop              site_code NOT NULL,
    payload_md5      text,                  -- of what the child has; NULL: nothing yet
    pushed_at        timestamptz,
    attempted_at     timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    PRIMARY KEY (advert_id, hop)
);
REVOKE ALL ON advertisement_pushes FROM PUBLIC;
GRANT SELECT ON advertisement_pushes TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.advertisement_pushes', '');

-- Per (advertisement, machine): a target, as job_target_status is for
-- run-command jobs.
CREATE TABLE advertisement_target_status (
    advert_id          sms_id NOT NULL REFERENCES advertisements ON DELETE CASCADE,
    sms_id             sms_id NOT NULL REFERENCES system_resources ON DELETE CASCADE,
    site_code          site_code NOT NULL,
    state              target_state NOT NULL DEFAULT 'waiting',
    detail             text,
    exit_code          integer,
    -- a machine met through its user or a user group, not as a member
    through_user       boolean NOT NULL DEFAULT false,
    status_id          bigint,
    client_sequence    bigint,
    client_at          timestamptz,
    report_pending     boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (advert_id, sms_id)
);
CREATE INDEX ON advertisement_target_status (sms_id);
CREATE INDEX advertisement_target_status_report ON advertisement_target_status (advert_id, sms_id)
    WHERE report_pending;
REVOKE ALL ON advertisement_target_status FROM PUBLIC;
GRANT SELECT ON advertisement_target_status TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('advertisement_target_status', '');

-- Which machines an advertisement reaches, and when
\ir ../functions/advertisement_collections.sql
\ir ../functions/member_advertisements.sql
\ir ../functions/advertisement_mandatory_times.sql
\ir ../functions/sync_advertisement_targets.sql
\ir ../functions/advertisement_targets_follow.sql
CREATE TRIGGER advertisement_targets AFTER INSERT OR UPDATE OF collection_id, include_subcollections
    ON advertisements FOR EACH ROW EXECUTE FUNCTION advertisement_targets_follow();
CREATE TRIGGER advertisement_targets_added AFTER INSERT ON collection_members
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION advertisement_targets_follow();
CREATE TRIGGER advertisement_targets_removed AFTER DELETE ON collection_members
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION advertisement_targets_follow();
\ir ../functions/expire_advertisement_targets.sql

-- Advertisements at child sites: what the Sender sends (advertisement
-- details) and what the child keeps of them.
\ir ../functions/advertisement_details.sql
\ir ../functions/advertisement_pushes_due.sql
\ir ../functions/record_advertisement.sql
\ir ../functions/drop_parent_advertisement.sql
\ir ../functions/remove_unused_parent_collections.sql
