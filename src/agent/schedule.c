/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  Times of offers: instants and wall-clock readings, mandatory times,
 *	  maintenance windows.
 *
 * Terms:
 *	instant		a UTC time (seconds since the epoch).
 *	reading		a wall-clock reading of this machine, held in seconds as if
 *				it were UTC: an offer time or an assignment that is not
 *				UTC comes at that reading on each client's own clock, as in
 *				SMS.  An SmsWhen is either (utc says which).
 *	now			the site time (see agent_poll.c), an instant.
 *	mandatory	an assignment: a time (and perhaps a recurrence) at which
 *				the program runs without being asked; "due" is the latest
 *				such time that has come.
 *	window		a maintenance window: days of the week, a start minute and
 *				a duration, on this machine's wall clock; mandatory runs
 *				wait for one when the machine has any.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <time.h>

#include "schedule.h"

int64_t
local_reading(int64_t now)
{
	time_t		t = (time_t) now;
	struct tm	tm;

	localtime_r(&t, &tm);
	return (int64_t) timegm(&tm);
}

int64_t
local_instant(int64_t reading)
{
	time_t		t = (time_t) reading;
	struct tm	tm;

	gmtime_r(&t, &tm);
	tm.tm_isdst = -1;
	return (int64_t) mktime(&tm);
}

int64_t
instant_of(SmsWhen when)
{
	if (when.secs == SMS_TIME_NONE)
		return SMS_TIME_NONE;
	return when.utc ? when.secs : local_instant(when.secs);
}

int32_t
utc_offset(int64_t now)
{
	return (int32_t) (local_reading(now) - now);
}

bool
has_come(SmsWhen when, int64_t now)
{
	if (when.secs == SMS_TIME_NONE)
		return false;
	return when.secs <= (when.utc ? now : local_reading(now));
}

int64_t
last_due(const SmsOfferAssignment *assignments, size_t n, int64_t now)
{
	int64_t		best = SMS_TIME_NONE;

	for (size_t i = 0; i < n; i++)
	{
		const SmsOfferAssignment *a = &assignments[i];
		int64_t		first = a->time.utc ? a->time.secs : local_instant(a->time.secs);
		int64_t		due = first;

		if (first > now)
			continue;
		if (a->recur_every_minutes > 0)
		{
			int64_t		step = (int64_t) a->recur_every_minutes * 60;

			due = first + ((now - first) / step) * step;
		}
		if (best == SMS_TIME_NONE || due > best)
			best = due;
	}
	return best;
}

/* now on this machine's wall clock, at the site's instant, against each window */
bool
in_window(const SmsOfferWindow *windows, size_t n, int64_t now)
{
	int64_t		local = local_reading(now);
	int64_t		days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
	int64_t		week_minute = ((days + 3) % 7 + 7) % 7 * 1440 + (local - days * 86400) / 60;	/* Monday 00:00 = 0 */

	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++)
		for (int d = 0; d < 7; d++)
		{
			int64_t		start,
						end;

			if (!(windows[i].days & (1u << d)))
				continue;
			start = d * 1440 + windows[i].start_minute;
			end = start + windows[i].duration_minutes;
			if ((week_minute >= start && week_minute < end) ||
				(end > 7 * 1440 && week_minute < end - 7 * 1440))
				return true;
		}
	return false;
}
