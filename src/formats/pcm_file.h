/*-------------------------------------------------------------------------
 *
 * pcm_file.h
 *	  The PCM instruction file, pcins.box/<MACHINE>: the jobs the site
 *	  sends one workstation (the logon server's Package Command Manager
 *	  file of SMS).
 *
 * Like every typed format: *_to_text validates every field and writes the
 * canonical text; *_parse validates every field and fills a zeroed struct
 * whose strings it allocates, left zeroed on failure; *_free releases them
 * and zeroes the struct.  Optional strings are NULL when absent.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_PCM_FILE_H
#define SMS_FMT_PCM_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMS_FMT_PCM				"pcm"

typedef struct SmsPcmJob
{
	char	   *job_id;
	char	   *package_id;
	char	   *package_name;
	int64_t		package_version;	/* >= 1 */
	char	   *program;
	char	   *command_line;
	char	  **platforms;		/* none: any platform */
	size_t		nplatforms;
	int64_t		offer_after;	/* UTC */
	int64_t		mandatory_at;	/* UTC, or SMS_TIME_NONE */
	int64_t		expires_at;		/* UTC, or SMS_TIME_NONE */
	int32_t		max_run_minutes;	/* 1-10080, 0: no limit */
	bool		user_rights;	/* run as the logged-on user, not as the agent */
	char	  **locations;		/* >= 1 absolute paths, preferred first */
	size_t		nlocations;
	char	   *package_sha256;	/* 64 lower-case hex digits */
} SmsPcmJob;

typedef struct SmsPcmFile
{
	char	   *machine;		/* SMS ID of the workstation */
	char	   *site;
	int64_t		generated;		/* UTC */
	SmsPcmJob  *jobs;			/* written sorted by job_id */
	size_t		njobs;
} SmsPcmFile;

extern bool sms_pcm_to_text(const SmsPcmFile *f, char **out, size_t *len,
							char *err, size_t errlen);
extern bool sms_pcm_parse(const char *buf, size_t len, SmsPcmFile *out,
						  char *err, size_t errlen);
extern void sms_pcm_free(SmsPcmFile *f);

#endif							/* SMS_FMT_PCM_FILE_H */
