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

/*
 * Told how far the work is: done, the input bytes compressed; file_bytes,
 * the bytes of the output file that are final (members appended in order),
 * or -1 when that has not changed since the last call.  Called about every
 * 100 ms and after each member is appended.
 */
typedef void (*SmsCompressProgress) (int64 done, int64 file_bytes, void *arg);

extern SmsCompressJob *sms_compress_begin(const char *tar_path, const char *parts_dir,
										  int level, int nworkers);
extern int64 sms_compress_progress(SmsCompressJob *job);
extern int64 sms_compress_finish(SmsCompressJob *job, int64 tar_bytes, const char *out_path,
								 const char *tmp_path, char *sha256_hex, int64 *stored_bytes,
								 SmsCompressProgress progress, void *arg);
extern void sms_compress_abort(SmsCompressJob *job);

extern PGDLLEXPORT void smsdist_compressor_main(Datum arg);

#endif							/* SMS_COMPRESS_H */
