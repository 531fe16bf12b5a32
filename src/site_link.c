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
 *			honoured at once; each connection attempt or call gives up after
 *			SMS_LINK_TIMEOUT_MS.
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

#include "miscadmin.h"
#include "storage/latch.h"
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

PGconn *
link_connect(const char *conninfo, char **err)
{
	PGconn	   *conn = PQconnectStart(conninfo);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SMS_LINK_TIMEOUT_MS);

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

/*
 * Run one statement on the link; returns its result (caller PQclears) or
 * NULL with *err set.  Parameters are text, except those with format 1.
 */
PGresult *
link_exec(PGconn *conn, const char *sql, int n, const char *const *values,
		  const int *lengths, const int *formats, char **err)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SMS_LINK_TIMEOUT_MS);
	PGresult   *res = NULL;
	PGresult   *r;
	int			f;

	if (!PQsendQueryParams(conn, sql, n, NULL, values, lengths, formats, 0))
	{
		*err = link_error(conn, "could not send a request");
		return NULL;
	}
	while ((f = PQflush(conn)) == 1)
	{
		if (!link_wait(conn, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, deadline))
		{
			*err = pstrdup("the site did not take the request in time");
			return NULL;
		}
		if (!PQconsumeInput(conn))
		{
			*err = link_error(conn, "connection lost");
			return NULL;
		}
	}
	if (f < 0)
	{
		*err = link_error(conn, "could not send a request");
		return NULL;
	}
	for (;;)
	{
		while (PQisBusy(conn))
		{
			if (!link_wait(conn, WL_SOCKET_READABLE, deadline))
			{
				*err = pstrdup("the site did not answer in time");
				if (res)
					PQclear(res);
				return NULL;
			}
			if (!PQconsumeInput(conn))
			{
				*err = link_error(conn, "connection lost");
				if (res)
					PQclear(res);
				return NULL;
			}
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
