/*-------------------------------------------------------------------------
 *
 * sender_reports.h
 *	  The Sender follows its child sites' reports on the jobs it sent them
 *	  (distribution, progress and location reports; sender_reports.c).
 *
 *	during_job	the job whose transfer is under way, when the reports are
 *				taken between its chunks: its own rows are left alone, and
 *				only links already open are used (no waiting on a site
 *				that is down).  NULL between transfers, when jobs whose
 *				every site is done are also completed (or failed).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SENDER_REPORTS_H
#define SMSDIST_SENDER_REPORTS_H

#include "smsdist.h"

extern bool sender_follow_reports(const char *during_job);

#endif							/* SMSDIST_SENDER_REPORTS_H */
