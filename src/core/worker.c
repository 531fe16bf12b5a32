/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The loop every component worker runs: connect, wait for the extension,
 *	  run steps in transactions, sleep on its latch until woken or due.
 *
 * A component worker is a dynamic background worker started by the
 * supervisor with the index of its component as argument and the OID of the
 * site database in bgw_extra.  Each turn of its loop:
 *
 *	1. handles SIGHUP (reload settings) -- SIGTERM is PostgreSQL's die(), so
 *	   it also cancels a running query and ends the worker promptly;
 *	2. in one transaction, checks that the smsdist extension is installed at
 *	   the version this library was built for (if not it says so in its
 *	   state and waits for a wake-up: CREATE/ALTER EXTENSION wake it), then
 *	   runs one step of its component;
 *	3. on error: logs it, records it as a status message in a new
 *	   transaction, and backs off (1 s doubling to smsdist.poll_interval) so
 *	   a persistent fault is reported, not spun on;
 *	4. waits on its latch until woken by a commit, until the time the step
 *	   asked for, or for smsdist.poll_interval -- the safety net that finds
 *	   work whose wake-up was lost.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "status.h"
#include "worker.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

static SmsComponentId my_component = SMS_NUM_COMPONENTS;
static bool started_reported = false;	/* "started" status message written */

/*
 * A step that cannot work for a reason of its own (a setting missing, say)
 * points this at a static string; it becomes the worker's state.
 */
const char *sms_step_note = NULL;

/* Memory that lives for one turn of the loop, across sms_step_commit(). */
MemoryContext sms_step_context = NULL;

static void
clear_slot(int code, Datum arg)
{
	SmsWorkerSlot *slot = &sms_shared->slots[DatumGetInt32(arg)];

	SpinLockAcquire(&slot->mutex);
	slot->pid = 0;
	slot->latch = NULL;
	strlcpy(slot->state, "stopped", sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
}

/*
 * The maintenance lock: every step holds it in share mode (a session lock,
 * so that it survives sms_step_commit()); DROP EXTENSION and ALTER
 * EXTENSION smsdist take it in exclusive mode (utility hook, supervisor.c)
 * before they lock any table.  Without it a step that holds one table and
 * wants the next deadlocks with a DROP that wants them all.
 */
void
sms_maintenance_locktag(LOCKTAG *tag)
{
	/* an advisory lock of this database: keys "SMSD", 1 */
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x534D5344, 1, 2);
}

static bool step_lock_held = false;

static bool
step_lock_acquire(void)
{
	LOCKTAG		tag;

	sms_maintenance_locktag(&tag);
	step_lock_held = LockAcquire(&tag, ShareLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
	return step_lock_held;
}

static void
step_lock_release(void)
{
	LOCKTAG		tag;

	if (!step_lock_held)
		return;
	sms_maintenance_locktag(&tag);
	LockRelease(&tag, ShareLock, true);
	step_lock_held = false;
}

/*
 * Is the extension installed at our version?  Returns NULL if so, else the
 * reason we cannot work.  Must be called in a transaction.  Every step asks,
 * so it reads pg_extension through its index rather than by a query that
 * would be parsed and planned each time.
 */
static const char *
extension_problem(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *installed = NULL;
	const char *problem = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(SMSDIST_EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		installed = isnull ? pstrdup("?") : TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (installed == NULL)
		problem = "waiting for CREATE EXTENSION smsdist";
	else if (strcmp(installed, SMSDIST_VERSION) != 0)
		problem = psprintf("waiting for ALTER EXTENSION smsdist UPDATE (installed %s, library %s)",
						   installed, SMSDIST_VERSION);
	return problem;
}

/*
 * Run one step in its own transaction.  Returns the time the step wants to
 * run next; sets *waiting_reason when the extension is not usable.
 */
static TimestampTz
run_step(const SmsComponent *comp, const char **waiting_reason)
{
	TimestampTz next;
	const char *problem;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	problem = step_lock_acquire() ? extension_problem() :
		"waiting: the smsdist extension is being dropped or updated";
	if (problem != NULL)
	{
		static char reason[128];

		/* copy out of SPI memory, which SPI_finish() frees */
		strlcpy(reason, problem, sizeof(reason));
		*waiting_reason = reason;
		next = DT_NOEND;
	}
	else
	{
		*waiting_reason = NULL;
		sms_step_note = NULL;
		pgstat_report_activity(STATE_RUNNING, comp->title);
		if (!started_reported)
		{
			sms_status_message(my_component, SMS_INFO, SMS_MSG_COMPONENT_STARTED, NULL,
							   "%s started (process %d)", comp->title, MyProcPid);
			started_reported = true;
		}
		next = comp->step();
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	step_lock_release();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return next;
}

/*
 * Commit the step's work so far and continue in a new transaction: for
 * steps that take long (the Despooler's), so that their progress and their
 * claims are visible while they work.  The caller must hold no SPI tuple
 * tables it still needs, and nothing else palloc'd in SPI memory (the
 * current context during a step): SPI_finish() frees it.  What must live
 * across this call belongs in sms_step_context.
 */
void
sms_step_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

/*
 * Record an error as a status message, in a fresh transaction.  If even that
 * fails (the extension was dropped under us, say), the server log has it.
 */
static void
record_error(const SmsComponent *comp, const char *message)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (extension_problem() == NULL)
			sms_status_message(my_component, SMS_ERROR, SMS_MSG_COMPONENT_ERROR, NULL,
							   "%s failed: %s", comp->title, message);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
}

/*
 * A worker of a supervisor that has just been restarted may still be
 * stopping: let it finish so that one component never runs twice.
 */
static void
wait_for_previous_instance(const SmsComponent *comp, SmsWorkerSlot *slot)
{
	for (int tries = 0;; tries++)
	{
		pid_t		other;

		SpinLockAcquire(&slot->mutex);
		other = slot->pid;
		SpinLockRelease(&slot->mutex);
		if (other == 0 || other == MyProcPid || kill(other, 0) != 0)
			break;
		if (tries >= 100)
			ereport(FATAL,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("another %s (process %d) is still running", comp->title, (int) other)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Sleep until woken, until the step's due time (next), or for the poll --
 * never before not_before (an error's back-off).  wakes_seen is the wake-up
 * count read when the last step began.
 */
static void
sleep_until_due(SmsWorkerSlot *slot, TimestampTz next, TimestampTz not_before,
				uint64 wakes_seen)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake_at;
	long		timeout_ms;

	wake_at = TimestampTzPlusMilliseconds(now, (int64) sms_poll_interval * 1000);
	if (next < wake_at)
		wake_at = next;
	if (not_before > wake_at)
		wake_at = not_before;
	timeout_ms = wake_at <= now ? 0 :
		(long) ((wake_at - now + 999) / 1000);	/* round up: never wake early */

	/*
	 * A wake-up that came during the step may have been consumed: any lock
	 * wait inside the step (the commit of a transaction that notified waits
	 * for the cluster-wide NOTIFY lock, for one) sleeps on the same latch and
	 * resets it.  The counter is bumped before the latch is set, so comparing
	 * it here catches every wake-up that the latch may have lost; a later one
	 * sets the latch again.
	 */
	if (now >= not_before && pg_atomic_read_u64(&slot->wake_requests) != wakes_seen)
		timeout_ms = 0;

	SpinLockAcquire(&slot->mutex);
	slot->next_step_at = wake_at;
	SpinLockRelease(&slot->mutex);

	sms_wait_on_latch(timeout_ms);
}

/*
 * Sleep until the latch is set or timeout_ms pass (not at all if 0); the
 * process exits if the postmaster dies.
 */
void
sms_wait_on_latch(long timeout_ms)
{
	if (timeout_ms <= 0)
		return;
	(void) WaitLatch(MyLatch,
					 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 timeout_ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

/*
 * Connect a component's worker or helper to the site database (its OID in
 * bgw_extra), as every one of them runs: SIGHUP reloads the settings,
 * SIGTERM ends it (die(), which also cancels a running query), a fixed
 * search_path, no JIT, and appname as application_name.
 */
static void
connect_to_site_database(const char *appname)
{
	Oid			dboid;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	sms_keep_freed_memory();

	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	sms_set_safe_search_path();
	/*
	 * No JIT compilation: a component's statements are short, and the
	 * estimated cost of some passes the JIT thresholds when their tables
	 * have just grown (a job for 100,000 machines) and have no statistics
	 * yet; compiling took 0.2-0.7 s each time such a statement ran.
	 */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_SESSION);
}

/*
 * A helper's cleanup after a failed step, in a transaction of its own under
 * the maintenance lock (not while the extension is being dropped); an
 * error in it is logged, and the helper still stops normally.
 */
static void
run_helper_cleanup(void (*cleanup) (void))
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (step_lock_acquire() && extension_problem() == NULL)
			cleanup();
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		step_lock_release();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		step_lock_release();
	}
	PG_END_TRY();
}

/*
 * The loop of a helper process that shares a component's work (a second
 * PCM writer of the Despooler's): connected like the component's worker
 * (same database, search_path, no JIT), it runs step in transactions, each
 * under the maintenance lock, until step returns false (no more work), the
 * extension is being dropped or updated, or SIGTERM.  A step that fails is
 * rolled back and the helper stops, leaving the work to its component:
 * the error goes to the server log at LOG level, and cleanup (if given)
 * runs in a transaction of its own.  Status messages are the component's.
 */
void
sms_helper_loop(SmsComponentId component, bool (*step) (void), void (*cleanup) (void))
{
	MemoryContext loop_cxt;
	char		appname[NAMEDATALEN];
	volatile bool more = true;

	my_component = component;
	snprintf(appname, sizeof(appname), "%s", MyBgworkerEntry->bgw_name);
	connect_to_site_database(appname);

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "smsdist helper loop",
									 ALLOCSET_DEFAULT_SIZES);
	sms_step_context = loop_cxt;
	while (more)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		PG_TRY();
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			SPI_connect();
			PushActiveSnapshot(GetTransactionSnapshot());
			more = step_lock_acquire() && extension_problem() == NULL && step();
			SPI_finish();
			PopActiveSnapshot();
			CommitTransactionCommand();
			step_lock_release();
			pgstat_report_stat(false);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(loop_cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			step_lock_release();
			ereport(LOG,
					(errmsg("%s stopped, leaving its work to the %s: %s",
							appname, sms_components[component].title, edata->message)));
			more = false;
			if (cleanup != NULL)
				run_helper_cleanup(cleanup);
		}
		PG_END_TRY();
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextDelete(loop_cxt);
	sms_step_context = NULL;
}

void
smsdist_component_main(Datum arg)
{
	int			index = DatumGetInt32(arg);
	const SmsComponent *comp;
	SmsWorkerSlot *slot;
	Oid			dboid;
	MemoryContext loop_cxt;
	volatile long backoff_ms = 0;
	volatile TimestampTz not_before = 0;
	volatile uint64 wakes_seen = 0;
	char		appname[NAMEDATALEN];

	if (index < 0 || index >= SMS_SUPERVISOR || sms_components[index].step == NULL)
		elog(FATAL, "smsdist: invalid component index %d", index);
	my_component = (SmsComponentId) index;
	comp = &sms_components[index];
	slot = &sms_shared->slots[index];

	snprintf(appname, sizeof(appname), "smsdist %s", comp->name);
	connect_to_site_database(appname);
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));

	wait_for_previous_instance(comp, slot);

	SpinLockAcquire(&slot->mutex);
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	slot->started_at = GetCurrentTimestamp();
	slot->next_step_at = 0;
	strlcpy(slot->state, "starting", sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
	on_shmem_exit(clear_slot, Int32GetDatum(index));

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "smsdist worker loop",
									 ALLOCSET_DEFAULT_SIZES);
	sms_step_context = loop_cxt;

	ereport(LOG,
			(errmsg("%s started in database \"%s\" (OID %u)", comp->title, sms_database, dboid)));

	for (;;)
	{
		TimestampTz now;
		TimestampTz next = DT_NOEND;
		const char *waiting = NULL;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		if (now >= not_before)
		{
			MemoryContextReset(loop_cxt);
			MemoryContextSwitchTo(loop_cxt);

			SpinLockAcquire(&slot->mutex);
			slot->last_step_at = now;
			SpinLockRelease(&slot->mutex);
			pg_atomic_fetch_add_u64(&slot->steps, 1);
			wakes_seen = pg_atomic_read_u64(&slot->wake_requests);

			PG_TRY();
			{
				next = run_step(comp, &waiting);
				MemoryContextSwitchTo(loop_cxt);
				if (waiting != NULL)
				{
					sms_slot_set_state(my_component, "%s", waiting);
					started_reported = false;	/* say so again when it returns */
				}
				else
					sms_slot_set_state(my_component, "%s", sms_step_note ? sms_step_note : "idle");
				backoff_ms = 0;
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				MemoryContextSwitchTo(loop_cxt);
				edata = CopyErrorData();
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				step_lock_release();
				MemoryContextSwitchTo(loop_cxt);
				pgstat_report_activity(STATE_IDLE, NULL);

				sms_slot_set_error(my_component, edata->message);
				record_error(comp, edata->message);

				backoff_ms = backoff_ms == 0 ? 1000 : Min(backoff_ms * 2, (long) sms_poll_interval * 1000L);
				not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff_ms);
				sms_slot_set_state(my_component, "backing off %ld ms after an error", backoff_ms);
				next = not_before;
			}
			PG_END_TRY();

			/*
			 * What the step allocated is not kept while the worker sleeps:
			 * an idle worker holds only what it caches on purpose, however
			 * large its last step was.
			 */
			sms_step_note = NULL;
			MemoryContextReset(loop_cxt);
		}
		else
			next = not_before;

		sleep_until_due(slot, next, not_before, wakes_seen);
	}
}
