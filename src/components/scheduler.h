/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  The Scheduler: activates and expires jobs, creates their site and
 *	  target rows, starts package builders, purges old package files.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SCHEDULER_H
#define SMSDIST_SCHEDULER_H

#include "smsdist.h"

extern TimestampTz sms_scheduler_step(void);

#endif							/* SMSDIST_SCHEDULER_H */
