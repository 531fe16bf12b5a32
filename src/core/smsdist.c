/*-------------------------------------------------------------------------
 *
 * smsdist.c
 *	  The ground floor of the server library: the settings' variables (GUCs,
 *	  registered by module.c), the shared state and its slots, the table of
 *	  components, the SQL functions that show the workers' state, and the
 *	  process helpers the workers share.  It includes nothing above it; only
 *	  the table of components names the components' step functions (the
 *	  worker loop calls them through it).
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

/* GUCs */
char	   *sms_database = NULL;
char	   *sms_site_code = NULL;
int			sms_poll_interval = 60;
char	   *sms_package_store_dir = NULL;
char	   *sms_source_roots = NULL;
int			sms_compression_level = 6;
int			sms_compression_method = SMS_COMPRESSION_LIBDEFLATE;
int			sms_compression_workers = 2;
int			sms_pcm_helpers = 1;
bool		sms_test_corrupt_chunk = false;
int			sms_test_compress_delay_ms = 0;
bool		sms_send_while_compressing = true;
bool		sms_extract_while_receiving = true;
int			sms_content_validation_interval = 7 * 86400;
bool		sms_store_incompressible = true;
int			sms_send_give_up_after = 3 * 24 * 3600;
int			sms_max_concurrent_sends = 4;
int			sms_max_concurrent_sends_per_site = 1;
int			sms_disk_full_give_up_after = 24 * 3600;
int			sms_max_package_files = 100000;
int			sms_max_package_size_mb = 65536;
int			sms_max_path_depth = 64;
int			sms_max_path_length = 1024;
int			sms_max_manifest_size_kb = 65536;
int			sms_status_text_max = 16 * 1024;
int			sms_status_file_max = 64 * 1024;
int			sms_client_time_window = 30 * 86400;
int			sms_status_retention = 90 * 86400;

SmsSharedState *sms_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * The components.  A component whose step is NULL is not built yet: the
 * supervisor does not start it (an idle loop pretending to work would hide
 * that), but its wake-up channel already exists so that triggers and
 * outside listeners can use it.
 */
/* The step functions are registered by the library's entry point (module.c). */
SmsComponent sms_components[SMS_NUM_COMPONENTS] = {
	[SMS_SCHEDULER] = {"scheduler", "SMS Scheduler", NULL},
	[SMS_SENDER] = {"sender", "SMS Sender", NULL},
	[SMS_DESPOOLER] = {"despooler", "SMS Despooler", NULL},
	[SMS_OFFER_MANAGER] = {"offer_manager", "SMS Offer Manager", NULL},
	[SMS_INBOX_MANAGER] = {"inbox_manager", "SMS Inbox Manager", NULL},
	[SMS_COLLECTION_EVALUATOR] = {"collection_evaluator", "SMS Collection Evaluator", NULL},
	[SMS_STATUS_MANAGER] = {"status_manager", "SMS Status Manager", NULL},
	[SMS_SUPERVISOR] = {"supervisor", "smsdist supervisor", NULL},
};

/*
 * A component's step function, set once in _PG_init: the ground floor
 * names no function of the components above it.
 */
void
sms_register_component_step(SmsComponentId id, SmsStepFunction step)
{
	Assert(id >= 0 && id < SMS_SUPERVISOR);
	sms_components[id].step = step;
}

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

/* Reserve and set up the shared state at server start (from _PG_init). */
void
sms_shmem_install(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sms_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sms_shmem_startup;
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
