/*-------------------------------------------------------------------------
 *
 * sender_throttle.c
 *	  Throttling of the Sender's transfers, per sender address, and the
 *	  link measurements its transfers leave for time estimates.
 *
 * Terms (see sender_throttle.h): mode, pulse, hourly rate, measurement.
 *
 * Every wait is on the process latch, so SIGTERM, postmaster death and a
 * wake-up are honoured at once; a wait for the throttle goes on after a
 * wake-up until its time is over, a wait for news (sender_latch_wait) ends
 * with the wake-up.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "sender_throttle.h"

#include <time.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/*
 * The 24 percentages of an hourly_rate_pct array given as text ("{...}");
 * hours it does not give stay as they are.
 */
void
sender_throttle_read_hours(Throttle *t, const char *hourly_rate_pct)
{
	char	   *p;

	if (hourly_rate_pct == NULL || hourly_rate_pct[0] != '{')
		return;
	p = (char *) hourly_rate_pct + 1;
	for (int h = 0; h < 24 && *p; h++)
	{
		t->pct[h] = (int) strtol(p, &p, 10);
		if (*p == ',' || *p == '}')
			p++;
	}
}

/* The size of a chunk: a pulse's block, if smaller than chunk. */
size_t
sender_throttle_chunk_bytes(const Throttle *t, size_t chunk)
{
	if (strcmp(t->mode, "pulse") == 0 && t->block_kb > 0)
		chunk = Min((size_t) t->block_kb * 1024, chunk);
	return chunk;
}

/*
 * How many chunks may be in flight.  Unthrottled, the next chunk is sent
 * while the site is still writing the one before, so that the site's fsync
 * and our reading and hashing overlap.  Throttled, one at a time, so the
 * pauses fall between chunks as configured.
 */
int
sender_throttle_pipeline_depth(const Throttle *t, int unthrottled_depth)
{
	return strcmp(t->mode, "unlimited") == 0 || t->mode[0] == '\0' ? unthrottled_depth : 1;
}

/* Sleep on the latch for ms milliseconds, interruptibly. */
static void
throttle_sleep(long ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		if (left <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Wait until the latch is set (a builder's member, a commit that concerns
 * us) or ms milliseconds pass, whichever is first.
 */
void
sender_latch_wait(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * The hours of hourly_rate_pct are those of the server's time zone (the
 * timezone setting), as explain() and the docs read them, not of the
 * process's TZ environment.
 */
static int
current_hour_pct(const Throttle *t)
{
	pg_time_t	now = (pg_time_t) time(NULL);
	struct pg_tm *tm = pg_localtime(&now, session_timezone);

	return t->pct[tm != NULL ? tm->tm_hour : 0];
}

/*
 * After a chunk of chunk_ms: wait as the address's throttling says.  Returns
 * false when this hour's share is 0 %: the transfer stops (and resumes from
 * the child's offset later) rather than hold the Sender, which serves every
 * site, until the hour is over.
 */
bool
sender_throttle_after(const Throttle *t, long chunk_ms)
{
	if (strcmp(t->mode, "pulse") == 0)
		throttle_sleep(t->delay_ms);
	else if (strcmp(t->mode, "rate_limited") == 0)
	{
		int			p = current_hour_pct(t);

		if (p == 0)
			return false;
		if (p < 100)
			throttle_sleep(Max(chunk_ms, 1) * (100 - p) / p);
	}
	return true;
}

/* Whether a transfer may start now: not in an hour of 0 %. */
bool
sender_throttle_allows(const Throttle *t)
{
	return strcmp(t->mode, "rate_limited") != 0 || current_hour_pct(t) > 0;
}

/*
 * Keep what a transfer measured of the link (smsdist.link_measurements,
 * the ten newest per sender address), for preview()'s time estimates: the
 * bytes the site took and the time of the rounds that carried them (us,
 * microseconds), without throttling pauses and without waiting for a build
 * that is still written.
 */
void
sender_record_throughput(const char *hop, const char *conninfo, const char *job_id,
						 int64 bytes, int64 us)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, INT8OID, FLOAT8OID};
	Datum		values[5];

	if (bytes <= 0 || us <= 0 || conninfo == NULL)
		return;
	values[0] = CStringGetTextDatum(hop);
	values[1] = CStringGetTextDatum(conninfo);
	values[2] = CStringGetTextDatum(job_id);
	values[3] = Int64GetDatum(bytes);
	values[4] = Float8GetDatum((double) us / 1000000.0);
	if (sms_execute_kept("WITH a AS ("
						 "  SELECT address_id FROM smsdist.sender_addresses"
						 "   WHERE target_site_code = $1 AND conninfo::text = $2 AND enabled"
						 "   ORDER BY priority LIMIT 1),"
						 " ins AS ("
						 "  INSERT INTO smsdist.link_measurements (address_id, job_id, bytes, seconds)"
						 "  SELECT address_id, $3, $4, $5 FROM a"
						 "      ON CONFLICT DO NOTHING RETURNING address_id)"
						 "DELETE FROM smsdist.link_measurements m USING a"
						 " WHERE m.address_id = a.address_id"
						 "   AND m.measured_at < (SELECT measured_at FROM smsdist.link_measurements k"
						 "                         WHERE k.address_id = a.address_id"
						 "                         ORDER BY measured_at DESC OFFSET 8 LIMIT 1)",
						 5, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist sender: recording the link's throughput failed");
}
