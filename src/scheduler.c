/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The SMS Scheduler: activates jobs whose Start After time has passed and
 *	  expires jobs whose expiry time has passed.
 *
 * Seed 000, phase 1: "If the job's Start After time has elapsed, SMS will
 * mark the job active and start processing."  A step of the Scheduler:
 *
 *	1. expires pending and active jobs whose expires_at has passed;
 *	2. claims up to BATCH pending jobs whose start_after has passed (FOR
 *	   UPDATE SKIP LOCKED, so an operator editing a job or a second Scheduler
 *	   never blocks it), marks them active and, for each, resolves its targets
 *	   into one smsdist.job_site_status row per target site -- phase "send" for
 *	   a child site, "distribute" for this site, where nothing needs sending --
 *	   and, for a run-command job, one smsdist.job_target_status row per target
 *	   machine.  A job that resolves to no site fails, with the reason;
 *	3. returns the earliest future start_after or expires_at, so the worker
 *	   sleeps until exactly then instead of polling.
 *
 * Every state change is recorded in smsdist.job_transitions by a trigger
 * (with jobs.state_reason as the reason) and announced as a status message.
 * The Send phase itself belongs to the Sender.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define BATCH 100

/* Run a statement with text parameters; returns SPI's result code. */
static int
exec_text_args(const char *sql, int nargs, const char **args, bool read_only, long limit)
{
	Oid			types[4];
	Datum		values[4];
	char		nulls[5];

	Assert(nargs <= 4);
	for (int i = 0; i < nargs; i++)
	{
		types[i] = TEXTOID;
		values[i] = args[i] ? CStringGetTextDatum(args[i]) : (Datum) 0;
		nulls[i] = args[i] ? ' ' : 'n';
	}
	nulls[nargs] = '\0';
	return SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, limit);
}

static void
expire_jobs(void)
{
	int			ret;
	SPITupleTable *tuptable;
	uint64		n;

	ret = SPI_execute("UPDATE smsdist.jobs j"
					  "   SET state = 'expired',"
					  "       state_reason = 'expiry time ' || j.expires_at || ' passed'"
					  "  FROM (SELECT job_id FROM smsdist.jobs"
					  "         WHERE state IN ('pending', 'active')"
					  "           AND expires_at <= clock_timestamp()"
					  "         FOR UPDATE SKIP LOCKED) due"
					  " WHERE j.job_id = due.job_id"
					  " RETURNING j.job_id::text, j.package_id::text, j.expires_at::text",
					  false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "smsdist scheduler: expiring jobs failed: SPI code %d", ret);

	/* the next SPI call replaces SPI_tuptable: keep ours */
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		SmsStatusRefs refs = {0};

		refs.job_id = SPI_getvalue(tup, tuptable->tupdesc, 1);
		refs.package_id = SPI_getvalue(tup, tuptable->tupdesc, 2);
		sms_status_message(SMS_SCHEDULER, SMS_WARNING, SMS_MSG_JOB_EXPIRED, &refs,
						   "Job %s expired: its expiry time %s passed.",
						   refs.job_id, SPI_getvalue(tup, tuptable->tupdesc, 3));
	}
}

/* Create the per-site and per-target rows of a newly active job. */
static void
resolve_targets(const char *job_id, const char *package_id, const char *target_desc)
{
	const char *args[2] = {job_id, sms_site_code};
	uint64		sites;
	uint64		machines;
	int			ret;
	SmsStatusRefs refs = {0};

	refs.job_id = job_id;
	refs.package_id = package_id;

	ret = exec_text_args("INSERT INTO smsdist.job_site_status"
						 "       (job_id, site_code, phase, state, detail)"
						 "SELECT $1, t.site_code,"
						 "       CASE WHEN t.site_code = $2 THEN 'distribute' ELSE 'send' END::smsdist.job_phase,"
						 "       'waiting',"
						 "       CASE WHEN t.site_code = $2 THEN 'waiting for the Despooler of this site'"
						 "            ELSE 'waiting for the Sender' END"
						 "  FROM smsdist.job_target_sites($1) t"
						 "    ON CONFLICT DO NOTHING",
						 2, args, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "smsdist scheduler: recording target sites of job %s failed: SPI code %d", job_id, ret);
	sites = SPI_processed;

	ret = exec_text_args("INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code, state)"
						 "SELECT $1, m.sms_id, m.site_code, 'waiting'"
						 "  FROM smsdist.job_target_machines($1) m"
						 "    ON CONFLICT DO NOTHING",
						 1, args, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "smsdist scheduler: recording target machines of job %s failed: SPI code %d", job_id, ret);
	machines = SPI_processed;

	if (sites == 0)
	{
		char	   *reason = psprintf("no target site: %s", target_desc);
		const char *fargs[2] = {job_id, reason};

		ret = exec_text_args("UPDATE smsdist.jobs SET state = 'failed', state_reason = $2"
							 " WHERE job_id = $1",
							 2, fargs, false, 0);
		if (ret != SPI_OK_UPDATE)
			elog(ERROR, "smsdist scheduler: failing job %s failed: SPI code %d", job_id, ret);
		sms_status_message(SMS_SCHEDULER, SMS_ERROR, SMS_MSG_JOB_NO_TARGETS, &refs,
						   "Job %s failed: %s.", job_id, reason);
		return;
	}

	sms_status_message(SMS_SCHEDULER, SMS_INFO, SMS_MSG_JOB_ACTIVATED, &refs,
					   "Job %s is active: Start After time reached; %llu target site%s, %llu target machine%s.",
					   job_id,
					   (unsigned long long) sites, sites == 1 ? "" : "s",
					   (unsigned long long) machines, machines == 1 ? "" : "s");
}

/* Claim and activate due jobs; returns how many were claimed. */
static uint64
activate_due_jobs(void)
{
	int			ret;
	SPITupleTable *tuptable;
	uint64		n;

	ret = SPI_execute("WITH due AS ("
					  "  SELECT job_id FROM smsdist.jobs"
					  "   WHERE state = 'pending' AND start_after <= clock_timestamp()"
					  "   ORDER BY priority, start_after, job_id"
					  "   LIMIT " CppAsString2(BATCH)
					  "   FOR UPDATE SKIP LOCKED)"
					  "UPDATE smsdist.jobs j"
					  "   SET state = 'active', activated_at = clock_timestamp(),"
					  "       state_reason = 'Start After time reached'"
					  "  FROM due WHERE j.job_id = due.job_id"
					  " RETURNING j.job_id::text, j.package_id::text, smsdist.describe_targets(j.job_id)",
					  false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "smsdist scheduler: activating jobs failed: SPI code %d", ret);

	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tuptable->vals[i];

		resolve_targets(SPI_getvalue(tup, tuptable->tupdesc, 1),
						SPI_getvalue(tup, tuptable->tupdesc, 2),
						SPI_getvalue(tup, tuptable->tupdesc, 3));
	}
	return n;
}

/* The earliest future start_after or expires_at, or DT_NOEND. */
static TimestampTz
next_due_time(void)
{
	int			ret;
	bool		isnull;
	Datum		d;

	ret = SPI_execute("SELECT least("
					  " (SELECT min(start_after) FROM smsdist.jobs WHERE state = 'pending'),"
					  " (SELECT min(expires_at) FROM smsdist.jobs"
					  "   WHERE state IN ('pending', 'active') AND expires_at IS NOT NULL))",
					  false, 1);	/* not read-only: it must see this step's updates */
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist scheduler: finding the next due job failed: SPI code %d", ret);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

TimestampTz
sms_scheduler_step(void)
{
	TimestampTz next;
	TimestampTz now;

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}

	expire_jobs();
	if (activate_due_jobs() >= BATCH)
		return GetCurrentTimestamp();	/* more may be due: go again at once */

	/*
	 * A due time already past means a job we skipped because someone holds
	 * its row lock: look again in a second rather than spin.
	 */
	next = next_due_time();
	now = GetCurrentTimestamp();
	if (next <= now)
		next = TimestampTzPlusMilliseconds(now, 1000);
	return next;
}
