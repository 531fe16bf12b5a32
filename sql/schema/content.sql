-- Content validation: what the distribution points of this site hold,
-- checked against the manifests of the versions package_locations says they
-- hold, and repaired from the package file (docs/packages.md#content-
-- validation).
--
-- One row per location (package, site, distribution point): the last check
-- of its published tree and what it found.  requested_at set: the
-- Despooler checks it next (validate_content(), a machine's 10004);
-- besides, every smsdist.content_validation_interval it checks each
-- location whose last check (or publication) is that old.
CREATE TABLE content_validations (
    package_id        sms_id NOT NULL,
    site_code         site_code NOT NULL,
    site_system_id    integer NOT NULL,
    requested_at      timestamptz,
    requested_by      text,
    checked_at        timestamptz,
    source_version    integer,
    result            text CHECK (result IN ('intact', 'repaired', 'damaged', 'failed')),
    missing_count     integer NOT NULL DEFAULT 0 CHECK (missing_count >= 0),
    extra_count       integer NOT NULL DEFAULT 0 CHECK (extra_count >= 0),
    changed_count     integer NOT NULL DEFAULT 0 CHECK (changed_count >= 0),
    wrong_type_count  integer NOT NULL DEFAULT 0 CHECK (wrong_type_count >= 0),
    findings          text[] NOT NULL DEFAULT '{}',
    detail            text,
    repaired_at       timestamptz,
    PRIMARY KEY (package_id, site_code, site_system_id),
    FOREIGN KEY (package_id, site_code, site_system_id)
        REFERENCES package_locations ON DELETE CASCADE
);
COMMENT ON TABLE content_validations IS
    'the last check of each published tree against its manifest: what differed (missing, extra, changed, wrong type; the first 20 named) and when it was repaired';
REVOKE ALL ON content_validations FROM PUBLIC;
GRANT SELECT ON content_validations TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.content_validations', '');
-- the Despooler's look for requested validations between its items
CREATE INDEX content_validations_requested ON content_validations (site_code)
    WHERE requested_at IS NOT NULL;
CREATE TRIGGER notify_despooler AFTER INSERT OR UPDATE OF requested_at ON content_validations
    FOR EACH ROW WHEN (NEW.requested_at IS NOT NULL)
    EXECUTE FUNCTION notify_change('despooler', 'package_id');

\ir ../functions/validate_content.sql
\ir ../functions/content_mismatch_reported.sql
CREATE TRIGGER content_mismatch_reported AFTER INSERT ON status_messages
    FOR EACH ROW WHEN (NEW.message_id = 10004 AND NEW.machine IS NOT NULL)
    EXECUTE FUNCTION content_mismatch_reported();
