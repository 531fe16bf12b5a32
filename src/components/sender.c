/*-------------------------------------------------------------------------
 *
 * sender.c
 *	  The SMS Sender: sends packages to child sites over libpq, and brings
 *	  their distribution status back.
 *
 * In SMS, phase 1 of a job: "the SMS Sender copies the package to the child site
 * or sites."  Here a site is a PostgreSQL server and the copy is made with
 * SQL calls on the child (receiver.c), over a libpq connection described by
 * a row of smsdist.sender_addresses.
 *
 * Terms:
 *	send row	a smsdist.job_site_status row in phase 'send' for a site below
 *				this one (the Scheduler makes one per target site).
 *	hop			the child of this site on the way to a target site: a
 *				grandchild is reached through its parent, whose own Sender
 *				sends it on.  One transfer per (job, hop) carries all of the
 *				job's targets behind that hop.
 *	claim		taking the send rows of one (job, hop) that may be sent now
 *				and marking them running.  A finished package file is sent
 *				by a send helper (sender_fanout.c), several at once within
 *				smsdist.max_concurrent_sends and
 *				smsdist.max_concurrent_sends_per_site; a file still being
 *				compressed is streamed by the Sender itself, one per step.
 *	report		once a hop has the package, the send rows become 'done' and
 *				the job gets a 'distribute' row per target site, which the
 *				Sender keeps current from the child's own rows.
 *
 * This file holds the step and the claim, and moves the send rows when a
 * transfer ends.  The rest is beside it: the transfer itself, a state
 * machine (sender_transfer.c); the send helpers and the limits on
 * transfers at once (sender_fanout.c); the choice of a delta (sender_delta.c);
 * throttling and link measurements (sender_throttle.c); the children's
 * reports (sender_reports.c).
 *
 * Failures (an unreachable site, a refused chunk) put the rows in
 * 'retrying' with the reason and a status message; they are tried again
 * after 2^attempts seconds (at most 60).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "despooler.h"
#include "sender.h"
#include "sender_delta.h"
#include "sender_fanout.h"
#include "sender_reports.h"
#include "sender_throttle.h"
#include "sender_transfer.h"
#include "job_control.h"
#include "replication_manager.h"
#include "status.h"
#include "worker.h"
#include "package_delta.h"
#include "package_store.h"
#include "site_link.h"
#include "job_state.h"
#include "wakeup.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* set by find_send_rows when it failed rows that cannot be routed */
static bool unroutable_found = false;

/*
 * A Sender that follows a build (sending it while it is compressed) waits
 * for the builder most of the time.  So that other sites' transfers, the
 * reports and the advertisements do not wait for the whole build, it steps
 * out when it has waited a while (TRANSFER_YIELDED); the next step
 * then claims no build in progress (skip_streams_once) and does the rest
 * of its work, and a later step takes the stream up again from the child's
 * offset.
 */
static bool skip_streams_once = false;

/* a package file smaller than this is sent by the Sender, not a helper */
#define SEND_HERE_BELOW_BYTES	((int64) 1024 * 1024)

/* whether this Sender has removed what killed delta builders left */
static bool deltas_swept = false;

/*
 * Bytes sent before stepping out, per "job/hop", so that the status
 * message of the transfer counts them all (in TopMemoryContext; a restarted
 * Sender counts from its own start).
 */
static List *sent_before_yield = NIL;

typedef struct SentSoFar
{
	char	   *key;
	int64		sent;
} SentSoFar;

/* whether the Sender stepped out of t's transfer before (it goes on here) */
static bool
stepped_out_of(Transfer *t)
{
	char	   *key = psprintf("%s/%s", t->job_id, t->hop);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, sent_before_yield)
	{
		if (strcmp(((SentSoFar *) lfirst(lc))->key, key) == 0)
			found = true;
	}
	pfree(key);
	return found;
}

static int64
take_sent_so_far(Transfer *t)
{
	char	   *key = psprintf("%s/%s", t->job_id, t->hop);
	ListCell   *lc;

	foreach(lc, sent_before_yield)
	{
		SentSoFar  *e = lfirst(lc);

		if (strcmp(e->key, key) == 0)
		{
			int64		sent = e->sent;

			sent_before_yield = foreach_delete_current(sent_before_yield, lc);
			pfree(e->key);
			pfree(e);
			return sent;
		}
	}
	return 0;
}

static void
keep_sent_so_far(Transfer *t)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	SentSoFar  *e = palloc(sizeof(SentSoFar));

	e->key = psprintf("%s/%s", t->job_id, t->hop);
	e->sent = t->sent;
	sent_before_yield = lappend(sent_before_yield, e);
	MemoryContextSwitchTo(old);
}

/*
 * Find the send rows of one (job, hop) that may be sent now, within the
 * limits on transfers at once, and lock them.  Returns NULL when there is
 * nothing to send now, or when they cannot be routed (unroutable_found:
 * they failed at once).  *stream: the package is still being compressed.
 */
static Transfer *
find_send_rows(bool *stream, int64 *bytes)
{
	Oid			types[4] = {BOOLOID, TEXTARRAYOID, INT4OID, INT4OID};
	Datum		values[4];
	Transfer   *t;
	int			ret;

	values[0] = BoolGetDatum(sms_send_while_compressing && !skip_streams_once);
	values[1] = sender_fanout_running();
	values[2] = Int32GetDatum(sms_max_concurrent_sends);
	values[3] = Int32GetDatum(sms_max_concurrent_sends_per_site);
	ret = sms_execute_kept("WITH running AS (" SENDER_RUNNING_TRANSFERS_SQL("$2") "),"
						   /*
							* the hop of each site with an open send row, once per site:
							* route_hop() for every row would be most of a look when a
							* thousand rows wait for a site that is down
							*/
						   "hops AS MATERIALIZED ("
						   "  SELECT x.site_code, smsdist.route_hop(x.site_code) AS hop"
						   "    FROM (SELECT DISTINCT site_code FROM smsdist.job_site_status"
						   "           WHERE phase = 'send' AND state IN ('waiting', 'retrying', 'running')) x)"
						   "SELECT s.job_id::text, h.hop::text,"
						   "       coalesce(b.state = 'building', false), coalesce(b.bytes, 0)"
						   "  FROM smsdist.job_site_status s"
						   "  JOIN hops h ON h.site_code = s.site_code"
						   "  JOIN smsdist.jobs j ON j.job_id = s.job_id"
						   "  LEFT JOIN smsdist.package_builds b"
						   "    ON b.package_id = j.package_id AND b.source_version = j.source_version"
						   " WHERE s.phase = 'send' AND s.state IN ('waiting', 'retrying', 'running')"
						   "   AND j.state = 'active'"
						   "   AND (j.job_type = 'remove_package' OR b.state = 'ready'"
						   /*
							* still being compressed: sent as it is written, if the
							* hop has a sender address and no site behind it has a
							* version a delta could be made from (sender_delta.c)
							*/
						   "        OR ($1 AND b.state = 'building' AND b.stream_id IS NOT NULL"
						   "            AND EXISTS (SELECT 1 FROM smsdist.sender_addresses a"
						   "                         WHERE a.target_site_code = h.hop AND a.enabled)"
						   "            AND NOT EXISTS ("
						   "            SELECT 1 FROM smsdist.job_site_status s2"
						   "              JOIN smsdist.package_locations l"
						   "                ON l.package_id = j.package_id AND l.site_code = s2.site_code"
						   "             WHERE s2.job_id = s.job_id AND s2.phase = 'send'"
						   "               AND smsdist.route_hop(s2.site_code) = h.hop)))"
						   /* the full package is needed and this site has only a delta: wait for it */
						   "   AND NOT (s.full_package_required AND b.base_version IS NOT NULL)"
						   /* a retry reaches the hop first (job_control.c): its old failure goes */
						   "   AND NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes c"
						   "                    WHERE c.job_id = s.job_id AND c.hop = h.hop)"
						   "   AND (s.state <> 'retrying' OR s.updated_at + make_interval(secs => least(60, power(2, least(s.attempts, 6))))"
						   "        <= clock_timestamp())"
						   /* not under way already, and within the limits (sender_fanout.c) */
						   "   AND NOT EXISTS (SELECT 1 FROM running r"
						   "                    WHERE r.job_id = s.job_id::text AND r.hop = h.hop)"
						   "   AND (SELECT count(*) FROM running) < $3"
						   "   AND (SELECT count(*) FROM running r WHERE r.hop = h.hop) < $4"
						   " ORDER BY j.priority, coalesce(b.state = 'building', false), s.updated_at"
						   " LIMIT 1 FOR UPDATE OF s SKIP LOCKED",
						   4, types, values, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for work failed: SPI code %d", ret);
	if (SPI_processed == 0)
		return NULL;

	t = MemoryContextAllocZero(sms_step_context, sizeof(Transfer));
	t->fd = -1;
	t->job_id = sender_result_value(1);
	t->hop = sender_result_value(2);
	*stream = strcmp(sender_result_value(3), "t") == 0;
	*bytes = strtoll(sender_result_value(4), NULL, 10);
	if (t->hop == NULL)
	{
		/* not below this site: nothing can ever reach it from here */
		unroutable_found = true;
		sms_send_rows_fail_unroutable(t->job_id);
		return NULL;
	}
	return t;
}

/*
 * Mark t's send rows running and read what the transfer needs: the job,
 * the package and its build, and the hop's sender address.
 */
static void
read_transfer(Transfer *t)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[4] = {CStringGetTextDatum(t->job_id), CStringGetTextDatum(t->hop)};
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *sites;
	bool		full_required;
	char	   *build_base;
	char	   *build_state;
	int			ret;

	sms_send_rows_claim(t->job_id, t->hop, &sites, &full_required);
	values[2] = sites ? CStringGetTextDatum(sites) : (Datum) 0;
	nulls[2] = sites ? ' ' : 'n';
	values[3] = BoolGetDatum(full_required);
	ret = sms_execute_kept("SELECT j.job_type::text, j.package_id::text, coalesce(j.source_version, 0),"
						   "       p.name::text, p.source_directory::text, b.file_path, b.bytes, b.sha256,"
						   "       $3,"
						   "       a.conninfo::text, a.throttle::text, coalesce(a.pulse_block_kb, 0),"
						   "       coalesce(a.pulse_delay_ms, 0), coalesce(a.hourly_rate_pct::text, ''),"
						   "       coalesce(b.base_version, 0),"
						   "       $4,"
						   "       b.manifest, b.state::text, b.stream_id"
						   "  FROM smsdist.jobs j JOIN smsdist.packages p ON p.package_id = j.package_id"
						   "  LEFT JOIN smsdist.package_builds b"
						   "    ON b.package_id = j.package_id AND b.source_version = j.source_version"
						   "  LEFT JOIN LATERAL (SELECT * FROM smsdist.sender_addresses a"
						   "                      WHERE a.target_site_code = $2 AND a.enabled"
						   "                      ORDER BY a.priority LIMIT 1) a ON true"
						   " WHERE j.job_id = $1",
						   4, types, values, nulls, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist sender: claiming a transfer failed: SPI code %d", ret);
	t->job_type = sender_result_value(1);
	t->package_id = sender_result_value(2);
	t->version = atoi(sender_result_value(3));
	t->package_name = sender_result_value(4);
	t->source_directory = sender_result_value(5);
	t->file = sender_result_value(6);
	t->bytes = sender_result_value(7) ? strtoll(sender_result_value(7), NULL, 10) : 0;
	t->sha256 = sender_result_value(8);
	t->targets = sender_result_value(9);
	t->conninfo = sender_result_value(10);
	if (sender_result_value(11))
		strlcpy(t->throttle.mode, sender_result_value(11), sizeof(t->throttle.mode));
	t->throttle.block_kb = atoi(sender_result_value(12));
	t->throttle.delay_ms = atoi(sender_result_value(13));
	sender_throttle_read_hours(&t->throttle, sender_result_value(14));
	build_base = sender_result_value(15);
	t->full_required = strcmp(sender_result_value(16), "t") == 0;
	t->manifest = sender_result_value(17);
	build_state = sender_result_value(18);
	t->stream_id = sender_result_value(19);
	t->build_base = atoi(build_base);
	t->streaming = build_state != NULL && strcmp(build_state, "building") == 0;

	if (strcmp(t->job_type, "run_command") == 0)
	{
		Oid			run_types[2] = {TEXTOID, TEXTOID};

		if (sms_execute_kept("SELECT smsdist.run_job_details($1, $2)::text",
							 2, run_types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "smsdist sender: reading the run-command job failed");
		t->run = sender_result_value(1);
	}
}

/*
 * Put the transfer's rows back to retrying, with the reason; others: the
 * number of other jobs that now wait for the hop too (hop_unreachable).
 */
static void
transfer_failed(Transfer *t, const char *reason, uint64 others)
{
	SmsStatusRefs refs = {0};
	bool		gave_up = false;

	if (!sms_send_rows_failed(t->job_id, t->hop, reason, &gave_up))
		return;					/* not ours any more (the build failed, the job was cancelled) */
	refs.job_id = t->job_id;
	refs.package_id = t->package_id;
	refs.site_code = NULL;
	if (gave_up)
		sms_status_message(SMS_SENDER, SMS_ERROR, SMS_MSG_SEND_FAILED, &refs,
						   "Sending package %s version %d to site %s failed: %s; gave up after %d s.",
						   t->package_id, t->version, t->hop, reason, sms_send_give_up_after);
	else if (others > 0)
		sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_SEND_FAILED, &refs,
						   "Sending package %s version %d to site %s failed: %s; trying again, "
						   "with the %llu other job%s that wait%s for the site.",
						   t->package_id, t->version, t->hop, reason, (unsigned long long) others,
						   others == 1 ? "" : "s", others == 1 ? "s" : "");
	else
		sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_SEND_FAILED, &refs,
						   "Sending package %s version %d to site %s failed: %s; trying again.",
						   t->package_id, t->version, t->hop, reason);
}

/*
 * The hop could not be reached at all: the other jobs' open rows behind it
 * take the failed attempt as theirs (sms_send_rows_hop_unreachable), so a
 * site that is down costs one connection attempt and one warning per
 * back-off, not one per job queued for it.  A job that gives up that way
 * fails, and says so, as the transfer's own would.
 */
static void
hop_unreachable(Transfer *t, const char *reason)
{
	SPITupleTable *jobs;
	uint64		n;
	uint64		waiting = 0;
	List	   *gave_up = NIL;
	ListCell   *lc;

	jobs = sms_send_rows_hop_unreachable(t->job_id, t->hop, reason, &n);
	/* (the rows are read before the next SPI call) */
	for (uint64 i = 0; i < n; i++)
	{
		if (strcmp(SPI_getvalue(jobs->vals[i], jobs->tupdesc, 4), "t") == 0)
			gave_up = lappend(gave_up, list_make3(SPI_getvalue(jobs->vals[i], jobs->tupdesc, 1),
												  SPI_getvalue(jobs->vals[i], jobs->tupdesc, 2),
												  SPI_getvalue(jobs->vals[i], jobs->tupdesc, 3)));
		else
			waiting++;
	}
	foreach(lc, gave_up)
	{
		List	   *job = lfirst(lc);
		SmsStatusRefs refs = {0};

		refs.job_id = linitial(job);
		refs.package_id = lsecond(job);
		if (!sms_job_fail(refs.job_id, psprintf("gave up sending to site %s after %d s: %s",
												t->hop, sms_send_give_up_after, reason)))
			continue;			/* ended meanwhile (cancelled, expired) */
		sms_status_message(SMS_SENDER, SMS_ERROR, SMS_MSG_SEND_FAILED, &refs,
						   "Sending package %s version %s to site %s failed: %s; gave up after %d s.",
						   refs.package_id, (char *) lthird(job), t->hop, reason, sms_send_give_up_after);
	}
	transfer_failed(t, reason, waiting);
}

/*
 * The Sender stepped out of a transfer it sends while the package is
 * compressed (TRANSFER_YIELDED): its rows wait again, with what has been
 * sent; the child keeps the bytes, and the next claim resumes from them.
 */
static void
transfer_yield(Transfer *t)
{
	sms_send_rows_yield(t->job_id, t->hop,
						psprintf("sending to %s while the package is compressed: waiting for the build",
								 t->hop));
}

/* The send rows are done; each target gets a distribute row to follow. */
static void
transfer_done(Transfer *t, int64 sent)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	SmsStatusRefs refs = {0};

	values[0] = CStringGetTextDatum(t->job_id);
	values[1] = CStringGetTextDatum(t->hop);
	sms_send_rows_done(t->job_id, t->hop,
					   t->base_version > 0 ?
					   psprintf("sent to %s: the delta from version %d (%lld bytes this time)",
								t->hop, t->base_version, (long long) sent) :
					   psprintf("sent to %s (%lld bytes this time)", t->hop, (long long) sent),
					   t->base_version, t->bytes, Max(sent - t->sent_at_claim, 0));
	if (t->run != NULL)
	{
		/* what the hop now knows of the job's machines (push_targets) */
		if (sms_execute_kept("INSERT INTO smsdist.job_target_pushes (job_id, hop, machines_md5)"
							 "SELECT $1, $2, md5((smsdist.run_job_details($1, $2)->'machines')::text)"
							 "    ON CONFLICT (job_id, hop) DO UPDATE"
							 "   SET machines_md5 = EXCLUDED.machines_md5, pushed_at = clock_timestamp()",
							 2, types, values, NULL, false, 0) < 0)
			elog(ERROR, "smsdist sender: recording the machines sent failed");
	}
	if (strcmp(t->job_type, "remove_package") == 0)
	{
		/* the child runs the removal; a missing package there is nothing to do */
		sms_distribute_rows_handed_over(t->job_id, t->hop);
	}
	refs.job_id = t->job_id;
	refs.package_id = t->package_id;
	if (t->base_version > 0)
		sms_status_message(SMS_SENDER, SMS_INFO, SMS_MSG_SENT, &refs,
						   "Package %s version %d sent to site %s for %s as a delta from version %d (%lld bytes sent).",
						   t->package_id, t->version, t->hop, t->targets, t->base_version, (long long) sent);
	else
		sms_status_message(SMS_SENDER, SMS_INFO, SMS_MSG_SENT, &refs,
						   "Package %s version %d sent to site %s for %s (%lld bytes sent).",
						   t->package_id, t->version, t->hop, t->targets, (long long) sent);
}

/*
 * Record how transfer t ended (state, with err for a failure) and answer
 * the state.
 */
static TransferState
sender_finish_transfer(Transfer *t, TransferState state, char *err)
{
	switch (state)
	{
		case TRANSFER_DONE:
			sender_record_throughput(t->hop, t->conninfo, t->job_id, t->link_bytes, t->link_us);
			transfer_done(t, t->sent);
			break;
		case TRANSFER_YIELDED:
			if (!t->in_helper)
				keep_sent_so_far(t);
			transfer_yield(t);
			break;
		case TRANSFER_UNREACHABLE:
			hop_unreachable(t, err);
			break;
		default:
			transfer_failed(t, err, 0);
			break;
	}
	return state;
}

/*
 * A send helper's work (smsdist_send_helper_main, below): claim the send
 * rows of (job_id, hop) the Sender chose and send them.  Called in a transaction with SPI
 * connected, as a step; an ERROR once the rows are claimed puts them back
 * to retrying with its message, in a new transaction, as a failed
 * attempt.
 */
static void
sender_send_one(const char *job_id, const char *hop)
{
	Transfer   *t = MemoryContextAllocZero(sms_step_context, sizeof(Transfer));
	volatile bool claimed = false;
	char	   *err = NULL;
	TransferState state;

	t->fd = -1;
	t->job_id = MemoryContextStrdup(sms_step_context, job_id);
	t->hop = MemoryContextStrdup(sms_step_context, hop);
	t->in_helper = true;
	PG_TRY();
	{
		read_transfer(t);
		if (t->targets != NULL)
		{
			claimed = true;
			sms_step_commit();	/* 'running' is visible */
			sender_choose_file(t);
			t->sent_at_claim = t->sent = 0;
			state = sender_run_transfer(t, &err);
			(void) sender_finish_transfer(t, state, err);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (!claimed)
			PG_RE_THROW();
		MemoryContextSwitchTo(sms_step_context);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		transfer_failed(t, edata->message, 0);
	}
	PG_END_TRY();
}

/*
 * A send helper: one transfer, as a step of the Sender would run it (a
 * transaction, SPI, the maintenance lock in share mode), then it wakes
 * the Sender and leaves.
 */
void
smsdist_send_helper_main(Datum arg)
{
	SendHelperArgs args;
	char		appname[NAMEDATALEN];
	LOCKTAG		tag;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	sms_keep_freed_memory();
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	sms_set_safe_search_path();
	/* the record of running transfers (sender_fanout.h) */
	snprintf(appname, sizeof(appname), "smsdist send %s %s", args.job_id, args.hop);
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_SESSION);
	sms_step_context = AllocSetContextCreate(TopMemoryContext, "smsdist send helper",
											 ALLOCSET_DEFAULT_SIZES);

	/* the extension is being dropped or updated: the Sender tries later */
	sms_maintenance_locktag(&tag);
	if (LockAcquire(&tag, ShareLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		proc_exit(0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("sending job %s to site %s", args.job_id, args.hop));
	PG_TRY();
	{
		sender_send_one(args.job_id, args.hop);
	}
	PG_CATCH();
	{
		/*
		 * Before the claim (a claimed transfer's errors are its rows'): the
		 * rows are as they were, and the Sender would start a helper for
		 * them again at once.  Hold the slot a second, as a worker backs
		 * off after an error.
		 */
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		LockRelease(&tag, ShareLock, true);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000, PG_WAIT_EXTENSION);
		proc_exit(1);
	}
	PG_END_TRY();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	LockRelease(&tag, ShareLock, true);
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
	/* the Sender may start the next transfer (its latch, if it is not our parent) */
	sms_wake_now(SMS_SENDER);
	proc_exit(0);
}

/*
 * A run-command job's machines changed (its collection's membership): tell
 * each hop that has the job the machines it now has behind it.  The hop
 * passes it on the same way.  Returns true if a push failed (try again).
 *
 * Finding them computes the machines of every active run-command job for
 * every hop, so the look is made at most once per TARGETS_LOOK_MS, not at
 * every step (the Sender steps at every package, report and wake-up);
 * *next_look is when the next one is due, DT_NOEND after a look.  A look
 * that takes long (a job of 100,000 machines behind a hop: about 0.6 s)
 * waits TARGETS_LOOK_SHARE times its own length before the next one, so
 * that looking takes at most a twentieth of the Sender's time, though
 * never more than smsdist.poll_interval (a look slowed by a lock or the
 * disk must not put the next one off for long).
 */
#define TARGETS_LOOK_MS		1000
#define TARGETS_LOOK_SHARE	20

static bool
push_targets(TimestampTz *next_look)
{
	static TimestampTz last_look = 0;
	static long look_gap_ms = TARGETS_LOOK_MS;
	TimestampTz now = GetCurrentTimestamp();
	SPITupleTable *tuptable;
	uint64		n;
	bool		failed = false;

	if (now < TimestampTzPlusMilliseconds(last_look, look_gap_ms))
	{
		*next_look = TimestampTzPlusMilliseconds(last_look, look_gap_ms);
		return false;
	}
	last_look = now;
	*next_look = DT_NOEND;

	if (sms_execute_kept_noargs("SELECT j.job_id::text, h.hop::text,"
								"       (smsdist.run_job_details(j.job_id, h.hop)->'machines')::text AS machines,"
								"       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
								"         WHERE a.target_site_code = h.hop AND a.enabled ORDER BY a.priority LIMIT 1)"
								"  FROM smsdist.jobs j"
								"  JOIN smsdist.job_target_pushes p ON p.job_id = j.job_id"
								"  CROSS JOIN LATERAL (SELECT p.hop) h"
								" WHERE j.state = 'active' AND j.job_type = 'run_command'"
								"   AND p.machines_md5 IS DISTINCT FROM md5((smsdist.run_job_details(j.job_id, h.hop)->'machines')::text)",
								false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for changed machines failed");
	/* (never longer than smsdist.poll_interval, the wait any work may have) */
	look_gap_ms = Min(Max(TARGETS_LOOK_MS,
						  TARGETS_LOOK_SHARE * TimestampDifferenceMilliseconds(now, GetCurrentTimestamp())),
					  Max(TARGETS_LOOK_MS, sms_poll_interval * 1000L));
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		char	   *job = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 1);
		char	   *hop = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 2);
		char	   *machines = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 3);
		char	   *conninfo = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 4);
		const char *v[2] = {job, machines};
		char	   *err = NULL;
		PGconn	   *conn;
		PGresult   *res;
		Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		values[3];

		if (conninfo == NULL || (conn = link_open(conninfo, &err)) == NULL)
		{
			failed = true;
			continue;
		}
		res = link_exec(conn, "SELECT smsdist.receive_job_targets($1, $2::jsonb)", 2, v, NULL, NULL, &err);
		link_close(conn, res != NULL);
		if (res == NULL)
		{
			ereport(LOG,
					(errmsg("smsdist sender: telling site %s the machines of job %s failed: %s", hop, job, err)));
			failed = true;
			continue;
		}
		PQclear(res);
		values[0] = CStringGetTextDatum(job);
		values[1] = CStringGetTextDatum(hop);
		values[2] = CStringGetTextDatum(machines);
		if (sms_execute_kept("UPDATE smsdist.job_target_pushes"
							 "   SET machines_md5 = md5($3), pushed_at = clock_timestamp()"
							 " WHERE job_id = $1 AND hop = $2",
							 3, types, values, NULL, false, 0) < 0)
			elog(ERROR, "smsdist sender: recording the machines sent failed");
	}
	return failed;
}

TimestampTz
sms_sender_step(void)
{
	Transfer   *t;
	char	   *err = NULL;
	TransferState state;
	bool		reports_open;
	bool		streams_skipped;
	TimestampTz adverts_due;
	TimestampTz control_due;
	TimestampTz targets_due;

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}

	sms_link_forget_lost(5 * 60 * 1000);	/* kept connections: see site_link.c */
	if (!deltas_swept)
	{
		/* a Sender killed while making a delta left its temporary file */
		sms_delta_remove_stale(sms_delta_dir(sms_package_store()));
		deltas_swept = true;
	}
	pg_atomic_write_u32(&sms_shared->sender_follows_build, 0);	/* (after a FATAL exit) */
	unroutable_found = false;

	/*
	 * Cancellations, expiries and retries first: they are small, a cancel
	 * should not wait for a transfer, and a retry lets the job be sent.
	 */
	control_due = sms_push_job_control();
	sms_step_commit();

	streams_skipped = skip_streams_once;
	(void) sender_fanout_reap();
	for (;;)
	{
		bool		stream = false;
		int64		bytes = 0;

		t = find_send_rows(&stream, &bytes);
		if (unroutable_found)
			return GetCurrentTimestamp();
		if (t == NULL)
			break;
		/*
		 * A finished file goes to a send helper, so that transfers to
		 * several sites run at once and this process stays free for the
		 * reports.  A stream is sent here: the builder wakes the Sender
		 * after every member.  Without a free worker slot, here too.  And
		 * a small file (a removal has none): a helper costs a process, a
		 * database connection and a new connection to the child, tens of
		 * milliseconds, where the kept connection takes it at once.  And a
		 * transfer this Sender stepped out of: its status message counts
		 * the bytes sent before (sent_before_yield, in this process).
		 */
		if (!stream && bytes >= SEND_HERE_BELOW_BYTES && !stepped_out_of(t) &&
			sender_fanout_start(t->job_id, t->hop))
		{
			sms_step_commit();	/* the helper claims the rows */
			continue;
		}
		skip_streams_once = false;
		read_transfer(t);
		sms_step_commit();		/* 'running' is visible */
		sender_choose_file(t);
		t->sent = take_sent_so_far(t);
		t->sent_at_claim = t->sent;
		state = sender_run_transfer(t, &err);
		if (sender_finish_transfer(t, state, err) == TRANSFER_YIELDED)
			skip_streams_once = true;	/* the next step does the other work */
		return GetCurrentTimestamp();	/* more work may wait */
	}
	skip_streams_once = false;

	reports_open = sender_follow_reports(NULL);
	if (push_targets(&targets_due))
		reports_open = true;	/* a hop was unreachable: try again soon */
	/* (Min() names its arguments twice: one call, then the minimum) */
	adverts_due = sms_replicate_advertisements();
	adverts_due = Min(Min(adverts_due, control_due), targets_due);
	/*
	 * A helper that stopped while this step talked to the children: the
	 * postmaster's word (bgw_notify_pid) set the latch, and a wait of the
	 * step may have reset it.  Its slot is free: claim again at once.
	 */
	if (sender_fanout_reap() > 0)
		return GetCurrentTimestamp();
	if (streams_skipped)
		return GetCurrentTimestamp();	/* back to the build we stepped out of */
	if (reports_open)
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);

	/* retrying rows come due at their backoff time */
	if (sms_execute_kept_noargs("SELECT min(updated_at + make_interval(secs => least(60, power(2, least(attempts, 6)))))"
								"  FROM smsdist.job_site_status WHERE phase = 'send' AND state = 'retrying'",
								false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			return Min(adverts_due,
					   Max(DatumGetTimestampTz(d), TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 200)));
	}
	return adverts_due;
}
