/*-------------------------------------------------------------------------
 *
 * heartbeat_file.c
 *	  The heartbeat (.HBT): a header with the site's clock.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "heartbeat_file.h"

#include "fields.h"

static const SmsField heartbeat_header[] = {
	SMS_STRING(SmsHeartbeatFile, site, SMS_REQUIRED, sms_check_site),
	SMS_UTC(SmsHeartbeatFile, site_time, SMS_REQUIRED),
	SMS_INT(SmsHeartbeatFile, interval_seconds, SMS_REQUIRED, 1, 86400),
};

static const SmsFormatSpec heartbeat_format = {
	.format = SMS_FMT_HEARTBEAT,
	.size = sizeof(SmsHeartbeatFile),
	.header = heartbeat_header,
	.nheader = SMS_NFIELDS(heartbeat_header),
};

bool
sms_heartbeat_to_text(const SmsHeartbeatFile *f, char **out, size_t *len,
					  char *err, size_t errlen)
{
	return sms_format_to_text(&heartbeat_format, f, out, len, err, errlen);
}

bool
sms_heartbeat_parse(const char *buf, size_t len, SmsHeartbeatFile *out,
					char *err, size_t errlen)
{
	return sms_format_parse(&heartbeat_format, buf, len, out, err, errlen);
}

void
sms_heartbeat_free(SmsHeartbeatFile *f)
{
	sms_format_free(&heartbeat_format, f);
}
