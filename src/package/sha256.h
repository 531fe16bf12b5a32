/*-------------------------------------------------------------------------
 *
 * sha256.h
 *	  SHA-256 as lower-case hex, of a buffer or of a whole file (sha256.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SHA256_H
#define SMSDIST_SHA256_H

#include "postgres.h"

#include "common/sha2.h"

/* The length of a SHA-256 in hex; a buffer for one holds one byte more. */
#define SMS_SHA256_HEX_LEN	(PG_SHA256_DIGEST_LENGTH * 2)

extern void sms_sha256_digest_hex(const uint8 *digest, char *hex);
extern void sms_sha256_buffer(const void *data, size_t len, char *hex);
extern bool sms_sha256_fd(int fd, char *hex, int64 *size);

#endif							/* SMSDIST_SHA256_H */
