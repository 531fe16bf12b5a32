-- Wake-ups: worker_status(), wake() and the notify_change() trigger
-- (src/core/wakeup.c).  Nothing here commits, so no worker is actually woken:
-- these tests check that wake-ups wait for the commit, that misuse of the
-- trigger is refused, and that every notify trigger of the schema fires
-- cleanly on the changes it is declared for.
BEGIN;
SELECT plan(35);

-- wait up to timeout seconds for a condition (worker state is shared memory,
-- not transactional, so it can be polled inside this transaction)
CREATE FUNCTION pg_temp.wait_for(cond text, timeout float8) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout * interval '1 second';
    ok boolean;
BEGIN
    LOOP
        EXECUTE cond INTO ok;
        IF ok THEN RETURN true; END IF;
        IF clock_timestamp() > deadline THEN RETURN false; END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
CREATE FUNCTION pg_temp.scheduler_wakes() RETURNS bigint LANGUAGE sql VOLATILE AS
    $$ SELECT wake_requests FROM smsdist.worker_status() WHERE component = 'scheduler' $$;

-------------------------------------------------------------------------------
-- worker_status() and the workers view
-------------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT component, title FROM smsdist.workers ORDER BY component COLLATE "C"$$,
    $$VALUES ('collection_evaluator', 'SMS Collection Evaluator'), ('despooler', 'SMS Despooler'),
             ('inbox_manager', 'SMS Inbox Manager'), ('offer_manager', 'SMS Offer Manager'),
             ('scheduler', 'SMS Scheduler'), ('sender', 'SMS Sender'),
             ('status_manager', 'SMS Status Manager'), ('supervisor', 'smsdist supervisor')$$,
    'workers lists the eight components with their titles');
SELECT ok(pg_temp.wait_for($$SELECT pid IS NOT NULL FROM smsdist.workers WHERE component = 'scheduler'$$, 60),
          'the Scheduler worker runs in this database (within 60 s)');
SELECT ok(pg_temp.wait_for($$SELECT pid IS NOT NULL FROM smsdist.workers WHERE component = 'supervisor'$$, 60),
          'the supervisor runs');
SELECT is((SELECT backend_type FROM pg_stat_activity
            WHERE pid = (SELECT pid FROM smsdist.workers WHERE component = 'scheduler')),
          'smsdist scheduler', 'the Scheduler''s pid is a background worker of type "smsdist scheduler"');
SELECT is((SELECT application_name FROM pg_stat_activity
            WHERE pid = (SELECT pid FROM smsdist.workers WHERE component = 'scheduler')),
          'smsdist scheduler', 'the Scheduler''s application_name is "smsdist scheduler" (it appears so in by_application)');
SELECT is((SELECT datname::text FROM pg_stat_activity
            WHERE pid = (SELECT pid FROM smsdist.workers WHERE component = 'scheduler')),
          current_database()::text, 'the Scheduler is connected to smsdist.database');

-------------------------------------------------------------------------------
-- wake()
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT smsdist.wake('mailer')$$, '22023', 'unknown smsdist component "mailer"',
                 'wake() refuses an unknown component');
SELECT throws_ok($$SELECT smsdist.wake('Scheduler')$$, '22023', 'unknown smsdist component "Scheduler"',
                 'component names are case-sensitive');
SELECT throws_ok($$SELECT smsdist.wake('')$$, '22023', 'unknown smsdist component ""',
                 'wake() refuses an empty component name');

CREATE TEMP TABLE tap_before AS SELECT pg_temp.scheduler_wakes() AS n;
SELECT lives_ok($$SELECT smsdist.wake('scheduler')$$, 'wake(''scheduler'') is accepted');
SELECT lives_ok($$SELECT smsdist.wake('collection_evaluator')$$, 'wake(''collection_evaluator'') is accepted');
SELECT lives_ok($$SELECT smsdist.wake('supervisor')$$, 'wake(''supervisor'') is accepted');

-------------------------------------------------------------------------------
-- Every notify trigger of the schema fires on its events
-------------------------------------------------------------------------------
SELECT lives_ok($$INSERT INTO smsdist.sites VALUES ('TW1', 'Wake central', NULL), ('TW2', 'Wake child', 'TW1')$$,
                'inserting sites (sites itself has no notify trigger)');
SELECT lives_ok($$INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('TW2', 'host=tw2');
                  UPDATE smsdist.sender_addresses SET enabled = false WHERE target_site_code = 'TW2';
                  DELETE FROM smsdist.sender_addresses WHERE target_site_code = 'TW2'$$,
                'notify_sender on sender_addresses: insert, update, delete (payload address_id)');
SELECT lives_ok($$INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('TW2', 'distribution_point', 'DP1', '/srv/dp1');
                  UPDATE smsdist.site_systems SET enabled = false WHERE site_code = 'TW2';
                  DELETE FROM smsdist.site_systems WHERE site_code = 'TW2'$$,
                'notify_despooler on site_systems: insert, update, delete (payload site_system_id)');
SELECT lives_ok($$INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
                  VALUES ('TW200001', 'WKS1', 'CORP', 'TW2', 'WIN95'), ('TW200002', 'WKS2', 'CORP', 'TW2', 'WIN95');
                  UPDATE smsdist.system_resources SET last_seen = now() WHERE site_code = 'TW2'$$,
                'notify_collection_evaluator on system_resources: statement level, payload *');
SELECT lives_ok($$INSERT INTO smsdist.users VALUES ('TAPDOM', 'alice', 'Alice'), ('TAPDOM', 'bob', NULL);
                  INSERT INTO smsdist.user_groups VALUES ('TAPDOM', 'Admins');
                  INSERT INTO smsdist.user_group_members VALUES ('TAPDOM', 'Admins', 'TAPDOM', 'alice');
                  DELETE FROM smsdist.user_group_members WHERE group_domain = 'TAPDOM';
                  DELETE FROM smsdist.users WHERE domain = 'TAPDOM' AND user_name = 'bob'$$,
                'notify_collection_evaluator on users, user_groups, user_group_members');
SELECT lives_ok($$INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('TW100001', 'Wake', '/srv/wake');
                  UPDATE smsdist.packages SET source_version = source_version + 1 WHERE package_id = 'TW100001'$$,
                'notify_scheduler on packages: update (payload package_id)');
SELECT lives_ok($$INSERT INTO smsdist.programs VALUES ('TW100001', 'Run', 'run.sh', NULL, 5);
                  INSERT INTO smsdist.collections (collection_id, name) VALUES ('TW100001', 'Wake all'), ('TW100002', 'Wake sub');
                  UPDATE smsdist.collections SET comment = 'c' WHERE collection_id = 'TW100001'$$,
                'notify_collection_evaluator on collections (payload collection_id)');
SELECT lives_ok($$INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('TW100001', 'direct', 'TW200001');
                  INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('TW100001', 'query', 'platform = ''WIN95''');
                  DELETE FROM smsdist.collection_rules WHERE rule_type = 'query' AND collection_id = 'TW100001'$$,
                'notify_collection_evaluator on collection_rules (payload collection_id)');
SELECT lives_ok($$INSERT INTO smsdist.collection_subcollections VALUES ('TW100001', 'TW100002');
                  DELETE FROM smsdist.collection_subcollections WHERE parent_collection_id = 'TW100001'$$,
                'notify_collection_evaluator on collection_subcollections (payload parent_collection_id)');
SELECT lives_ok($$INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
                  VALUES ('TW100001', 'Wake advert', 'TW100001', 'Run', 'TW100001', '2099-01-01');
                  INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, recur_every) VALUES ('TW100001', '2099-01-02', '1 day');
                  UPDATE smsdist.advertisement_assignments SET recur_every = '2 days' WHERE advert_id = 'TW100001';
                  UPDATE smsdist.advertisements SET enabled = false WHERE advert_id = 'TW100001';
                  DELETE FROM smsdist.advertisements WHERE advert_id = 'TW100001'$$,
                'notify_offer_manager on advertisements and advertisement_assignments (payload advert_id)');
SELECT lives_ok($$INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
                  VALUES ('TW1000A1', 'run_command', 'TW100001', 'Run', 'machines', '{TW200001,TW200002}', '2099-01-01');
                  UPDATE smsdist.jobs SET comment = 'woken' WHERE job_id = 'TW1000A1'$$,
                'notify_scheduler on jobs: insert, update (payload job_id)');
SELECT lives_ok($$INSERT INTO smsdist.job_site_status (job_id, site_code, phase) VALUES ('TW1000A1', 'TW2', 'send');
                  UPDATE smsdist.job_site_status SET state = 'running' WHERE job_id = 'TW1000A1'$$,
                'notify_sender on job_site_status: insert, update (payload job_id/site_code/phase)');
SELECT lives_ok($$INSERT INTO smsdist.status_messages (component, severity, message_id, message, job_id)
                  VALUES ('pgtap', 'warning', 2, 'wake test', 'TW1000A1')$$,
                'notify_status_manager on status_messages: statement level');

-- none of that woke anyone yet: wake-ups wait for the commit
SELECT is(pg_temp.scheduler_wakes(), (SELECT n FROM tap_before),
          'neither wake() nor notify triggers wake the Scheduler before the transaction commits');

-------------------------------------------------------------------------------
-- notify_change() on tables of our own: arguments and misuse
-------------------------------------------------------------------------------
CREATE TEMP TABLE tap_noargs (id int);
CREATE TRIGGER tap_noargs AFTER INSERT ON tap_noargs FOR EACH ROW EXECUTE FUNCTION smsdist.notify_change();
SELECT throws_ok($$INSERT INTO tap_noargs VALUES (1)$$, '39P01',
                 'smsdist.notify_change() needs the components to wake as its first argument',
                 'notify_change() without arguments is refused');

CREATE TEMP TABLE tap_badcol (id int);
CREATE TRIGGER tap_badcol AFTER INSERT ON tap_badcol FOR EACH ROW EXECUTE FUNCTION smsdist.notify_change('scheduler', 'nope');
SELECT throws_ok($$INSERT INTO tap_badcol VALUES (1)$$, '42703',
                 'smsdist.notify_change: column "nope" does not exist',
                 'notify_change() with an unknown ID column is refused');

CREATE TEMP TABLE tap_badcomp (id int);
CREATE TRIGGER tap_badcomp AFTER INSERT ON tap_badcomp FOR EACH ROW EXECUTE FUNCTION smsdist.notify_change('scheduler,mailer', 'id');
SELECT throws_ok($$INSERT INTO tap_badcomp VALUES (1)$$, '22023', 'unknown smsdist component "mailer"',
                 'notify_change() with an unknown component in its list is refused');

-- as a BEFORE trigger it hands the row back unchanged
CREATE TEMP TABLE tap_before_trg (id int, name text);
CREATE TRIGGER tap_before_trg BEFORE INSERT OR UPDATE OR DELETE ON tap_before_trg
    FOR EACH ROW EXECUTE FUNCTION smsdist.notify_change('scheduler,sender', 'id', 'name');
SELECT lives_ok($$INSERT INTO tap_before_trg VALUES (1, 'one'), (2, NULL)$$,
                'notify_change() with two components and two ID columns, one of them NULL');
SELECT results_eq($$SELECT id, name FROM tap_before_trg ORDER BY id$$,
                  $$VALUES (1, 'one'), (2, NULL)$$, 'a BEFORE INSERT notify_change() keeps the inserted rows');
UPDATE tap_before_trg SET name = 'uno' WHERE id = 1;
SELECT is((SELECT name FROM tap_before_trg WHERE id = 1), 'uno', 'a BEFORE UPDATE notify_change() keeps the new row');
DELETE FROM tap_before_trg WHERE id = 2;
SELECT is((SELECT count(*) FROM tap_before_trg), 1::bigint, 'a BEFORE DELETE notify_change() lets the delete happen');

CREATE TEMP TABLE tap_stmt (id int);
CREATE TRIGGER tap_stmt AFTER INSERT ON tap_stmt FOR EACH STATEMENT EXECUTE FUNCTION smsdist.notify_change('status_manager', 'id');
SELECT lives_ok($$INSERT INTO tap_stmt SELECT generate_series(1, 100)$$,
                'as a statement trigger notify_change() ignores ID columns (payload *)');
SELECT is(pg_temp.scheduler_wakes(), (SELECT n FROM tap_before),
          'still no wake-up before commit');

SELECT * FROM finish();
ROLLBACK;
