/*-------------------------------------------------------------------------
 *
 * cache_manifest.c
 *	  A package's manifest and SHA-256 checks against it.
 *
 * Terms:
 *	manifest	the list of a package's files that the Despooler publishes
 *				beside the package on each distribution point
 *				(<share>/<PACKAGE>.<VERSION>.manifest), one line a file or
 *				directory: its SHA-256 (64 '-' for a directory), size, mode
 *				(octal), modification time (version 2, whose first line is
 *				MANIFEST_HEADER_V2) and path.  A version 2 manifest may list
 *				symbolic links (64 '@'): the cache does not keep links, so
 *				such a package is refused with a message that says so.  Its own SHA-256 is the package hash that
 *				the instruction files and the policy give, so a manifest
 *				that has it vouches for every file it lists.
 *
 * The manifest's bytes come from whoever controls a share: a path that
 * could leave the package directory, or sizes whose sum overflows (the sum
 * decides whether the package fits the cache), make the whole manifest
 * bad.  test/fuzz/fuzz_agent_manifest.c fuzzes manifest_parse.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent_util.h"
#include "cache_manifest.h"
#include "values.h"

#define MANIFEST_SUFFIX	".manifest"
#define MAX_MANIFEST_PATH	1024

/* A manifest path is relative, with no empty, "." or ".." component. */
static bool
safe_relative(const char *p)
{
	const char *c = p;

	if (*p == '\0' || *p == '/' || strlen(p) > MAX_MANIFEST_PATH)
		return false;
	if (sms_fmt_has_control_char(p) || strchr(p, '\\') != NULL)
		return false;
	while (*c)
	{
		const char *e = strchr(c, '/');
		size_t		n = e ? (size_t) (e - c) : strlen(c);

		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		/*
		 * The last component, or the one before the trailing '/' of a
		 * directory.  Only a non-empty one may end the path: "a//" has an
		 * empty component and is refused, as the server refuses it.
		 */
		if (!e || e[1] == '\0')
			break;
		c = e + 1;
	}
	return true;
}

void
manifest_free(ManifestLine *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].path);
	free(l);
}

/*
 * A version 2 line's mtime at *p: seconds ('-' before 1970), '.', nine
 * digits, one space; *p moves past it.  False if it is not one.
 */
static bool
parse_mtime(const char **p, struct timespec *t)
{
	const char *f = *p;
	bool		negative = (*f == '-');
	long long	sec = 0;
	long		nsec = 0;
	int			digits = 0;

	if (negative)
		f++;
	for (; *f >= '0' && *f <= '9'; f++, digits++)
	{
		if (sec > (INT64_MAX / 10) - 10)
			return false;
		sec = sec * 10 + (*f - '0');
	}
	if (digits == 0 || *f++ != '.')
		return false;
	for (int i = 0; i < 9; i++, f++)
	{
		if (*f < '0' || *f > '9')
			return false;
		nsec = nsec * 10 + (*f - '0');
	}
	if (*f++ != ' ')
		return false;
	t->tv_sec = (time_t) (negative ? -sec : sec);
	t->tv_nsec = nsec;
	*p = f;
	return true;
}

bool
manifest_parse(char *text, ManifestLine **out, size_t *n, int64_t *total, char *msg, size_t msglen)
{
	ManifestLine *l = NULL;
	size_t		count = 0;
	char	   *save = NULL;
	bool		v2 = false;
	bool		first = true;

	*total = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char		h[SHA256_HEX_BUFLEN];
		long long	size;
		int			mode,
					off = 0;
		const char *path;
		struct timespec mtime = {0, 0};
		ManifestLine *more;

		if (first && strcmp(line, MANIFEST_HEADER_V2) == 0)
		{
			v2 = true;
			first = false;
			continue;
		}
		first = false;
		if (v2 && strncmp(line, "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ ", 65) == 0)
		{
			const char *what = line + 65;

			/* past the size, the mode and the time: "<path> -> <target>" */
			for (int i = 0; i < 3 && strchr(what, ' ') != NULL; i++)
				what = strchr(what, ' ') + 1;
			snprintf(msg, msglen, "the package holds a symbolic link, which the agent's cache does not keep: \"%.200s\"",
					 what);
			manifest_free(l, count);
			return false;
		}

		/*
		 * The total must not overflow: it decides whether the package fits
		 * the cache, and a wrapped (negative) total would fit any cache.
		 */
		path = line;
		if (sscanf(line, "%64s %lld %o %n", h, &size, &mode, &off) != 3 || off == 0 ||
			strlen(h) != 64 || size < 0 || size > INT64_MAX - *total ||
			!((path = line + off), !v2 || parse_mtime(&path, &mtime)) ||
			!safe_relative(path))
		{
			snprintf(msg, msglen, "the manifest has a bad line: \"%.100s\"", line);
			manifest_free(l, count);
			return false;
		}
		more = realloc(l, sizeof(ManifestLine) * (count + 1));
		if (more == NULL)
		{
			manifest_free(l, count);
			snprintf(msg, msglen, "out of memory");
			return false;
		}
		l = more;
		strcpy(l[count].sha256, h[0] == '-' ? "" : h);
		l[count].size = size;
		l[count].mode = mode & 0777;
		l[count].has_mtime = v2;
		l[count].mtime = mtime;
		l[count].path = strdup(path);
		*total += size;
		count++;
	}
	*out = l;
	*n = count;
	return true;
}

void
manifest_name(const char *package_id, int64_t version, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.%lld" MANIFEST_SUFFIX, package_id, (long long) version);
}

static void
digest_to_hex(const unsigned char *d, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[64] = '\0';
}

bool
sha256_of_buffer(const char *buf, size_t len, char *hex)
{
	unsigned char d[32];
	unsigned int dl = 0;

	if (!EVP_Digest(buf, len, d, &dl, EVP_sha256(), NULL) || dl != 32)
		return false;
	digest_to_hex(d, hex);
	return true;
}

HashResult
sha256_of_file(int in, int copy_to, char *hex, int64_t *total)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	unsigned int dl = 0;
	char		buf[65536];
	ssize_t		r;
	int			saved_errno;

	*total = 0;
	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
	{
		EVP_MD_CTX_free(md);
		return HASH_NO_DIGEST;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0)
	{
		if (copy_to >= 0 && write(copy_to, buf, (size_t) r) != r)
		{
			saved_errno = errno;
			EVP_MD_CTX_free(md);
			errno = saved_errno;
			return HASH_WRITE_FAILED;
		}
		EVP_DigestUpdate(md, buf, (size_t) r);
		*total += r;
	}
	saved_errno = errno;
	EVP_DigestFinal_ex(md, d, &dl);
	EVP_MD_CTX_free(md);
	digest_to_hex(d, hex);
	errno = saved_errno;		/* a failed read's, for the caller's message */
	return r < 0 ? HASH_READ_FAILED : HASH_OK;
}
