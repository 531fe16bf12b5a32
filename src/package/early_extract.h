/*-------------------------------------------------------------------------
 *
 * early_extract.h
 *	  Extracting a package file while it is received (early_extract.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_EARLY_EXTRACT_H
#define SMS_EARLY_EXTRACT_H

#include "package_manifest.h"

/* An early extraction waits this long for new bytes before it gives up. */
#define SMS_EARLY_STALL_MS		(60 * 1000)

extern bool sms_early_start(const char *package_id, int version, const char *stream_id,
							const char *part_path, const char *drive);
extern bool sms_early_busy(void);
extern bool sms_early_tried(const char *package_id, int version, const char *stream_id);
extern void sms_early_poll(void);
extern bool sms_early_is_for(const char *package_id, int version);
extern char *sms_early_take(const char *package_id, int version, const char *sha256,
							SmsManifest **manifest);

extern PGDLLEXPORT void smsdist_early_extractor_main(Datum arg);

#endif							/* SMS_EARLY_EXTRACT_H */
