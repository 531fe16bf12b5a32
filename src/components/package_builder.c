/*-------------------------------------------------------------------------
 *
 * package_builder.c
 *	  The Scheduler's package compression: one builder process per package
 *	  version that a newly active job needs.
 *
 * In SMS, phase 1 of a job: "the SMS Scheduler compresses the entire package and
 * all subdirectories".  Compressing a large package takes seconds to
 * minutes, so the Scheduler does not do it inside its own loop (due jobs
 * would wait behind it): it records the need as a row of
 * smsdist.package_builds in state 'building' and starts a package builder,
 * a dynamic background worker, for it.
 *
 * Terms:
 *	build		(package_id, source_version) -> one package file in the
 *				package store (GUC smsdist.package_store), made once and
 *				reused by every job that sends that version.
 *	builder		the dynamic worker that makes it: it holds a session
 *				advisory lock on the build for as long as it runs, so the
 *				Scheduler can tell a live build from one whose builder died
 *				(then it starts another; the lock goes with the process).
 *
 * A builder writes the tar stream (package_archive.c) while compressor
 * workers compress it in parallel (compress.c), records progress
 * (bytes_done) about once a second, and at the end marks the build ready
 * (with size, SHA-256 and manifest) or failed (with the reason, and fails the
 * jobs waiting for it).  A full package store fails nothing: the build
 * waits, with the reason, and is started again with back-off
 * (record_store_full).  A file that changes while it is being read makes
 * the builder start over, up to three times.  Everything it leaves behind
 * on a crash has a temporary name that the next builder of the same build
 * removes.
 *
 * A source smaller than one compression chunk (4 MB) is built by the
 * Scheduler itself, in its step (sms_build_small_package_here): the build
 * takes less time than starting a builder would.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "file_util.h"
#include "package_archive.h"
#include "package_builder.h"
#include "status.h"
#include "validate.h"
#include "wakeup.h"
#include "package_store.h"
#include "job_state.h"
#include "compress.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "common/file_perm.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define BUILD_ATTEMPTS	3

/* What the Scheduler hands a builder in bgw_extra. */
typedef struct BuilderArgs
{
	Oid			dboid;
	char		package_id[16];
	int32		source_version;
} BuilderArgs;

static void
ensure_dir(const char *path)
{
	if (pg_mkdir_p(pstrdup(path), pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create package store \"%s\": %m", path)));
}

/*
 * Start a builder for (package, version) if none is running.  Called by the
 * Scheduler inside its step; the builder waits for the Scheduler's
 * transaction (which holds the build's advisory lock for its test) to end.
 */
bool
sms_start_package_builder(Oid dboid, const char *package_id, int source_version,
						  BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;
	BuilderArgs args;

	memset(&args, 0, sizeof(args));
	args.dboid = dboid;
	strlcpy(args.package_id, package_id, sizeof(args.package_id));
	args.source_version = source_version;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "smsdist", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "smsdist_package_builder_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "smsdist package builder %s.%d", package_id, source_version);
	strlcpy(worker.bgw_type, "smsdist package builder", BGW_MAXLEN);
	StaticAssertStmt(sizeof(BuilderArgs) <= BGW_EXTRALEN, "builder arguments too large");
	memcpy(worker.bgw_extra, &args, sizeof(args));
	/* the Scheduler's latch is set when the builder stops: it looks again */
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/* Run one SQL statement with text arguments in its own transaction. */
static void
exec_in_xact(const char *sql, int nargs, Datum *values, Oid *types)
{
	/* a transaction leaves CurrentResourceOwner NULL: keep the build's */
	ResourceOwner build_owner = CurrentResourceOwner;
	MemoryContext build_cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist package builder: statement failed: %s", sql);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	CurrentResourceOwner = build_owner;
	/* (a commit leaves TopMemoryContext current; the caller may be mid-walk) */
	MemoryContextSwitchTo(build_cxt);
}

typedef struct ProgressArg
{
	const char *package_id;
	int			version;
	TimestampTz last;
	SmsCompressJob *job;		/* the compression under way, if any */
} ProgressArg;

/*
 * Record bytes_done (input bytes compressed so far), committed so that
 * other sessions see it, at most about once a second: called after every
 * block the tar writer reads and every chunk the leader compresses or
 * appends, so it is called often enough whatever the leader is doing.
 *
 * file_bytes >= 0: the stream file is final up to there (a member was
 * appended); a Sender that follows this build sends it on at once.  Only
 * while one follows a build is it woken (a Sender step for nothing, 50
 * times a build, costs the build CPU).
 */
static void
report_progress(int64 done, int64 file_bytes, void *arg)
{
	ProgressArg *p = (ProgressArg *) arg;
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[3];
	Oid			types[3] = {TEXTOID, INT4OID, INT8OID};

	if (file_bytes >= 0 && pg_atomic_read_u32(&sms_shared->sender_follows_build) != 0)
		sms_wake_now(SMS_SENDER);
	if (!TimestampDifferenceExceeds(p->last, now, 1000))
		return;
	p->last = now;
	values[0] = CStringGetTextDatum(p->package_id);
	values[1] = Int32GetDatum(p->version);
	values[2] = Int64GetDatum(done);
	exec_in_xact("UPDATE smsdist.package_builds SET bytes_done = $3, updated_at = clock_timestamp()"
				 " WHERE package_id = $1 AND source_version = $2",
				 3, values, types);
}

/* Remove what an earlier, crashed builder of this build left. */
static void
remove_leftovers(const char *store, const char *package_id, int version)
{
	DIR		   *dir = AllocateDir(store);
	struct dirent *de;

	while ((de = ReadDir(dir, store)) != NULL)
	{
		char		path[MAXPGPATH];

		if (!sms_is_build_leftover(de->d_name, package_id, version))
			continue;
		snprintf(path, sizeof(path), "%s/%s", store, de->d_name);

		/*
		 * Not an error if something stays: the compressors of a builder
		 * that was killed may still be writing into its parts directory
		 * for a moment (seen as "Directory not empty").  This build uses
		 * names of its own; what stays is removed once the build is ready.
		 */
		(void) sms_remove_tree_or_warn(path);
	}
	FreeDir(dir);
}

/*
 * The build is ready: record the file, its hash and manifest, wake the
 * Sender and the Despooler, and say so (status message 3100).  In the
 * caller's transaction, SPI connected.
 */
static void
record_ready(const char *package_id, int version, const char *store,
			 SmsManifest *manifest, int64 out_bytes, int64 stored_bytes,
			 const char *sha256_hex, TimestampTz started)
{
	Datum		values[8];
	Oid			types[8] = {TEXTOID, INT4OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, INT8OID, INT4OID};
	long		secs;
	int			usecs;
	int			files = 0;
	SmsStatusRefs refs = {0};

	/* file_count: the regular files, as the Despooler counts a received one */
	for (int i = 0; i < manifest->nentries; i++)
		files += (manifest->entries[i].is_dir || manifest->entries[i].is_link) ? 0 : 1;
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	values[0] = CStringGetTextDatum(package_id);
	values[1] = Int32GetDatum(version);
	values[2] = CStringGetTextDatum(sms_package_file_path(store, package_id, version));
	values[3] = Int64GetDatum(out_bytes);
	values[4] = CStringGetTextDatum(sha256_hex);
	values[5] = CStringGetTextDatum(sms_manifest_to_text(manifest));
	values[6] = Int64GetDatum(manifest->total_bytes);
	values[7] = Int32GetDatum(files);
	if (sms_execute_kept("WITH b AS ("
						 "UPDATE smsdist.package_builds"
						 "   SET state = 'ready', file_path = $3, bytes = $4, sha256 = $5,"
						 "       manifest = $6, source_bytes = $7, file_count = $8,"
						 "       bytes_done = $7, finished_at = clock_timestamp(),"
						 "       updated_at = clock_timestamp(), builder_pid = NULL,"
						 "       retrying_since = NULL, next_attempt_at = NULL"
						 " WHERE package_id = $1 AND source_version = $2 RETURNING 1) "
						 "SELECT smsdist.wake('sender'), smsdist.wake('despooler')",
						 8, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist package builder: recording the build failed");
	refs.package_id = package_id;
	sms_status_message(SMS_SCHEDULER, SMS_INFO, SMS_MSG_PACKAGE_COMPRESSED, &refs,
					   "Package %s version %d compressed: %d entries, %lld bytes into %lld bytes (level %d; %lld bytes stored as they were, already compressed) in %.1f s.",
					   package_id, version, manifest->nentries,
					   (long long) manifest->total_bytes, (long long) out_bytes,
					   sms_compression_level, (long long) stored_bytes, secs + usecs / 1e6);
}

/*
 * The build failed: it and every job waiting for it fail, with the reason
 * (status message 3101; job_state.c moves the jobs).  In the caller's transaction, SPI connected.
 */
static void
record_failed(const char *package_id, int version, const char *reason)
{
	Datum		values[3];
	Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};

	values[0] = CStringGetTextDatum(package_id);
	values[1] = Int32GetDatum(version);
	values[2] = CStringGetTextDatum(reason);
	if (sms_execute_kept("WITH b AS ("
					 "  UPDATE smsdist.package_builds"
					 "     SET state = 'failed', error = $3, finished_at = clock_timestamp(),"
					 "         updated_at = clock_timestamp(), builder_pid = NULL,"
					 "         retrying_since = NULL, next_attempt_at = NULL"
					 "   WHERE package_id = $1 AND source_version = $2 RETURNING 1)"
					 "INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message, package_id)"
					 " VALUES (current_setting('smsdist.site_code'), 'scheduler', 'error', "
					 CppAsString2(SMS_MSG_PACKAGE_FAILED) ","
					 "         'Package ' || $1 || ' version ' || $2 || ' could not be compressed: ' || $3, $1)",
							  3, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist package builder: recording the failure failed");
	sms_jobs_fail_build(package_id, version, reason);
}

/*
 * The package store is full: the build stays 'building', with the reason
 * (the store, what is free there, the size of the source) in its error, and
 * the Scheduler starts a builder for it again at next_attempt_at -- 1 s
 * after the first failure, doubling with each attempt up to
 * smsdist.poll_interval -- so the build goes on by itself once room is
 * made; the jobs wait meanwhile.  After smsdist.disk_full_give_up_after of
 * failures it fails as any build does (record_failed).  Status message
 * 3102 says it once per run of failures.  In the caller's transaction, SPI
 * connected.
 */
static void
record_store_full(const char *package_id, int version, const char *store, int64 needed,
				  const char *error)
{
	Datum		values[5];
	Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, INT4OID, INT4OID};
	bool		isnull;
	char	   *reason;
	bool		give_up;
	bool		first;
	TimestampTz next;
	SmsStatusRefs refs = {0};

	reason = sms_disk_full_reason("package store", store, needed, error);
	values[0] = CStringGetTextDatum(package_id);
	values[1] = Int32GetDatum(version);
	values[2] = CStringGetTextDatum(reason);
	values[3] = Int32GetDatum(sms_disk_full_give_up_after);
	values[4] = Int32GetDatum(Max(sms_poll_interval, 1));
	if (sms_execute_kept("WITH old AS ("
						 "  SELECT retrying_since FROM smsdist.package_builds"
						 "   WHERE package_id = $1 AND source_version = $2 AND state = 'building' FOR UPDATE)"
						 "UPDATE smsdist.package_builds b"
						 "   SET error = $3, builder_pid = NULL, stream_id = NULL,"
						 "       retrying_since = coalesce(old.retrying_since, clock_timestamp()),"
						 "       next_attempt_at = clock_timestamp() + make_interval(secs => least($5,"
						 "           power(2, least(greatest(b.attempts - 1, 0), 20)))),"
						 "       updated_at = clock_timestamp()"
						 "  FROM old"
						 " WHERE package_id = $1 AND source_version = $2 AND state = 'building'"
						 " RETURNING coalesce(clock_timestamp() - old.retrying_since > make_interval(secs => $4), false),"
						 "           old.retrying_since IS NULL, b.next_attempt_at",
						 5, types, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "smsdist package builder: recording the full package store failed");
	if (SPI_processed == 0)
		return;					/* not building any more */
	give_up = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	first = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	next = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (give_up)
	{
		record_failed(package_id, version,
					  psprintf("gave up after %d s (smsdist.disk_full_give_up_after): %s",
							   sms_disk_full_give_up_after, reason));
		return;
	}
	if (first)
	{
		refs.package_id = package_id;
		sms_status_message(SMS_SCHEDULER, SMS_WARNING, SMS_MSG_STORE_FULL_WAITING, &refs,
						   "Package %s version %d waits for room to be compressed: %s; it is tried again by itself, first at %s.",
						   package_id, version, reason, timestamptz_to_str(next));
	}
	(void) sms_execute_kept_noargs("SELECT smsdist.wake('scheduler')", false, 0);
}

/*
 * The build failed for good, or waits for room in the package store: see
 * record_failed and record_store_full.
 */
static void
record_failure(const char *package_id, int version, const char *store, int64 source_bytes,
			   ErrorData *failure)
{
	if (sms_error_is_disk_full(failure))
		record_store_full(package_id, version, store, source_bytes, failure->message);
	else
		record_failed(package_id, version, failure->message);
}

/*
 * True if the regular files under dir add up to less than limit bytes.
 * Stops counting at the limit, so a large tree costs a few stat calls.
 * Anything odd (an unreadable directory) answers false: the real walk
 * reports it properly.
 */
static bool
source_below_walk(const char *dir, int64 limit, int64 *total, int depth)
{
	DIR		   *d;
	struct dirent *de;
	bool		ok = true;

	if (depth > 64 || (d = AllocateDir(dir)) == NULL)
		return false;
	while (ok && (de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char	   *path;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		path = psprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) != 0)
			ok = false;
		else if (S_ISDIR(st.st_mode))
			ok = source_below_walk(path, limit, total, depth + 1);
		else if ((*total += st.st_size) >= limit)
			ok = false;
		pfree(path);
	}
	FreeDir(d);
	return ok;
}

static bool
source_below(const char *dir, int64 limit)
{
	int64		total = 0;

	return source_below_walk(dir, limit, &total, 0);
}

/*
 * The size of the regular files under dir, for progress before the build
 * knows it (package_builds.source_bytes, replaced by the manifest's total
 * when the build is ready).  Anything odd is left to the real walk.
 */
static int64
source_size(const char *dir)
{
	int64		total = 0;

	(void) source_below_walk(dir, PG_INT64_MAX, &total, 0);
	return total;
}

/*
 * A builder's output file may be sent while it is written (sender.c): it
 * gets a new name for every attempt, a stream file (package_store.h), made
 * here (empty) and recorded in the build's row before anything is written
 * to it, and the Sender is woken.  A stream ID is random, so a file of an
 * earlier attempt or an earlier builder is never taken for this one.
 */
static char *
begin_stream(const char *store, ProgressArg *parg)
{
	uint8		rnd[SMS_STREAM_ID_LEN / 2];
	char		id[SMS_STREAM_ID_LEN + 1];
	char	   *path;
	int			fd;
	Datum		values[3];
	Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};

	if (!pg_strong_random(rnd, sizeof(rnd)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random stream ID")));
	for (int i = 0; i < (int) sizeof(rnd); i++)
		sprintf(id + 2 * i, "%02x", rnd[i]);
	path = sms_stream_path(store, parg->package_id, parg->version, id);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create \"%s\": %m", path)));
	close(fd);

	values[0] = CStringGetTextDatum(parg->package_id);
	values[1] = Int32GetDatum(parg->version);
	values[2] = CStringGetTextDatum(id);
	exec_in_xact("UPDATE smsdist.package_builds SET stream_id = $3, updated_at = clock_timestamp()"
				 " WHERE package_id = $1 AND source_version = $2 AND state = 'building'",
				 3, values, types);
	sms_wake_now(SMS_SENDER);
	return path;
}

/* The tar writer's tick (sms_archive_tick): the compressors' progress. */
static void
tar_tick(void *arg)
{
	ProgressArg *p = (ProgressArg *) arg;

	if (p->job != NULL)
		report_progress(sms_compress_progress(p->job), -1, p);
}

/*
 * One attempt: tar + compress into the package file.  Returns the
 * manifest; fills sizes and hash.  parg NULL: no progress is recorded (the
 * caller's transaction is open), and the output is not streamed.
 */
static SmsManifest *
build_once(const char *source, const char *store, const char *package_id, int version,
		   ProgressArg *parg, int64 *tar_bytes, int64 *out_bytes, int64 *stored_bytes, char *sha256_hex)
{
	char	   *tar_path = sms_build_tar_path(store, package_id, version, MyProcPid);
	char	   *parts = sms_build_parts_dir(store, package_id, version, MyProcPid);
	char	   *out_path = sms_package_file_path(store, package_id, version);
	char	   *volatile tmp_path = NULL;
	SmsCompressJob *volatile job = NULL;
	SmsManifest *volatile manifest = NULL;

	PG_TRY();
	{
		struct stat st;

		tmp_path = parg ? begin_stream(store, parg) : sms_build_tmp_path(store, package_id, version);

		/* a source smaller than one chunk is compressed here alone */
		job = sms_compress_begin(tar_path, parts, sms_compression_level,
								 source_below(source, SMS_CHUNK_BYTES) ? 0 : sms_compression_workers);
		pgstat_report_activity(STATE_RUNNING, "writing and compressing package");
		if (parg)
		{
			/* the compressors work while the tar is written: say how far */
			parg->job = job;
			sms_archive_tick = tar_tick;
			sms_archive_tick_arg = parg;
		}
		manifest = sms_archive_write_tar(source, tar_path, false);
		sms_archive_tick = NULL;
		sms_archive_tick_arg = NULL;
		if (stat(tar_path, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat \"%s\": %m", tar_path)));
		*tar_bytes = st.st_size;
		*out_bytes = sms_compress_finish(job, st.st_size, out_path, tmp_path,
										 sha256_hex, stored_bytes,
										 parg ? report_progress : NULL, parg);
		job = NULL;
		if (parg)
			parg->job = NULL;
	}
	PG_CATCH();
	{
		sms_archive_tick = NULL;
		sms_archive_tick_arg = NULL;
		if (parg)
			parg->job = NULL;
		if (job != NULL)
			sms_compress_abort(job);
		(void) unlink(tar_path);
		if (tmp_path != NULL)
			(void) unlink(tmp_path);
		PG_RE_THROW();
	}
	PG_END_TRY();
	(void) unlink(tar_path);
	return manifest;
}

void
smsdist_package_builder_main(Datum main_arg)
{
	BuilderArgs args;
	char	   *volatile source = NULL;
	char	   *store;
	char		sha256_hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	int64		tar_bytes = 0;
	int64		out_bytes = 0;
	int64		stored_bytes = 0;
	int64		source_bytes;
	SmsManifest *volatile manifest = NULL;
	ErrorData  *volatile failure = NULL;
	ProgressArg parg;
	TimestampTz started = GetCurrentTimestamp();
	int			attempt;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	sms_keep_freed_memory();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	sms_set_safe_search_path();
	SetConfigOption("application_name", "smsdist package builder", PGC_USERSET, PGC_S_SESSION);

	/* defense in depth: the ID becomes a file name */
	if (!sms_valid_sms_id(args.package_id, false))
		elog(FATAL, "smsdist package builder: invalid package ID \"%s\"", args.package_id);

	/* claim the build: session advisory lock, waiting out the Scheduler's test */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		Datum		v[2] = {CStringGetTextDatum(args.package_id), Int32GetDatum(args.source_version)};
		Oid			t[2] = {TEXTOID, INT4OID};
		bool		isnull;

		SPI_execute("SET LOCAL lock_timeout = '30s'", false, 0);
		sms_execute_kept("SELECT pg_advisory_lock(smsdist.build_lock_key($1, $2))",
						 2, t, v, NULL, false, 0);
		if (sms_execute_kept("UPDATE smsdist.package_builds b"
							 "   SET attempts = attempts + 1, builder_pid = pg_backend_pid(),"
							 "       started_at = clock_timestamp(), bytes_done = 0, error = NULL, next_attempt_at = NULL,"
							 "       updated_at = clock_timestamp()"
							 "  FROM smsdist.packages p"
							 " WHERE b.package_id = $1 AND b.source_version = $2"
							 "   AND b.state = 'building' AND p.package_id = b.package_id"
							 " RETURNING p.source_directory::text",
							 2, t, v, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "smsdist package builder: could not claim the build");
		if (SPI_processed == 1)
		{
			char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			source = MemoryContextStrdup(TopMemoryContext, s);
		}
		(void) isnull;
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	if (source == NULL)
		proc_exit(0);			/* built meanwhile, or the package is gone */

	/*
	 * The build runs outside any transaction; file descriptors, DSM and
	 * SHA-256 contexts still need a resource owner to belong to.
	 */
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "smsdist package builder");

	store = sms_package_store();

	/* the size first, so that progress has a percent from the start */
	source_bytes = source_size(source);
	{
		Datum		v[3] = {CStringGetTextDatum(args.package_id), Int32GetDatum(args.source_version),
		Int64GetDatum(source_bytes)};
		Oid			t[3] = {TEXTOID, INT4OID, INT8OID};

		exec_in_xact("UPDATE smsdist.package_builds SET source_bytes = $3, updated_at = clock_timestamp()"
					 " WHERE package_id = $1 AND source_version = $2 AND state = 'building'",
					 3, v, t);
	}
	parg.package_id = args.package_id;
	parg.version = args.source_version;
	parg.last = 0;
	parg.job = NULL;

	for (attempt = 1; attempt <= BUILD_ATTEMPTS; attempt++)
	{
		MemoryContext oldcxt = CurrentMemoryContext;

		PG_TRY();
		{
			ensure_dir(store);
			remove_leftovers(store, args.package_id, args.source_version);
			manifest = build_once(source, store, args.package_id, args.source_version, &parg, &tar_bytes, &out_bytes, &stored_bytes, sha256_hex);
			failure = NULL;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(oldcxt);
			failure = CopyErrorData();
			FlushErrorState();
			AbortOutOfAnyTransaction();
		}
		PG_END_TRY();
		if (failure == NULL)
			break;
		/* only a source that changed under us is worth another try */
		if (failure->sqlerrcode != ERRCODE_OBJECT_IN_USE)
			break;
		ereport(LOG,
				(errmsg("package %s version %d: %s; starting over (attempt %d of %d)",
						args.package_id, args.source_version, failure->message,
						attempt + 1, BUILD_ATTEMPTS)));
	}

	if (failure == NULL)
	{
		/* ready, and its status message, in one transaction: one commit less */
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		record_ready(args.package_id, args.source_version, store, manifest,
					 out_bytes, stored_bytes, sha256_hex, started);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		/* what a killed builder's compressors still wrote when this build began */
		remove_leftovers(store, args.package_id, args.source_version);
	}
	else
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		record_failure(args.package_id, args.source_version, store, source_bytes, failure);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		ereport(LOG,
				(errmsg("package %s version %d could not be compressed: %s",
						args.package_id, args.source_version, failure->message)));
	}
	proc_exit(0);
}

/*
 * Make a build whose source is smaller than one compression chunk here, in
 * the caller's transaction (the Scheduler's step, SPI connected, holding
 * the build's transaction advisory lock): starting a builder process costs
 * more than such a build -- about 35 ms against 10 ms for a 1 KB package
 * (bench/run_latency.sh).  Returns false, having done nothing, if the
 * source is larger or cannot be read (a builder then does it, or reports
 * why); true once the build is recorded ready or failed, or if it is not
 * waiting any more.
 */
bool
sms_build_small_package_here(const char *package_id, int version)
{
	Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};
	Oid			types[2] = {TEXTOID, INT4OID};
	char	   *source;
	char	   *store;
	char		sha256_hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	int64		tar_bytes = 0;
	int64		out_bytes = 0;
	int64		stored_bytes = 0;
	SmsManifest *manifest = NULL;
	ErrorData  *failure = NULL;
	TimestampTz started = GetCurrentTimestamp();
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	if (!sms_valid_sms_id(package_id, false))
		return false;
	if (sms_execute_kept("SELECT p.source_directory::text FROM smsdist.package_builds b"
						 "  JOIN smsdist.packages p ON p.package_id = b.package_id"
						 " WHERE b.package_id = $1 AND b.source_version = $2 AND b.state = 'building'",
						 2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist scheduler: reading build %s.%d failed", package_id, version);
	if (SPI_processed != 1)
		return true;
	source = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (!source_below(source, SMS_CHUNK_BYTES))
		return false;
	if (sms_execute_kept("UPDATE smsdist.package_builds"
						 "   SET attempts = attempts + 1, builder_pid = pg_backend_pid(),"
						 "       started_at = clock_timestamp(), bytes_done = 0, error = NULL, next_attempt_at = NULL,"
						 "       updated_at = clock_timestamp()"
						 " WHERE package_id = $1 AND source_version = $2 AND state = 'building'",
						 2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist scheduler: claiming build %s.%d failed", package_id, version);

	store = sms_package_store();
	for (int attempt = 1; attempt <= BUILD_ATTEMPTS; attempt++)
	{
		/* a subtransaction: a failure releases its files and memory, not ours */
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			ensure_dir(store);
			remove_leftovers(store, package_id, version);
			manifest = build_once(source, store, package_id, version, NULL, &tar_bytes, &out_bytes, &stored_bytes, sha256_hex);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			failure = NULL;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(oldcxt);
			failure = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		PG_END_TRY();
		if (failure == NULL || failure->sqlerrcode != ERRCODE_OBJECT_IN_USE)
			break;
		ereport(LOG,
				(errmsg("package %s version %d: %s; starting over (attempt %d of %d)",
						package_id, version, failure->message, attempt + 1, BUILD_ATTEMPTS)));
	}
	if (failure == NULL)
		record_ready(package_id, version, store, manifest, out_bytes, stored_bytes,
					 sha256_hex, started);
	else
	{
		record_failure(package_id, version, store, source_size(source), failure);
		ereport(LOG,
				(errmsg("package %s version %d could not be compressed: %s",
						package_id, version, failure->message)));
	}
	return true;
}
