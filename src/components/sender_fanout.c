/*-------------------------------------------------------------------------
 *
 * sender_fanout.c
 *	  Sending to several child sites at once.  SMS's Sender had "maximum
 *	  concurrent sendings", for all sites and per site; here each transfer
 *	  of a finished package file runs in a send helper of its own, so that
 *	  a slow site never holds up a fast one, and the Sender stays free for
 *	  its children's reports, advertisements and job control.
 *
 * Terms (see also sender_fanout.h):
 *	limits		smsdist.max_concurrent_sends: running transfers in all;
 *				smsdist.max_concurrent_sends_per_site: running transfers
 *				to one hop (of different jobs: one (job, hop) is one
 *				transfer).  The Sender's claim (sender.c) takes no (job,
 *				hop) that runs, nor any beyond a limit.
 *	reap		forget the helpers that stopped.  A helper commits how its
 *				transfer ended before it stops; one that dies (an ERROR
 *				before it claimed, a FATAL, a crash) leaves its rows
 *				'running', and the next claim resumes them from the
 *				child's offset as after any crash.
 *
 * The Sender's record of running transfers is the helpers themselves: the
 * ones it started (a helper that has not started yet is not in
 * pg_stat_activity) and, for a Sender started again while an old one's
 * helpers were stopping, pg_stat_activity.  The postmaster sets the
 * Sender's latch when a helper stops (bgw_notify_pid), and the Sender
 * stops its helpers when it stops.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "sender_fanout.h"
#include "wakeup.h"
#include "worker.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#define HELPER_TYPE		"smsdist send"

StaticAssertDecl(sizeof(SendHelperArgs) <= BGW_EXTRALEN, "SendHelperArgs must fit in bgw_extra");

/* A helper this Sender started (in TopMemoryContext). */
typedef struct SendHelper
{
	BackgroundWorkerHandle *handle;
	char	   *key;			/* "<job> <hop>" */
} SendHelper;

static List *helpers = NIL;
static bool stop_helpers_registered = false;

/* The Sender stops: so do the transfers it started (they resume later). */
static void
stop_helpers(int code, Datum arg)
{
	ListCell   *lc;

	foreach(lc, helpers)
		TerminateBackgroundWorker(((SendHelper *) lfirst(lc))->handle);
}

/* The keys of the helpers this Sender started, as a text[] Datum. */
Datum
sender_fanout_running(void)
{
	int			n = list_length(helpers);
	Datum	   *keys = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, helpers)
		keys[i++] = CStringGetTextDatum(((SendHelper *) lfirst(lc))->key);
	return PointerGetDatum(construct_array(keys, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Forget the helpers that stopped; answers how many. */
int
sender_fanout_reap(void)
{
	ListCell   *lc;
	int			reaped = 0;

	foreach(lc, helpers)
	{
		SendHelper *h = lfirst(lc);
		pid_t		pid;

		if (GetBackgroundWorkerPid(h->handle, &pid) != BGWH_STOPPED)
			continue;
		helpers = foreach_delete_current(helpers, lc);
		pfree(h->handle);
		pfree(h->key);
		pfree(h);
		reaped++;
	}
	return reaped;
}

/*
 * Start a send helper for (job_id, hop).  false: no free background worker
 * slot (max_worker_processes), and the Sender sends it itself.
 */
bool
sender_fanout_start(const char *job_id, const char *hop)
{
	BackgroundWorker worker;
	SendHelperArgs args = {0};
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	SendHelper *h;

	if (strlen(job_id) >= sizeof(args.job_id) || strlen(hop) >= sizeof(args.hop))
		return false;
	args.dboid = MyDatabaseId;
	strlcpy(args.job_id, job_id, sizeof(args.job_id));
	strlcpy(args.hop, hop, sizeof(args.hop));

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "smsdist", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "smsdist_send_helper_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "smsdist send %s to %s", job_id, hop);
	strlcpy(worker.bgw_type, HELPER_TYPE, BGW_MAXLEN);
	memcpy(worker.bgw_extra, &args, sizeof(args));
	worker.bgw_notify_pid = MyProcPid;
	/* the handle outlives the step: it is reaped in a later one */
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		MemoryContextSwitchTo(old);
		return false;
	}
	if (!stop_helpers_registered)
	{
		before_shmem_exit(stop_helpers, (Datum) 0);
		stop_helpers_registered = true;
	}
	h = palloc(sizeof(SendHelper));
	h->handle = handle;
	h->key = psprintf("%s %s", job_id, hop);
	helpers = lappend(helpers, h);
	MemoryContextSwitchTo(old);
	return true;
}
