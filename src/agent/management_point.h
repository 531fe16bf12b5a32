/*-------------------------------------------------------------------------
 *
 * management_point.h
 *	  Advanced mode: the agent's client of the site database
 *	  (management_point.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_MANAGEMENT_POINT_H
#define SMSDIST_MANAGEMENT_POINT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "offers.h"
#include "sms_formats.h"

/*
 * The offers of this machine's policy (and of its logged-on user and the
 * user's groups) into o; *now becomes the site's time.  False (said) if
 * the management point could not be asked.
 */
extern bool mp_offers(const Config *c, int64_t *now, Offers *o);

/*
 * --check: connect, authenticate and ask this machine's policy, then
 * disconnect; false after saying what failed.  Sends nothing.
 */
extern bool mp_check(const Config *c);

/*
 * Between polls: wait until the policy changes (a NOTIFY) or the interval
 * passes.
 */
extern void mp_wait(const Config *c);

/* Status message m through client_status(); false (said) if not sent. */
extern bool mp_send_status(const SmsStatusFile *m);

/*
 * The cache inventory (json) at now through client_cache_inventory();
 * false if not sent (said, unless there is no connection: the poll said
 * so).  *site_lacks_it: the site is too old to take one.
 */
extern bool mp_send_inventory(const Config *c, int64_t now, const char *json, bool *site_lacks_it);

#endif							/* SMSDIST_MANAGEMENT_POINT_H */
