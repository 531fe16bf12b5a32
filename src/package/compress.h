/*-------------------------------------------------------------------------
 *
 * compress.h
 *	  Parallel gzip compression of a tar file being written (compress.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_COMPRESS_H
#define SMS_COMPRESS_H

#include "postgres.h"

/* Input bytes per gzip member (and per unit of parallel work). */
#define SMS_CHUNK_BYTES		((int64) 4 * 1024 * 1024)

typedef struct SmsCompressJob SmsCompressJob;

extern SmsCompressJob *sms_compress_begin(const char *tar_path, const char *parts_dir,
										  int level, int nworkers);
extern int64 sms_compress_progress(SmsCompressJob *job);
extern int64 sms_compress_finish(SmsCompressJob *job, int64 tar_bytes, const char *out_path,
								 const char *tmp_path, bool streamed, char *sha256_hex,
								 int64 *stored_bytes,
								 void (*progress) (int64 done, void *arg), void *arg);
extern void sms_compress_abort(SmsCompressJob *job);

extern PGDLLEXPORT void smsdist_compressor_main(Datum arg);

#endif							/* SMS_COMPRESS_H */
