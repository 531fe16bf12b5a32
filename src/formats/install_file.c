/*-------------------------------------------------------------------------
 *
 * install_file.c
 *	  The installation file (.INS): a header with two IDs.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "install_file.h"

#include "fields.h"

static const SmsField install_header[] = {
	SMS_STRING(SmsInstallFile, advert_id, SMS_REQUIRED, sms_check_sms_id),
	SMS_STRING(SmsInstallFile, collection_id, SMS_REQUIRED, sms_check_sms_id),
};

static const SmsFormatSpec install_format = {
	.format = SMS_FMT_INSTALL,
	.size = sizeof(SmsInstallFile),
	.header = install_header,
	.nheader = SMS_NFIELDS(install_header),
};

bool
sms_install_to_text(const SmsInstallFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	return sms_format_to_text(&install_format, f, out, len, err, errlen);
}

bool
sms_install_parse(const char *buf, size_t len, SmsInstallFile *out, char *err, size_t errlen)
{
	return sms_format_parse(&install_format, buf, len, out, err, errlen);
}

void
sms_install_free(SmsInstallFile *f)
{
	sms_format_free(&install_format, f);
}
