/*-------------------------------------------------------------------------
 *
 * fuzz_formats.c
 *	  libFuzzer targets for the instruction-file readers (src/formats), the
 *	  files the client agent reads from shares and the site reads from
 *	  status inboxes: anyone who can write a share controls their bytes.
 *
 * One source, one target per reader: test/fuzz/run compiles it once per
 * target with -DFUZZ_<NAME> (FUZZ_FMT, FUZZ_PCM, ... FUZZ_NAMES).  Each
 * target feeds the input to its reader and, when the reader accepts it,
 * checks the round trip that the format promises:
 *
 *	fmt		sms_fmt_parse(any format) -> sms_fmt_serialize -> sms_fmt_parse
 *			-> sms_fmt_serialize gives the same bytes twice (the text a
 *			writer makes from what a reader accepted is a fixed point).
 *	typed	sms_<type>_parse -> sms_<type>_to_text must succeed (the writer
 *			accepts whatever the reader accepted), and parsing that text
 *			and writing it again gives the same bytes.
 *	icon	sms_icon_check: an accepted icon is within the size limit, and
 *			its header and every entry say what the checks promise
 *			(checked again here, independently).
 *	names	the first byte picks: sms_fmt_parse_status_name (an accepted
 *			name is exactly what sms_fmt_file_name makes of its parts) or
 *			sms_fmt_parse_time, UTC or local (an accepted time formats back
 *			to the same text).
 *
 * A violated property calls abort(), which libFuzzer reports as a crash;
 * AddressSanitizer and UndefinedBehaviorSanitizer report the rest.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "sms_formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* text1 was written from a parsed input: it must parse and rewrite to itself */
#define TYPED_ROUND_TRIP(type, T) \
static void \
round_trip_##type(const uint8_t *data, size_t size) \
{ \
	T			f = {0}; \
	T			g = {0}; \
	char		err[512]; \
	char	   *t1 = NULL; \
	char	   *t2 = NULL; \
	size_t		l1 = 0; \
	size_t		l2 = 0; \
 \
	if (!sms_##type##_parse((const char *) data, size, &f, err, sizeof(err))) \
	{ \
		if (getenv("SMSDIST_FUZZ_VERBOSE")) \
			fprintf(stderr, "refused: %s\n", err); \
		return; \
	} \
	if (getenv("SMSDIST_FUZZ_VERBOSE")) \
		fprintf(stderr, "accepted\n"); \
	CHECK(sms_##type##_to_text(&f, &t1, &l1, err, sizeof(err)), \
		  "the writer refuses what the reader accepted: %s", err); \
	CHECK(sms_##type##_parse(t1, l1, &g, err, sizeof(err)), \
		  "the reader refuses what the writer wrote: %s\n%s", err, t1); \
	CHECK(sms_##type##_to_text(&g, &t2, &l2, err, sizeof(err)), \
		  "the writer refuses its own text read back: %s", err); \
	CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0, \
		  "written text changes when read and written again:\n%s\n---\n%s", t1, t2); \
	free(t1); \
	free(t2); \
	sms_##type##_free(&f); \
	sms_##type##_free(&g); \
}

#if defined(FUZZ_PCM)
TYPED_ROUND_TRIP(pcm, SmsPcmFile)
#define RUN round_trip_pcm
#elif defined(FUZZ_OFFER)
TYPED_ROUND_TRIP(offer, SmsOfferFile)
#define RUN round_trip_offer
#elif defined(FUZZ_INSTALL)
TYPED_ROUND_TRIP(install, SmsInstallFile)
#define RUN round_trip_install
#elif defined(FUZZ_LOOKUP)
TYPED_ROUND_TRIP(lookup, SmsLookupFile)
#define RUN round_trip_lookup
#elif defined(FUZZ_PACKAGE)
TYPED_ROUND_TRIP(package, SmsPackageFile)
#define RUN round_trip_package
#elif defined(FUZZ_NAL)
TYPED_ROUND_TRIP(nal, SmsNalFile)
#define RUN round_trip_nal
#elif defined(FUZZ_STATUS)
TYPED_ROUND_TRIP(status, SmsStatusFile)
#define RUN round_trip_status
#elif defined(FUZZ_HEARTBEAT)
TYPED_ROUND_TRIP(heartbeat, SmsHeartbeatFile)
#define RUN round_trip_heartbeat
#elif defined(FUZZ_FMT)
static void
round_trip_fmt(const uint8_t *data, size_t size)
{
	SmsFmtDoc  *d1 = NULL;
	SmsFmtDoc  *d2 = NULL;
	char		err[512];
	char	   *t1 = NULL;
	char	   *t2 = NULL;
	size_t		l1 = 0;
	size_t		l2 = 0;

	if (!sms_fmt_parse((const char *) data, size, NULL, &d1, err, sizeof(err)))
	{
		if (getenv("SMSDIST_FUZZ_VERBOSE"))
			fprintf(stderr, "refused: %s\n", err);
		CHECK(d1 == NULL, "a failed parse left a document");
		return;
	}
	CHECK(d1->nsections >= 1, "a parsed document has no header");
	/* the look-ups must find what was parsed */
	for (size_t i = 0; i < d1->nsections; i++)
	{
		const SmsFmtSection *s = d1->sections[i];

		CHECK(sms_fmt_find_section(d1, s->name) == s, "section %s not found", s->name);
		for (size_t j = 0; j < s->nentries; j++)
			CHECK(sms_fmt_get(s, s->entries[j].key) == s->entries[j].value,
				  "key %s not found in [%s]", s->entries[j].key, s->name);
	}
	CHECK(sms_fmt_serialize(d1, &t1, &l1, err, sizeof(err)),
		  "the writer refuses a parsed document: %s", err);
	CHECK(sms_fmt_parse(t1, l1, NULL, &d2, err, sizeof(err)),
		  "the reader refuses a written document: %s\n%s", err, t1);
	CHECK(sms_fmt_serialize(d2, &t2, &l2, err, sizeof(err)),
		  "the writer refuses its own document read back: %s", err);
	CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0,
		  "written text changes when read and written again");
	free(t1);
	free(t2);
	sms_fmt_doc_free(d1);
	sms_fmt_doc_free(d2);
}
#define RUN round_trip_fmt
#elif defined(FUZZ_ICON)
static uint32_t
le(const uint8_t *p, int n)
{
	uint32_t	v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
icon(const uint8_t *data, size_t size)
{
	char		err[256];
	uint32_t	count;

	if (!sms_icon_check(data, size, err, sizeof(err)))
	{
		CHECK(err[0] != '\0', "a refusal without a reason");
		return;
	}
	CHECK(size <= SMS_FMT_ICON_MAX_BYTES, "an icon of %zu bytes accepted", size);
	CHECK(size >= 6 && le(data, 2) == 0 && le(data + 2, 2) == 1, "a bad header accepted");
	count = le(data + 4, 2);
	CHECK(count >= 1 && count <= SMS_FMT_ICON_MAX_IMAGES && size >= 6 + 16 * (size_t) count,
		  "%u images accepted", (unsigned) count);
	for (uint32_t k = 0; k < count; k++)
	{
		const uint8_t *e = data + 6 + 16 * k;
		uint64_t	bytes = le(e + 8, 4);
		uint64_t	offset = le(e + 12, 4);

		CHECK(bytes > 0 && offset >= 6 + 16 * (uint64_t) count && offset + bytes <= size,
			  "image %u outside the file accepted", (unsigned) k);
	}
}
#define RUN icon
#elif defined(FUZZ_NAMES)
static void
names(const uint8_t *data, size_t size)
{
	char	   *s;
	char		machine[9];
	int64_t		seq = -1;
	int64_t		secs = 0;
	int64_t		secs2 = 0;
	char		buf[SMS_FMT_NAME_BUFLEN > SMS_FMT_TIME_BUFLEN ?
					SMS_FMT_NAME_BUFLEN : SMS_FMT_TIME_BUFLEN];
	char		err[256];
	int			which;

	if (size < 1)
		return;
	which = data[0] % 3;
	/* the readers take C strings: as read from a directory or a file */
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (which == 0)
	{
		if (sms_fmt_parse_status_name(s, machine, &seq))
		{
			CHECK(seq >= 0 && seq <= 9999999999LL, "sequence %lld", (long long) seq);
			CHECK(sms_fmt_file_name(SMS_FILE_STATUS, machine, seq, buf, sizeof(buf),
									err, sizeof(err)),
				  "cannot name what was parsed: %s", err);
			CHECK(strcmp(buf, s) == 0, "%s named back as %s", s, buf);
		}
	}
	else
	{
		bool		utc = (which == 1);

		if (sms_fmt_parse_time(s, utc, &secs))
		{
			CHECK(sms_fmt_format_time(secs, utc, buf), "cannot format %lld", (long long) secs);
			CHECK(strcmp(buf, s) == 0, "%s formatted back as %s", s, buf);
			CHECK(sms_fmt_parse_time(buf, utc, &secs2) && secs2 == secs,
				  "%s parsed back differently", buf);
		}
	}
	free(s);
}
#define RUN names
#else
#error "define one of FUZZ_FMT FUZZ_PCM FUZZ_OFFER FUZZ_INSTALL FUZZ_LOOKUP FUZZ_PACKAGE FUZZ_NAL FUZZ_STATUS FUZZ_HEARTBEAT FUZZ_ICON FUZZ_NAMES"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RUN(data, size);
	return 0;
}
