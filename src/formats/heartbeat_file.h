/*-------------------------------------------------------------------------
 *
 * heartbeat_file.h
 *	  The heartbeat, offerinf.box/<SITE>.HBT on every CAP, rewritten by the
 *	  site's Inbox Manager at least every interval_seconds: the site's
 *	  clock, for clients that read the shares (legacy mode) to measure
 *	  their skew.
 *
 * The functions follow the rules of every typed format (pcm_file.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_HEARTBEAT_FILE_H
#define SMS_FMT_HEARTBEAT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMS_FMT_HEARTBEAT		"heartbeat"

typedef struct SmsHeartbeatFile
{
	char	   *site;
	int64_t		site_time;		/* UTC, by the site server's clock */
	int32_t		interval_seconds;	/* 1-86400: the next one comes by then */
} SmsHeartbeatFile;

extern bool sms_heartbeat_to_text(const SmsHeartbeatFile *f, char **out, size_t *len,
								  char *err, size_t errlen);
extern bool sms_heartbeat_parse(const char *buf, size_t len, SmsHeartbeatFile *out,
								char *err, size_t errlen);
extern void sms_heartbeat_free(SmsHeartbeatFile *f);

#endif							/* SMS_FMT_HEARTBEAT_FILE_H */
