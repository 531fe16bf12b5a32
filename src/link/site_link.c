/*-------------------------------------------------------------------------
 *
 * site_link.c
 *	  The link to a child site: libpq used without blocking.
 *
 * Terms:
 *	link	a libpq connection from a worker of this site to a child site's
 *			database, opened from a sender address's conninfo.  Every wait
 *			(connecting, sending, waiting for the answer) is a
 *			WaitLatchOrSocket, so SIGTERM, postmaster death and the latch are
 *			honoured at once; each call gives up after SMS_LINK_TIMEOUT_MS,
 *			and each connection attempt after the conninfo's connect_timeout
 *			(at most SMS_LINK_TIMEOUT_MS).
 *
 * Used by the Sender (packages, job targets) and the Replication Manager
 * (advertisements).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "site_link.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"


/* Wait for the socket (or the latch, or a timeout); false on timeout. */
bool
link_wait(PGconn *conn, int events, TimestampTz deadline)
{
	for (;;)
	{
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		int			rc;

		if (ms <= 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
							   PQsocket(conn), ms, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
			return true;
	}
}

char *
link_error(PGconn *conn, const char *what)
{
	char	   *msg = pstrdup(conn ? PQerrorMessage(conn) : "out of memory");
	size_t		len = strlen(msg);

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	return psprintf("%s: %s", what, msg);
}

/*
 * The connection asks for this database's encoding (which overrides one in
 * the conninfo), so the child's server converts what it answers; the
 * answers are still checked (link_clean_text), a child being able to send
 * anything.
 */
/*
 * How long one connection attempt to conninfo may take: its
 * connect_timeout (seconds; as libpq, at least 2), at most
 * SMS_LINK_TIMEOUT_MS.  libpq enforces connect_timeout only in its own
 * blocking loop, never with PQconnectPoll, so it is done here.  A link to
 * a site whose packets are dropped waits this long at every attempt.
 */
static int
connect_timeout_ms(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	int			ms = SMS_LINK_TIMEOUT_MS;

	if (opts == NULL)
		return ms;				/* libpq says what is wrong when it connects */
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL)
		{
			int			secs = atoi(o->val);

			/* (one deadline for the whole attempt, every host of the conninfo) */
			if (secs > 0 && secs < SMS_LINK_TIMEOUT_MS / 1000)
				ms = Max(secs, 2) * 1000;
		}
	}
	PQconninfoFree(opts);
	return ms;
}

PGconn *
link_connect(const char *conninfo, char **err)
{
	const char *const keys[] = {"dbname", "client_encoding", NULL};
	const char *const vals[] = {conninfo, GetDatabaseEncodingName(), NULL};
	PGconn	   *conn = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   connect_timeout_ms(conninfo));

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
	{
		*err = link_error(conn, "could not connect");
		if (conn)
			PQfinish(conn);
		return NULL;
	}
	while (st != PGRES_POLLING_OK)
	{
		if (st == PGRES_POLLING_FAILED)
		{
			*err = link_error(conn, "could not connect");
			PQfinish(conn);
			return NULL;
		}
		if (!link_wait(conn, st == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
					   deadline))
		{
			*err = pstrdup("could not connect: timed out");
			PQfinish(conn);
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
	if (PQsetnonblocking(conn, 1) != 0)
	{
		*err = link_error(conn, "could not set the connection non-blocking");
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Send what libpq holds for the site; false with *err set. */
static bool
link_flush(PGconn *conn, TimestampTz deadline, char **err)
{
	int			f;

	while ((f = PQflush(conn)) == 1)
	{
		/* read too: the site may be answering earlier requests meanwhile */
		if (!link_wait(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, deadline))
		{
			*err = pstrdup("the site did not take the request in time");
			return false;
		}
		if (!PQconsumeInput(conn))
		{
			*err = link_error(conn, "connection lost");
			return false;
		}
	}
	if (f < 0)
	{
		*err = link_error(conn, "could not send a request");
		return false;
	}
	return true;
}

/* Wait until PQgetResult will not block; false with *err set. */
static bool
link_await(PGconn *conn, TimestampTz deadline, char **err)
{
	while (PQisBusy(conn))
	{
		if (!link_wait(conn, WL_SOCKET_READABLE, deadline))
		{
			*err = pstrdup("the site did not answer in time");
			return false;
		}
		if (!PQconsumeInput(conn))
		{
			*err = link_error(conn, "connection lost");
			return false;
		}
	}
	return true;
}

/*
 * The result of the request being answered (up to the NULL that ends it);
 * NULL with *err set if it failed or the site refused it.
 */
static PGresult *
link_collect(PGconn *conn, TimestampTz deadline, char **err)
{
	PGresult   *res = NULL;
	PGresult   *r;

	for (;;)
	{
		if (!link_await(conn, deadline, err))
		{
			if (res)
				PQclear(res);
			return NULL;
		}
		r = PQgetResult(conn);
		if (r == NULL)
			break;
		if (res == NULL)
			res = r;
		else
			PQclear(r);
	}
	if (res == NULL || (PQresultStatus(res) != PGRES_TUPLES_OK &&
						PQresultStatus(res) != PGRES_COMMAND_OK))
	{
		char	   *msg = res ? pstrdup(PQresultErrorMessage(res)) : pstrdup("no result");
		size_t		len = strlen(msg);

		while (len > 0 && msg[len - 1] == '\n')
			msg[--len] = '\0';
		*err = psprintf("the site refused: %s", msg);
		if (res)
			PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Run one statement on the link; returns its result (caller PQclears) or
 * NULL with *err set.  Parameters are text, except those with format 1.
 */
PGresult *
link_exec(PGconn *conn, const char *sql, int n, const char *const *values,
		  const int *lengths, const int *formats, char **err)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SMS_LINK_TIMEOUT_MS);

	if (!PQsendQueryParams(conn, sql, n, NULL, values, lengths, formats, 0))
	{
		*err = link_error(conn, "could not send a request");
		return NULL;
	}
	if (!link_flush(conn, deadline, err))
		return NULL;
	return link_collect(conn, deadline, err);
}

/* ----------------------------------------------------------------
 * Pipelined requests: sent before the answers to earlier ones have come,
 * each its own transaction at the site (a Sync after each), answered in
 * order.  While one request is being carried out there, the next is already
 * on its way.
 * ----------------------------------------------------------------
 */
bool
link_pipeline_enter(PGconn *conn, char **err)
{
	if (!PQenterPipelineMode(conn))
	{
		*err = link_error(conn, "could not enter pipeline mode");
		return false;
	}
	return true;
}

bool
link_pipeline_send(PGconn *conn, const char *sql, int n, const char *const *values,
				   const int *lengths, const int *formats, char **err)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SMS_LINK_TIMEOUT_MS);

	if (!PQsendQueryParams(conn, sql, n, NULL, values, lengths, formats, 0) ||
		!PQpipelineSync(conn))
	{
		*err = link_error(conn, "could not send a request");
		return false;
	}
	return link_flush(conn, deadline, err);
}

PGresult *
link_pipeline_result(PGconn *conn, char **err)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SMS_LINK_TIMEOUT_MS);
	PGresult   *res = link_collect(conn, deadline, err);
	char	   *err2 = NULL;
	PGresult   *sync;

	/* then the Sync's own result */
	if (!link_await(conn, deadline, res ? err : &err2))
	{
		if (res)
			PQclear(res);
		return NULL;
	}
	sync = PQgetResult(conn);
	if (sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
	{
		if (res)
		{
			*err = psprintf("the site answered out of order (%s)",
							sync ? PQresStatus(PQresultStatus(sync)) : "no result");
			PQclear(res);
			res = NULL;
		}
	}
	if (sync)
		PQclear(sync);
	return res;
}

bool
link_pipeline_exit(PGconn *conn, int pending)
{
	for (int i = 0; i < pending; i++)
	{
		char	   *err = NULL;
		PGresult   *r = link_pipeline_result(conn, &err);

		if (r)
			PQclear(r);
		else if (PQstatus(conn) != CONNECTION_OK)
			return false;
	}
	return PQexitPipelineMode(conn) == 1;
}

/* ----------------------------------------------------------------
 * Kept connections: one per conninfo, reused across steps
 *
 * Opening a connection to a child costs a backend fork and an
 * authentication there (about 40 ms on the benchmark machine), which a
 * 1 KB package's whole transfer does not.  So a connection given back in a
 * clean state stays open for the next call to the same conninfo.  The
 * entries live in TopMemoryContext; one still marked in use at the next
 * sms_link_forget_lost() was dropped by an error and is closed.
 * ---------------------------------------------------------------- */

typedef struct KeptLink
{
	char	   *conninfo;
	PGconn	   *conn;
	bool		in_use;
	TimestampTz last_used;
} KeptLink;

static List *kept_links = NIL;

static void
drop_link(KeptLink *k)
{
	kept_links = list_delete_ptr(kept_links, k);
	PQfinish(k->conn);
	pfree(k->conninfo);
	pfree(k);
}

/*
 * Still good: idle, and the server has not closed it (a child that shut
 * down sent its termination and closed the socket, which PQconsumeInput
 * sees without waiting).
 */
static bool
link_usable(PGconn *conn)
{
	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
		return false;
	return PQconsumeInput(conn) && PQstatus(conn) == CONNECTION_OK;
}

/* ----------------------------------------------------------------
 * Failed connections: not tried again at once
 *
 * A conninfo whose last connection attempt failed is not tried again by
 * link_open before its retry time: 1 s after the first failure, doubling
 * up to SMS_LINK_RETRY_MAX_MS; every caller meanwhile gets that failure at
 * once.  The Sender asks a child for the report of every job it
 * distributes, about once a second: a child that is down cost a
 * connection attempt per job and round, and one whose packets are dropped
 * the whole connection timeout each (ten jobs, ten minutes a round in
 * which the Sender sent nothing).  Now a site that does not answer costs
 * one attempt per back-off in each process.  A success forgets the
 * failure.  link_open_now tries regardless (a transfer, whose send rows
 * have their own back-off) and records the outcome too.
 * ---------------------------------------------------------------- */

#define SMS_LINK_RETRY_MIN_MS	1000
#define SMS_LINK_RETRY_MAX_MS	60000

typedef struct FailedLink
{
	char	   *conninfo;
	char	   *err;			/* the failure, as the attempt said it */
	int			delay_ms;		/* from the failure to retry_at */
	TimestampTz retry_at;
} FailedLink;

static List *failed_links = NIL;

static FailedLink *
failed_link(const char *conninfo)
{
	ListCell   *lc;

	foreach(lc, failed_links)
	{
		FailedLink *f = lfirst(lc);

		if (strcmp(f->conninfo, conninfo) == 0)
			return f;
	}
	return NULL;
}

/* Remember how an attempt to conninfo ended (err NULL: it succeeded). */
static void
remember_attempt(const char *conninfo, const char *err)
{
	FailedLink *f = failed_link(conninfo);
	MemoryContext old;

	if (err == NULL)
	{
		if (f != NULL)
		{
			failed_links = list_delete_ptr(failed_links, f);
			pfree(f->conninfo);
			pfree(f->err);
			pfree(f);
		}
		return;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (f == NULL)
	{
		f = palloc0(sizeof(FailedLink));
		f->conninfo = pstrdup(conninfo);
		f->delay_ms = SMS_LINK_RETRY_MIN_MS;
		failed_links = lappend(failed_links, f);
	}
	else
	{
		pfree(f->err);
		f->delay_ms = Min(f->delay_ms * 2, SMS_LINK_RETRY_MAX_MS);
	}
	f->err = pstrdup(err);
	f->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), f->delay_ms);
	MemoryContextSwitchTo(old);
}

static PGconn *
open_link(const char *conninfo, bool now, char **err)
{
	ListCell   *lc;
	PGconn	   *conn;
	KeptLink   *k;
	MemoryContext old;

	if (!now)
	{
		FailedLink *f = failed_link(conninfo);

		if (f != NULL && GetCurrentTimestamp() < f->retry_at)
		{
			*err = pstrdup(f->err);
			return NULL;
		}
	}
	foreach(lc, kept_links)
	{
		k = lfirst(lc);
		if (!k->in_use && strcmp(k->conninfo, conninfo) == 0)
		{
			if (link_usable(k->conn))
			{
				k->in_use = true;
				return k->conn;
			}
			drop_link(k);
			break;
		}
	}
	conn = link_connect(conninfo, err);
	remember_attempt(conninfo, conn == NULL ? *err : NULL);
	if (conn == NULL)
		return NULL;
	old = MemoryContextSwitchTo(TopMemoryContext);
	k = palloc(sizeof(KeptLink));
	k->conninfo = pstrdup(conninfo);
	k->conn = conn;
	k->in_use = true;
	k->last_used = GetCurrentTimestamp();
	kept_links = lappend(kept_links, k);
	MemoryContextSwitchTo(old);
	return conn;
}

PGconn *
link_open(const char *conninfo, char **err)
{
	return open_link(conninfo, false, err);
}

PGconn *
link_open_now(const char *conninfo, char **err)
{
	return open_link(conninfo, true, err);
}

/*
 * A kept link to conninfo that is idle and good, marked in use; NULL (and
 * no attempt to connect) if there is none: for work that must not wait on
 * a site that does not answer.
 */
PGconn *
link_open_kept(const char *conninfo)
{
	ListCell   *lc;

	foreach(lc, kept_links)
	{
		KeptLink   *k = lfirst(lc);

		if (!k->in_use && strcmp(k->conninfo, conninfo) == 0)
		{
			if (!link_usable(k->conn))
			{
				drop_link(k);
				return NULL;
			}
			k->in_use = true;
			return k->conn;
		}
	}
	return NULL;
}

void
link_close(PGconn *conn, bool keep)
{
	ListCell   *lc;

	foreach(lc, kept_links)
	{
		KeptLink   *k = lfirst(lc);

		if (k->conn != conn)
			continue;
		if (keep && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE)
		{
			k->in_use = false;
			k->last_used = GetCurrentTimestamp();
		}
		else
			drop_link(k);
		return;
	}
	PQfinish(conn);				/* not one of ours */
}

void
sms_link_forget_lost(int idle_ms)
{
	TimestampTz now = GetCurrentTimestamp();

	for (;;)
	{
		KeptLink   *victim = NULL;
		ListCell   *lc;

		foreach(lc, kept_links)
		{
			KeptLink   *k = lfirst(lc);

			if (k->in_use || TimestampDifferenceExceeds(k->last_used, now, idle_ms))
			{
				victim = k;
				break;
			}
		}
		if (victim == NULL)
			return;
		drop_link(victim);
	}
}

/* ----------------------------------------------------------------
 * What a child answers
 *
 * A child site is another server, run by other people: its answers are
 * input, checked like any other before they are used.  These helpers check
 * the form; the Sender checks the meaning (sender.c).
 * ---------------------------------------------------------------- */

/*
 * The one number a call answers (an offset): exactly one row of one
 * column, not NULL, a decimal integer that fits 64 bits.  false with *err
 * saying what came instead.
 */
bool
link_answer_int8(PGresult *res, int64 *value, char **err)
{
	const char *s;
	char	   *end;
	long long	v;

	if (PQntuples(res) != 1 || PQnfields(res) != 1)
	{
		*err = psprintf("%d rows of %d columns instead of one number",
						PQntuples(res), PQnfields(res));
		return false;
	}
	if (PQgetisnull(res, 0, 0))
	{
		*err = pstrdup("NULL instead of a number");
		return false;
	}
	s = PQgetvalue(res, 0, 0);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
	{
		char	   *shown = link_clean_text(s, 40);

		*err = shown ? psprintf("\"%s\" instead of a number", shown) :
			pstrdup("a value that is not a number (nor valid text)");
		return false;
	}
	*value = (int64) v;
	return true;
}

/*
 * A text a child answered, made fit to be stored and shown here: NULL if it
 * is not valid in this database's encoding; otherwise a palloc'd copy with
 * each control character (C0, DEL, and in UTF-8 the C1 controls and the
 * line and paragraph separators) replaced by a space, cut to at most
 * max_bytes bytes on a character boundary.
 */
char *
link_clean_text(const char *s, int max_bytes)
{
	int			len = strlen(s);
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	char	   *out;

	if (!pg_verifymbstr(s, len, true))
		return NULL;
	if (len > max_bytes)
		len = pg_mbcliplen(s, len, max_bytes);
	out = pnstrdup(s, len);
	for (unsigned char *p = (unsigned char *) out; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
		else if (utf8 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
		{
			/* two bytes become two spaces: the string stays valid */
			p[0] = p[1] = ' ';
			p++;
		}
		else if (utf8 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
		{
			p[0] = p[1] = p[2] = ' ';
			p += 2;
		}
	}
	return out;
}

/* ----------------------------------------------------------------
 * One hop at a time (see site_link.h)
 * ----------------------------------------------------------------
 */
bool
link_to_hop(SmsHopLink *link, const char *hop, const char *conninfo)
{
	if (link->hop == NULL || strcmp(link->hop, hop) != 0)
	{
		link_hop_close(link);
		link->hop = hop;
		link->err = NULL;
		if (conninfo == NULL)
			link->err = psprintf("no enabled sender address for site %s", hop);
		else
			link->conn = link_open(conninfo, &link->err);
	}
	return link->conn != NULL;
}

void
link_hop_failed(SmsHopLink *link, char *err)
{
	if (link->conn != NULL && PQstatus(link->conn) != CONNECTION_OK)
	{
		link_close(link->conn, false);
		link->conn = NULL;
		link->err = err;
	}
}

void
link_hop_close(SmsHopLink *link)
{
	if (link->conn != NULL)
		link_close(link->conn, true);
	link->conn = NULL;
}
