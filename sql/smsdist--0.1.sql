-- smsdist 0.1: the data model, the wake-up triggers and the roles.
-- Every table is documented in docs/data-model.md; the wake-up channels in
-- docs/workers.md.
\echo Use "CREATE EXTENSION smsdist" to load this file. \quit

-------------------------------------------------------------------------------
-- Validators (C, src/validate.c) and the domains built on them.  Each raises
-- an error saying what a valid value looks like.
-------------------------------------------------------------------------------
CREATE FUNCTION check_site_code(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_site_code';
CREATE FUNCTION check_sms_id(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_sms_id';
CREATE FUNCTION check_object_name(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_object_name';
CREATE FUNCTION check_netbios_name(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_netbios_name';
CREATE FUNCTION check_server_path(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_server_path';
CREATE FUNCTION check_command_line(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_command_line';
CREATE FUNCTION check_conninfo(text) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'smsdist_check_conninfo';

CREATE DOMAIN site_code AS text
    CONSTRAINT site_code_format CHECK (@extschema@.check_site_code(VALUE));
CREATE DOMAIN sms_id AS text
    CONSTRAINT sms_id_format CHECK (@extschema@.check_sms_id(VALUE));
CREATE DOMAIN object_name AS text
    CONSTRAINT object_name_format CHECK (@extschema@.check_object_name(VALUE));
CREATE DOMAIN netbios_name AS text
    CONSTRAINT netbios_name_format CHECK (@extschema@.check_netbios_name(VALUE));
CREATE DOMAIN server_path AS text
    CONSTRAINT server_path_format CHECK (@extschema@.check_server_path(VALUE));
CREATE DOMAIN command_line AS text
    CONSTRAINT command_line_format CHECK (@extschema@.check_command_line(VALUE));
CREATE DOMAIN conninfo AS text
    CONSTRAINT conninfo_format CHECK (@extschema@.check_conninfo(VALUE));

-- Operating-system platforms a program supports and a system runs.
CREATE TYPE platform AS ENUM (
    'MSDOS', 'WIN31', 'WIN95', 'WINNT_X86', 'WINNT_ALPHA', 'WINNT_MIPS', 'OS2', 'MAC',
    'WIN_X64', 'WIN_ARM64', 'LINUX_X86_64', 'LINUX_AARCH64');

CREATE TYPE site_role AS ENUM (
    'distribution_point', 'logon_server', 'client_access_point', 'management_point',
    'site_server_drive');
CREATE TYPE throttle_mode AS ENUM ('unlimited', 'pulse', 'rate_limited');
CREATE TYPE job_type AS ENUM ('run_command', 'share_package', 'remove_package');
CREATE TYPE target_type AS ENUM ('collection', 'machines', 'sites');
CREATE TYPE job_priority AS ENUM ('high', 'medium', 'low');
CREATE TYPE job_state AS ENUM ('pending', 'active', 'completed', 'failed', 'cancelled', 'expired');
CREATE TYPE job_phase AS ENUM ('send', 'distribute', 'run');
CREATE TYPE phase_state AS ENUM ('waiting', 'running', 'retrying', 'done', 'failed', 'cancelled');
CREATE TYPE target_state AS ENUM (
    'waiting', 'offered', 'received', 'running', 'succeeded', 'failed', 'cancelled', 'expired');
CREATE TYPE rule_type AS ENUM ('direct', 'query', 'include', 'exclude');
CREATE TYPE severity AS ENUM ('informational', 'warning', 'error');

-------------------------------------------------------------------------------
-- IDs: <site code><5 hex digits>, from one sequence per kind of object.
-------------------------------------------------------------------------------
CREATE SEQUENCE package_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;
CREATE SEQUENCE job_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;
CREATE SEQUENCE collection_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;
CREATE SEQUENCE advert_id_seq MINVALUE 1 MAXVALUE 1048575 NO CYCLE;

CREATE FUNCTION new_sms_id(seq regclass) RETURNS sms_id
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    site text := current_setting('smsdist.site_code', true);
BEGIN
    IF site IS NULL OR site = '' THEN
        RAISE EXCEPTION 'smsdist.site_code is not set, so no new ID can be made'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set smsdist.site_code in postgresql.conf and reload, or give the ID explicitly.';
    END IF;
    RETURN site || upper(lpad(to_hex(nextval(seq)), 5, '0'));
END
$$;

-------------------------------------------------------------------------------
-- Sites and site systems
-------------------------------------------------------------------------------
CREATE TABLE sites (
    site_code        site_code PRIMARY KEY,
    name             object_name NOT NULL,
    parent_site_code site_code REFERENCES sites ON DELETE RESTRICT,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT site_is_not_its_own_parent CHECK (parent_site_code IS DISTINCT FROM site_code)
);
CREATE INDEX ON sites (parent_site_code);

-- Refuse a parent that would make a cycle (A under B under A).
CREATE FUNCTION sites_refuse_cycle() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- two concurrent moves could each pass the check and make a cycle
    -- together: serialize changes of parents (READ COMMITTED sees the other's
    -- committed change once the lock is ours)
    IF NEW.parent_site_code IS NOT NULL THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('smsdist.sites.parent_site_code'));
    END IF;
    IF NEW.parent_site_code IS NOT NULL AND EXISTS (
        WITH RECURSIVE up(code, depth) AS (
            SELECT NEW.parent_site_code::text, 1
            UNION ALL
            SELECT s.parent_site_code::text, up.depth + 1
              FROM smsdist.sites s JOIN up ON s.site_code::text = up.code
             WHERE s.parent_site_code IS NOT NULL AND up.depth < 1000)
        SELECT 1 FROM up WHERE code = NEW.site_code::text)
    THEN
        RAISE EXCEPTION 'site % cannot have parent %: % is already below %',
            NEW.site_code, NEW.parent_site_code, NEW.parent_site_code, NEW.site_code
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sites_refuse_cycle BEFORE INSERT OR UPDATE OF parent_site_code ON sites
    FOR EACH ROW EXECUTE FUNCTION sites_refuse_cycle();

CREATE TABLE sender_addresses (
    address_id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_site_code site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    conninfo         conninfo NOT NULL,
    priority         integer NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 99),
    throttle         throttle_mode NOT NULL DEFAULT 'unlimited',
    pulse_block_kb   integer CHECK (pulse_block_kb BETWEEN 1 AND 1048576),
    pulse_delay_ms   integer CHECK (pulse_delay_ms BETWEEN 0 AND 3600000),
    hourly_rate_pct  smallint[],
    enabled          boolean NOT NULL DEFAULT true,
    CONSTRAINT pulse_mode_needs_block_and_delay
        CHECK (throttle <> 'pulse' OR (pulse_block_kb IS NOT NULL AND pulse_delay_ms IS NOT NULL)),
    CONSTRAINT rate_limit_needs_24_hourly_percentages
        CHECK (throttle <> 'rate_limited' OR
               (hourly_rate_pct IS NOT NULL AND cardinality(hourly_rate_pct) = 24
                AND array_ndims(hourly_rate_pct) = 1
                AND 0 <= ALL (hourly_rate_pct) AND 100 >= ALL (hourly_rate_pct)
                AND array_position(hourly_rate_pct, NULL) IS NULL)),
    UNIQUE (target_site_code, priority)
);

CREATE TABLE site_systems (
    site_system_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_code        site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    role             site_role NOT NULL,
    name             object_name NOT NULL,
    root_directory   server_path NOT NULL,
    enabled          boolean NOT NULL DEFAULT true,
    UNIQUE (site_code, role, root_directory),
    UNIQUE (site_code, role, name)
);

-------------------------------------------------------------------------------
-- Packages and programs
-------------------------------------------------------------------------------
CREATE TABLE packages (
    package_id       sms_id PRIMARY KEY DEFAULT @extschema@.new_sms_id('@extschema@.package_id_seq'),
    name             object_name NOT NULL,
    version          object_name,
    manufacturer     object_name,
    language         object_name,
    comment          text CHECK (length(comment) <= 4000),
    source_directory server_path NOT NULL,
    source_version   integer NOT NULL DEFAULT 1 CHECK (source_version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE programs (
    package_id       sms_id NOT NULL REFERENCES packages ON DELETE CASCADE,
    program_name     object_name NOT NULL,
    command_line     command_line NOT NULL,
    platforms        platform[],
    max_run_minutes  integer CHECK (max_run_minutes BETWEEN 1 AND 10080),
    comment          text CHECK (length(comment) <= 4000),
    PRIMARY KEY (package_id, program_name),
    CONSTRAINT platforms_null_for_any_or_a_nonempty_list
        CHECK (platforms IS NULL OR (cardinality(platforms) > 0 AND array_ndims(platforms) = 1
                                     AND array_position(platforms, NULL) IS NULL))
);

-------------------------------------------------------------------------------
-- Resources: systems, users, user groups (inventory; bulk-loadable with COPY)
-------------------------------------------------------------------------------
CREATE TABLE system_resources (
    sms_id           sms_id PRIMARY KEY,
    name             netbios_name NOT NULL,
    domain           netbios_name NOT NULL,
    site_code        site_code NOT NULL REFERENCES sites ON DELETE RESTRICT,
    platform         platform NOT NULL,
    os_version       text CHECK (length(os_version) <= 64),
    ip_address       inet,
    memory_mb        integer CHECK (memory_mb >= 0),
    free_disk_mb     bigint CHECK (free_disk_mb >= 0),
    last_seen        timestamptz,
    UNIQUE (domain, name)
);
CREATE INDEX ON system_resources (site_code);

CREATE TABLE users (
    domain           netbios_name NOT NULL,
    user_name        object_name NOT NULL,
    full_name        text CHECK (length(full_name) <= 256),
    PRIMARY KEY (domain, user_name)
);

CREATE TABLE user_groups (
    domain           netbios_name NOT NULL,
    group_name       object_name NOT NULL,
    PRIMARY KEY (domain, group_name)
);

CREATE TABLE user_group_members (
    group_domain     netbios_name NOT NULL,
    group_name       object_name NOT NULL,
    user_domain      netbios_name NOT NULL,
    user_name        object_name NOT NULL,
    PRIMARY KEY (group_domain, group_name, user_domain, user_name),
    FOREIGN KEY (group_domain, group_name) REFERENCES user_groups ON DELETE CASCADE,
    FOREIGN KEY (user_domain, user_name) REFERENCES users ON DELETE CASCADE
);
CREATE INDEX ON user_group_members (user_domain, user_name);

-------------------------------------------------------------------------------
-- Collections
-------------------------------------------------------------------------------
CREATE TABLE collections (
    collection_id          sms_id PRIMARY KEY DEFAULT @extschema@.new_sms_id('@extschema@.collection_id_seq'),
    name                   object_name NOT NULL,
    comment                text CHECK (length(comment) <= 4000),
    limiting_collection_id sms_id REFERENCES collections ON DELETE RESTRICT,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT collection_does_not_limit_itself
        CHECK (limiting_collection_id IS DISTINCT FROM collection_id)
);

-- Subcollections: advertisements may include them (include_subcollections).
CREATE TABLE collection_subcollections (
    parent_collection_id   sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    child_collection_id    sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    PRIMARY KEY (parent_collection_id, child_collection_id),
    CONSTRAINT collection_is_not_its_own_subcollection
        CHECK (parent_collection_id <> child_collection_id)
);

CREATE TABLE collection_rules (
    rule_id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id          sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    rule_type              rule_type NOT NULL,
    resource_sms_id        sms_id REFERENCES system_resources ON DELETE CASCADE,
    query_expression       text CHECK (length(query_expression) BETWEEN 1 AND 8000),
    ref_collection_id      sms_id REFERENCES collections ON DELETE CASCADE,
    CONSTRAINT direct_rule_names_one_system
        CHECK ((rule_type = 'direct') = (resource_sms_id IS NOT NULL)),
    CONSTRAINT query_rule_has_an_expression
        CHECK ((rule_type = 'query') = (query_expression IS NOT NULL)),
    CONSTRAINT include_exclude_rule_names_a_collection
        CHECK ((rule_type IN ('include', 'exclude')) = (ref_collection_id IS NOT NULL)),
    CONSTRAINT rule_does_not_refer_to_its_own_collection
        CHECK (ref_collection_id IS DISTINCT FROM collection_id)
);
CREATE INDEX ON collection_rules (collection_id);
CREATE INDEX ON collection_rules (ref_collection_id);

-- Materialized membership, kept current by the Collection Evaluator.
CREATE TABLE collection_members (
    collection_id          sms_id NOT NULL REFERENCES collections ON DELETE CASCADE,
    sms_id                 sms_id NOT NULL REFERENCES system_resources ON DELETE CASCADE,
    PRIMARY KEY (collection_id, sms_id)
);
CREATE INDEX ON collection_members (sms_id);

-------------------------------------------------------------------------------
-- Jobs
-------------------------------------------------------------------------------
CREATE TABLE jobs (
    job_id             sms_id PRIMARY KEY DEFAULT @extschema@.new_sms_id('@extschema@.job_id_seq'),
    job_type           job_type NOT NULL,
    package_id         sms_id NOT NULL REFERENCES packages ON DELETE RESTRICT,
    program_name       object_name,
    target_type        target_type NOT NULL,
    target_collection_id sms_id REFERENCES collections ON DELETE RESTRICT,
    target_machines    sms_id[],
    target_sites       site_code[],
    include_subsites   boolean NOT NULL DEFAULT false,
    start_after        timestamptz NOT NULL DEFAULT now(),
    offer_after        timestamptz,
    mandatory_at       timestamptz,
    expires_at         timestamptz,
    priority           job_priority NOT NULL DEFAULT 'medium',
    state              job_state NOT NULL DEFAULT 'pending',
    state_reason       text,
    state_changed_by   name NOT NULL DEFAULT current_user,
    comment            text CHECK (length(comment) <= 4000),
    created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_by         name NOT NULL DEFAULT current_user,
    activated_at       timestamptz,
    finished_at        timestamptz,
    FOREIGN KEY (package_id, program_name) REFERENCES programs ON DELETE RESTRICT,
    CONSTRAINT run_command_job_names_a_program
        CHECK ((job_type = 'run_command') = (program_name IS NOT NULL)),
    CONSTRAINT only_run_command_jobs_have_offer_and_mandatory_times
        CHECK (job_type = 'run_command' OR (offer_after IS NULL AND mandatory_at IS NULL)),
    CONSTRAINT share_and_remove_jobs_target_sites
        CHECK (job_type = 'run_command' OR target_type = 'sites'),
    CONSTRAINT collection_target_names_a_collection
        CHECK ((target_type = 'collection') = (target_collection_id IS NOT NULL)),
    CONSTRAINT machines_target_lists_machines
        CHECK ((target_type = 'machines') = (target_machines IS NOT NULL)
               AND (target_machines IS NULL OR (cardinality(target_machines) > 0
                    AND array_ndims(target_machines) = 1
                    AND array_position(target_machines, NULL) IS NULL))),
    CONSTRAINT sites_target_lists_sites
        CHECK ((target_type = 'sites') = (target_sites IS NOT NULL)
               AND (target_sites IS NULL OR (cardinality(target_sites) > 0
                    AND array_ndims(target_sites) = 1
                    AND array_position(target_sites, NULL) IS NULL))),
    CONSTRAINT offer_after_is_not_before_start_after
        CHECK (offer_after IS NULL OR offer_after >= start_after),
    CONSTRAINT mandatory_time_is_not_before_offer_after
        CHECK (mandatory_at IS NULL OR mandatory_at >= coalesce(offer_after, start_after)),
    CONSTRAINT expiry_is_after_start_offer_and_mandatory_times
        CHECK (expires_at IS NULL OR
               (expires_at > start_after AND expires_at > coalesce(offer_after, start_after)
                AND expires_at > coalesce(mandatory_at, start_after)))
);
CREATE INDEX jobs_pending_start ON jobs (start_after) WHERE state = 'pending';
CREATE INDEX jobs_live_expiry ON jobs (expires_at)
    WHERE state IN ('pending', 'active') AND expires_at IS NOT NULL;
CREATE INDEX ON jobs (package_id);

-- Every change of a job's state, with its reason.
CREATE TABLE job_transitions (
    transition_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id             sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    from_state         job_state,
    to_state           job_state NOT NULL,
    at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
    by_role            name NOT NULL,
    by_application     text DEFAULT current_setting('application_name', true),
    reason             text
);
CREATE INDEX ON job_transitions (job_id, at);

-- Per (job, site, phase): the progress of the Send and Distribute phases.
CREATE TABLE job_site_status (
    job_id             sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    site_code          site_code NOT NULL REFERENCES sites ON DELETE CASCADE,
    phase              job_phase NOT NULL,
    state              phase_state NOT NULL DEFAULT 'waiting',
    detail             text,
    bytes_done         bigint NOT NULL DEFAULT 0 CHECK (bytes_done >= 0),
    bytes_total        bigint CHECK (bytes_total >= 0),
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    started_at         timestamptz,
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, site_code, phase)
);
CREATE INDEX ON job_site_status (state, phase) WHERE state IN ('waiting', 'running', 'retrying');

-- Per (job, target machine): the Run phase as the workstation reports it.
CREATE TABLE job_target_status (
    job_id             sms_id NOT NULL REFERENCES jobs ON DELETE CASCADE,
    sms_id             sms_id NOT NULL REFERENCES system_resources ON DELETE CASCADE,
    site_code          site_code NOT NULL,
    state              target_state NOT NULL DEFAULT 'waiting',
    detail             text,
    exit_code          integer,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, sms_id)
);
CREATE INDEX ON job_target_status (sms_id);

-------------------------------------------------------------------------------
-- Advertisements
-------------------------------------------------------------------------------
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
    FOREIGN KEY (package_id, program_name) REFERENCES programs ON DELETE RESTRICT,
    -- Mixed UTC/local comparisons allow the widest time-zone spread (26 h).
    CONSTRAINT expiry_is_after_offer_time
        CHECK (expires_time IS NULL OR
               (offer_time_utc = expires_time_utc AND expires_time > offer_time) OR
               (offer_time_utc <> expires_time_utc AND expires_time > offer_time + interval '26 hours'))
);
CREATE INDEX ON advertisements (collection_id);
CREATE INDEX ON advertisements (package_id);

-- Mandatory assignments of an advertisement.
CREATE TABLE advertisement_assignments (
    assignment_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    advert_id              sms_id NOT NULL REFERENCES advertisements ON DELETE CASCADE,
    assign_time            timestamp NOT NULL,
    assign_time_utc        boolean NOT NULL DEFAULT true,
    recur_every            interval CHECK (recur_every IS NULL OR recur_every >= interval '1 hour'),
    UNIQUE (advert_id, assign_time, assign_time_utc)
);

-------------------------------------------------------------------------------
-- Status messages
-------------------------------------------------------------------------------
CREATE TABLE status_messages (
    status_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_code          site_code,
    component          text NOT NULL,
    machine            text,
    severity           severity NOT NULL,
    message_id         integer NOT NULL,
    at                 timestamptz NOT NULL DEFAULT clock_timestamp(),
    message            text NOT NULL,
    job_id             sms_id,
    package_id         sms_id,
    advert_id          sms_id
);
CREATE INDEX ON status_messages (at);
CREATE INDEX ON status_messages (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX ON status_messages (package_id) WHERE package_id IS NOT NULL;
CREATE INDEX ON status_messages (advert_id) WHERE advert_id IS NOT NULL;

-------------------------------------------------------------------------------
-- Job state machine: allowed transitions, timestamps, the transition log.
-------------------------------------------------------------------------------
CREATE FUNCTION jobs_check_transition() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- the bookkeeping columns belong to this trigger, not to the writer
    NEW.created_at := OLD.created_at;
    NEW.created_by := OLD.created_by;
    NEW.state_changed_by := OLD.state_changed_by;
    NEW.activated_at := OLD.activated_at;
    NEW.finished_at := OLD.finished_at;

    IF OLD.state <> 'pending' AND (NEW.job_id, NEW.job_type, NEW.package_id, NEW.program_name,
            NEW.target_type, NEW.target_collection_id, NEW.target_machines, NEW.target_sites,
            NEW.include_subsites, NEW.start_after)
          IS DISTINCT FROM (OLD.job_id, OLD.job_type, OLD.package_id, OLD.program_name,
            OLD.target_type, OLD.target_collection_id, OLD.target_machines, OLD.target_sites,
            OLD.include_subsites, OLD.start_after)
    THEN
        RAISE EXCEPTION 'job % is % and its type, package, program, targets and Start After can no longer change',
            OLD.job_id, OLD.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Create a new job instead (cancel this one first if it is still pending or active).';
    END IF;

    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF NOT ((OLD.state = 'pending' AND NEW.state IN ('active', 'cancelled', 'expired'))
             OR (OLD.state = 'active'  AND NEW.state IN ('completed', 'failed', 'cancelled', 'expired'))
             OR (OLD.state = 'failed'  AND NEW.state = 'pending'))
        THEN
            RAISE EXCEPTION 'job % cannot go from % to %', OLD.job_id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation',
                      HINT = 'Allowed: pending to active, cancelled or expired; active to completed, failed, cancelled or expired; failed to pending (retry).';
        END IF;
        IF NEW.state_reason IS NOT DISTINCT FROM OLD.state_reason THEN
            NEW.state_reason := NULL;   -- a reason belongs to one transition
        END IF;
        NEW.state_changed_by := current_user;
        IF NEW.state = 'pending' THEN
            NEW.activated_at := NULL;
            NEW.finished_at := NULL;
        ELSIF NEW.state = 'active' THEN
            NEW.activated_at := clock_timestamp();
        ELSE
            NEW.finished_at := clock_timestamp();
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_check_transition BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_check_transition();

-- SECURITY DEFINER: operators change jobs but may not write the log directly.
CREATE FUNCTION jobs_log_transition() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO smsdist.job_transitions (job_id, from_state, to_state, by_role, reason)
        VALUES (NEW.job_id, NULL, NEW.state, NEW.state_changed_by, coalesce(NEW.state_reason, 'created'));
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO smsdist.job_transitions (job_id, from_state, to_state, by_role, reason)
        VALUES (NEW.job_id, OLD.state, NEW.state, NEW.state_changed_by,
                coalesce(NEW.state_reason, 'changed by ' || NEW.state_changed_by));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_log_transition AFTER INSERT OR UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_log_transition();

-- A new job must start in 'pending'.
CREATE FUNCTION jobs_new_is_pending() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.state <> 'pending' THEN
        RAISE EXCEPTION 'a new job starts in state pending, not %', NEW.state
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.activated_at := NULL;
    NEW.finished_at := NULL;
    NEW.created_at := clock_timestamp();
    NEW.created_by := current_user;
    NEW.state_changed_by := current_user;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_new_is_pending BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_new_is_pending();

-- Listed target machines and sites must exist (arrays cannot have foreign
-- keys).  SECURITY DEFINER: operators may not read every table it checks.
CREATE FUNCTION jobs_check_targets() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    IF NEW.target_machines IS NOT NULL THEN
        SELECT string_agg(m, ', ' ORDER BY m) INTO missing
          FROM (SELECT DISTINCT unnest(NEW.target_machines)::text AS m) t
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id::text = t.m);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'job % targets unknown machine(s): %', NEW.job_id, left(missing, 400)
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'Target machines must be rows of smsdist.system_resources.';
        END IF;
    END IF;
    IF NEW.target_sites IS NOT NULL THEN
        SELECT string_agg(c, ', ' ORDER BY c) INTO missing
          FROM (SELECT DISTINCT unnest(NEW.target_sites)::text AS c) t
         WHERE NOT EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code::text = t.c);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'job % targets unknown site(s): %', NEW.job_id, missing
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'Target sites must be rows of smsdist.sites.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_check_targets BEFORE INSERT OR UPDATE OF target_machines, target_sites ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_check_targets();

-------------------------------------------------------------------------------
-- Target resolution (used by the Scheduler when a job becomes active).
-- No SET search_path here: these run with the caller's rights, name every
-- object with its schema, and must stay inlinable into the Scheduler's
-- set-based statements (a SET clause prevents inlining).
-------------------------------------------------------------------------------
-- The systems a run-command job targets.
CREATE FUNCTION job_target_machines(p_job_id sms_id)
    RETURNS TABLE (sms_id sms_id, site_code site_code)
    LANGUAGE sql STABLE
AS $$
    SELECT r.sms_id, r.site_code
      FROM smsdist.jobs j
      CROSS JOIN LATERAL unnest(j.target_machines) AS m(sms_id)
      JOIN smsdist.system_resources r ON r.sms_id = m.sms_id
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command' AND j.target_type = 'machines'
    UNION
    SELECT r.sms_id, r.site_code
      FROM smsdist.jobs j
      JOIN smsdist.collection_members c ON c.collection_id = j.target_collection_id
      JOIN smsdist.system_resources r ON r.sms_id = c.sms_id
     WHERE j.job_id = p_job_id AND j.job_type = 'run_command' AND j.target_type = 'collection'
$$;

-- The sites a job targets: named sites (and, with include_subsites, every
-- site below them), or the sites of its target machines.
CREATE FUNCTION job_target_sites(p_job_id sms_id)
    RETURNS TABLE (site_code site_code)
    LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE named AS (
        SELECT t.site_code, 0 AS depth
          FROM smsdist.jobs j
          CROSS JOIN LATERAL unnest(j.target_sites) AS t(site_code)
          JOIN smsdist.sites s ON s.site_code = t.site_code
         WHERE j.job_id = p_job_id AND j.target_type = 'sites'
        UNION ALL
        SELECT s.site_code, n.depth + 1
          FROM named n JOIN smsdist.sites s ON s.parent_site_code = n.site_code
          JOIN smsdist.jobs j ON j.job_id = p_job_id AND j.include_subsites
          WHERE n.depth < 100)
    SELECT DISTINCT site_code FROM named
    UNION
    SELECT DISTINCT m.site_code FROM smsdist.job_target_machines(p_job_id) m
$$;

-- One line saying what a job targets, for messages.
CREATE FUNCTION describe_targets(p_job_id sms_id) RETURNS text
    LANGUAGE sql STABLE
AS $$
    SELECT CASE j.target_type
        WHEN 'collection' THEN format('collection %s has no members', j.target_collection_id)
        WHEN 'machines' THEN format('none of its %s listed machine(s) is in system_resources any more',
                                    cardinality(j.target_machines))
        ELSE format('none of its %s listed site(s) is in sites any more', cardinality(j.target_sites))
        END
      FROM smsdist.jobs j WHERE j.job_id = p_job_id
$$;

-------------------------------------------------------------------------------
-- Workers: state and wake-ups
-------------------------------------------------------------------------------
CREATE FUNCTION worker_status(
    OUT component text, OUT title text, OUT pid integer, OUT state text,
    OUT wake_requests bigint, OUT steps bigint, OUT started_at timestamptz,
    OUT last_wake_at timestamptz, OUT last_step_at timestamptz,
    OUT next_step_at timestamptz, OUT last_error text)
    RETURNS SETOF record
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_worker_status';

CREATE VIEW workers AS SELECT * FROM worker_status();

CREATE FUNCTION wake(component text) RETURNS void
    LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'smsdist_wake';

CREATE FUNCTION library_version() RETURNS text
    LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'smsdist_library_version';

-- notify_change(components, id columns...): NOTIFY smsdist_<component> with
-- the row's ID and wake the component's worker when the transaction commits.
CREATE FUNCTION notify_change() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'smsdist_notify_change';

CREATE TRIGGER notify_scheduler AFTER INSERT OR UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION notify_change('scheduler', 'job_id');
CREATE TRIGGER notify_scheduler AFTER UPDATE ON packages
    FOR EACH ROW EXECUTE FUNCTION notify_change('scheduler', 'package_id');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE OR DELETE ON sender_addresses
    FOR EACH ROW EXECUTE FUNCTION notify_change('sender', 'address_id');
CREATE TRIGGER notify_sender AFTER INSERT OR UPDATE ON job_site_status
    FOR EACH ROW EXECUTE FUNCTION notify_change('sender,despooler', 'job_id', 'site_code', 'phase');
CREATE TRIGGER notify_despooler AFTER INSERT OR UPDATE OR DELETE ON site_systems
    FOR EACH ROW EXECUTE FUNCTION notify_change('despooler,inbox_manager', 'site_system_id');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON advertisements
    FOR EACH ROW EXECUTE FUNCTION notify_change('offer_manager', 'advert_id');
CREATE TRIGGER notify_offer_manager AFTER INSERT OR UPDATE OR DELETE ON advertisement_assignments
    FOR EACH ROW EXECUTE FUNCTION notify_change('offer_manager', 'advert_id');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON collections
    FOR EACH ROW EXECUTE FUNCTION notify_change('collection_evaluator', 'collection_id');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON collection_rules
    FOR EACH ROW EXECUTE FUNCTION notify_change('collection_evaluator', 'collection_id');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON collection_subcollections
    FOR EACH ROW EXECUTE FUNCTION notify_change('collection_evaluator', 'parent_collection_id');
-- Inventory is bulk-loaded: one notification per statement, payload '*'.
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON system_resources
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
CREATE TRIGGER notify_collection_evaluator AFTER INSERT OR UPDATE OR DELETE ON user_group_members
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('collection_evaluator');
CREATE TRIGGER notify_status_manager AFTER INSERT ON status_messages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_change('status_manager');

-- updated_at of packages
CREATE FUNCTION touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER touch_updated_at BEFORE UPDATE ON packages
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER touch_updated_at BEFORE UPDATE ON job_site_status
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER touch_updated_at BEFORE UPDATE ON job_target_status
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-------------------------------------------------------------------------------
-- Views for operators
-------------------------------------------------------------------------------
CREATE VIEW job_overview AS
SELECT j.job_id, j.job_type, j.package_id, p.name AS package_name, j.program_name,
       j.state, j.state_reason, j.priority, j.start_after, j.activated_at, j.finished_at,
       (SELECT count(*) FROM smsdist.job_site_status s WHERE s.job_id = j.job_id) AS sites,
       (SELECT count(*) FROM smsdist.job_site_status s
         WHERE s.job_id = j.job_id AND s.state = 'done') AS sites_done,
       (SELECT count(*) FROM smsdist.job_target_status t WHERE t.job_id = j.job_id) AS machines
  FROM smsdist.jobs j JOIN smsdist.packages p USING (package_id);

-------------------------------------------------------------------------------
-- Roles.  Roles are cluster-wide: create them once, keep them on DROP.
-------------------------------------------------------------------------------
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['smsdist_reader', 'smsdist_operator', 'smsdist_admin', 'smsdist_client'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;
GRANT smsdist_reader TO smsdist_operator;
GRANT smsdist_operator TO smsdist_admin;

REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO smsdist_reader, smsdist_client;

-- Validators are needed by anyone who writes a row with a checked domain.
GRANT EXECUTE ON FUNCTION check_site_code(text), check_sms_id(text), check_object_name(text),
    check_netbios_name(text), check_server_path(text), check_command_line(text),
    check_conninfo(text), library_version() TO PUBLIC;

-- Reader: everything but sender addresses (their conninfo may hold passwords).
GRANT SELECT ON sites, site_systems, packages, programs, system_resources, users,
    user_groups, user_group_members, collections, collection_subcollections,
    collection_rules, collection_members, jobs, job_transitions, job_site_status, job_target_status, advertisements,
    advertisement_assignments, status_messages, workers, job_overview TO smsdist_reader;
GRANT EXECUTE ON FUNCTION worker_status(), job_target_machines(sms_id), job_target_sites(sms_id),
    describe_targets(sms_id) TO smsdist_reader;

-- Operator: packages, programs, collections, jobs, advertisements.
GRANT INSERT, UPDATE, DELETE ON packages, programs, collections, collection_subcollections,
    collection_rules, jobs, advertisements,
    advertisement_assignments TO smsdist_operator;
GRANT USAGE ON SEQUENCE package_id_seq, job_id_seq, collection_id_seq, advert_id_seq TO smsdist_operator;
GRANT EXECUTE ON FUNCTION new_sms_id(regclass), wake(text) TO smsdist_operator;

-- Admin: the site hierarchy, site systems, sender addresses, inventory.
GRANT SELECT, INSERT, UPDATE, DELETE ON sites, site_systems, sender_addresses, system_resources,
    users, user_groups, user_group_members TO smsdist_admin;
GRANT INSERT, UPDATE, DELETE ON status_messages, collection_members TO smsdist_admin;

-------------------------------------------------------------------------------
-- Backups: pg_dump skips extension tables unless they are registered.  Restore
-- in one transaction with triggers off (PGOPTIONS='-c
-- session_replication_role=replica' pg_restore --single-transaction): see
-- docs/operations.md.
-------------------------------------------------------------------------------
-- (one call per statement: each call updates pg_extension's row)
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sites', 'sender_addresses', 'site_systems', 'packages', 'programs',
            'system_resources', 'users', 'user_groups', 'user_group_members',
            'collections', 'collection_subcollections', 'collection_rules',
            'collection_members', 'jobs', 'job_transitions', 'job_site_status',
            'job_target_status', 'advertisements', 'advertisement_assignments',
            'status_messages',
            'package_id_seq', 'job_id_seq', 'collection_id_seq', 'advert_id_seq'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(format('smsdist.%I', t)::regclass, '');
    END LOOP;
    -- and the sequences behind identity columns
    FOR t IN SELECT pg_catalog.pg_get_serial_sequence(format('smsdist.%I', c.table_name), c.column_name)
               FROM information_schema.columns c
              WHERE c.table_schema = 'smsdist' AND c.is_identity = 'YES' LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
    END LOOP;
END
$$;

-- Tell the workers the extension is here (at commit).
SELECT wake('supervisor'), wake('scheduler');
