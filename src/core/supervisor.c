/*-------------------------------------------------------------------------
 *
 * supervisor.c
 *	  The supervisor: starts one worker per built component in the site
 *	  database and keeps them running.
 *
 * The supervisor is the only static background worker (registered by
 * _PG_init).  It connects to no database -- only the shared catalogs -- so
 * that a wrong or missing smsdist.database is reported and waited out rather
 * than turned into a FATAL-and-restart loop.  Each pass of its loop:
 *
 *	- looks up smsdist.database in pg_database; if it does not exist it says
 *	  so (once, in the log and in smsdist.worker_status()) and waits for a
 *	  reload or the next poll;
 *	- if the database changed on reload, stops the workers running in the old
 *	  one before starting new ones;
 *	- starts every component whose worker is not running.  A worker that
 *	  stopped is started again after a delay that doubles (1 s up to
 *	  smsdist.poll_interval) while it keeps stopping within a minute.
 *
 * DROP DATABASE and ALTER DATABASE ... RENAME of the site database would
 * fail while the workers are connected to it.  A utility hook in the backend
 * that runs them asks the supervisor to stop the workers of that database
 * (SmsSharedState.released_db), waits until they are gone, runs the
 * command, and lifts the request; the supervisor then finds the database
 * gone (or renamed) and waits for a new one, or restarts the workers if the
 * command failed.
 *
 * The postmaster tells the supervisor when a worker starts or stops
 * (bgw_notify_pid), which sets its latch, so it never polls for that.  When
 * the supervisor itself stops normally it stops its workers, so a restarted
 * supervisor never runs two workers for one component.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "supervisor.h"
#include "wakeup.h"
#include "worker.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/snapmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define SUPERVISOR_RESTART_SECONDS	5
#define STABLE_RUN_MS				60000	/* a worker that ran this long resets its backoff */

typedef struct ComponentRun
{
	BackgroundWorkerHandle *handle; /* NULL: not started */
	TimestampTz started_at;
	TimestampTz not_before;		/* earliest next start */
	long		backoff_ms;
	bool		warned_no_slot;
} ComponentRun;

static ComponentRun runs[SMS_SUPERVISOR];
static Oid	running_db = InvalidOid;

void
sms_register_supervisor(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = SUPERVISOR_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "smsdist", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "smsdist_supervisor_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "smsdist supervisor", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "smsdist supervisor", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

static bool
start_component(int index, Oid dboid)
{
	BackgroundWorker worker;
	ComponentRun *run = &runs[index];

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;	/* we restart it ourselves */
	strlcpy(worker.bgw_library_name, "smsdist", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "smsdist_component_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "smsdist %s", sms_components[index].name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "smsdist %s", sms_components[index].name);
	worker.bgw_main_arg = Int32GetDatum(index);
	memcpy(worker.bgw_extra, &dboid, sizeof(Oid));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &run->handle))
	{
		run->handle = NULL;
		if (!run->warned_no_slot)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start the %s: no free background worker slot",
							sms_components[index].title),
					 errhint("Raise max_worker_processes (smsdist needs one for its supervisor and one per component); it will keep trying.")));
		run->warned_no_slot = true;
		sms_slot_set_state(index, "cannot start: no free background worker slot (max_worker_processes)");
		return false;
	}
	run->warned_no_slot = false;
	run->started_at = GetCurrentTimestamp();
	return true;
}

/* Ask every running component worker to stop (SIGTERM). */
static void
stop_components(void)
{
	for (int i = 0; i < SMS_SUPERVISOR; i++)
	{
		if (runs[i].handle != NULL)
		{
			TerminateBackgroundWorker(runs[i].handle);
			pfree(runs[i].handle);
			runs[i].handle = NULL;
		}
	}
}

static void
supervisor_exit(int code, Datum arg)
{
	SmsWorkerSlot *slot = &sms_shared->slots[SMS_SUPERVISOR];

	stop_components();
	SpinLockAcquire(&slot->mutex);
	slot->pid = 0;
	slot->latch = NULL;
	strlcpy(slot->state, "stopped", sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
}

/*
 * The OID of a database, or InvalidOid.  Without a database of our own only
 * the nailed shared catalogs can be read, and not through their indexes, so
 * scan pg_database's heap as the autovacuum launcher does.
 */
static Oid
lookup_database(const char *name)
{
	Oid			oid = InvalidOid;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) == 0)
		{
			oid = db->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	CommitTransactionCommand();
	return oid;
}

/*
 * One pass over the components: count those running, start those due (a
 * stopped one again after a back-off that doubles while it keeps stopping
 * soon after it starts), and bring *wake_at forward to the next due start.
 */
static int
supervise_components(Oid dboid, TimestampTz now, TimestampTz *wake_at)
{
	int			running = 0;

	for (int i = 0; i < SMS_SUPERVISOR; i++)
	{
		ComponentRun *run = &runs[i];
		pid_t		pid;

		if (sms_components[i].step == NULL)
			continue;	/* not built in this version */

		if (run->handle != NULL)
		{
			BgwHandleStatus st = GetBackgroundWorkerPid(run->handle, &pid);

			if (st == BGWH_POSTMASTER_DIED)
				proc_exit(1);
			if (st != BGWH_STOPPED)
			{
				running++;
				continue;
			}
			/* it stopped: decide when to start it again */
			pfree(run->handle);
			run->handle = NULL;
			if (TimestampDifferenceExceeds(run->started_at, now, STABLE_RUN_MS))
				run->backoff_ms = 1000;
			else
				run->backoff_ms = run->backoff_ms == 0 ? 1000 :
					Min(run->backoff_ms * 2, (long) sms_poll_interval * 1000L);
			run->not_before = TimestampTzPlusMilliseconds(now, run->backoff_ms);
			ereport(LOG,
					(errmsg("the %s stopped; starting it again in %ld ms",
							sms_components[i].title, run->backoff_ms)));
			SpinLockAcquire(&sms_shared->slots[i].mutex);
			sms_shared->slots[i].restarts++;
			SpinLockRelease(&sms_shared->slots[i].mutex);
		}

		if (now >= run->not_before)
		{
			if (start_component(i, dboid))
				running++;
			else
				run->not_before = TimestampTzPlusMilliseconds(now, 5000);
		}
		if (run->handle == NULL && run->not_before < *wake_at)
			*wake_at = run->not_before;
	}
	return running;
}

void
smsdist_supervisor_main(Datum arg)
{
	SmsWorkerSlot *slot = &sms_shared->slots[SMS_SUPERVISOR];
	char	   *missing_db_warned = NULL;
	uint64		wakes_seen;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	/* shared catalogs only: no database can be missing for us */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("application_name", "smsdist supervisor", PGC_USERSET, PGC_S_SESSION);

	SpinLockAcquire(&slot->mutex);
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	slot->started_at = GetCurrentTimestamp();
	strlcpy(slot->state, "starting", sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
	before_shmem_exit(supervisor_exit, (Datum) 0);

	for (;;)
	{
		TimestampTz now;
		TimestampTz wake_at;
		Oid			dboid;
		long		timeout_ms;

		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		pg_atomic_fetch_add_u64(&slot->steps, 1);
		wakes_seen = pg_atomic_read_u64(&slot->wake_requests);

		now = GetCurrentTimestamp();
		wake_at = TimestampTzPlusMilliseconds(now, (int64) sms_poll_interval * 1000);

		dboid = lookup_database(sms_database);
		SpinLockAcquire(&sms_shared->release_mutex);
		if (OidIsValid(dboid) && sms_shared->released_db == dboid)
			dboid = InvalidOid;		/* being dropped or renamed: keep off */
		SpinLockRelease(&sms_shared->release_mutex);
		if (dboid != running_db && OidIsValid(running_db))
		{
			ereport(LOG,
					(errmsg("smsdist.database changed to \"%s\": stopping the workers of the old database",
							sms_database)));
			stop_components();
			running_db = InvalidOid;
		}

		if (!OidIsValid(dboid) && OidIsValid(lookup_database(sms_database)))
			sms_slot_set_state(SMS_SUPERVISOR, "waiting: database \"%s\" is being dropped or renamed", sms_database);
		else if (!OidIsValid(dboid))
		{
			if (missing_db_warned == NULL || strcmp(missing_db_warned, sms_database) != 0)
			{
				ereport(WARNING,
						(errcode(ERRCODE_UNDEFINED_DATABASE),
						 errmsg("smsdist.database \"%s\" does not exist; smsdist workers will start when it does",
								sms_database),
						 errhint("Create the database, or set smsdist.database and reload the configuration.")));
				if (missing_db_warned)
					pfree(missing_db_warned);
				missing_db_warned = MemoryContextStrdup(TopMemoryContext, sms_database);
			}
			sms_slot_set_state(SMS_SUPERVISOR, "waiting: database \"%s\" does not exist", sms_database);
		}
		else
		{
			int			running;

			running_db = dboid;
			if (missing_db_warned)
			{
				pfree(missing_db_warned);
				missing_db_warned = NULL;
			}

			running = supervise_components(dboid, now, &wake_at);
			sms_slot_set_state(SMS_SUPERVISOR, "supervising %d worker%s in database \"%s\"",
							   running, running == 1 ? "" : "s", sms_database);
		}

		now = GetCurrentTimestamp();
		timeout_ms = wake_at <= now ? 0 : (long) ((wake_at - now + 999) / 1000);
		/* a wake-up whose latch a lock wait consumed (see worker.c) */
		if (pg_atomic_read_u64(&slot->wake_requests) != wakes_seen)
			timeout_ms = 0;
		sms_wait_on_latch(timeout_ms);
	}

	/*
	 * SIGTERM: stop the workers (supervisor_exit) and leave with code 1, so
	 * that the postmaster starts us again unless the server is shutting down
	 * (code 0 would unregister the supervisor until the next server start).
	 */
	proc_exit(1);
}

/*
 * The utility hook: let DROP DATABASE and ALTER DATABASE RENAME of the site
 * database through by stopping its workers first.
 */
static ProcessUtility_hook_type prev_utility_hook = NULL;

static bool
site_workers_running(void)
{
	for (int i = 0; i < SMS_SUPERVISOR; i++)
	{
		pid_t		pid;

		SpinLockAcquire(&sms_shared->slots[i].mutex);
		pid = sms_shared->slots[i].pid;
		SpinLockRelease(&sms_shared->slots[i].mutex);
		if (pid != 0)
			return true;
	}
	return false;
}

static void
set_released_db(Oid dboid)
{
	SpinLockAcquire(&sms_shared->release_mutex);
	sms_shared->released_db = dboid;
	SpinLockRelease(&sms_shared->release_mutex);
	sms_wake_now(SMS_SUPERVISOR);
}

static void
next_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

static void
sms_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				 ProcessUtilityContext context, ParamListInfo params,
				 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	const char *dbname = NULL;
	Oid			dboid = InvalidOid;
	bool		changes_extension = false;

	/* DROP EXTENSION smsdist, ALTER EXTENSION smsdist ...: see worker.c */
	if (IsA(stmt, DropStmt) && ((DropStmt *) stmt)->removeType == OBJECT_EXTENSION)
	{
		ListCell   *lc;

		foreach(lc, ((DropStmt *) stmt)->objects)
			if (strcmp(strVal(lfirst(lc)), SMSDIST_EXTENSION_NAME) == 0)
				changes_extension = true;
	}
	else if (IsA(stmt, AlterExtensionStmt))
		changes_extension = strcmp(((AlterExtensionStmt *) stmt)->extname, SMSDIST_EXTENSION_NAME) == 0;
	else if (IsA(stmt, AlterExtensionContentsStmt))
		changes_extension = strcmp(((AlterExtensionContentsStmt *) stmt)->extname, SMSDIST_EXTENSION_NAME) == 0;
	if (changes_extension)
	{
		LOCKTAG		tag;

		/* wait for the steps under way; none starts until we commit */
		sms_maintenance_locktag(&tag);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}

	if (IsA(stmt, DropdbStmt))
		dbname = ((DropdbStmt *) stmt)->dbname;
	else if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
		dbname = ((RenameStmt *) stmt)->subname;

	if (dbname != NULL && sms_database != NULL && strcmp(dbname, sms_database) == 0)
		dboid = get_database_oid(dbname, true);

	if (!OidIsValid(dboid))
	{
		next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		return;
	}

	set_released_db(dboid);
	PG_TRY();
	{
		/* wait (interruptibly, up to 10 s) for the workers to leave */
		for (int i = 0; i < 200 && site_workers_running(); i++)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 50, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		next_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		set_released_db(InvalidOid);
	}
	PG_END_TRY();
}

void
sms_install_utility_hook(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = sms_utility_hook;
}
