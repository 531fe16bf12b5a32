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
 *	modes	permission bits only (0777); a directory's may add the
 *			setgid and sticky bits, never setuid.
 *	links	a link's target is relative and, resolved by name from the
 *			link's directory, never climbs above the package's top
 *			(rechecked here the simple way: depth never below zero); no
 *			path lies below a link.
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

/* Resolved by name from the directory of linkpath, target stays inside. */
static bool
target_stays_inside(const char *linkpath, const char *target)
{
	int			depth = 0;

	if (target[0] == '/')
		return false;
	for (const char *c = linkpath; *c; c++)
		depth += (*c == '/');
	for (const char *c = target; *c;)
	{
		const char *e = strchr(c, '/');
		size_t		n = e ? (size_t) (e - c) : strlen(c);

		if (n == 2 && c[0] == '.' && c[1] == '.')
			depth--;
		else if (n > 0 && !(n == 1 && c[0] == '.'))
			depth++;
		if (depth < 0)
			return false;
		c = e ? e + 1 : c + n;
	}
	return true;
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
			CHECK((lines[i].mode & ~((lines[i].path[strlen(lines[i].path) - 1] == '/') ? 03777 : 0777)) == 0,
				  "mode %o of \"%s\"", lines[i].mode, lines[i].path);
			CHECK(!__builtin_add_overflow(sum, lines[i].size, &sum), "the total overflows");
			CHECK(lines[i].target == NULL || target_stays_inside(lines[i].path, lines[i].target),
				  "link \"%s\" -> \"%s\" leaves the package", lines[i].path, lines[i].target);
			for (size_t j = 0; j < n; j++)
			{
				size_t		pl = strlen(lines[j].path);

				CHECK(lines[j].target == NULL || i == j || strncmp(lines[i].path, lines[j].path, pl) != 0 ||
					  lines[i].path[pl] != '/', "\"%s\" lies below the link \"%s\"", lines[i].path, lines[j].path);
			}
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
