/*-------------------------------------------------------------------------
 *
 * job_control.c
 *	  Passes a job's cancellation, expiry and retry on to the child sites
 *	  that hold a copy of it (run by the Sender).
 *
 * A job sent to a child site is a job there too (receive_end), and the
 * child sends it on to its own children.  When the job is cancelled or
 * expires here (an operator, the Scheduler), or a failed job is retried
 * (failed -> pending), a trigger on smsdist.jobs queues one row per hop in
 * smsdist.job_control_pushes.  The Sender calls
 * smsdist.receive_job_state(job, state, reason) on each hop; the hop's
 * copy follows (its PCM files and policies with it) and the hop's trigger
 * queues the same for the sites behind it, which its own Sender serves.
 *
 * The table is the truth: a row is deleted only once the hop has answered,
 * so a hop that is down, or a Sender that restarts, finds the same rows
 * due.  A failed push is tried again after 2^attempts seconds (at most 60);
 * the reason is in last_error and in a status message (3321, said when the
 * reason changes).  receive_job_state() is idempotent: a push taken by the
 * hop whose deletion here was lost is simply taken again.
 *
 * While a retry has not reached a hop, the job is neither sent to that hop
 * nor are its reports taken (sender.c): the hop's old failure must not
 * fail the retried job again.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "postgres.h"

#include "smsdist.h"
#include "job_control.h"
#include "status.h"
#include "worker.h"
#include "site_link.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

typedef struct ControlPush
{
	char	   *job_id;
	char	   *package_id;
	char	   *hop;
	char	   *state;			/* cancelled, expired or pending (a retry) */
	char	   *reason;
	char	   *queued_at;		/* identifies the change: a newer one replaces it */
	char	   *last_error;
	char	   *conninfo;		/* NULL: no enabled sender address */
} ControlPush;

static const char *
change_name(const ControlPush *p)
{
	if (strcmp(p->state, "pending") == 0)
		return "retry";
	if (strcmp(p->state, "cancelled") == 0)
		return "cancellation";
	return "expiry";
}

/* The pushes due now, in the step's memory context, ordered by hop. */
static List *
due_control_pushes(void)
{
	List	   *pushes = NIL;
	MemoryContext old;

	/* a retry that failed again (or ended otherwise) before it was sent: nothing to retry below */
	if (sms_execute_kept_noargs("DELETE FROM smsdist.job_control_pushes c USING smsdist.jobs j"
								" WHERE j.job_id = c.job_id AND c.state = 'pending' AND j.state NOT IN ('pending', 'active')",
								false, 0) != SPI_OK_DELETE)
		elog(ERROR, "smsdist sender: forgetting retries of jobs that ended failed");
	if (sms_execute_kept_noargs("SELECT c.job_id::text, j.package_id::text, c.hop::text, c.state::text,"
								"       coalesce(c.reason, ''), c.queued_at::text, c.last_error,"
								"       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
								"         WHERE a.target_site_code = c.hop AND a.enabled ORDER BY a.priority LIMIT 1)"
								"  FROM smsdist.job_control_pushes c JOIN smsdist.jobs j ON j.job_id = c.job_id"
								" WHERE (c.attempted_at IS NULL"
								"        OR c.attempted_at + make_interval(secs => least(60, power(2, least(c.attempts, 6))))"
								"           <= clock_timestamp())"
								/* a retry once the job runs again here: a copy never runs before its job */
								"   AND (c.state <> 'pending' OR j.state = 'active')"
								" ORDER BY c.hop, c.queued_at, c.job_id",
								false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for job changes to pass on failed");
	old = MemoryContextSwitchTo(sms_step_context);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		ControlPush *p = palloc(sizeof(ControlPush));

		p->job_id = SPI_getvalue(t, d, 1);
		p->package_id = SPI_getvalue(t, d, 2);
		p->hop = SPI_getvalue(t, d, 3);
		p->state = SPI_getvalue(t, d, 4);
		p->reason = SPI_getvalue(t, d, 5);
		p->queued_at = SPI_getvalue(t, d, 6);
		p->last_error = SPI_getvalue(t, d, 7);
		p->conninfo = SPI_getvalue(t, d, 8);
		pushes = lappend(pushes, p);
	}
	MemoryContextSwitchTo(old);
	return pushes;
}

/* The hop took the change (answer: what became of its copy). */
static void
control_pushed(const ControlPush *p, const char *answer)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	SmsStatusRefs refs = {0};

	values[0] = CStringGetTextDatum(p->job_id);
	values[1] = CStringGetTextDatum(p->hop);
	values[2] = CStringGetTextDatum(p->queued_at);
	values[3] = CStringGetTextDatum(p->state);
	/* (a newer change queued meanwhile stays, and is sent next) */
	if (sms_execute_kept("DELETE FROM smsdist.job_control_pushes"
						 " WHERE job_id = $1 AND hop = $2 AND queued_at = $3::timestamptz"
						 "   AND state = $4::smsdist.job_state",
						 4, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "smsdist sender: recording the job change passed to site %s failed", p->hop);
	refs.job_id = p->job_id;
	refs.package_id = p->package_id;
	sms_status_message(SMS_SENDER, SMS_INFO, SMS_MSG_JOB_CONTROL_SENT, &refs,
					   "The %s of job %s was passed to child site %s; its copy there: %s.",
					   change_name(p), p->job_id, p->hop, answer);
}

/* The push failed: tried again later, said when the reason is new. */
static void
control_push_failed(const ControlPush *p, const char *err)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	SmsStatusRefs refs = {0};
	char	   *clean = link_clean_text(err, 1000);

	if (clean == NULL)
		clean = pstrdup("(an error that is not valid text)");
	values[0] = CStringGetTextDatum(p->job_id);
	values[1] = CStringGetTextDatum(p->hop);
	values[2] = CStringGetTextDatum(p->queued_at);
	values[3] = CStringGetTextDatum(p->state);
	values[4] = CStringGetTextDatum(clean);
	if (sms_execute_kept("UPDATE smsdist.job_control_pushes"
						 "   SET attempted_at = clock_timestamp(), attempts = attempts + 1, last_error = $5"
						 " WHERE job_id = $1 AND hop = $2 AND queued_at = $3::timestamptz"
						 "   AND state = $4::smsdist.job_state",
						 5, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist sender: recording a failed job change for site %s failed", p->hop);
	if (p->last_error != NULL && strcmp(p->last_error, clean) == 0)
		return;
	refs.job_id = p->job_id;
	refs.package_id = p->package_id;
	sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_JOB_CONTROL_FAILED, &refs,
					   "Passing the %s of job %s to child site %s failed: %s; trying again.",
					   change_name(p), p->job_id, p->hop, clean);
}

/* Do the pushes; one connection per hop (the rows come ordered by hop). */
static void
push_all(List *pushes, SmsHopLink *link)
{
	ListCell   *lc;

	foreach(lc, pushes)
	{
		ControlPush *p = lfirst(lc);
		const char *v[3] = {p->job_id, p->state, p->reason};
		char	   *err = NULL;
		PGresult   *res;
		char	   *answer;

		if (!link_to_hop(link, p->hop, p->conninfo))
		{
			control_push_failed(p, link->err);
			continue;
		}
		sms_step_note = psprintf("passing the %s of job %s to site %s", change_name(p), p->job_id, p->hop);
		res = link_exec(link->conn, "SELECT smsdist.receive_job_state($1, $2, $3)", 3, v, NULL, NULL, &err);
		if (res == NULL)
		{
			control_push_failed(p, err);
			link_hop_failed(link, err);
			continue;
		}
		/* what the hop answers is input: one short text, fit to store */
		if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
			answer = pstrdup("(no answer)");
		else
		{
			answer = link_clean_text(PQgetvalue(res, 0, 0), 100);
			if (answer == NULL)
				answer = pstrdup("(not valid text)");
		}
		PQclear(res);
		control_pushed(p, answer);
	}
}

/*
 * Pass every queued job change on to its hop.  Returns when the next failed
 * push comes due (DT_NOEND if none waits).
 */
TimestampTz
sms_push_job_control(void)
{
	List	   *volatile pushes;
	SmsHopLink *link = palloc0(sizeof(SmsHopLink));	/* not changed under PG_TRY */

	pushes = due_control_pushes();
	PG_TRY();
	{
		push_all((List *) pushes, link);
	}
	PG_FINALLY();
	{
		link_hop_close(link);
	}
	PG_END_TRY();

	if (sms_execute_kept_noargs("SELECT min(c.attempted_at + make_interval(secs => least(60, power(2, least(c.attempts, 6)))))"
								"  FROM smsdist.job_control_pushes c JOIN smsdist.jobs j ON j.job_id = c.job_id"
								" WHERE c.attempted_at IS NOT NULL AND (c.state <> 'pending' OR j.state = 'active')",
								false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			return DatumGetTimestampTz(d);
	}
	return DT_NOEND;
}
