/*-------------------------------------------------------------------------
 *
 * replication_manager.c
 *	  Sends advertisements on to child sites (run by the Sender).
 *
 * In SMS the Replication Manager hands the objects a child site needs to
 * the Sender.  Here: every advertisement of this site -- its own, and those
 * its parent sent it -- goes to every child site, with the package and
 * program definitions, the schedule and the targeted collections with their
 * windows and their members behind that child
 * (smsdist.advertisement_details()); the child takes it with
 * smsdist.receive_advertisement() and sends it on to its own children.
 *
 * Terms:
 *	push		one call on a child: receive_advertisement(details) for a
 *				new or changed advertisement, remove_advertisement(id) for
 *				one deleted here.
 *	due			smsdist.advertisement_pushes_due(): each (advertisement,
 *				child) whose child does not have the current details (the
 *				MD5 of what it was last sent differs), minus failed ones
 *				still in their backoff (2^attempts seconds, at most 60).
 *
 * smsdist.advertisement_pushes records, per (advertisement, child), the MD5
 * of the details the child has, or the last error.  The table is the truth:
 * a Sender that restarts, or missed a wake-up, finds the same pushes due.
 * A push that reached the child but whose record was lost (a crash between
 * the two) is simply sent again: receive_advertisement() is idempotent.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "postgres.h"

#include "smsdist.h"
#include "replication_manager.h"
#include "status.h"
#include "worker.h"
#include "site_link.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* The connection to the hop being served */
typedef struct Push
{
	char	   *advert_id;
	char	   *hop;
	char	   *details;		/* NULL: remove the advertisement at the child */
	char	   *conninfo;		/* NULL: no enabled sender address */
} Push;

static void
record_push(const Push *p, const char *err)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	const char *sql;

	values[0] = CStringGetTextDatum(p->advert_id);
	values[1] = CStringGetTextDatum(p->hop);
	if (p->details != NULL)
		values[2] = CStringGetTextDatum(p->details);
	else
		nulls[2] = 'n';
	if (err != NULL)
		values[3] = CStringGetTextDatum(err);
	else
		nulls[3] = 'n';

	if (err != NULL)
		sql = "INSERT INTO smsdist.advertisement_pushes AS p (advert_id, hop, attempted_at, attempts, last_error)"
			" VALUES ($1, $2, clock_timestamp(), 1, $4)"
			" ON CONFLICT (advert_id, hop) DO UPDATE"
			"   SET attempted_at = clock_timestamp(), attempts = p.attempts + 1, last_error = $4";
	else if (p->details == NULL)
		sql = "DELETE FROM smsdist.advertisement_pushes"
			" WHERE advert_id = $1 AND hop = $2";
	else
		sql = "INSERT INTO smsdist.advertisement_pushes AS p"
			"        (advert_id, hop, payload_md5, pushed_at, attempted_at, attempts, last_error)"
			" VALUES ($1, $2, md5($3), clock_timestamp(), clock_timestamp(), 0, NULL)"
			" ON CONFLICT (advert_id, hop) DO UPDATE"
			"   SET payload_md5 = md5($3), pushed_at = clock_timestamp(), attempted_at = clock_timestamp(),"
			"       attempts = 0, last_error = NULL";
	if (sms_execute_kept(sql, 4, types, values, nulls, false, 0) < 0)
		elog(ERROR, "smsdist sender: recording the advertisement sent to site %s failed", p->hop);
}

static void
push_failed(const Push *p, const char *err)
{
	SmsStatusRefs refs = {0};

	refs.advert_id = p->advert_id;
	record_push(p, err);
	sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_ADVERT_SEND_FAILED, &refs,
					   "%s advertisement %s %s child site %s failed: %s",
					   p->details ? "Sending" : "Removing", p->advert_id,
					   p->details ? "to" : "at", p->hop, err);
}

/* What is due, in the step's memory context (pushes commit nothing). */
static List *
due_pushes(void)
{
	List	   *pushes = NIL;
	MemoryContext old;

	if (sms_execute_kept_noargs("SELECT advert_id, hop, details::text, conninfo FROM smsdist.advertisement_pushes_due()",
								false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for advertisements to send failed");
	old = MemoryContextSwitchTo(sms_step_context);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Push	   *p = palloc(sizeof(Push));

		p->advert_id = SPI_getvalue(t, d, 1);
		p->hop = SPI_getvalue(t, d, 2);
		p->details = SPI_getvalue(t, d, 3);
		p->conninfo = SPI_getvalue(t, d, 4);
		pushes = lappend(pushes, p);
	}
	MemoryContextSwitchTo(old);
	return pushes;
}

/* Do the pushes; rows come ordered by hop: one connection per hop. */
static void
push_all(List *pushes, SmsHopLink *link)
{
	ListCell   *lc;

	foreach(lc, pushes)
	{
		Push	   *p = lfirst(lc);
		PGresult   *res;
		char	   *err = NULL;
		const char *v[1];

		if (!link_to_hop(link, p->hop, p->conninfo))
		{
			push_failed(p, link->err);
			continue;
		}
		sms_step_note = psprintf("sending advertisement %s to site %s", p->advert_id, p->hop);
		if (p->details != NULL)
		{
			v[0] = p->details;
			res = link_exec(link->conn, "SELECT smsdist.receive_advertisement($1::jsonb)", 1, v, NULL, NULL, &err);
		}
		else
		{
			v[0] = p->advert_id;
			res = link_exec(link->conn, "SELECT smsdist.remove_advertisement($1)", 1, v, NULL, NULL, &err);
		}
		if (res == NULL)
		{
			push_failed(p, err);
			link_hop_failed(link, err);
			continue;
		}
		PQclear(res);
		record_push(p, NULL);
		{
			SmsStatusRefs refs = {0};

			refs.advert_id = p->advert_id;
			sms_status_message(SMS_SENDER, SMS_INFO, SMS_MSG_ADVERT_SENT, &refs,
							   "Advertisement %s %s child site %s.", p->advert_id,
							   p->details ? "sent to" : "removed at", p->hop);
		}
	}
}

/*
 * Make every child site's advertisements current.  Returns when the next
 * failed push comes due (DT_NOEND if none failed).
 */
TimestampTz
sms_replicate_advertisements(void)
{
	List	   *volatile pushes;
	SmsHopLink    *link = palloc0(sizeof(SmsHopLink));	/* not changed under PG_TRY */

	pushes = due_pushes();
	PG_TRY();
	{
		push_all((List *) pushes, link);
	}
	PG_FINALLY();
	{
		link_hop_close(link);
	}
	PG_END_TRY();

	if (sms_execute_kept_noargs("SELECT min(attempted_at + make_interval(secs => least(60, power(2, least(attempts, 6)))))"
								"  FROM smsdist.advertisement_pushes WHERE last_error IS NOT NULL",
								false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			return DatumGetTimestampTz(d);
	}
	return DT_NOEND;
}
