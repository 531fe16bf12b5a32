/*-------------------------------------------------------------------------
 *
 * fuzz_manifest.c
 *	  libFuzzer target for the server's package manifest reader
 *	  (src/package/package_archive.c, sms_manifest_parse), run outside the server
 *	  over pg_shim.c.
 *
 * The manifest is the last entry of every package file, including those a
 * child or parent site sends, and it decides which paths the Despooler
 * creates.  Properties checked:
 *
 *	errors		a manifest is accepted or refused with
 *				ERRCODE_DATA_CORRUPTED and a message naming it ("invalid
 *				manifest in fuzz, line N: ...") -- never another error, a
 *				crash or a sanitizer report.
 *	canonical	an accepted manifest is exactly what sms_manifest_to_text
 *				writes for the entries read (one package, one manifest text).
 *	entries		sorted by path, unique; every path safe
 *				(sms_safe_relative_path, and independently: not absolute,
 *				no "." or ".." component, no control character or
 *				backslash); a path ends in '/' exactly when it is a
 *				directory, whose size is 0 and digest zero; sizes are not
 *				negative and total_bytes is the sum of the files' (a link's
 *				size is its target's length, not counted).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "pg_shim.h"

#include <stdio.h>
#include <stdlib.h>

#include "package_manifest.h"

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
	size_t		len;
	SmsManifest *m;
	char	   *again;
} Call;

static void
parse(void *arg)
{
	Call	   *call = arg;

	call->m = sms_manifest_parse(call->text, call->len, "fuzz");
	call->again = sms_manifest_to_text(call->m);
}

/* The rule, written again independently of sms_safe_relative_path. */
static bool
path_ok(const char *p)
{
	const char *c = p;

	if (*p == '\0' || *p == '/')
		return false;
	for (const unsigned char *q = (const unsigned char *) p; *q; q++)
		if (*q < 0x20 || *q == 0x7f || *q == '\\')
			return false;
	for (;;)
	{
		const char *e = strchr(c, '/');
		size_t		n = e ? (size_t) (e - c) : strlen(c);

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (e == NULL || e[1] == '\0')
			return true;
		c = e + 1;
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Call		call = {0};
	/* an exact-size copy, so a read past the end is caught */
	char	   *text = malloc(size ? size : 1);

	memcpy(text, data, size);
	call.text = text;
	call.len = size;
	if (shim_try(parse, &call))
	{
		SmsManifest *m = call.m;
		int64		total = 0;

		CHECK(strlen(call.again) == size && memcmp(call.again, text, size) == 0,
			  "accepted a manifest that is not the canonical text of its entries:\n%s", call.again);
		for (int i = 0; i < m->nentries; i++)
		{
			const SmsManifestEntry *e = &m->entries[i];
			size_t		pl = strlen(e->path);

			CHECK(path_ok(e->path) && sms_safe_relative_path(e->path), "unsafe path %s", e->path);
			CHECK(e->is_dir == (e->path[pl - 1] == '/'), "%s: is_dir %d", e->path, e->is_dir);
			CHECK(e->size >= 0 && (!e->is_dir || e->size == 0), "%s: size", e->path);
			CHECK(e->mode >= 0 && e->mode <= 07777, "%s: mode %o", e->path, e->mode);
			CHECK(i == 0 || strcmp(m->entries[i - 1].path, e->path) < 0, "%s: order", e->path);
			total += e->is_link ? 0 : e->size;
		}
		CHECK(total == m->total_bytes, "total %lld", (long long) m->total_bytes);
	}
	else
		CHECK(shim_error_code == ERRCODE_DATA_CORRUPTED &&
			  strncmp(shim_error_message, "invalid manifest in fuzz, line ", 31) == 0,
			  "refused with code %d: %s", shim_error_code, shim_error_message);
	if (getenv("SMSDIST_FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", shim_error_message[0] ? shim_error_message : "accepted");
	shim_reset_memory();
	free(text);
	return 0;
}
