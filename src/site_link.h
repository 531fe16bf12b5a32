/*-------------------------------------------------------------------------
 *
 * site_link.h
 *	  The link to a child site: libpq without blocking (site_link.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SITE_LINK_H
#define SMSDIST_SITE_LINK_H

#include "libpq-fe.h"
#include "datatype/timestamp.h"

#define SMS_LINK_TIMEOUT_MS	60000	/* one connection attempt or one call */

/* Wait for the socket (or the latch, or a timeout); false on timeout. */
extern bool link_wait(PGconn *conn, int events, TimestampTz deadline);

/* "what: libpq's message", palloc'd */
extern char *link_error(PGconn *conn, const char *what);

/* Connect without blocking; NULL with *err set on failure. */
extern PGconn *link_connect(const char *conninfo, char **err);

/*
 * Run one statement; its result (caller PQclears) or NULL with *err set.
 * Parameters are text, except those with format 1.
 */
extern PGresult *link_exec(PGconn *conn, const char *sql, int n, const char *const *values,
						   const int *lengths, const int *formats, char **err);

#endif							/* SMSDIST_SITE_LINK_H */
