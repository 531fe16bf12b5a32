/*-------------------------------------------------------------------------
 *
 * fuzz_delta.c
 *	  libFuzzer target for the delta description reader
 *	  (src/package/package_delta.c, sms_delta_parse), run outside the server over
 *	  pg_shim.c.
 *
 * A delta package file carries .smsdist-delta: its base version and the
 * paths to delete from the base.  The text reaches sms_delta_parse as a C
 * string, so the input is taken up to its first NUL.  Properties checked:
 *
 *	errors		accepted, or refused with ERRCODE_DATA_CORRUPTED and a
 *				message naming it ("fuzz: ...").
 *	version		the base version returned is >= 1 and is the number
 *				written on line 2 ("base-version <n>"), not a truncation
 *				of it.
 *	deletions	one per "delete <path>" line, in order, each path as
 *				written and safe (sms_safe_relative_path).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "pg_shim.h"

#include <stdio.h>
#include <stdlib.h>

#include "package_delta.h"

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

typedef struct Call
{
	const char *text;
	int			base;
	List	   *deletions;
} Call;

static void
parse(void *arg)
{
	Call	   *call = arg;

	call->base = sms_delta_parse(call->text, "fuzz", &call->deletions);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Call		call = {0};
	size_t		len = strnlen((const char *) data, size);
	char	   *text = malloc(len + 1);

	memcpy(text, data, len);
	text[len] = '\0';
	call.text = text;
	if (shim_try(parse, &call))
	{
		const char *l2 = strchr(text, '\n') + 1;
		const char *p;
		char	   *end;
		long long	written;
		int			i = 0;

		CHECK(strncmp(l2, "base-version ", 13) == 0, "line 2");
		errno = 0;
		written = strtoll(l2 + 13, &end, 10);
		CHECK(call.base >= 1 && errno == 0 && written == call.base,
			  "base version %d from \"%.40s\"", call.base, l2);
		p = strchr(l2, '\n') + 1;
		for (; *p; p = strchr(p, '\n') + 1, i++)
		{
			const char *path;
			size_t		n = strchr(p, '\n') - p;

			CHECK(i < list_length(call.deletions), "fewer deletions than lines");
			path = list_nth(call.deletions, i);
			CHECK(strncmp(p, "delete ", 7) == 0 && strlen(path) == n - 7 &&
				  memcmp(path, p + 7, n - 7) == 0, "deletion %d is %s", i, path);
			CHECK(sms_safe_relative_path(path), "unsafe %s", path);
		}
		CHECK(i == list_length(call.deletions), "more deletions than lines");
	}
	else
		CHECK(shim_error_code == ERRCODE_DATA_CORRUPTED &&
			  strncmp(shim_error_message, "fuzz: ", 6) == 0,
			  "refused with code %d: %s", shim_error_code, shim_error_message);
	if (getenv("SMSDIST_FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", shim_error_message[0] ? shim_error_message : "accepted");
	shim_reset_memory();
	free(text);
	return 0;
}
