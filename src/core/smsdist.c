/*-------------------------------------------------------------------------
 *
 * smsdist.c
 *	  Library entry point: settings (GUCs), shared memory, the table of
 *	  components, and the SQL functions that show the workers' state.
 *
 * The library must be loaded through shared_preload_libraries: its workers
 * are started by the postmaster and its wake-up slots live in shared memory
 * that can only be reserved at server start.  Loading it any other way (for
 * example by CREATE EXTENSION in a server that does not preload it) is an
 * error that says how to fix it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

PG_MODULE_MAGIC;

void		_PG_init(void);

/* GUCs */
char	   *sms_database = NULL;
char	   *sms_site_code = NULL;
int			sms_poll_interval = 60;
char	   *sms_package_store_dir = NULL;
char	   *sms_source_roots = NULL;
int			sms_compression_level = 6;
int			sms_compression_workers = 2;
bool		sms_test_corrupt_chunk = false;
int			sms_test_compress_delay_ms = 0;
bool		sms_send_while_compressing = true;
bool		sms_extract_while_receiving = true;
bool		sms_store_incompressible = true;
int			sms_send_give_up_after = 3 * 24 * 3600;
int			sms_max_package_files = 100000;
int			sms_max_package_size_mb = 65536;
int			sms_max_path_depth = 64;
int			sms_max_path_length = 1024;
int			sms_max_manifest_size_kb = 65536;

SmsSharedState *sms_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * The components.  A component whose step is NULL is not built yet: the
 * supervisor does not start it (an idle loop pretending to work would hide
 * that), but its wake-up channel already exists so that triggers and
 * outside listeners can use it.
 */
const SmsComponent sms_components[SMS_NUM_COMPONENTS] = {
	[SMS_SCHEDULER] = {"scheduler", "SMS Scheduler", sms_scheduler_step},
	[SMS_SENDER] = {"sender", "SMS Sender", sms_sender_step},
	[SMS_DESPOOLER] = {"despooler", "SMS Despooler", sms_despooler_step},
	[SMS_OFFER_MANAGER] = {"offer_manager", "SMS Offer Manager", sms_offer_manager_step},
	[SMS_INBOX_MANAGER] = {"inbox_manager", "SMS Inbox Manager", sms_inbox_manager_step},
	[SMS_COLLECTION_EVALUATOR] = {"collection_evaluator", "SMS Collection Evaluator", sms_collection_evaluator_step},
	[SMS_STATUS_MANAGER] = {"status_manager", "SMS Status Manager", sms_status_manager_step},
	[SMS_SUPERVISOR] = {"supervisor", "smsdist supervisor", NULL},
};

SmsComponentId
sms_component_by_name(const char *name, bool missing_ok)
{
	for (int i = 0; i < SMS_NUM_COMPONENTS; i++)
	{
		if (strcmp(sms_components[i].name, name) == 0)
			return (SmsComponentId) i;
	}
	if (!missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown smsdist component \"%s\"", name),
				 errhint("Components are scheduler, sender, despooler, offer_manager, inbox_manager, collection_evaluator, status_manager and supervisor.")));
	return SMS_NUM_COMPONENTS;
}

void
sms_slot_set_state(SmsComponentId id, const char *fmt,...)
{
	SmsWorkerSlot *slot = &sms_shared->slots[id];
	char		buf[sizeof(slot->state)];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	SpinLockAcquire(&slot->mutex);
	strlcpy(slot->state, buf, sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
}

void
sms_slot_set_error(SmsComponentId id, const char *msg)
{
	SmsWorkerSlot *slot = &sms_shared->slots[id];

	SpinLockAcquire(&slot->mutex);
	strlcpy(slot->last_error, msg ? msg : "", sizeof(slot->last_error));
	SpinLockRelease(&slot->mutex);
}

static bool
check_site_code_guc(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;			/* unset: workers wait and say so */
	if (!sms_valid_site_code(*newval, false))
	{
		GUC_check_errdetail("A site code is exactly three characters, each an upper-case letter A-Z or a digit 0-9.");
		return false;
	}
	return true;
}

static bool
check_package_store(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!sms_valid_server_path(*newval, "package store", false))
	{
		GUC_check_errdetail("The package store must be an absolute, canonical path (no \".\" or \"..\" components, no trailing /).");
		return false;
	}
	return true;
}

static void
sms_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SmsSharedState)));
}

static void
sms_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sms_shared = ShmemInitStruct("smsdist", sizeof(SmsSharedState), &found);
	if (!found)
	{
		memset(sms_shared, 0, sizeof(SmsSharedState));
		SpinLockInit(&sms_shared->release_mutex);
		sms_shared->released_db = InvalidOid;
		pg_atomic_init_u32(&sms_shared->sender_follows_build, 0);
		for (int i = 0; i < SMS_NUM_COMPONENTS; i++)
		{
			SpinLockInit(&sms_shared->slots[i].mutex);
			pg_atomic_init_u64(&sms_shared->slots[i].wake_requests, 0);
			pg_atomic_init_u64(&sms_shared->slots[i].steps, 0);
			strlcpy(sms_shared->slots[i].state,
					sms_components[i].step || i == SMS_SUPERVISOR ?
					"not started" : "not built in this version",
					sizeof(sms_shared->slots[i].state));
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("smsdist must be loaded via shared_preload_libraries"),
				 errhint("Add smsdist to shared_preload_libraries in postgresql.conf and restart the server.")));

	/*
	 * The supervisor, six components, a package builder and its compressor,
	 * and whatever parallel query uses: with fewer slots a component or a
	 * builder does not start, and the symptom is a slow site, not an error.
	 */
	if (max_worker_processes < 12)
		ereport(WARNING,
				(errmsg("max_worker_processes is %d: smsdist needs at least 12 background worker slots",
						max_worker_processes),
				 errdetail("The supervisor, its six components and a package builder with a compressor use nine; parallel query takes from the same pool."),
				 errhint("Set max_worker_processes = 16 in postgresql.conf and restart the server.")));

	DefineCustomStringVariable("smsdist.database",
							   "Database in which the smsdist workers run (the site database).",
							   NULL,
							   &sms_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("smsdist.site_code",
							   "Three-character code of the site this server is.",
							   "Used to name new packages, jobs and collections and to tell local from remote targets.",
							   &sms_site_code,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_site_code_guc, NULL, NULL);

	DefineCustomIntVariable("smsdist.poll_interval",
							"Safety-net interval at which each worker looks for work even if nobody woke it.",
							"Commits wake the workers at once; this only bounds the delay after a missed wake-up.",
							&sms_poll_interval,
							60,
							1,
							86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("smsdist.package_store",
							   "Directory for compressed package files.",
							   "Empty: pg_smsdist/packages in the data directory.",
							   &sms_package_store_dir,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_package_store, NULL, NULL);

	DefineCustomIntVariable("smsdist.compression_level",
							"zlib level at which packages are compressed (1 fastest, 9 smallest).",
							NULL,
							&sms_compression_level,
							6,
							1,
							9,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.compression_workers",
							"Compressor workers that help a package builder compress one package.",
							"They start compressing while the builder is still writing the tar stream; once it is written the builder compresses too.  Each needs a free slot in max_worker_processes; without one the builder does the work alone.  0: the builder alone.",
							&sms_compression_workers,
							2,
							0,
							64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("smsdist.source_roots",
							   "Directories that package sources must lie under (comma-separated).",
							   "Set by a superuser in postgresql.conf; empty: no package can be built.  "
							   "Symbolic links in the roots are resolved; the data directory and the "
							   "configuration files are refused even below a root.",
							   &sms_source_roots,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT | GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.send_give_up_after",
							"How long the Sender keeps retrying a transfer before the transfer and its job fail.",
							"Counted from the transfer's first attempt; meanwhile the rows are 'retrying' with the reason.",
							&sms_send_give_up_after,
							3 * 24 * 3600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.send_while_compressing",
							 "Send a package to a child site while it is being compressed.",
							 "Only to a child site whose sites hold no version of the package (no delta is possible).",
							 &sms_send_while_compressing,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.store_incompressible",
							 "Store data that is as good as random instead of compressing it.",
							 "Each 64 kB of a package whose bytes are near-random (already compressed) is stored in the gzip stream; off compresses everything at smsdist.compression_level.",
							 &sms_store_incompressible,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.extract_while_receiving",
							 "Extract a package sent while the parent site compresses it as it arrives.",
							 "The Despooler starts an early extractor for the part file; the job then only publishes the tree.",
							 &sms_extract_while_receiving,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	/* Status from machines: limits on what the Status Manager takes in */
	DefineCustomIntVariable("smsdist.status_text_max",
							"The longest status message text taken in from a machine.",
							"A status file or client_status() call with a longer text is refused with the reason.",
							&sms_status_text_max,
							16 * 1024,
							256,
							1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.status_file_max",
							"The largest status file the Status Manager reads from a CAP's status inbox.",
							"Checked before the file is read; a larger file is kept as <name>.bad with the reason.",
							&sms_status_file_max,
							64 * 1024,
							4096,
							64 * 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.client_time_window",
							"How far a machine's time in a status message may be from the site's clock.",
							"Either way; a status message with a client time outside the window is refused with the reason.",
							&sms_client_time_window,
							30 * 86400,
							60,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("smsdist.test_corrupt_next_chunk",
							 "For tests: the Sender flips one byte of the next chunk it sends.",
							 "The receiving site must refuse the chunk and the Sender send it again.",
							 &sms_test_corrupt_chunk,
							 false,
							 PGC_SIGHUP,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.test_compress_delay_ms",
							"For tests: every compression chunk takes this much longer.",
							"Makes a build slow enough to watch what happens while it runs.",
							&sms_test_compress_delay_ms,
							0,
							0,
							60000,
							PGC_SIGHUP,
							GUC_NOT_IN_SAMPLE | GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* signed instruction files (site_key.c) */
	DefineCustomStringVariable("smsdist.signing_key",
							   "The site's Ed25519 private key (PEM), which signs every instruction file for workstations.",
							   "Relative to the data directory unless absolute; created with mode 0600 when it does not exist.  Agents verify the signatures with the public key from smsdist.site_public_key().",
							   &sms_signing_key,
							   "smsdist_signing_key.pem",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	/*
	 * Limits on packages (package_archive.c, package_extract.c): what one
	 * package may hold, checked at build and at extraction before anything
	 * is written.  SUSET: a superuser may raise them for one session's
	 * build_tar() or extract_package(); the workers read the server's.
	 */
	DefineCustomIntVariable("smsdist.max_package_files",
							"Most files and directories one package may hold.",
							"Checked when a package is built and when a package file is extracted.",
							&sms_max_package_files,
							100000,
							1,
							INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_package_size",
							"Most bytes the files of one package may hold together.",
							"Checked when a package is built and, for each file, before it is extracted.",
							&sms_max_package_size_mb,
							65536,
							1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_path_depth",
							"Most directory levels of a path in a package.",
							"A file at the top of the package has depth 1.",
							&sms_max_path_depth,
							64,
							1,
							SMS_PATH_LENGTH_CEILING / 2,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_path_length",
							"Longest relative path in a package, in bytes.",
							"A directory's path counts its trailing slash.",
							&sms_max_path_length,
							1024,
							16,
							SMS_PATH_LENGTH_CEILING,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("smsdist.max_manifest_size",
							"Largest manifest a package may have.",
							"The manifest is read into memory; a larger one is refused before it is read.",
							&sms_max_manifest_size_kb,
							65536,
							1,
							(int) (MaxAllocSize / 1024) - 1,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("smsdist");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sms_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sms_shmem_startup;

	sms_install_utility_hook();
	sms_register_supervisor();
}

/*
 * smsdist.worker_status(): one row per component, from shared memory.
 */
PG_FUNCTION_INFO_V1(smsdist_worker_status);
Datum
smsdist_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < SMS_NUM_COMPONENTS; i++)
	{
		SmsWorkerSlot *slot = &sms_shared->slots[i];
		Datum		values[11];
		bool		nulls[11] = {0};
		SmsWorkerSlot copy;

		SpinLockAcquire(&slot->mutex);
		memcpy(&copy, slot, offsetof(SmsWorkerSlot, wake_requests));
		SpinLockRelease(&slot->mutex);

		values[0] = CStringGetTextDatum(sms_components[i].name);
		values[1] = CStringGetTextDatum(sms_components[i].title);
		if (copy.pid != 0)
			values[2] = Int32GetDatum(copy.pid);
		else
			nulls[2] = true;
		values[3] = CStringGetTextDatum(copy.state);
		values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->wake_requests));
		values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->steps));
#define TS_OR_NULL(n, t) do { if ((t) != 0) values[n] = TimestampTzGetDatum(t); else nulls[n] = true; } while (0)
		TS_OR_NULL(6, copy.started_at);
		TS_OR_NULL(7, copy.last_wake_at);
		TS_OR_NULL(8, copy.last_step_at);
		if (copy.next_step_at != 0 && copy.next_step_at != DT_NOEND && copy.pid != 0)
			values[9] = TimestampTzGetDatum(copy.next_step_at);
		else
			nulls[9] = true;
		if (copy.last_error[0] != '\0')
			values[10] = CStringGetTextDatum(copy.last_error);
		else
			nulls[10] = true;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * smsdist.wake(component text): ask a component to look for work when the
 * calling transaction commits (nothing happens if it rolls back).
 */
PG_FUNCTION_INFO_V1(smsdist_wake);
Datum
smsdist_wake(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	sms_wake_at_commit(sms_component_by_name(name, false));
	PG_RETURN_VOID();
}

/* smsdist.library_version(): the version compiled into smsdist.so */
PG_FUNCTION_INFO_V1(smsdist_library_version);
Datum
smsdist_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(SMSDIST_VERSION));
}

/*
 * For the processes that move packages through memory in large pieces
 * (workers, and the backend that receives a transfer): keep freed memory
 * instead of giving it back to the kernel at once.  glibc serves a large
 * palloc (a transfer chunk, a compressed member) with a fresh mmap, and
 * touching its pages again costs a page fault per 4 kB: on this project's
 * 2-core VM, receiving one 8 MB chunk took about 100 ms that way and about
 * 5 ms with the memory kept (bench/send.sh).  Allocations up to 32 MB come
 * from the heap, and up to 64 MB of free heap is kept, in this process
 * only; other backends of the server keep glibc's defaults.
 */
void
sms_keep_freed_memory(void)
{
#ifdef M_MMAP_THRESHOLD
	static bool done = false;

	if (done)
		return;
	done = true;
	(void) mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	(void) mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

/*
 * Start a helper process of the calling one (a compressor, an inflater, an
 * early extractor): a dynamic background worker that runs function, named
 * name, with dsm_handle (a segment the caller created) as its argument;
 * the caller's latch is set when it stops.  With a valid dboid it may
 * connect to that database (the OID is in bgw_extra); else it has no
 * database connection.  False when no worker slot is free: the caller
 * does the work itself.
 */
bool
sms_start_helper(const char *function, const char *name, uint32 dsm_handle,
				 Oid dboid, struct BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	if (OidIsValid(dboid))
	{
		worker.bgw_flags |= BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		memcpy(worker.bgw_extra, &dboid, sizeof(Oid));
	}
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "smsdist", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	worker.bgw_main_arg = UInt32GetDatum(dsm_handle);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/*
 * The search_path of every worker and helper that connects to the site
 * database.  They run as the bootstrap superuser, so a schema an operator
 * can create objects in (public, in a database created before PostgreSQL
 * 15) must never be searched: an operator's public.=(sms_id, text) would
 * otherwise be chosen over the built-in one and run with the worker's
 * rights.  PGC_S_OVERRIDE: ALTER ROLE or ALTER DATABASE ... SET
 * search_path cannot change it.
 */
void
sms_set_safe_search_path(void)
{
	SetConfigOption("search_path", SMS_WORKER_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
}
