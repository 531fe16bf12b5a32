/*-------------------------------------------------------------------------
 *
 * sender_fanout.h
 *	  Sending to several child sites at once: the Sender's send helpers,
 *	  one background worker per transfer, within the limits on transfers
 *	  at once (sender_fanout.c).
 *
 *	send helper		a background worker (type "smsdist send") that sends
 *					one (job, hop) the Sender chose; its application_name
 *					is "smsdist send <job> <hop>".
 *	running			a (job, hop) whose helper runs: one this Sender started
 *					and has not seen stop, or one whose application_name is
 *					in pg_stat_activity (a helper of a Sender that stopped).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SENDER_FANOUT_H
#define SMSDIST_SENDER_FANOUT_H

#include "smsdist.h"

/*
 * The running transfers as a query of (job_id, hop), given the SQL
 * parameter that holds sender_fanout_running().
 */
#define SENDER_RUNNING_TRANSFERS_SQL(param) \
	"SELECT split_part(k, ' ', 1) AS job_id, split_part(k, ' ', 2) AS hop" \
	"  FROM (SELECT unnest(" param "::text[]) AS k" \
	"        UNION SELECT substr(a.application_name, 14) FROM pg_catalog.pg_stat_activity a" \
	"         WHERE a.backend_type = 'smsdist send' AND a.application_name LIKE 'smsdist send %'" \
	"           AND a.datname = pg_catalog.current_database()) r"

/* What a helper is told, in bgw_extra (its main is in sender.c). */
typedef struct SendHelperArgs
{
	Oid			dboid;
	char		job_id[16];
	char		hop[16];
} SendHelperArgs;


extern Datum sender_fanout_running(void);
extern int	sender_fanout_reap(void);
extern bool sender_fanout_start(const char *job_id, const char *hop);

#endif							/* SMSDIST_SENDER_FANOUT_H */
