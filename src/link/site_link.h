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

#define SMS_LINK_TIMEOUT_MS	60000	/* one call; one connection attempt at most */

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

/*
 * Pipelined requests (each its own transaction at the site): enter, send
 * several, take their results in order (caller PQclears; NULL with *err
 * set), and exit after taking the results of the pending ones (false if the
 * connection is no good any more).
 */
extern bool link_pipeline_enter(PGconn *conn, char **err);
extern bool link_pipeline_send(PGconn *conn, const char *sql, int n, const char *const *values,
							   const int *lengths, const int *formats, char **err);
extern PGresult *link_pipeline_result(PGconn *conn, char **err);
extern bool link_pipeline_exit(PGconn *conn, int pending);

/*
 * A connection to conninfo, kept from an earlier call if there is a good one
 * (link_connect otherwise); give it back with link_close(conn, keep): keep
 * it open for the next caller, or (keep = false, after a failure) close it.
 * After a failed attempt, link_open answers that failure without trying
 * again until its back-off has passed (1 s, doubling up to a minute, per
 * process); link_open_now always tries.
 */
extern PGconn *link_open(const char *conninfo, char **err);
extern PGconn *link_open_now(const char *conninfo, char **err);
extern PGconn *link_open_kept(const char *conninfo);
extern void link_close(PGconn *conn, bool keep);

/*
 * One connection at a time over a list of calls ordered by hop (the child
 * site through which a site below is reached): link_to_hop connects to hop
 * unless it is the hop already connected (conninfo NULL: the hop has no
 * enabled sender address), false with link->err saying why there is no
 * connection; after a failed call, link_hop_failed drops a connection that
 * is lost, so the rest of that hop's calls fail at once with err;
 * link_hop_close gives the connection back.  Start from a zeroed struct.
 */
typedef struct SmsHopLink
{
	const char *hop;			/* NULL: none yet */
	PGconn	   *conn;			/* NULL: none (err says why) */
	char	   *err;
} SmsHopLink;

extern bool link_to_hop(SmsHopLink *link, const char *hop, const char *conninfo);
extern void link_hop_failed(SmsHopLink *link, char *err);
extern void link_hop_close(SmsHopLink *link);

/*
 * At the start of a step: close kept connections an error left marked in
 * use, and those unused for idle_ms.
 */
extern void sms_link_forget_lost(int idle_ms);

/*
 * What a child answers is input (sender.c checks its meaning):
 * link_answer_int8 takes the one number of a one-row, one-column answer
 * (false with *err saying what came instead); link_clean_text gives a copy
 * of a text fit to store, control characters replaced by spaces and cut to
 * max_bytes, or NULL if it is not valid in this database's encoding.
 */
extern bool link_answer_int8(PGresult *res, int64 *value, char **err);
extern char *link_clean_text(const char *s, int max_bytes);

#endif							/* SMSDIST_SITE_LINK_H */
