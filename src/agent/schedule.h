/*-------------------------------------------------------------------------
 *
 * schedule.h
 *	  Times of offers: instants and wall-clock readings, mandatory times,
 *	  maintenance windows (schedule.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SCHEDULE_H
#define SMSDIST_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sms_formats.h"

/* now as this machine's wall-clock reading, held as if it were UTC */
extern int64_t local_reading(int64_t now);
/* a wall-clock reading of this machine (as if UTC) as an instant */
extern int64_t local_instant(int64_t reading);
/* when as an instant (SMS_TIME_NONE stays so) */
extern int64_t instant_of(SmsWhen when);
/* this machine's offset from UTC at now, in seconds */
extern int32_t utc_offset(int64_t now);

/* true if when has come (an absent time never comes) */
extern bool has_come(SmsWhen when, int64_t now);

/* The latest mandatory time of the assignments at or before now, or SMS_TIME_NONE. */
extern int64_t last_due(const SmsOfferAssignment *assignments, size_t n, int64_t now);
/* Is now inside one of the windows (none: always)? */
extern bool in_window(const SmsOfferWindow *windows, size_t n, int64_t now);

#endif							/* SMSDIST_SCHEDULE_H */
