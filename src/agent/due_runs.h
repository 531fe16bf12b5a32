/*-------------------------------------------------------------------------
 *
 * due_runs.h
 *	  Which offers' programs are due, and running them from the cache
 *	  (due_runs.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_DUE_RUNS_H
#define SMSDIST_DUE_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "offers.h"

/* What <state dir>/runs says of one target (see due_runs.c). */
typedef struct RunHistory
{
	int64_t		handled;		/* latest due time run or skipped, or SMS_TIME_NONE */
	bool		ran;			/* it ran at least once */
	int			last_rc;		/* the exit code of its last run */
	int64_t		last_at;		/* when its last run was */
} RunHistory;

/* What runs (the text of <state dir>/runs, or NULL) says of kind id. */
extern void run_history(const char *runs, const char *kind, const char *id, RunHistory *h);

/*
 * Run what is due at now: a mandatory time, inside a maintenance window
 * when the machine has any, or the one offer the user asked for (--run).
 */
extern void run_due(const Config *c, int64_t now, const Offers *o);

#endif							/* SMSDIST_DUE_RUNS_H */
