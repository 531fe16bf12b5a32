/*-------------------------------------------------------------------------
 *
 * sender_small.h
 *	  The requests of a transfer to the child site (receive_begin,
 *	  receive_end), the check of the offsets it answers, and the transfer
 *	  of a small file in one round trip (sender_small.c).
 *
 *	request		one call at the site, its SQL and text parameters, built
 *				once for the state machine and the small-file path alike.
 *	small file	a finished file (not a stream) of at most SMALL_FILE_BYTES
 *				on an unthrottled link: receive_begin, its one chunk and
 *				receive_end go in one pipeline, answered together.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SENDER_SMALL_H
#define SMSDIST_SENDER_SMALL_H

#include "sender_transfer.h"
#include "libpq-fe.h"

/* A call at the site; values point into the request itself. */
typedef struct SiteRequest
{
	const char *sql;
	int			n;
	const char *values[8];
	char		total[32];
	char		base[16];
} SiteRequest;

/* What came of sender_send_small. */
typedef enum SmallOutcome
{
	SMALL_DONE,					/* the site took the file and the job */
	SMALL_FAILED,				/* *err says why */
	SMALL_RESUME				/* the site had part of it: go on from *offset */
} SmallOutcome;

extern void sender_begin_request(const Transfer *t, const char *version, SiteRequest *r);
extern void sender_end_request(const Transfer *t, const char *version, SiteRequest *r);
extern bool sender_answer_offset(PGresult *res, const Transfer *t, const char *call,
								 int64 lo, int64 hi, int64 *offset, char **err);
extern bool sender_is_small(const Transfer *t);
extern SmallOutcome sender_send_small(PGconn *conn, Transfer *t, const char *version,
									  int64 *offset, char **err);

#endif							/* SMSDIST_SENDER_SMALL_H */
