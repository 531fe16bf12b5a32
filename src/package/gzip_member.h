/*-------------------------------------------------------------------------
 *
 * gzip_member.h
 *	  One gzip member from a buffer, and back, with a fast library
 *	  (gzip_member.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_GZIP_MEMBER_H
#define SMS_GZIP_MEMBER_H

#include "postgres.h"

typedef struct SmsMemberCompressor SmsMemberCompressor;

extern SmsMemberCompressor *sms_member_compressor_create(int method, int level);
extern size_t sms_member_bound(size_t in_bytes);
extern size_t sms_member_compress(SmsMemberCompressor *c, bool store,
								  const void *in, size_t n, void *out, size_t cap);
extern void sms_member_compressor_free(SmsMemberCompressor *c);

/* What sms_member_inflate() found. */
typedef enum SmsMemberResult
{
	SMS_MEMBER_OK,				/* one whole member inflated and checked */
	SMS_MEMBER_UNSURE			/* anything else: let zlib stream it */
} SmsMemberResult;

typedef struct SmsMemberInflater SmsMemberInflater;

extern SmsMemberInflater *sms_member_inflater_create(void);
extern SmsMemberResult sms_member_inflate(SmsMemberInflater *d, const void *in, size_t n,
										  void *out, size_t cap,
										  size_t *in_used, size_t *out_len);
extern void sms_member_inflater_free(SmsMemberInflater *d);

#endif							/* SMS_GZIP_MEMBER_H */
