/*-------------------------------------------------------------------------
 *
 * inflate.h
 *	  Inflating a package file in an inflater process (inflate.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_INFLATE_H
#define SMS_INFLATE_H

#include "postgres.h"

/* Package files smaller than this are inflated by the extractor itself. */
#define SMS_INFLATER_MIN_BYTES	((int64) 4 * 1024 * 1024)

typedef struct SmsInflater SmsInflater;

extern SmsInflater *sms_inflater_start(const char *path);
extern ssize_t sms_inflater_read(SmsInflater *inf, const void **data, char **err);
extern void sms_inflater_finish(SmsInflater *inf, const char *path, char *file_sha256);
extern void sms_inflater_stop(SmsInflater *inf);

extern PGDLLEXPORT void smsdist_inflater_main(Datum arg);

#endif							/* SMS_INFLATE_H */
