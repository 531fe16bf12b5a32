/*-------------------------------------------------------------------------
 *
 * sha256.c
 *	  SHA-256 of a buffer or of a whole file, as lower-case hex: the one
 *	  place the package modules get the hashes that travel with a package
 *	  (package file, transfer chunks).  PostgreSQL's own cryptohash does the
 *	  work (OpenSSL when the server was built with it).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "sha256.h"

#include "common/cryptohash.h"
#include "miscadmin.h"

#define HASH_BUFFER_BYTES	(1024 * 1024)

/* hex must hold SMS_SHA256_HEX_LEN + 1 bytes */
void
sms_sha256_digest_hex(const uint8 *digest, char *hex)
{
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", digest[i]);
	hex[SMS_SHA256_HEX_LEN] = '\0';
}

void
sms_sha256_buffer(const void *data, size_t len, char *hex)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	sms_sha256_digest_hex(digest, hex);
}

/*
 * SHA-256 of a whole open file, read from its start in 1 MB blocks (a
 * package can be larger than memory).  Fills *size.  Returns false, with
 * errno set, if the file cannot be read.
 */
bool
sms_sha256_fd(int fd, char *hex, int64 *size)
{
	pg_cryptohash_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *buf;
	ssize_t		r;

	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256: %s", pg_cryptohash_error(ctx));
	buf = palloc(HASH_BUFFER_BYTES);
	*size = 0;
	while ((r = pg_pread(fd, buf, HASH_BUFFER_BYTES, *size)) > 0)
	{
		if (pg_cryptohash_update(ctx, (uint8 *) buf, r) < 0)
			elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
		*size += r;
		CHECK_FOR_INTERRUPTS();
	}
	pfree(buf);
	if (r < 0)
	{
		int			save = errno;

		pg_cryptohash_free(ctx);
		errno = save;
		return false;
	}
	if (pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	sms_sha256_digest_hex(digest, hex);
	return true;
}
