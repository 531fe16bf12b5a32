/*-------------------------------------------------------------------------
 *
 * package_file.h
 *	  The package file, pkginfo.box/<PACKAGEID>.PKG (and the optional
 *	  .ICO beside it): a package and its programs.
 *
 * The functions follow the rules of every typed format (pcm_file.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_PACKAGE_FILE_H
#define SMS_FMT_PACKAGE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMS_FMT_PACKAGE			"package"

typedef struct SmsPackageProgram
{
	char	   *name;
	char	   *command_line;
	char	  **platforms;
	size_t		nplatforms;
	int32_t		max_run_minutes;	/* 0: no limit */
	bool		user_rights;	/* run as the logged-on user, not as the agent */
} SmsPackageProgram;

typedef struct SmsPackageFile
{
	char	   *package_id;
	char	   *name;
	char	   *product_version;	/* optional; "version" is the header's */
	char	   *manufacturer;	/* optional */
	char	   *language;		/* optional */
	int64_t		source_version; /* >= 1 */
	char	   *sha256;			/* 64 lower-case hex digits */
	bool		has_icon;		/* icon=<PACKAGEID>.ICO, else icon=none */
	char	   *icon_sha256;	/* with an icon: the SHA-256 of the .ICO */
	SmsPackageProgram *programs;	/* written sorted by name */
	size_t		nprograms;
} SmsPackageFile;

extern bool sms_package_to_text(const SmsPackageFile *f, char **out, size_t *len,
								char *err, size_t errlen);
extern bool sms_package_parse(const char *buf, size_t len, SmsPackageFile *out,
							  char *err, size_t errlen);
extern void sms_package_free(SmsPackageFile *f);

#endif							/* SMS_FMT_PACKAGE_FILE_H */
