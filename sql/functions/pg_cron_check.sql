-- What pg_cron needs to run smsdist's schedules in this database, one row
-- per check: whether it holds now, and what is there or what to change.
-- pg_cron is optional: a site without it gets rows that say so.  The
-- checks that pg_cron cannot make itself: its library preloaded, its
-- database this one, the extension created here, a way for its jobs to
-- connect (background workers, or a libpq connection that needs a listening
-- server and a password-free login), enough background-worker slots for
-- smsdist and pg_cron together, and no failed run of a job of this database
-- in the last day (cron.job_run_details, with pg_cron's own message, such
-- as "connection failed").
CREATE OR REPLACE FUNCTION pg_cron_check()
RETURNS TABLE (check_name text, ok boolean, detail text)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    preload text := current_setting('shared_preload_libraries');
    loaded boolean;
    cron_db text := current_setting('cron.database_name', true);
    bgw boolean := coalesce(current_setting('cron.use_background_workers', true), 'off')::boolean;
    cron_host text := current_setting('cron.host', true);
    listen text := current_setting('listen_addresses');
    sockets text := current_setting('unix_socket_directories');
    slots integer := current_setting('max_worker_processes')::integer;
    -- smsdist's supervisor, seven components, a builder and two compressors
    -- (docs/workers.md), pg_cron's launcher, and one running job
    needed integer := 12 + 1 + CASE WHEN bgw THEN 1 ELSE 0 END;
    failures bigint;
    last_failure text;
BEGIN
    loaded := 'pg_cron' = ANY (string_to_array(replace(preload, ' ', ''), ','));
    check_name := 'shared_preload_libraries';
    ok := loaded;
    detail := CASE WHEN loaded THEN format('pg_cron is preloaded (%s)', preload)
                   ELSE format('pg_cron is not in shared_preload_libraries (%s): add it and restart the server', preload) END;
    RETURN NEXT;

    check_name := 'cron.database_name';
    ok := cron_db IS NOT DISTINCT FROM current_database();
    detail := CASE WHEN ok THEN format('pg_cron runs in this database (%s)', cron_db)
                   WHEN cron_db IS NULL THEN 'pg_cron is not loaded, so cron.database_name is not set'
                   ELSE format('pg_cron runs in database %s, not in %s: set cron.database_name = ''%s'' and restart the server',
                               cron_db, current_database(), current_database()) END;
    RETURN NEXT;

    check_name := 'extension';
    ok := EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron');
    detail := CASE WHEN ok THEN format('pg_cron %s is installed here',
                                       (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron'))
                   ELSE 'CREATE EXTENSION pg_cron has not been run in this database' END;
    RETURN NEXT;

    check_name := 'connection';
    IF bgw THEN
        ok := loaded;
        detail := 'cron.use_background_workers = on: jobs run in background workers, no login needed';
    ELSIF cron_host IS NULL THEN
        ok := false;
        detail := 'pg_cron is not loaded';
    ELSE
        ok := CASE WHEN cron_host LIKE '/%'
                   THEN cron_host = ANY (string_to_array(replace(sockets, ' ', ''), ','))
                   ELSE listen <> '' END;
        detail := format('cron.use_background_workers = off: each job logs in over libpq to cron.host = %s as the job''s owner, '
                         'which needs %s and a login without a password prompt (pg_hba.conf trust or peer for it, or a .pgpass '
                         'file of the server''s OS user); simpler: cron.use_background_workers = on and a restart',
                         cron_host,
                         CASE WHEN cron_host LIKE '/%' THEN format('a socket in that directory (unix_socket_directories = %s)', sockets)
                              ELSE format('a TCP listener (listen_addresses = ''%s'')', listen) END);
    END IF;
    RETURN NEXT;

    check_name := 'max_worker_processes';
    ok := slots >= needed;
    detail := format('%s slots; smsdist and pg_cron need at least %s%s', slots, needed,
                     CASE WHEN slots >= needed THEN '' ELSE ': raise max_worker_processes and restart the server' END);
    RETURN NEXT;

    check_name := 'recent runs';
    IF to_regclass('cron.job_run_details') IS NULL THEN
        ok := NULL;
        detail := 'no cron.job_run_details table here: no runs to check';
    ELSE
        -- a run that could not connect never started: it has no times
        EXECUTE $q$SELECT count(*), (array_agg(format('job %s%s: %s', d.jobid,
                                                      ' at ' || coalesce(d.end_time, d.start_time)::text, d.return_message)
                                                ORDER BY d.runid DESC))[1]
                     FROM cron.job_run_details d
                    WHERE d.status = 'failed' AND d.database = current_database()
                      AND coalesce(d.end_time, d.start_time, now()) > now() - interval '1 day'$q$
           INTO failures, last_failure;
        ok := failures = 0;
        detail := CASE WHEN failures = 0 THEN 'no failed run of a job of this database in the last day'
                       ELSE format('%s failed runs in the last day; the latest: %s', failures, last_failure) END;
    END IF;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION pg_cron_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_cron_check() TO smsdist_admin;
