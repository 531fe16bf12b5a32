/*-------------------------------------------------------------------------
 *
 * nal_file.h
 *	  The NAL (network access list), pkginfo.box/<PACKAGEID>.NAL: where a
 *	  package's source can be read, or that it was removed from this site.
 *
 * The functions follow the rules of every typed format (pcm_file.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_NAL_FILE_H
#define SMS_FMT_NAL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMS_FMT_NAL				"nal"

typedef struct SmsNalLocation
{
	char	   *site;
	char	   *server;			/* 1-15 of A-Z a-z 0-9 - _, not starting - */
	char	   *path;			/* absolute */
} SmsNalLocation;

typedef struct SmsNalFile
{
	char	   *package_id;
	int64_t		source_version;
	SmsNalLocation *locations;	/* written sorted by site, server, path */
	size_t		nlocations;
	bool		removed;		/* removed from this site: no location */
} SmsNalFile;

extern bool sms_nal_to_text(const SmsNalFile *f, char **out, size_t *len,
							char *err, size_t errlen);
extern bool sms_nal_parse(const char *buf, size_t len, SmsNalFile *out,
						  char *err, size_t errlen);
extern void sms_nal_free(SmsNalFile *f);

#endif							/* SMS_FMT_NAL_FILE_H */
