/*-------------------------------------------------------------------------
 *
 * sender_throttle.h
 *	  How fast the Sender may send to a child site: the throttling of its
 *	  sender address, the waits between chunks, and what transfers measure
 *	  of the link for time estimates.
 *
 *	mode		smsdist.sender_addresses.throttle: 'unlimited' (or none),
 *				'pulse' or 'rate_limited'.
 *	pulse		send blocks of block_kb and wait delay_ms after each.
 *	hourly rate	'rate_limited': for each hour of the day (the server's time
 *				zone), the percentage p of the time the link may be used;
 *				after a chunk that took t the Sender waits t * (100 - p) / p,
 *				and at 0 % it does not send in that hour (paused).
 *	measurement	a row of smsdist.link_measurements: bytes a transfer sent
 *				and the time on the wire it took, for preview()'s estimates.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SENDER_THROTTLE_H
#define SMSDIST_SENDER_THROTTLE_H

#include "smsdist.h"

/* The throttling of one sender address. */
typedef struct Throttle
{
	char		mode[16];
	int			block_kb;
	int			delay_ms;
	int			pct[24];
} Throttle;

extern void sender_throttle_read_hours(Throttle *t, const char *hourly_rate_pct);
extern size_t sender_throttle_chunk_bytes(const Throttle *t, size_t chunk);
extern int	sender_throttle_pipeline_depth(const Throttle *t, int unthrottled_depth);
extern bool sender_throttle_allows(const Throttle *t);
extern bool sender_throttle_after(const Throttle *t, long chunk_ms);
extern void sender_latch_wait(long ms);
extern void sender_record_throughput(const char *hop, const char *conninfo, const char *job_id,
									 int64 bytes, int64 us);

#endif							/* SMSDIST_SENDER_THROTTLE_H */
