/*-------------------------------------------------------------------------
 *
 * gzip_member.c
 *	  One gzip member from a whole buffer, and one member back into a
 *	  whole buffer, with libraries faster than zlib.
 *
 * zlib streams: it takes its input and gives its output a piece at a
 * time, and pays for that generality.  A package file is a series of gzip
 * members of at most SMS_CHUNK_BYTES of input each (compress.c), so both
 * directions can work on whole buffers, which is what libdeflate is made
 * for (at level 6 it compresses in about half zlib's CPU time, and
 * inflates in 0.44-0.47 of it, measured on the benchmark data).  ISA-L's
 * igzip, at its level 1, compresses several times faster again, for
 * somewhat larger files: the fast method, for links where bytes are cheap.
 *
 * Terms:
 *	method		smsdist.compression_method: SMS_COMPRESSION_LIBDEFLATE,
 *				SMS_COMPRESSION_ISAL (or SMS_COMPRESSION_ZLIB, which
 *				compress.c streams itself and never asks for here).
 *	level		smsdist.compression_level, zlib's 1-9, mapped onto
 *				libdeflate's 1-12 by libdeflate_level[] (docs/packages.md):
 *				each zlib level to the fastest libdeflate level that made
 *				the benchmark tree's file no larger than zlib does at that
 *				level, so a level keeps its promise of size and gets there
 *				faster.  ISA-L always runs at its level 1.
 *	store		a member of near-random bytes (compress.c): stored blocks,
 *				libdeflate's level 0, whatever the method.
 *
 * The libraries allocate with malloc.  A compressor's memory is released
 * by sms_member_compressor_free(), or else when the memory context it was
 * created in goes (a reset callback), so that an ERROR leaks nothing.
 *
 * Inflating: sms_member_inflate() inflates the first member of a window
 * of the file with libdeflate, which checks the member's CRC and ISIZE.
 * Anything else (a member larger than the output buffer, one that does not
 * end within the window, bad data) is SMS_MEMBER_UNSURE: the caller then
 * streams that member with zlib, whose error messages are the ones users
 * know.  Input is untrusted; libdeflate never reads or writes outside the
 * buffers it is given.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "gzip_member.h"
#include "smsdist.h"

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>

#include "utils/memutils.h"

/*
 * zlib level -> libdeflate level.  Measured on bench/compress.sh's tree in
 * 4 MB members (bytes, and CPU seconds of one process): zlib 3 is matched
 * only by libdeflate 4, which is also faster than its 3; zlib 5 and 6 by
 * libdeflate 5 (108.25 MB against zlib's 109.13 and 108.90, in 1.9 s
 * against 3.9 and 4.9); 7-9 keep getting smaller.  libdeflate's 9-12 cost
 * far more for almost nothing (its 9 is 0.01 % smaller than its 8).
 */
static const int libdeflate_level[10] = {0, 1, 2, 4, 4, 5, 5, 6, 7, 8};

struct SmsMemberCompressor
{
	int			method;
	int			level;
	struct libdeflate_compressor *ld;	/* at the level (libdeflate) */
	struct libdeflate_compressor *store;	/* level 0, made when first needed */
	uint8	   *isal_buf;		/* ISA-L's level 1 buffer (isal) */
	MemoryContextCallback cb;
};

struct SmsMemberInflater
{
	struct libdeflate_decompressor *ld;
	MemoryContextCallback cb;
};

/* Release the libraries' memory (idempotent: also the reset callback). */
static void
release_compressor(void *arg)
{
	SmsMemberCompressor *c = arg;

	libdeflate_free_compressor(c->ld);
	libdeflate_free_compressor(c->store);
	free(c->isal_buf);
	c->ld = NULL;
	c->store = NULL;
	c->isal_buf = NULL;
}

static void
pg_attribute_noreturn()
no_memory(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("could not initialize %s compression", what)));
}

SmsMemberCompressor *
sms_member_compressor_create(int method, int level)
{
	SmsMemberCompressor *c = palloc0(sizeof(SmsMemberCompressor));

	c->method = method;
	c->level = level;
	c->cb.func = release_compressor;
	c->cb.arg = c;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &c->cb);
	if (method == SMS_COMPRESSION_ISAL)
	{
		c->isal_buf = malloc(ISAL_DEF_LVL1_DEFAULT);
		if (c->isal_buf == NULL)
			no_memory("ISA-L");
	}
	else
	{
		c->ld = libdeflate_alloc_compressor(libdeflate_level[Max(0, Min(level, 9))]);
		if (c->ld == NULL)
			no_memory("libdeflate");
	}
	return c;
}

void
sms_member_compressor_free(SmsMemberCompressor *c)
{
	/* the struct stays until its context goes: the callback points at it */
	if (c != NULL)
		release_compressor(c);
}

/*
 * Room enough for one member of in_bytes, by any method: libdeflate's
 * bound for any compressor (a stored member fits in it too).
 */
size_t
sms_member_bound(size_t in_bytes)
{
	return libdeflate_gzip_compress_bound(NULL, in_bytes);
}

/* ISA-L, level 1, gzip framing; 0 when the output does not fit in cap. */
static size_t
isal_member(SmsMemberCompressor *c, const void *in, size_t n, void *out, size_t cap)
{
	struct isal_zstream zs;

	isal_deflate_init(&zs);
	zs.level = 1;
	zs.level_buf = c->isal_buf;
	zs.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
	zs.gzip_flag = IGZIP_GZIP;
	zs.end_of_stream = 1;
	zs.flush = NO_FLUSH;
	zs.next_in = (uint8_t *) in;
	zs.avail_in = (uint32_t) n;
	zs.next_out = out;
	zs.avail_out = (uint32_t) cap;
	while (zs.internal_state.state != ZSTATE_END)
	{
		if (isal_deflate(&zs) != COMP_OK || zs.avail_out == 0)
			return 0;
	}
	return cap - zs.avail_out;
}

/*
 * Compress n bytes (at most 4 GB) as one gzip member into out; cap must be
 * at least sms_member_bound(n).  Returns the member's size.
 */
size_t
sms_member_compress(SmsMemberCompressor *c, bool store, const void *in, size_t n,
					void *out, size_t cap)
{
	size_t		size = 0;

	Assert(cap >= sms_member_bound(n));
	if (!store)
	{
		if (c->method == SMS_COMPRESSION_ISAL)
			size = isal_member(c, in, n, out, cap);
		else
			size = libdeflate_gzip_compress(c->ld, in, n, out, cap);
	}
	if (size == 0)
	{
		/* near-random, or (ISA-L) it did not fit: stored blocks always do */
		if (c->store == NULL && (c->store = libdeflate_alloc_compressor(0)) == NULL)
			no_memory("libdeflate");
		size = libdeflate_gzip_compress(c->store, in, n, out, cap);
		if (size == 0)
			elog(ERROR, "libdeflate could not store %zu bytes in %zu", n, cap);
	}
	return size;
}

static void
release_inflater(void *arg)
{
	SmsMemberInflater *d = arg;

	libdeflate_free_decompressor(d->ld);
	d->ld = NULL;
}

SmsMemberInflater *
sms_member_inflater_create(void)
{
	SmsMemberInflater *d = palloc0(sizeof(SmsMemberInflater));

	d->cb.func = release_inflater;
	d->cb.arg = d;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &d->cb);
	d->ld = libdeflate_alloc_decompressor();
	if (d->ld == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize libdeflate decompression")));
	return d;
}

void
sms_member_inflater_free(SmsMemberInflater *d)
{
	if (d != NULL)
		release_inflater(d);
}

/*
 * Inflate the gzip member at the start of in[0..n) into out[0..cap).
 * SMS_MEMBER_OK: *in_used bytes were that member, *out_len its contents
 * (CRC and ISIZE checked).  SMS_MEMBER_UNSURE: nothing is known; stream
 * the member with zlib.
 */
SmsMemberResult
sms_member_inflate(SmsMemberInflater *d, const void *in, size_t n, void *out, size_t cap,
				   size_t *in_used, size_t *out_len)
{
	const uint8 *p = in;
	uint32		isize;

	/*
	 * A gzip member has a 10-byte header and an 8-byte trailer.  Only the
	 * plain header every gzip writer here makes (deflate, no flags) is
	 * taken: libdeflate skips the optional fields without checking what
	 * zlib checks (the header's own CRC, FHCRC), and must accept nothing
	 * zlib would refuse.
	 */
	if (n < 18 || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || p[3] != 0)
		return SMS_MEMBER_UNSURE;
	if (libdeflate_gzip_decompress_ex(d->ld, in, n, out, cap, in_used, out_len) != LIBDEFLATE_SUCCESS)
		return SMS_MEMBER_UNSURE;
	/* libdeflate checked them; a second look costs nothing */
	if (*in_used < 18 || *in_used > n)
		return SMS_MEMBER_UNSURE;
	p += *in_used - 4;
	isize = (uint32) p[0] | ((uint32) p[1] << 8) | ((uint32) p[2] << 16) | ((uint32) p[3] << 24);
	if (*out_len > cap || isize != (uint32) *out_len)
		return SMS_MEMBER_UNSURE;
	return SMS_MEMBER_OK;
}
