/*-------------------------------------------------------------------------
 *
 * install_file.h
 *	  The installation file, offerinf.box/<ADVERTID>.INS: which collection
 *	  an advertisement is for.
 *
 * The functions follow the rules of every typed format (pcm_file.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_INSTALL_FILE_H
#define SMS_FMT_INSTALL_FILE_H

#include <stdbool.h>
#include <stddef.h>

#define SMS_FMT_INSTALL			"install"

typedef struct SmsInstallFile
{
	char	   *advert_id;
	char	   *collection_id;
} SmsInstallFile;

extern bool sms_install_to_text(const SmsInstallFile *f, char **out, size_t *len,
								char *err, size_t errlen);
extern bool sms_install_parse(const char *buf, size_t len, SmsInstallFile *out,
							  char *err, size_t errlen);
extern void sms_install_free(SmsInstallFile *f);

#endif							/* SMS_FMT_INSTALL_FILE_H */
