/*-------------------------------------------------------------------------
 *
 * target_reports.h
 *	  Targets that end here: not applicable, no longer targeted
 *	  (target_reports.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_TARGET_REPORTS_H
#define SMSDIST_TARGET_REPORTS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "offers.h"

/* Each target of o whose program does not run on this platform, reported once. */
extern void report_not_applicable(const Config *c, int64_t now, const Offers *o);

/*
 * The offers of the last poll (state: the lines of <state dir>/offers, or
 * NULL) that o shows no longer target this machine, reported once.
 * same_logon: same_logon_as_before().
 */
extern void report_no_longer_targeted(const Config *c, int64_t now, const Offers *o, const char *state,
									  bool same_logon);

/*
 * Is the logged-on user (and are the groups) the same as at the last poll?
 * Records this poll's in <state dir>/logon.  Unknown (no record): false.
 */
extern bool same_logon_as_before(const Config *c);

/* <state dir>/expires: the expiry of each current offer that has one */
extern void keep_expiries(const Config *c, const Offers *o);

#endif							/* SMSDIST_TARGET_REPORTS_H */
