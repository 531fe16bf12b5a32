/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The SMS Scheduler: activates jobs whose Start After time has passed and
 *	  expires jobs whose expiry time has passed.
 *
 * In SMS, phase 1 of a job: "If the job's Start After time has elapsed, SMS will
 * mark the job active and start processing."  A step of the Scheduler:
 *
 *	1. claims up to SMS_ACTIVATE_BATCH pending jobs whose start_after has
 *	   passed (FOR UPDATE SKIP LOCKED, so an operator editing a job or a
 *	   second Scheduler never blocks it), marks them active and, for each,
 *	   resolves its targets into one smsdist.job_site_status row per target
 *	   site -- phase "send" for a child site, "distribute" for this site,
 *	   where nothing needs sending -- and, for a run-command job, one
 *	   smsdist.job_target_status row per target machine.  A job that resolves to no site fails, with the reason.
 *	   A job whose expires_at has passed as well is left to the next item;
 *	2. expires pending and active jobs whose expires_at has passed;
 *	3. at most once a second: completes run-command jobs none of whose
 *	   targets is still on its way (smsdist.finish_done_jobs(): a job
 *	   normally completes in the transaction that makes its last target
 *	   final; this is the net under that), and expires the open targets of
 *	   expired advertisements;
 *	4. starts a package builder for each build that needs one (a build
 *	   whose package store was full waits for its next_attempt_at);
 *	5. returns the earliest future start_after, expires_at or next attempt
 *	   of such a build, so the worker sleeps until exactly then instead of
 *	   polling.
 *
 * Every state change is recorded in smsdist.job_transitions by a trigger
 * (with jobs.state_reason as the reason) and announced as a status message.
 * The Send phase itself belongs to the Sender.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "smsdist.h"
#include "package_builder.h"
#include "scheduler.h"
#include "status.h"
#include "worker.h"
#include "package_store.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/memutils.h"
#include "storage/fd.h"
#include "nodes/pg_list.h"
#include "job_state.h"
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define SWEEP_INTERVAL_MS 1000	/* finish_done_jobs() at most this often */

/*
 * One status message per row of jobs that moved (job, package, and a text
 * that fmt, with the job as its first %s, takes as its second).
 */
static void
message_per_job(SPITupleTable *rows, uint64 n, SmsSeverity severity, int message_id,
				const char *fmt)
{
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = rows->vals[i];
		SmsStatusRefs refs = {0};

		refs.job_id = SPI_getvalue(tup, rows->tupdesc, 1);
		refs.package_id = SPI_getvalue(tup, rows->tupdesc, 2);
		sms_status_message(SMS_SCHEDULER, severity, message_id, &refs, fmt,
						   refs.job_id, SPI_getvalue(tup, rows->tupdesc, 3));
	}
}

static void
expire_jobs(void)
{
	SPITupleTable *tuptable;
	uint64		n;

	/* the next SPI call replaces SPI_tuptable: keep ours */
	tuptable = sms_jobs_expire_due(&n);
	message_per_job(tuptable, n, SMS_WARNING, SMS_MSG_JOB_EXPIRED,
					"Job %s expired: its expiry time %s passed.");
}

/*
 * Claim and activate due jobs; returns how many were claimed.
 *
 * Set-based: one statement claims and activates the batch, one creates the
 * site rows of all its jobs, one the target rows, one the status messages.
 * (Per-job statements cost about 1.6 ms a job, capping a burst at ~600 jobs
 * a second; see docs/benchmarks.md.)
 */
static uint64
activate_due_jobs(bool *new_builds)
{
	int			ret;
	Datum		jobs;
	uint64		n;
	uint64		nfailed;
	Oid			types[2] = {TEXTARRAYOID, TEXTOID};
	Datum		values[2];
	SPITupleTable *tuptable;

	*new_builds = false;
	n = sms_jobs_activate_due(&jobs);
	if (n == 0)
		return 0;
	values[0] = jobs;
	values[1] = CStringGetTextDatum(sms_site_code);

	/*
	 * The collections these jobs target, locked as the Collection Evaluator
	 * locks one before changing its members: an evaluation that changed
	 * members and has not committed is waited for, so the statements below
	 * see its members; one that comes after sees these jobs active and adds
	 * or removes their machines itself.  Without it a machine that joined
	 * while its job was activated belonged to neither.
	 */
	ret = sms_execute_for_items(n, "SELECT 1 FROM smsdist.collections c"
						   " WHERE c.collection_id IN (SELECT j.target_collection_id FROM smsdist.jobs j"
						   "                            WHERE j.job_id = ANY ($1))"
						   " ORDER BY c.collection_id FOR SHARE",
						   1, types, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "smsdist scheduler: locking the jobs' collections failed: SPI code %d", ret);

	/* one row per (job, target site): the Send phase for a child, Distribute here */
	sms_site_rows_create(jobs, n);

	/* one row per (run-command job, target machine) */
	ret = sms_execute_for_items(n, "INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code, state)"
						   "SELECT j, m.sms_id, m.site_code, 'waiting'"
						   "  FROM unnest($1) j CROSS JOIN LATERAL smsdist.job_target_machines(j) m"
						   "    ON CONFLICT DO NOTHING",
						   1, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "smsdist scheduler: recording target machines failed: SPI code %d", ret);

	/* a job that resolved to no site fails, with the reason */
	tuptable = sms_jobs_fail_without_sites(jobs, n, &nfailed);
	message_per_job(tuptable, nfailed, SMS_ERROR, SMS_MSG_JOB_NO_TARGETS, "Job %s failed: %s.");

	/*
	 * The package versions these jobs send must be compressed: record the
	 * builds (a failed one is tried again); the builders are started below.
	 */
	ret = sms_execute_for_items(n, "INSERT INTO smsdist.package_builds (package_id, source_version)"
						   "SELECT DISTINCT j.package_id, j.source_version FROM smsdist.jobs j"
						   " WHERE j.job_id = ANY ($1) AND j.state = 'active'"
						   "   AND j.job_type IN ('run_command', 'share_package')"
						   "    ON CONFLICT (package_id, source_version) DO UPDATE"
						   "   SET state = 'building', error = NULL, stream_id = NULL, updated_at = clock_timestamp(),"
						   "       retrying_since = NULL, next_attempt_at = NULL"
						   " WHERE package_builds.state IN ('failed', 'purged')",
						   1, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "smsdist scheduler: recording package builds failed: SPI code %d", ret);
	*new_builds = SPI_processed > 0;

	/* status message 3000 for every job that is now active */
	ret = sms_execute_for_items(n, "INSERT INTO smsdist.status_messages"
						   "       (site_code, component, severity, message_id, message, job_id, package_id)"
						   "SELECT $2, 'scheduler', 'informational', " CppAsString2(SMS_MSG_JOB_ACTIVATED) ","
						   "       format('Job %s is active: Start After time reached; %s target site%s, %s target machine%s.',"
						   "              j.job_id, s.n, CASE WHEN s.n = 1 THEN '' ELSE 's' END,"
						   "              m.n, CASE WHEN m.n = 1 THEN '' ELSE 's' END),"
						   "       j.job_id, j.package_id"
						   "  FROM smsdist.jobs j"
						   "  CROSS JOIN LATERAL (SELECT count(*) AS n FROM smsdist.job_site_status x WHERE x.job_id = j.job_id) s"
						   "  CROSS JOIN LATERAL (SELECT count(*) AS n FROM smsdist.job_target_status x WHERE x.job_id = j.job_id) m"
						   " WHERE j.job_id = ANY ($1) AND j.state = 'active'"
						   " ORDER BY j.job_id",
						   2, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "smsdist scheduler: recording activations failed: SPI code %d", ret);
	return n;
}

/*
 * The builders this Scheduler started and that may still be starting: a
 * builder takes the build's advisory lock only once it is connected (tens of
 * milliseconds after it was registered), and until then the lock test alone
 * would start another one at every step -- five for one 1 KB package were
 * seen, all competing for the CPU with the one that did the work.
 */
typedef struct StartedBuilder
{
	char		package_id[16];
	int			version;
	BackgroundWorkerHandle *handle;
} StartedBuilder;

static List *started_builders = NIL;

/* true if a builder we started for this build has not stopped yet */
static bool
builder_running(const char *package_id, int version)
{
	ListCell   *lc;

	foreach(lc, started_builders)
	{
		StartedBuilder *b = lfirst(lc);
		pid_t		pid;

		if (strcmp(b->package_id, package_id) == 0 && b->version == version)
		{
			if (GetBackgroundWorkerPid(b->handle, &pid) != BGWH_STOPPED)
				return true;
			started_builders = foreach_delete_current(started_builders, lc);
			pfree(b->handle);
			pfree(b);
			return false;
		}
	}
	return false;
}

/* Forget the builders that have stopped. */
static void
forget_stopped_builders(void)
{
	ListCell   *lc;

	foreach(lc, started_builders)
	{
		StartedBuilder *b = lfirst(lc);
		pid_t		pid;

		if (GetBackgroundWorkerPid(b->handle, &pid) == BGWH_STOPPED)
		{
			started_builders = foreach_delete_current(started_builders, lc);
			pfree(b->handle);
			pfree(b);
		}
	}
}

/*
 * Start a package builder for every build that needs one: state 'building',
 * no builder of ours still running for it, and nobody holding its advisory
 * lock (never started, or its builder died).  Returns false if some could
 * not be started (no free worker slot).
 */
static bool
start_builders(void)
{
	int			ret;
	SPITupleTable *tuptable;
	uint64		n;
	bool		all = true;

	ret = sms_execute_kept_noargs("SELECT package_id::text, source_version FROM smsdist.package_builds"
								  " WHERE state = 'building'"
								  /* a full package store: not before its back-off has passed */
								  "   AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp())"
								  "   AND pg_try_advisory_xact_lock(smsdist.build_lock_key(package_id, source_version))"
								  " ORDER BY created_at",
								  false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "smsdist scheduler: finding package builds failed: SPI code %d", ret);
	tuptable = SPI_tuptable;
	n = SPI_processed;
	forget_stopped_builders();
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *package_id = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 1);
		int			version = DatumGetInt32(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 2, &isnull));

		BackgroundWorkerHandle *handle = NULL;
		MemoryContext old;
		bool		ok;

		if (builder_running(package_id, version))
			continue;
		/* a small source is built here and now, not by a new process */
		if (sms_build_small_package_here(package_id, version))
			continue;
		old = MemoryContextSwitchTo(TopMemoryContext);	/* the handle outlives the step */
		ok = sms_start_package_builder(MyDatabaseId, package_id, version, &handle);
		if (ok)
		{
			StartedBuilder *b = palloc(sizeof(StartedBuilder));

			strlcpy(b->package_id, package_id, sizeof(b->package_id));
			b->version = version;
			b->handle = handle;
			started_builders = lappend(started_builders, b);
		}
		MemoryContextSwitchTo(old);
		if (!ok)
		{
			all = false;
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start a builder for package %s version %d: no free background worker slot",
							package_id, version),
					 errhint("Raise max_worker_processes; the Scheduler tries again every few seconds.")));
		}
	}
	return all;
}

/* Every entry of a directory but "." and "..". */
static bool
any_name(const char *name)
{
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/*
 * Add to doomed the regular files of dir whose names look_at accepts and
 * that no row names (sql finds the row of the path $1), unless they are
 * younger than five minutes: a file renamed into place whose row is not
 * committed yet, or one being made.  In sms_step_context.
 */
static List *
unnamed_files(List *doomed, const char *dir, bool (*look_at) (const char *name), const char *sql)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	MemoryContext old = MemoryContextSwitchTo(sms_step_context);

	while (d != NULL && (de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char	   *path;
		Datum		arg;
		Oid			type = TEXTOID;
		struct stat st;

		if (!look_at(de->d_name))
			continue;
		path = psprintf("%s/%s", dir, de->d_name);
		/*
		 * (receive_end sets a received file's time when it renames it.)  A
		 * fresh snapshot, taken after the lstat(): a file renamed into
		 * place more than five minutes ago has its row committed by now.
		 */
		if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || time(NULL) - st.st_mtime < 300)
			continue;
		arg = CStringGetTextDatum(path);
		if (SPI_execute_with_args(sql, 1, &type, &arg, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "smsdist scheduler: checking the files of \"%s\" failed", dir);
		if (SPI_processed == 0)
			doomed = lappend(doomed, path);
	}
	if (d != NULL)
		FreeDir(d);
	MemoryContextSwitchTo(old);
	return doomed;
}

/*
 * Keep the package store from growing without end, at most once per
 * smsdist.poll_interval: remove the file of every build of an older version
 * than its package's current one that no pending or active job uses (the
 * row stays, state 'purged', with its manifest), and every package file that
 * no ready build names (its package was deleted).  Files are removed after
 * the rows are committed, so a failure leaves a file too many, never a row
 * that names a missing file.
 */
static void
purge_package_store(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();
	List	   *doomed = NIL;
	ListCell   *lc;
	MemoryContext old;

	if (last != 0 && !TimestampDifferenceExceeds(last, now, sms_poll_interval * 1000))
		return;
	last = now;

	if (sms_execute_kept_noargs("WITH old AS ("
								"  SELECT b.package_id, b.source_version, b.file_path"
								"    FROM smsdist.package_builds b JOIN smsdist.packages p USING (package_id)"
								"   WHERE b.state = 'ready' AND b.source_version < p.source_version"
								"     AND NOT EXISTS (SELECT 1 FROM smsdist.jobs j"
								"                      WHERE j.package_id = b.package_id"
								"                        AND j.source_version = b.source_version"
								"                        AND j.state IN ('pending', 'active'))"
								"     FOR UPDATE OF b SKIP LOCKED)"
								"UPDATE smsdist.package_builds b"
								"   SET state = 'purged', file_path = NULL, updated_at = clock_timestamp()"
								"  FROM old WHERE b.package_id = old.package_id AND b.source_version = old.source_version"
								" RETURNING old.file_path",
								false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "smsdist scheduler: purging old package versions failed");
	old = MemoryContextSwitchTo(sms_step_context);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *path = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (path != NULL)
			doomed = lappend(doomed, pstrdup(path));
	}
	MemoryContextSwitchTo(old);

	/* the deltas to a purged version go with it */
	if (sms_execute_kept_noargs("DELETE FROM smsdist.package_deltas d USING smsdist.package_builds b"
								" WHERE b.package_id = d.package_id AND b.source_version = d.source_version"
								"   AND b.state <> 'ready'"
								" RETURNING d.file_path",
								false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "smsdist scheduler: purging old package deltas failed");
	old = MemoryContextSwitchTo(sms_step_context);
	for (uint64 i = 0; i < SPI_processed; i++)
		doomed = lappend(doomed, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));

	/* package files no ready build names: their package was deleted */
	doomed = unnamed_files(doomed, sms_package_store(), sms_is_package_file_name,
						   "SELECT 1 FROM smsdist.package_builds"
						   " WHERE file_path = $1 OR state = 'building' AND $1 LIKE "
						   SMS_PACKAGE_FILE_SQL_PATTERN);
	/* delta files no delta row names (their package was deleted) */
	doomed = unnamed_files(doomed, sms_delta_dir(sms_package_store()), any_name,
						   "SELECT 1 FROM smsdist.package_deltas WHERE file_path = $1");
	MemoryContextSwitchTo(old);

	if (doomed == NIL)
		return;
	sms_step_commit();
	foreach(lc, doomed)
	{
		char	   *path = lfirst(lc);

		if (unlink(path) != 0 && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove old package file \"%s\": %m", path)));
		else
			ereport(LOG,
					(errmsg("removed package file \"%s\": no job needs it any more", path)));
	}
}

/*
 * The earliest future start_after or expires_at, or the next attempt of a
 * build whose package store was full; DT_NOEND if none.
 */
static TimestampTz
next_due_time(void)
{
	int			ret;
	bool		isnull;
	Datum		d;

	ret = sms_execute_kept_noargs("SELECT least("
								  " (SELECT min(start_after) FROM smsdist.jobs WHERE state = 'pending'),"
								  " (SELECT min(expires_at) FROM smsdist.jobs"
								  "   WHERE state IN ('pending', 'active') AND expires_at IS NOT NULL),"
								  " (SELECT min(next_attempt_at) FROM smsdist.package_builds"
								  "   WHERE state = 'building' AND next_attempt_at > clock_timestamp()))",
								  false, 1);	/* not read-only: it must see this step's updates */
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist scheduler: finding the next due job failed: SPI code %d", ret);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/*
 * Step 3, at most once a second: it reads every active run-command job,
 * about 1.5 ms a step with a thousand of them, and a step that comes for
 * a new job should not pay that.  It is the net under the completion in
 * the transaction that makes a job's last target final, and expiring an
 * advertisement's targets is due to the second at best.  Returns when it
 * is due next: a skipped sweep is made up by then.
 */
static TimestampTz
sweep_finished(TimestampTz now)
{
	static TimestampTz last = 0;

	if (last != 0 && !TimestampDifferenceExceeds(last, now, SWEEP_INTERVAL_MS))
		return TimestampTzPlusMilliseconds(last, SWEEP_INTERVAL_MS);
	last = now;
	if (sms_execute_kept_noargs("SELECT smsdist.finish_done_jobs(), smsdist.expire_advertisement_targets()",
								false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist scheduler: completing finished jobs failed");
	return DT_NOEND;
}

TimestampTz
sms_scheduler_step(void)
{
	TimestampTz next;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz net_due;
	uint64		nactivated;
	bool		new_builds;

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}

	/*
	 * Due jobs first: a wake-up is usually for one, and the housekeeping
	 * below would delay it by a millisecond or more.  A due job whose
	 * expiry time has passed too is not activated, but expired right after.
	 */
	nactivated = activate_due_jobs(&new_builds);
	if (nactivated >= SMS_ACTIVATE_BATCH)
		return GetCurrentTimestamp();	/* more may be due: go again at once */

	/*
	 * Jobs whose packages need no build (received from the parent, or
	 * built already) are committed at once: that wakes the Sender and the
	 * Despooler now, not after the rest of this step.  A new build is
	 * committed with the jobs, below, once it is started or made.
	 */
	if (nactivated > 0 && !new_builds)
		sms_step_commit();
	expire_jobs();
	net_due = sweep_finished(now);
	if (!start_builders())
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);
	purge_package_store();

	/*
	 * A due time already past means a job we skipped because someone holds
	 * its row lock: look again in a second rather than spin.
	 */
	next = next_due_time();
	now = GetCurrentTimestamp();
	if (next <= now)
		next = TimestampTzPlusMilliseconds(now, 1000);
	return Min(next, net_due);
}
