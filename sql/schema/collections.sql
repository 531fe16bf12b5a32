-- Collections: sets of machines (and users and user groups) that jobs and
-- advertisements target.
--
-- A collection's rules name members directly, select them with a query
-- rule (compiled to SQL, src/query_rule.c), or include or exclude another
-- collection; a limiting collection bounds it.  The Collection Evaluator
-- materializes membership in collection_members (and the user and group
-- tables) from the evaluation queues the triggers below fill.  A collection
-- with source_site set is a copy kept by that parent site for the
-- advertisements it sent.  Maintenance windows belong to a collection and
-- apply to its members.
\ir ../functions/compile_query_rule.sql
\ir ../functions/lookup_name_key.sql

-- members_changed_at: when membership last changed (the Offer Manager and
-- the Run phase follow it); evaluated_at, evaluation_error and
-- evaluation_error_at: how the last evaluation went (a collection whose
-- evaluation fails fails alone: the others go on).
CREATE TABLE collections (
    collection_id          sms_id PRIMARY KEY DEFAULT @extschema@.new_sms_id('@extschema@.collection_id_seq'),
    name                   object_name NOT NULL,
    comment                text CHECK (length(comment) <= 4000),
    limiting_collection_id sms_id REFERENCES collections ON DELETE RESTRICT,
    created_at             timestamptz NOT NULL DEFAULT now(),
    members_changed_at     timestamptz,
    evaluated_at           timestamptz,
    evaluation_error       text,
    source_site            site_code,
    evaluation_error_at    timestamptz,
    CONSTRAINT collection_does_not_limit_itself
        CHECK (limiting_collection_id IS DISTINCT FROM collection_id)
);
COMMENT ON COLUMN collections.source_site IS
    'set for a copy kept by that parent site: its rules are replaced whenever the parent sends them';
COMMENT ON COLUMN collections.evaluation_error_at IS
    'When the Collection Evaluator last failed to evaluate this collection (evaluation_error says why); NULL once an evaluation succeeds.';
REVOKE ALL ON collections FROM PUBLIC;
GRANT SELECT ON collections TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON collections TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collections', '');

-- Subcollections: advertisements may include them (include_subcollections).
CREATE TABLE collection_subcollections (
    parent_collection_id   sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    child_collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    PRIMARY KEY (parent_collection_id, child_collection_id),
    CONSTRAINT collection_is_not_its_own_subcollection
        CHECK (parent_collection_id <> child_collection_id)
);
REVOKE ALL ON collection_subcollections FROM PUBLIC;
GRANT SELECT ON collection_subcollections TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON collection_subcollections TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_subcollections', '');

-- A direct rule names one system, one user or one user group.
CREATE TABLE collection_rules (
    rule_id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id          sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    rule_type              rule_type NOT NULL,
    resource_sms_id        sms_id REFERENCES system_resources ON DELETE CASCADE,
    query_expression       text CHECK (length(query_expression) BETWEEN 1 AND 8000),
    ref_collection_id      sms_id REFERENCES collections ON DELETE CASCADE,
    user_domain            netbios_name,
    user_name              object_name,
    group_domain           netbios_name,
    group_name             object_name,
    CONSTRAINT query_rule_has_an_expression
        CHECK ((rule_type = 'query') = (query_expression IS NOT NULL)),
    CONSTRAINT include_exclude_rule_names_a_collection
        CHECK ((rule_type IN ('include', 'exclude')) = (ref_collection_id IS NOT NULL)),
    CONSTRAINT rule_does_not_refer_to_its_own_collection
        CHECK (ref_collection_id IS DISTINCT FROM collection_id),
    CONSTRAINT direct_rule_names_one_resource
        CHECK (num_nonnulls(resource_sms_id, user_name, group_name)
               = CASE WHEN rule_type = 'direct' THEN 1 ELSE 0 END),
    CONSTRAINT user_has_domain_and_name CHECK ((user_domain IS NULL) = (user_name IS NULL)),
    CONSTRAINT group_has_domain_and_name CHECK ((group_domain IS NULL) = (group_name IS NULL)),
    CONSTRAINT query_rule_compiles
        CHECK (query_expression IS NULL OR compile_query_rule(query_expression) IS NOT NULL),
    FOREIGN KEY (user_domain, user_name) REFERENCES users ON DELETE CASCADE,
    FOREIGN KEY (group_domain, group_name) REFERENCES user_groups ON DELETE CASCADE
);
CREATE INDEX ON collection_rules (collection_id);
CREATE INDEX ON collection_rules (ref_collection_id);
REVOKE ALL ON collection_rules FROM PUBLIC;
GRANT SELECT ON collection_rules TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON collection_rules TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_rules', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_rules_rule_id_seq', '');

-- Materialized membership, kept current by the Collection Evaluator.
-- No per-row foreign keys: checking two cost 6 s of a 13.6 s evaluation of
-- 250,000 members (one trigger call per row); instead the Collection
-- Evaluator only inserts systems that exist (in the statement that reads
-- them), and deletions cascade through statement triggers
-- (collection_members_cascade).  A system deleted while an evaluation runs
-- can leave a member row behind until the collection's next evaluation
-- removes it.
CREATE TABLE collection_members (
    collection_id          sms_id NOT NULL,
    sms_id                 sms_id NOT NULL,
    PRIMARY KEY (collection_id, sms_id)
);
CREATE INDEX ON collection_members (sms_id);
-- (the Collection Evaluator writes membership; nobody else does)
REVOKE ALL ON collection_members FROM PUBLIC;
GRANT SELECT ON collection_members TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_members', '');

CREATE TABLE collection_user_members (
    collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    domain           netbios_name NOT NULL,
    user_name        object_name NOT NULL,
    PRIMARY KEY (collection_id, domain, user_name),
    FOREIGN KEY (domain, user_name) REFERENCES users ON DELETE CASCADE
);
CREATE INDEX ON collection_user_members (domain, user_name);
CREATE INDEX collection_user_members_lookup
    ON collection_user_members (lookup_name_key(domain || '\' || user_name));
REVOKE ALL ON collection_user_members FROM PUBLIC;
GRANT SELECT ON collection_user_members TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_user_members', '');

CREATE TABLE collection_group_members (
    collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    domain           netbios_name NOT NULL,
    group_name       object_name NOT NULL,
    PRIMARY KEY (collection_id, domain, group_name),
    FOREIGN KEY (domain, group_name) REFERENCES user_groups ON DELETE CASCADE
);
CREATE INDEX ON collection_group_members (domain, group_name);
CREATE INDEX collection_group_members_lookup
    ON collection_group_members (lookup_name_key(domain || '\' || group_name));
REVOKE ALL ON collection_group_members FROM PUBLIC;
GRANT SELECT ON collection_group_members TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_group_members', '');

-- What the Collection Evaluator has to do.  A collection whose rules
-- changed is evaluated whole (and so is everything that depends on it); a
-- system that was added or changed is evaluated against every collection.
CREATE TABLE collection_evaluation_queue (
    collection_id    sms_id PRIMARY KEY,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON collection_evaluation_queue FROM PUBLIC;
GRANT SELECT ON collection_evaluation_queue TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_evaluation_queue', '');

CREATE TABLE system_evaluation_queue (
    sms_id           sms_id PRIMARY KEY,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON system_evaluation_queue FROM PUBLIC;
GRANT SELECT ON system_evaluation_queue TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.system_evaluation_queue', '');

-- Maintenance windows.  A window belongs to a collection and applies to its
-- members: weekly, from start_time (the client's own wall-clock time of
-- day) for duration_minutes, on the given days.  The offer file of an
-- advertisement carries the windows of its collection; a machine's policy
-- (the management point) carries the windows of every collection it is a
-- member of.  The client agent runs mandatory assignments inside them.
\ir ../functions/weekdays_distinct.sql
CREATE TABLE maintenance_windows (
    window_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    name             object_name NOT NULL,
    start_time       time(0) NOT NULL,
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 1 AND 10080),
    days             weekday[] NOT NULL,
    enabled          boolean NOT NULL DEFAULT true,
    comment          text CHECK (length(comment) <= 4000),
    UNIQUE (collection_id, name),
    CONSTRAINT window_starts_on_a_minute CHECK (date_trunc('minute', start_time) = start_time),
    CONSTRAINT window_has_days_once_each
        CHECK (cardinality(days) BETWEEN 1 AND 7 AND array_ndims(days) = 1
               AND array_position(days, NULL) IS NULL AND weekdays_distinct(days))
);
CREATE INDEX ON maintenance_windows (collection_id);
REVOKE ALL ON maintenance_windows FROM PUBLIC;
GRANT SELECT ON maintenance_windows TO smsdist_reader;
GRANT INSERT, UPDATE, DELETE ON maintenance_windows TO smsdist_operator;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.maintenance_windows', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.maintenance_windows_window_id_seq', '');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON maintenance_windows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager,sender');
\ir ../functions/maintenance_window_at.sql

-- Wake-ups: the Collection Evaluator follows rules and collections; the
-- Offer Manager and the Sender follow membership and subcollections.
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON collections
    FOR EACH ROW EXECUTE FUNCTION notify_change('collection_evaluator', 'collection_id');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON collection_rules
    FOR EACH ROW EXECUTE FUNCTION notify_change('collection_evaluator', 'collection_id');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON collection_subcollections
    FOR EACH ROW EXECUTE FUNCTION notify_change('collection_evaluator', 'parent_collection_id');
CREATE TRIGGER notify_offer_manager AFTER UPDATE OF members_changed_at ON collections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON collection_subcollections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
-- The Sender sends changed advertisements on: membership changes wake it
-- through collections.members_changed_at.
CREATE TRIGGER notify_sender AFTER UPDATE OF members_changed_at, name ON collections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON collection_subcollections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-- The dependency edges between collections (the view collection_dependencies):
-- C depends on D if it includes, excludes or is limited by D.  Subcollections
-- (for advertisements) too must not loop.
\ir ../functions/collections_refuse_cycle.sql
CREATE TRIGGER refuse_cycle BEFORE INSERT OR UPDATE OF ref_collection_id, collection_id ON collection_rules
    FOR EACH ROW EXECUTE FUNCTION collections_refuse_cycle();
CREATE TRIGGER refuse_cycle BEFORE INSERT OR UPDATE OF limiting_collection_id ON collections
    FOR EACH ROW EXECUTE FUNCTION collections_refuse_cycle();
CREATE TRIGGER refuse_cycle BEFORE INSERT OR UPDATE ON collection_subcollections
    FOR EACH ROW EXECUTE FUNCTION collections_refuse_cycle();

-- The evaluation queues
\ir ../functions/queue_collection_evaluation.sql
CREATE TRIGGER queue_evaluation AFTER INSERT ON collection_rules
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_collection_evaluation();
CREATE TRIGGER queue_evaluation_update AFTER UPDATE ON collection_rules
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_collection_evaluation();
CREATE TRIGGER queue_evaluation_delete AFTER DELETE ON collection_rules
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_collection_evaluation();
CREATE TRIGGER queue_evaluation AFTER INSERT ON collections
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_collection_evaluation();
-- (a statement trigger with transition tables cannot name columns: the
-- function queues only collections whose limit changed)
CREATE TRIGGER queue_evaluation_update AFTER UPDATE ON collections
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_collection_evaluation();
\ir ../functions/queue_system_evaluation.sql
CREATE TRIGGER queue_evaluation AFTER INSERT ON system_resources
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_system_evaluation();
CREATE TRIGGER queue_evaluation_update AFTER UPDATE ON system_resources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_system_evaluation();
\ir ../functions/evaluate_collections.sql

-- Deletions cascade to membership (no foreign keys, above).
\ir ../functions/collection_members_cascade.sql
CREATE TRIGGER collection_members_cascade AFTER DELETE ON system_resources
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION collection_members_cascade();
CREATE TRIGGER collection_members_cascade AFTER DELETE ON collections
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION collection_members_cascade();
