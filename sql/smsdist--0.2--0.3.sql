-- smsdist 0.2 -> 0.3: delta updates (only added and changed files travel to
-- a site that holds an earlier version), the request for the full package
-- when a delta cannot be applied, and the operators' progress view.
\echo Use "ALTER EXTENSION smsdist UPDATE TO '0.3'" to load this file. \quit

-------------------------------------------------------------------------------
-- Builds: where the package file came from.
-------------------------------------------------------------------------------
-- received: the file came from the parent site (receive_end), so it cannot
--           be compressed again here: a damaged one is asked for again.
-- base_version: the file is a delta from this version (only at a site that
--           received a delta); NULL for a full package file.
ALTER TABLE package_builds
    ADD COLUMN received boolean NOT NULL DEFAULT false,
    ADD COLUMN base_version integer,
    ADD CONSTRAINT delta_base_is_older CHECK (base_version IS NULL OR
        (base_version >= 1 AND base_version < source_version));

ALTER TABLE package_transfers
    ADD COLUMN base_version integer,
    ADD CONSTRAINT delta_base_is_older CHECK (base_version IS NULL OR
        (base_version >= 1 AND base_version < source_version));

-------------------------------------------------------------------------------
-- Delta package files: one per (package, base version, new version), made by
-- the Sender from the new version's package file and the base's manifest
-- (src/package_delta.c), kept in <package store>/deltas/ for as long as the
-- new version's build is.
-------------------------------------------------------------------------------
CREATE TABLE package_deltas (
    package_id       sms_id NOT NULL,
    base_version     integer NOT NULL,
    source_version   integer NOT NULL,
    file_path        text NOT NULL,
    bytes            bigint NOT NULL CHECK (bytes > 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    files_sent       integer NOT NULL,
    files_deleted    integer NOT NULL,
    files_kept       integer NOT NULL,
    full_bytes       bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (package_id, source_version, base_version),
    FOREIGN KEY (package_id, source_version) REFERENCES package_builds ON DELETE CASCADE,
    CHECK (base_version >= 1 AND base_version < source_version)
);

-------------------------------------------------------------------------------
-- Send and distribute rows: deltas and the full-package fallback.
-------------------------------------------------------------------------------
-- delta_base (send rows): the transfer to this site's hop was a delta from
--   this version; NULL if the full package file was sent.
-- full_package_required: send rows: send the full package file, not a
--   delta (the site could not apply one); distribute rows at the site
--   itself: waiting for the full package from the parent site.
ALTER TABLE job_site_status
    ADD COLUMN delta_base integer,
    ADD COLUMN full_package_required boolean NOT NULL DEFAULT false;

-------------------------------------------------------------------------------
-- Receiving: receive_begin learns whether the file is a delta.
-------------------------------------------------------------------------------
DROP FUNCTION receive_begin(text, integer, bigint, text, text, text);
-- Returns the offset to send from (total_bytes: the site has this file).
-- base_version: the file is a delta from that version (NULL: full file).
CREATE FUNCTION receive_begin(package_id text, source_version integer, total_bytes bigint,
        sha256 text, package_name text, source_directory text,
        base_version integer DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_begin';
REVOKE ALL ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_begin(text, integer, bigint, text, text, text, integer) TO smsdist_site;

-------------------------------------------------------------------------------
-- What operators watch: per (job, site, phase), with throughput.
-------------------------------------------------------------------------------
CREATE VIEW job_progress AS
SELECT s.job_id, j.package_id, j.source_version, s.site_code, s.phase, s.state,
       s.bytes_done, s.bytes_total,
       CASE WHEN s.bytes_total > 0 THEN round(100.0 * s.bytes_done / s.bytes_total, 1) END AS percent,
       CASE WHEN s.started_at IS NOT NULL
                 AND coalesce(s.finished_at, clock_timestamp()) > s.started_at
            THEN round(s.bytes_done / extract(epoch FROM coalesce(s.finished_at, clock_timestamp()) - s.started_at))
       END::bigint AS bytes_per_second,
       s.delta_base, s.full_package_required,
       s.started_at, s.finished_at,
       coalesce(s.finished_at, clock_timestamp()) - s.started_at AS elapsed,
       s.attempts, s.detail, s.last_error
  FROM smsdist.job_site_status s JOIN smsdist.jobs j USING (job_id);

REVOKE ALL ON package_deltas, job_progress FROM PUBLIC;
GRANT SELECT ON package_deltas, job_progress TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.package_deltas', '');

-------------------------------------------------------------------------------
-- Collections: users and user groups as members, query rules that are
-- compiled (never run as written), cycles refused, and the queues that
-- drive the Collection Evaluator (src/collection_evaluator.c).
-------------------------------------------------------------------------------
-- The SQL condition a query rule compiles to (src/query_rule.c); an ERROR
-- that says what is wrong if it does not compile.
CREATE FUNCTION compile_query_rule(rule text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'smsdist_compile_query_rule';
GRANT EXECUTE ON FUNCTION compile_query_rule(text) TO PUBLIC;

-- Direct rules may name a user or a user group instead of a system.
ALTER TABLE collection_rules
    ADD COLUMN user_domain netbios_name,
    ADD COLUMN user_name object_name,
    ADD COLUMN group_domain netbios_name,
    ADD COLUMN group_name object_name,
    DROP CONSTRAINT direct_rule_names_one_system,
    ADD CONSTRAINT direct_rule_names_one_resource
        CHECK (num_nonnulls(resource_sms_id, user_name, group_name)
               = CASE WHEN rule_type = 'direct' THEN 1 ELSE 0 END),
    ADD CONSTRAINT user_has_domain_and_name CHECK ((user_domain IS NULL) = (user_name IS NULL)),
    ADD CONSTRAINT group_has_domain_and_name CHECK ((group_domain IS NULL) = (group_name IS NULL)),
    ADD CONSTRAINT query_rule_compiles
        CHECK (query_expression IS NULL OR compile_query_rule(query_expression) IS NOT NULL),
    ADD FOREIGN KEY (user_domain, user_name) REFERENCES users ON DELETE CASCADE,
    ADD FOREIGN KEY (group_domain, group_name) REFERENCES user_groups ON DELETE CASCADE;

CREATE TABLE collection_user_members (
    collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    domain           netbios_name NOT NULL,
    user_name        object_name NOT NULL,
    PRIMARY KEY (collection_id, domain, user_name),
    FOREIGN KEY (domain, user_name) REFERENCES users ON DELETE CASCADE
);
CREATE INDEX ON collection_user_members (domain, user_name);

CREATE TABLE collection_group_members (
    collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    domain           netbios_name NOT NULL,
    group_name       object_name NOT NULL,
    PRIMARY KEY (collection_id, domain, group_name),
    FOREIGN KEY (domain, group_name) REFERENCES user_groups ON DELETE CASCADE
);
CREATE INDEX ON collection_group_members (domain, group_name);

-- When membership last changed, per collection (the Offer Manager and the
-- Run phase follow it), and how the last evaluation went.
ALTER TABLE collections
    ADD COLUMN members_changed_at timestamptz,
    ADD COLUMN evaluated_at timestamptz,
    ADD COLUMN evaluation_error text;

-- The dependency edges between collections: C depends on D if it includes,
-- excludes or is limited by D.  Subcollections (for advertisements) too
-- must not loop.
CREATE VIEW collection_dependencies AS
SELECT collection_id, ref_collection_id AS depends_on, rule_type::text AS how
  FROM smsdist.collection_rules WHERE rule_type IN ('include', 'exclude')
UNION ALL
SELECT collection_id, limiting_collection_id, 'limit'
  FROM smsdist.collections WHERE limiting_collection_id IS NOT NULL;

-- Refuse an edge that closes a loop, naming it.  Serialized by an advisory
-- lock, so that two transactions cannot each add half of a loop.
CREATE FUNCTION collections_refuse_cycle() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
    d text;
    loop_path text;
BEGIN
    PERFORM pg_advisory_xact_lock(pg_catalog.hashtextextended('smsdist collection graph', 0));
    IF TG_TABLE_NAME = 'collections' THEN
        c := NEW.collection_id; d := NEW.limiting_collection_id;
    ELSIF TG_TABLE_NAME = 'collection_subcollections' THEN
        c := NEW.parent_collection_id; d := NEW.child_collection_id;
    ELSE
        c := NEW.collection_id; d := NEW.ref_collection_id;
    END IF;
    IF d IS NULL OR d = c THEN
        RETURN NEW;             -- (the table's CHECK constraints refuse c = d)
    END IF;
    -- does d reach c?
    IF TG_TABLE_NAME = 'collection_subcollections' THEN
        WITH RECURSIVE walk(node, path) AS (
            SELECT d, ARRAY[c, d]
            UNION ALL
            SELECT s.child_collection_id::text, w.path || s.child_collection_id::text
              FROM walk w JOIN smsdist.collection_subcollections s ON s.parent_collection_id = w.node
             WHERE NOT s.child_collection_id = ANY (w.path[2:]) AND cardinality(w.path) < 1000)
        SELECT array_to_string(path, ' -> ') INTO loop_path FROM walk WHERE node = c LIMIT 1;
    ELSE
        WITH RECURSIVE walk(node, path) AS (
            SELECT d, ARRAY[c, d]
            UNION ALL
            SELECT e.depends_on::text, w.path || e.depends_on::text
              FROM walk w JOIN smsdist.collection_dependencies e ON e.collection_id = w.node
             WHERE NOT e.depends_on = ANY (w.path[2:]) AND cardinality(w.path) < 1000)
        SELECT array_to_string(path, ' -> ') INTO loop_path FROM walk WHERE node = c LIMIT 1;
    END IF;
    IF loop_path IS NOT NULL THEN
        RAISE EXCEPTION 'collection % cannot depend on collection %: that would make a loop', c, d
            USING ERRCODE = 'integrity_constraint_violation',
                  DETAIL = 'The loop: ' || loop_path || '.',
                  HINT = 'Collections include, exclude, limit and contain each other only without loops.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER refuse_cycle BEFORE INSERT OR UPDATE OF ref_collection_id, collection_id ON collection_rules
    FOR EACH ROW EXECUTE FUNCTION collections_refuse_cycle();
CREATE TRIGGER refuse_cycle BEFORE INSERT OR UPDATE OF limiting_collection_id ON collections
    FOR EACH ROW EXECUTE FUNCTION collections_refuse_cycle();
CREATE TRIGGER refuse_cycle BEFORE INSERT OR UPDATE ON collection_subcollections
    FOR EACH ROW EXECUTE FUNCTION collections_refuse_cycle();

-- What the Collection Evaluator has to do.  A collection whose rules
-- changed is evaluated whole (and so is everything that depends on it); a
-- system that was added or changed is evaluated against every collection.
CREATE TABLE collection_evaluation_queue (
    collection_id    sms_id PRIMARY KEY,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE system_evaluation_queue (
    sms_id           sms_id PRIMARY KEY,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A queue row that is already there is updated, not left alone: a worker
-- that takes the row (DELETE) then waits for this transaction, and reads
-- the tables after it committed.  With DO NOTHING a change committed while
-- the worker evaluated with an older snapshot could be lost.
CREATE FUNCTION queue_collection_evaluation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND TG_TABLE_NAME = 'collection_rules' THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT DISTINCT o.collection_id FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM smsdist.collections c WHERE c.collection_id = o.collection_id)
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'collections' THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT n.collection_id FROM new_rows n JOIN old_rows o USING (collection_id)
         WHERE n.limiting_collection_id IS DISTINCT FROM o.limiting_collection_id
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT DISTINCT n.collection_id FROM new_rows n ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
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

-- Systems: a bulk load (more than 10,000 rows in one statement) queues a
-- full evaluation of every collection instead of one entry per system.
CREATE FUNCTION queue_system_evaluation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM new_rows;
    IF n > 10000 THEN
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT collection_id FROM smsdist.collections
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO smsdist.system_evaluation_queue (sms_id)
        SELECT n.sms_id FROM new_rows n JOIN old_rows o USING (sms_id)
         WHERE (n.*) IS DISTINCT FROM (o.*)
        ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSE
        INSERT INTO smsdist.system_evaluation_queue (sms_id)
        SELECT sms_id FROM new_rows ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_evaluation AFTER INSERT ON system_resources
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_system_evaluation();
CREATE TRIGGER queue_evaluation_update AFTER UPDATE ON system_resources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_system_evaluation();

-- A full evaluation on demand (for pg_cron schedules): every collection, or
-- one and whatever depends on it.
CREATE FUNCTION evaluate_collections(p_collection_id sms_id DEFAULT NULL) RETURNS integer
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH q AS (
        INSERT INTO smsdist.collection_evaluation_queue (collection_id)
        SELECT collection_id FROM smsdist.collections
         WHERE p_collection_id IS NULL OR collection_id = p_collection_id
        ON CONFLICT (collection_id) DO UPDATE SET queued_at = clock_timestamp()
        RETURNING 1)
    SELECT count(*)::integer FROM q
$$;
REVOKE ALL ON FUNCTION evaluate_collections(sms_id) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evaluate_collections(sms_id) TO smsdist_operator;

REVOKE ALL ON collection_user_members, collection_group_members, collection_dependencies,
    collection_evaluation_queue, system_evaluation_queue FROM PUBLIC;
GRANT SELECT ON collection_user_members, collection_group_members, collection_dependencies,
    collection_evaluation_queue, system_evaluation_queue TO smsdist_reader;
-- The Collection Evaluator writes membership; nobody else does now.
REVOKE INSERT, UPDATE, DELETE ON collection_members FROM smsdist_admin;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_user_members', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_group_members', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.collection_evaluation_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.system_evaluation_queue', '');

-- Every existing collection is evaluated once by the new evaluator.
INSERT INTO collection_evaluation_queue (collection_id) SELECT collection_id FROM collections;

-------------------------------------------------------------------------------
-- The Run phase (src/pcm_writer.c, run by the Despooler): one PCM
-- instruction file per target workstation of this site, rewritten whenever
-- what it must say changes.  The queue holds the machines whose file is due.
-------------------------------------------------------------------------------
CREATE TABLE pcm_queue (
    sms_id           sms_id PRIMARY KEY,
    queued_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION queue_pcm() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'jobs' THEN
        -- a run-command job changed state (expired, cancelled, ...)
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT t.sms_id
          FROM new_rows n JOIN old_rows o USING (job_id)
          JOIN smsdist.job_target_status t ON t.job_id = n.job_id
         WHERE n.job_type = 'run_command' AND n.state IS DISTINCT FROM o.state
        ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSIF TG_OP = 'DELETE' THEN
        -- (also for a deleted machine: its files must go)
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT o.sms_id FROM old_rows o ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    ELSE
        INSERT INTO smsdist.pcm_queue (sms_id)
        SELECT DISTINCT n.sms_id FROM new_rows n ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_pcm AFTER INSERT ON job_target_status
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm();
CREATE TRIGGER queue_pcm_delete AFTER DELETE ON job_target_status
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm();
CREATE TRIGGER queue_pcm AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_pcm();
CREATE TRIGGER notify_despooler AFTER INSERT ON pcm_queue
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('despooler');

-- The PCM file each machine of this site has, for operators (and so that
-- the file of a machine that was deleted can be found and removed).
CREATE TABLE pcm_files (
    sms_id           sms_id PRIMARY KEY,
    domain           netbios_name NOT NULL,
    jobs             text[] NOT NULL,
    sha256           text NOT NULL,
    copies           integer NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

REVOKE ALL ON pcm_queue, pcm_files FROM PUBLIC;
GRANT SELECT ON pcm_queue, pcm_files TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.pcm_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.pcm_files', '');

-------------------------------------------------------------------------------
-- Run-command jobs across sites.  The parent's Sender hands a child the real
-- job -- program, times, and the target machines at or below the child -- in
-- receive_end's run argument, and later the changes of those machines
-- (receive_job_targets), so that the child's Despooler writes the PCM files
-- of its own workstations.
-------------------------------------------------------------------------------
-- What a child needs of a run-command job, for the machines behind hop.
CREATE FUNCTION run_job_details(p_job_id text, p_hop text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'program_name', j.program_name, 'command_line', pr.command_line,
        'platforms', to_jsonb(pr.platforms), 'max_run_minutes', pr.max_run_minutes,
        'offer_after', coalesce(j.offer_after, j.start_after), 'mandatory_at', j.mandatory_at,
        'expires_at', j.expires_at, 'priority', j.priority,
        'machines', coalesce((
            SELECT jsonb_agg(jsonb_build_object('sms_id', r.sms_id, 'name', r.name, 'domain', r.domain,
                                                'site_code', r.site_code, 'platform', r.platform)
                             ORDER BY r.sms_id)
              FROM smsdist.job_target_status t JOIN smsdist.system_resources r ON r.sms_id = t.sms_id
             WHERE t.job_id = j.job_id AND t.state NOT IN ('cancelled', 'expired')
               AND (r.site_code = p_hop OR smsdist.route_hop(r.site_code) = p_hop)), '[]'::jsonb))
      FROM smsdist.jobs j
      JOIN smsdist.programs pr ON pr.package_id = j.package_id AND pr.program_name = j.program_name
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command'
$$;

-- The machines a parent names: added to the inventory if unknown here.
CREATE FUNCTION record_machines(machines jsonb) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    SELECT m.sms_id, m.name, m.domain, m.site_code, m.platform::smsdist.platform
      FROM jsonb_to_recordset(machines) AS m(sms_id text, name text, domain text, site_code text, platform text)
     WHERE EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code = m.site_code)
    ON CONFLICT DO NOTHING
$$;

-- Called by receive_end (C) for a run-command job: the program and the
-- machines, then the job itself, targeting the machines.
CREATE FUNCTION record_run_job(p_job_id text, p_package_id text, run jsonb) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    machines text[];
    other record;
    offer timestamptz := (run->>'offer_after')::timestamptz;
BEGIN
    INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes)
    VALUES (p_package_id, run->>'program_name', run->>'command_line',
            (SELECT array_agg(p::smsdist.platform) FROM jsonb_array_elements_text(
                 CASE WHEN jsonb_typeof(run->'platforms') = 'array' THEN run->'platforms' END) p),
            (run->>'max_run_minutes')::integer)
    ON CONFLICT (package_id, program_name) DO UPDATE
       SET command_line = EXCLUDED.command_line, platforms = EXCLUDED.platforms,
           max_run_minutes = EXCLUDED.max_run_minutes;
    PERFORM smsdist.record_machines(run->'machines');
    SELECT array_agg(m->>'sms_id' ORDER BY m->>'sms_id') INTO machines FROM jsonb_array_elements(run->'machines') m
     WHERE EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id = m->>'sms_id');
    IF machines IS NULL THEN
        RAISE EXCEPTION 'run-command job % names no machine known at site %', p_job_id,
            current_setting('smsdist.site_code')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines,
                              start_after, offer_after, mandatory_at, expires_at, priority, comment)
    VALUES (p_job_id, 'run_command', p_package_id, run->>'program_name', 'machines', machines,
            least(clock_timestamp(), offer), offer, (run->>'mandatory_at')::timestamptz,
            (run->>'expires_at')::timestamptz, coalesce((run->>'priority')::smsdist.job_priority, 'medium'),
            'sent by the parent site')
    ON CONFLICT (job_id) DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT job_type, package_id INTO other FROM smsdist.jobs WHERE job_id = p_job_id;
    IF other.job_type <> 'run_command' OR other.package_id <> p_package_id THEN
        RAISE EXCEPTION 'job % already exists at site % as a % job for package %, not a run_command job for package %',
            p_job_id, current_setting('smsdist.site_code'), other.job_type, other.package_id, p_package_id
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN false;
END
$$;

DROP FUNCTION receive_end(text, integer, text, text, text[], boolean);
-- Checks the whole file, makes it a ready build, records the job.  run: for
-- a run-command job, run_job_details() of the parent (NULL: a share job).
CREATE FUNCTION receive_end(package_id text, source_version integer, job_id text,
        job_type text, target_sites text[], include_subsites boolean,
        run jsonb DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'smsdist_receive_end';

-- The parent's machines of a run-command job changed (membership): make the
-- job's targets here the given machines.  Returns the number of changes.
CREATE FUNCTION receive_job_targets(p_job_id text, machines jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted text[];
    n integer;
    m integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM smsdist.jobs WHERE job_id = p_job_id AND job_type = 'run_command') THEN
        RAISE EXCEPTION 'run-command job % is not at site %', p_job_id, current_setting('smsdist.site_code')
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM smsdist.record_machines(machines);
    SELECT coalesce(array_agg(x->>'sms_id'), '{}') INTO wanted FROM jsonb_array_elements(machines) x;
    DELETE FROM smsdist.job_target_status t
     WHERE t.job_id = p_job_id AND NOT t.sms_id = ANY (wanted) AND t.state IN ('waiting', 'offered');
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code)
    SELECT p_job_id, r.sms_id, r.site_code FROM smsdist.system_resources r
     WHERE r.sms_id = ANY (wanted)
       AND EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = p_job_id AND j.state IN ('pending', 'active'))
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;

-- What the parent's Sender last told each hop about a job's machines.
CREATE TABLE job_target_pushes (
    job_id           sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    hop              site_code NOT NULL,
    machines_md5     text NOT NULL,
    pushed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, hop)
);

REVOKE ALL ON FUNCTION run_job_details(text, text), record_machines(jsonb),
    record_run_job(text, text, jsonb), receive_job_targets(text, jsonb),
    receive_end(text, integer, text, text, text[], boolean, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION receive_end(text, integer, text, text, text[], boolean, jsonb),
    receive_job_targets(text, jsonb) TO smsdist_site;
REVOKE ALL ON job_target_pushes FROM PUBLIC;
GRANT SELECT ON job_target_pushes TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.job_target_pushes', '');
-- The Sender tells child sites when a run-command job gains or loses
-- machines behind them.
CREATE TRIGGER notify_sender AFTER INSERT OR DELETE ON job_target_status
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('sender');

-------------------------------------------------------------------------------
-- Membership without per-row foreign keys.  Checking two foreign keys cost
-- 6 s of a 13.6 s evaluation of 250,000 members (one trigger call per row);
-- instead the Collection Evaluator only inserts systems that exist (in the
-- statement that reads them), and deletions cascade through statement
-- triggers.  A system deleted while an evaluation runs can leave a member
-- row behind until the collection's next evaluation removes it.
-------------------------------------------------------------------------------
ALTER TABLE collection_members
    DROP CONSTRAINT collection_members_collection_id_fkey,
    DROP CONSTRAINT collection_members_sms_id_fkey;

CREATE FUNCTION collection_members_cascade() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'system_resources' THEN
        DELETE FROM smsdist.collection_members m USING old_rows o WHERE m.sms_id = o.sms_id;
    ELSE
        DELETE FROM smsdist.collection_members m USING old_rows o WHERE m.collection_id = o.collection_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER collection_members_cascade AFTER DELETE ON system_resources
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION collection_members_cascade();
CREATE TRIGGER collection_members_cascade AFTER DELETE ON collections
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION collection_members_cascade();

-- A logon server or site-server drive added, moved or enabled: every PCM
-- file of this site is written again, so that it has them all.
CREATE FUNCTION queue_all_pcm() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE n.role IN ('logon_server', 'site_server_drive')) THEN
        INSERT INTO smsdist.pcm_queue (sms_id) SELECT sms_id FROM smsdist.pcm_files ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_all_pcm AFTER INSERT ON site_systems
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_all_pcm();
CREATE TRIGGER queue_all_pcm_update AFTER UPDATE ON site_systems
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queue_all_pcm();

-------------------------------------------------------------------------------
-- The Offer Manager and Inbox Manager (src/offer_manager.c) rewrite the
-- instruction files from the tables whenever something they show changes.
-------------------------------------------------------------------------------
CREATE TRIGGER notify_offer_manager AFTER UPDATE OF members_changed_at ON collections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON collection_subcollections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON package_locations
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON programs
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');
CREATE TRIGGER notify_offer_manager AFTER UPDATE ON packages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('offer_manager');

-------------------------------------------------------------------------------
-- The management point: the policy of one machine for advanced clients
-- (seed 004: "the SMS Policy Provider copies the advertisement information to
-- the management point as an Advanced Client policy").  An agent connected
-- as a member of smsdist_client calls machine_policy() and LISTENs on
-- smsdist_policy_<sms id in lower case> (so that an unquoted LISTEN works);
-- the Offer Manager notifies that channel when the
-- machine's policy changed (machine_policies keeps each one's hash).
-------------------------------------------------------------------------------
CREATE FUNCTION machine_policy(p_sms_id text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE tgt(advert_id, collection_id, depth) AS (
        SELECT a.advert_id::text, a.collection_id::text, 0
          FROM smsdist.advertisements a WHERE a.enabled
        UNION
        SELECT t.advert_id, s.child_collection_id::text, t.depth + 1
          FROM tgt t JOIN smsdist.advertisements a ON a.advert_id = t.advert_id
          JOIN smsdist.collection_subcollections s ON s.parent_collection_id = t.collection_id
         WHERE a.include_subcollections AND t.depth < 100),
    mine AS (
        SELECT DISTINCT t.advert_id FROM tgt t
          JOIN smsdist.collection_members m ON m.collection_id = t.collection_id AND m.sms_id = p_sms_id)
    SELECT jsonb_build_object(
        'machine', r.sms_id, 'site', r.site_code, 'platform', r.platform,
        'advertisements', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'advert_id', a.advert_id, 'name', a.name, 'collection_id', a.collection_id,
                'package_id', a.package_id, 'program', a.program_name,
                'command_line', pr.command_line, 'platforms', to_jsonb(pr.platforms),
                'max_run_minutes', pr.max_run_minutes,
                'offer_time', a.offer_time, 'offer_time_utc', a.offer_time_utc,
                'expires_time', a.expires_time, 'expires_time_utc', a.expires_time_utc,
                'assignments', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'time', s.assign_time, 'time_utc', s.assign_time_utc,
                        'recur_every_minutes', (extract(epoch FROM s.recur_every) / 60)::bigint)
                        ORDER BY s.assign_time)
                    FROM smsdist.advertisement_assignments s WHERE s.advert_id = a.advert_id), '[]'::jsonb),
                'package_version', loc.version,
                'locations', coalesce(loc.paths, '[]'::jsonb))
                ORDER BY a.advert_id)
              FROM mine JOIN smsdist.advertisements a ON a.advert_id = mine.advert_id
              JOIN smsdist.programs pr ON pr.package_id = a.package_id AND pr.program_name = a.program_name
              LEFT JOIN LATERAL (
                  SELECT max(l.source_version) AS version,
                         jsonb_agg(l.path ORDER BY l.site_system_id) AS paths
                    FROM smsdist.package_locations l
                   WHERE l.package_id = a.package_id AND l.site_code = r.site_code) loc ON true),
            '[]'::jsonb))
      FROM smsdist.system_resources r WHERE r.sms_id = p_sms_id
$$;
REVOKE ALL ON FUNCTION machine_policy(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION machine_policy(text) TO smsdist_client, smsdist_reader;

-- The hash of each machine's policy as last notified.
CREATE TABLE machine_policies (
    sms_id           sms_id PRIMARY KEY,
    policy_md5       text NOT NULL,
    changed_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON machine_policies FROM PUBLIC;
GRANT SELECT ON machine_policies TO smsdist_reader;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.machine_policies', '');
