/*-------------------------------------------------------------------------
 *
 * fuzz_agent_manifest.c
 *	  libFuzzer target for the client agent's reader of the manifest
 *	  published beside a package on a distribution point
 *	  (src/agent/cache_manifest.c, manifest_parse).
 *
 * The target links cache_manifest.c and what it uses of the agent (plain
 * C, OpenSSL; no server code).  The agent reads the manifest with
 * sms_fmt_read_file, which NUL-terminates it, and checks its SHA-256
 * before parsing; whoever controls a share and the instruction that names
 * the hash controls these bytes, so the input is taken as they are, up to
 * the first NUL.  Properties checked, for an accepted manifest:
 *
 *	paths	every path is relative, with no empty, "." or ".." component,
 *			no control character or backslash (rechecked independently
 *			here): the agent creates them below its cache.
 *	sizes	every size >= 0 and the total is their sum, without overflow
 *			(the total decides whether the package fits the cache).
 *	modes	permission bits only (0777).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_manifest.h"

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
	size_t		len = strnlen((const char *) data, size);
	char	   *text = malloc(len + 1);
	ManifestLine *lines = NULL;
	size_t		n = 0;
	int64_t		total = -1;
	char		msg[256];

	memcpy(text, data, len);
	text[len] = '\0';
	if (manifest_parse(text, &lines, &n, &total, msg, sizeof(msg)))
	{
		int64_t		sum = 0;

		for (size_t i = 0; i < n; i++)
		{
			CHECK(lines[i].path != NULL && path_ok(lines[i].path), "unsafe path \"%s\"", lines[i].path);
			CHECK(lines[i].size >= 0, "size %lld", (long long) lines[i].size);
			CHECK((lines[i].mode & ~0777) == 0, "mode %o", lines[i].mode);
			CHECK(!__builtin_add_overflow(sum, lines[i].size, &sum), "the total overflows");
		}
		CHECK(total == sum, "total %lld, sum %lld", (long long) total, (long long) sum);
		manifest_free(lines, n);
		if (getenv("SMSDIST_FUZZ_VERBOSE"))
			fprintf(stderr, "accepted: %zu lines\n", n);
	}
	else if (getenv("SMSDIST_FUZZ_VERBOSE"))
		fprintf(stderr, "refused: %s\n", msg);
	free(text);
	return 0;
}
