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
#include "status_forwarder.h"
#include "status.h"
#include "worker.h"
#include "site_link.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* target rows sent to the parent per call, and calls per step */
#define TARGET_BATCH		5000
#define MAX_TARGET_BATCHES	20

#define SMS_MSG_STATUS_NOT_FORWARDED	3401

/* The next target rows the parent has not heard of (a JSON array text). */
static char *
pending_targets(void)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(TARGET_BATCH)};

	if (SPI_execute_with_args("SELECT smsdist.target_report_for_parent($1)::text",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist status manager: reading the targets to report failed");
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
 * Send the parent the target rows it has not heard of, TARGET_BATCH at a
 * time, and clear each batch once the parent has it (a row that changed
 * again meanwhile stays pending).  Rows the parent refused are said in the
 * log, once per distinct reason; they are not sent again.  Returns false if
 * a batch could not be sent (try again soon).
 */
static bool
forward_targets(PGconn *conn, const char *parent, char *pending, char **err)
{
	static char *last_refusal = NULL;

	for (int batch = 0; strcmp(pending, "[]") != 0; batch++)
	{
		const char *v[2] = {sms_site_code, pending};
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		PGresult   *res;

		if (batch == MAX_TARGET_BATCHES)
			return false;		/* the rest at the next step: the inboxes first */
		res = link_exec(conn, "SELECT smsdist.receive_target_report($1, $2::jsonb)::text", 2, v, NULL, NULL, err);
		if (res == NULL)
			return false;
		note_refusals(res, parent, "target rows", &last_refusal);
		PQclear(res);
		values[0] = CStringGetTextDatum(pending);
		if (SPI_execute_with_args("SELECT smsdist.targets_reported($1::jsonb)",
								  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist status manager: clearing reported targets failed");
		pending = pending_targets();
	}
	return true;
}

/*
 * Send the parent the cache inventories it has not heard of (this site's
 * machines' and those its children sent), CACHE_BATCH at a time, each
 * cleared here once the parent has it.  Rows the parent refused are said
 * in the log once per distinct answer.  Returns false if a batch could not
 * be sent.
 */
#define CACHE_BATCH		500

static char *
pending_caches(void)
{
	if (SPI_execute(psprintf("SELECT smsdist.cache_report_for_parent(%d)::text", CACHE_BATCH), true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "smsdist status manager: reading the cache inventories to report failed");
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

static bool
forward_caches(PGconn *conn, const char *parent, char **err)
{
	static char *last_refusal = NULL;
	char	   *pending = pending_caches();

	for (int batch = 0; strcmp(pending, "[]") != 0; batch++)
	{
		const char *v[2] = {sms_site_code, pending};
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		PGresult   *res;

		if (batch == MAX_TARGET_BATCHES)
			return false;		/* the rest at the next step */
		res = link_exec(conn, "SELECT smsdist.receive_cache_report($1, $2::jsonb)::text", 2, v, NULL, NULL, err);
		if (res == NULL)
		{
			/* a parent older than 0.9 takes no inventories: not an error worth retrying for */
			if (*err != NULL && strstr(*err, "receive_cache_report") != NULL && strstr(*err, "does not exist") != NULL)
			{
				*err = NULL;
				return true;
			}
			return false;
		}
		note_refusals(res, parent, "cache inventories", &last_refusal);
		PQclear(res);
		values[0] = CStringGetTextDatum(pending);
		if (SPI_execute_with_args("SELECT smsdist.caches_reported($1::jsonb)",
								  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist status manager: clearing reported cache inventories failed");
		pending = pending_caches();
	}
	return true;
}

/*
 * Send the parent this site's summary if it changed since it was last
 * sent (by this process: after a restart it is sent once more, which is
 * harmless), and the target rows it has not heard of.  Returns false if
 * either could not be sent (try again soon).
 */
bool
sms_forward_status_to_parent(void)
{
	static char last_md5[33] = "";
	static bool failing = false;	/* reported once until it works again */
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	char	   *parent;
	char	   *conninfo;
	char	   *report;
	char	   *md5;
	char	   *pending;
	char	   *err = NULL;
	PGconn	   *conn;
	PGresult   *res;
	const char *v[2];
	bool		sent = false;

	if (SPI_execute_with_args("SELECT s.parent_site_code::text,"
							  "       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
							  "         WHERE a.target_site_code = s.parent_site_code AND a.enabled"
							  "         ORDER BY a.priority LIMIT 1),"
							  "       r::text, md5(r::text)"
							  "  FROM smsdist.sites s, smsdist.status_report_for_parent() r"
							  " WHERE s.site_code = $1 AND s.parent_site_code IS NOT NULL",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist status manager: making the report for the parent failed");
	if (SPI_processed != 1)
		return true;			/* the central site: nobody to tell */
	parent = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	conninfo = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	report = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	md5 = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	pending = pending_targets();
	if (strcmp(md5, last_md5) == 0 && strcmp(pending, "[]") == 0 &&
		strcmp(pending_caches(), "[]") == 0)
		return true;
	if (conninfo == NULL)
	{
		/* said once per change, not at every step */
		if (strcmp(md5, last_md5) != 0)
			ereport(LOG,
					(errmsg("smsdist status manager: no enabled sender address for parent site %s: status summaries stay here",
							parent)));
		strlcpy(last_md5, md5, sizeof(last_md5));
		return true;
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
			sent = forward_targets(conn, parent, pending, &err);
		if (sent)
			sent = forward_caches(conn, parent, &err);
		link_close(conn, sent);
		if (sent)
		{
			failing = false;
			return true;
		}
		if (err == NULL)
			return false;		/* more batches: soon */
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
	return false;
}
