/*-------------------------------------------------------------------------
 *
 * status_forwarder.c
 *	  What a child site tells its parent, sent by the Status Manager after
 *	  each step: its status summary, the target rows the parent has not
 *	  heard of, and the cache inventories of its subtree.
 *
 *	summary		smsdist.status_report_for_parent(): per advertisement and
 *				job of the parent's, this site's counts and those its
 *				children sent; sent to smsdist.receive_status_report() when
 *				it differs from what was last sent
 *	target rows	the job and advertisement targets whose state changed since
 *				the parent last heard (report_pending, set by a trigger),
 *				sent to smsdist.receive_target_report() TARGET_BATCH at a
 *				time and cleared here once the parent has them
 *	cache inventories	the agents' cache reports of this site and below,
 *				sent to smsdist.receive_cache_report()
 *
 * The parent is reached over libpq (site_link.c) at the sender_addresses
 * row for its site code.  A parent that cannot be reached is reported once
 * (status message 3401) until it can be again; what was not sent is sent
 * at a later step, since the tables say what is pending.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "status_forwarder.h"
#include "status.h"
#include "worker.h"
#include "site_link.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* rows sent to the parent per call, and calls per step */
#define TARGET_BATCH		5000
#define CACHE_BATCH			500
#define MAX_BATCHES			20

#define SMS_MSG_STATUS_NOT_FORWARDED	3401

/*
 * The summary is computed from every job and advertisement of the parent's
 * at this site, and the Status Manager steps at every status message: at
 * most one look per LOOK_INTERVAL_MS, so that its cost does not grow with
 * both.  A step in between asks to be woken when the next look is due.
 */
#define LOOK_INTERVAL_MS	1000
#define RETRY_MS			5000

/*
 * What is sent to the parent in batches: the rows the parent has not heard
 * of, read with report_sql (a JSON array text, "[]" when none), sent to
 * receive_sql on the parent, and cleared here with cleared_sql once the
 * parent has them (a row that changed again meanwhile stays pending).
 */
typedef struct PendingRows
{
	const char *what;			/* for the log */
	const char *report_sql;		/* $1: the batch size */
	int			batch_size;
	const char *receive_sql;	/* on the parent: $1 this site, $2 the rows */
	const char *receive_function;	/* its name, to recognise an older parent */
	const char *cleared_sql;	/* $1: the rows sent */
	bool		optional;		/* a parent without receive_function takes none */
	char	   *last_refusal;	/* the parent's last refusal, said once */
} PendingRows;

/*
 * target rows: the job and advertisement targets whose state changed;
 * cache inventories: this site's machines' and those its children sent
 * (a parent older than 0.9 takes none: not an error worth retrying for)
 */
static PendingRows target_rows = {
	"target rows",
	"SELECT smsdist.target_report_for_parent($1)::text", TARGET_BATCH,
	"SELECT smsdist.receive_target_report($1, $2::jsonb)::text", "receive_target_report",
	"SELECT smsdist.targets_reported($1::jsonb)", false, NULL
};
static PendingRows cache_rows = {
	"cache inventories",
	"SELECT smsdist.cache_report_for_parent($1)::text", CACHE_BATCH,
	"SELECT smsdist.receive_cache_report($1, $2::jsonb)::text", "receive_cache_report",
	"SELECT smsdist.caches_reported($1::jsonb)", true, NULL
};

/* The next batch of rows the parent has not heard of (a JSON array text). */
static char *
pending_rows(const PendingRows *pr)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(pr->batch_size)};

	if (sms_execute_kept(pr->report_sql, 1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "smsdist status manager: reading the %s to report failed", pr->what);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * The parent's answer to rows sent up ({..., "refused": n, ...}):
 * refusals are logged, once for each distinct answer, so that a parent
 * that keeps refusing does not fill the log at every step.
 */
static void
note_refusals(PGresult *res, const char *parent, const char *what, char **last)
{
	char	   *answer = link_clean_text(PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "", 600);

	if (answer == NULL || strstr(answer, "\"refused\": 0") != NULL ||
		(*last != NULL && strcmp(answer, *last) == 0))
		return;
	ereport(LOG,
			(errmsg("smsdist status manager: parent site %s refused %s: %s", parent, what, answer)));
	if (*last)
		pfree(*last);
	*last = MemoryContextStrdup(TopMemoryContext, answer);
}

/*
 * Send the parent the rows it has not heard of, batch by batch, clearing
 * each once the parent has it; at most MAX_BATCHES a step, so that the
 * inboxes are served too.  Rows the parent refused are said in the log,
 * once per distinct answer; they are not sent again.  Returns false if a
 * batch could not be sent (try again soon), with *err saying why.
 */
static bool
forward_rows(PGconn *conn, const char *parent, PendingRows *pr, char **err)
{
	char	   *pending = pending_rows(pr);

	for (int batch = 0; strcmp(pending, "[]") != 0; batch++)
	{
		const char *v[2] = {sms_site_code, pending};
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		PGresult   *res;

		if (batch == MAX_BATCHES)
			return false;		/* the rest at the next step: the inboxes first */
		res = link_exec(conn, pr->receive_sql, 2, v, NULL, NULL, err);
		if (res == NULL)
		{
			if (pr->optional && *err != NULL && strstr(*err, pr->receive_function) != NULL &&
				strstr(*err, "does not exist") != NULL)
			{
				*err = NULL;
				return true;
			}
			return false;
		}
		note_refusals(res, parent, pr->what, &pr->last_refusal);
		PQclear(res);
		values[0] = CStringGetTextDatum(pending);
		if (sms_execute_kept(pr->cleared_sql, 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist status manager: clearing the reported %s failed", pr->what);
		pending = pending_rows(pr);
	}
	return true;
}

/*
 * Send the parent this site's summary if it changed since it was last
 * sent (by this process: after a restart it is sent once more, which is
 * harmless), and the target rows it has not heard of; at most once per
 * LOOK_INTERVAL_MS.  Returns when to be called again (see the header).
 */
TimestampTz
sms_forward_status_to_parent(void)
{
	static char last_md5[33] = "";
	static bool failing = false;	/* reported once until it works again */
	static TimestampTz last_look = 0;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz soon = TimestampTzPlusMilliseconds(now, RETRY_MS);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	char	   *parent;
	char	   *conninfo;
	char	   *report;
	char	   *md5;
	char	   *err = NULL;
	PGconn	   *conn;
	PGresult   *res;
	const char *v[2];
	bool		sent = false;

	if (now < TimestampTzPlusMilliseconds(last_look, LOOK_INTERVAL_MS))
		return TimestampTzPlusMilliseconds(last_look, LOOK_INTERVAL_MS);
	last_look = now;
	if (sms_execute_kept("SELECT s.parent_site_code::text,"
						 "       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
						 "         WHERE a.target_site_code = s.parent_site_code AND a.enabled"
						 "         ORDER BY a.priority LIMIT 1),"
						 "       r::text, md5(r::text)"
						 "  FROM smsdist.sites s, smsdist.status_report_for_parent() r"
						 " WHERE s.site_code = $1 AND s.parent_site_code IS NOT NULL",
						 1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist status manager: making the report for the parent failed");
	if (SPI_processed != 1)
		return DT_NOEND;		/* the central site: nobody to tell */
	parent = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	conninfo = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	report = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	md5 = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	if (strcmp(md5, last_md5) == 0 && strcmp(pending_rows(&target_rows), "[]") == 0 &&
		strcmp(pending_rows(&cache_rows), "[]") == 0)
		return DT_NOEND;
	if (conninfo == NULL)
	{
		/* said once per change, not at every step */
		if (strcmp(md5, last_md5) != 0)
			ereport(LOG,
					(errmsg("smsdist status manager: no enabled sender address for parent site %s: status summaries stay here",
							parent)));
		strlcpy(last_md5, md5, sizeof(last_md5));
		return DT_NOEND;
	}
	conn = link_open(conninfo, &err);
	if (conn != NULL)
	{
		sent = true;
		if (strcmp(md5, last_md5) != 0)
		{
			v[0] = sms_site_code;
			v[1] = report;
			res = link_exec(conn, "SELECT smsdist.receive_status_report($1, $2::jsonb)", 2, v, NULL, NULL, &err);
			if (res != NULL)
			{
				PQclear(res);
				strlcpy(last_md5, md5, sizeof(last_md5));
			}
			else
				sent = false;
		}
		if (sent)
			sent = forward_rows(conn, parent, &target_rows, &err);
		if (sent)
			sent = forward_rows(conn, parent, &cache_rows, &err);
		link_close(conn, sent);
		if (sent)
		{
			failing = false;
			return DT_NOEND;
		}
		if (err == NULL)
			return soon;		/* more batches */
	}
	ereport(LOG,
			(errmsg("smsdist status manager: status summaries could not be sent to parent site %s: %s",
					parent, err ? err : "unknown error")));
	if (!failing)
	{
		SmsStatusRefs refs = {0};

		/* a status message wakes this worker: one, not one per attempt */
		failing = true;

		sms_status_message(SMS_STATUS_MANAGER, SMS_WARNING, SMS_MSG_STATUS_NOT_FORWARDED, &refs,
						   "Status summaries could not be sent to parent site %s: %s (tried again shortly).",
						   parent, err ? err : "unknown error");
	}
	return soon;
}
