/*-------------------------------------------------------------------------
 *
 * fuzz_gzip_member.c
 *	  libFuzzer target for whole-member gzip (src/package/gzip_member.c),
 *	  run outside the server over pg_shim.c.
 *
 * The inflater runs sms_member_inflate over package files from a parent
 * site or a share.  Properties checked:
 *
 *	agree		when sms_member_inflate says SMS_MEMBER_OK, zlib inflating
 *				the same bytes as one gzip member ends the member at the
 *				same byte and gives the same contents, which fit the
 *				output buffer -- never a crash or a sanitizer report
 *				whatever the bytes.
 *	round trip	the input, compressed by each method (libdeflate at a
 *				level from the first byte, ISA-L, stored) as one member,
 *				is read back by zlib exactly, and by sms_member_inflate.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "pg_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "gzip_member.h"
#include "smsdist.h"

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz property failed: %s\n", #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

#define OUT_CAP		(64 * 1024)

/* zlib's reading of the first member: its length in, contents out; -1 if not one */
static long
zlib_member(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
	z_stream	zs;
	int			zret;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		abort();
	zs.next_in = (Bytef *) in;
	zs.avail_in = (uInt) n;
	zs.next_out = out;
	zs.avail_out = (uInt) cap;
	zret = inflate(&zs, Z_FINISH);
	*out_len = cap - zs.avail_out;
	inflateEnd(&zs);
	return zret == Z_STREAM_END ? (long) (n - zs.avail_in) : -1;
}

static void
round_trip(SmsMemberInflater *d, int method, int level, bool store, const uint8_t *data, size_t n)
{
	SmsMemberCompressor *c = sms_member_compressor_create(method, level);
	size_t		cap = sms_member_bound(n);
	uint8_t    *z = malloc(cap);
	uint8_t    *back = malloc(n + 1);
	size_t		zn = sms_member_compress(c, store, data, n, z, cap);
	size_t		back_len = 0;
	size_t		used = 0;

	CHECK(zn > 0 && zn <= cap, "method %d level %d: %zu bytes out of %zu", method, level, zn, cap);
	CHECK(zlib_member(z, zn, back, n + 1, &back_len) == (long) zn,
		  "method %d level %d store %d: zlib does not read the member", method, level, store);
	CHECK(back_len == n && memcmp(back, data, n) == 0, "method %d: zlib reads other bytes", method);
	CHECK(sms_member_inflate(d, z, zn, back, n + 1, &used, &back_len) == SMS_MEMBER_OK &&
		  used == zn && back_len == n && memcmp(back, data, n) == 0,
		  "method %d: sms_member_inflate does not read the member back", method);
	sms_member_compressor_free(c);
	free(z);
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static SmsMemberInflater *d = NULL;
	static uint8_t out[OUT_CAP];
	static uint8_t zout[OUT_CAP];
	size_t		used = 0;
	size_t		len = 0;

	if (d == NULL)
		d = sms_member_inflater_create();

	/* as the inflater meets them: any bytes at all */
	if (sms_member_inflate(d, data, size, out, OUT_CAP, &used, &len) == SMS_MEMBER_OK)
	{
		size_t		zlen = 0;
		long		zused = zlib_member(data, size, zout, OUT_CAP, &zlen);

		CHECK(used <= size && len <= OUT_CAP, "used %zu of %zu, %zu out", used, size, len);
		CHECK(zused == (long) used, "libdeflate ends the member at %zu, zlib at %ld", used, zused);
		CHECK(zlen == len && memcmp(zout, out, len) == 0, "libdeflate and zlib inflate differently");
	}

	/* as the compressors make them */
	if (size > 0 && size <= OUT_CAP)
	{
		round_trip(d, SMS_COMPRESSION_LIBDEFLATE, 1 + data[0] % 9, false, data, size);
		round_trip(d, SMS_COMPRESSION_ISAL, 1, false, data, size);
		round_trip(d, SMS_COMPRESSION_LIBDEFLATE, 6, true, data, size);
	}
	return 0;
}
