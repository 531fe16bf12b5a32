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
 *				symbolic links (64 '@', "<path> -> <target>"), each of which
 *				must obey the server's link rule (link_target_problem);
 *				the cache keeps them as links.  Its own SHA-256 is the
 *				package hash that
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
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent_util.h"
#include "cache_manifest.h"
#include "link_rule.h"
#include "values.h"

#define MANIFEST_SUFFIX	".manifest"
#define MAX_MANIFEST_PATH	1024
#define LINK_DIGEST	"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@"
#define LINK_ARROW	" -> "

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
	{
		free(l[i].path);
		free(l[i].target);
	}
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

/* Is path listed as a link among l[0..n)? */
static bool
listed_link(const ManifestLine *l, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (l[i].target != NULL && strcmp(l[i].path, path) == 0)
			return true;
	return false;
}

/* The lines of a manifest, for is_listed_link. */
typedef struct ListedLines
{
	const ManifestLine *l;
	size_t		n;
} ListedLines;

/* SmsFmtIsLinkFn over the lines of a manifest. */
static bool
is_listed_link(void *arg, const char *path)
{
	ListedLines *ll = arg;

	return listed_link(ll->l, ll->n, path);
}

/*
 * The link rule of the server (sms_link_target_problem in
 * src/package/package_manifest.c; docs/packages.md, "What a source may
 * hold"): what is about the target's text checked here, without palloc,
 * and the same walk on names (src/formats/link_rule.c), with the links the
 * manifest lists.  NULL if the target of the link at linkpath obeys it,
 * else why not.
 */
static const char *
link_target_problem(const char *linkpath, const char *target, const ManifestLine *l, size_t n)
{
	char		res[2 * MAX_MANIFEST_PATH + 2];
	ListedLines ll = {l, n};

	if (*target == '\0')
		return "its target is empty";
	if (target[0] == '/')
		return "its target is an absolute path";
	if (strlen(target) > MAX_MANIFEST_PATH || strlen(linkpath) > MAX_MANIFEST_PATH)
		return "its target is too long";
	if (sms_fmt_has_control_char(target) || strchr(target, '\\') != NULL)
		return "its target contains a control character or a backslash";
	return sms_fmt_link_walk_problem(linkpath, target, res, is_listed_link, &ll);
}

/*
 * Every link obeys the link rule, and nothing is listed below a link (the
 * cache would create it through the link); false with msg.
 */
static bool
links_obey_rule(const ManifestLine *l, size_t n, char *msg, size_t msglen)
{
	for (size_t i = 0; i < n; i++)
	{
		char		prefix[MAX_MANIFEST_PATH + 1];
		const char *problem = NULL;

		snprintf(prefix, sizeof(prefix), "%s", l[i].path);
		for (char *s = strchr(prefix, '/'); s; s = strchr(s + 1, '/'))
		{
			*s = '\0';
			if (listed_link(l, n, prefix))
			{
				snprintf(msg, msglen, "the manifest lists \"%.200s\" below the link \"%.200s\"", l[i].path, prefix);
				return false;
			}
			*s = '/';
		}
		if (l[i].target != NULL)
			problem = link_target_problem(l[i].path, l[i].target, l, n);
		if (problem != NULL)
		{
			snprintf(msg, msglen, "the manifest has a bad link: \"%.200s%s%.200s\": %s", l[i].path,
					 l[i].target ? LINK_ARROW : "", l[i].target ? l[i].target : "", problem);
			return false;
		}
	}
	return true;
}

/*
 * A version 2 line's mode, by the server's setuid rule (sms_mode_problem
 * in src/package/package_manifest.c): never setuid, setgid and sticky only
 * on a directory.
 */
static bool
mode_allowed(int mode, bool is_dir)
{
	return (mode & ~07777) == 0 && (mode & S_ISUID) == 0 &&
		(is_dir || (mode & (S_ISGID | S_ISVTX)) == 0);
}

/*
 * A link line's rest, "<path> -> <target>" with a target of size bytes,
 * cut in two at the arrow: *target points into rest.  False if it is not
 * one.
 */
static bool
split_link(char *rest, long long size, char **target)
{
	size_t		len = strlen(rest);
	size_t		arrow = strlen(LINK_ARROW);

	if (size <= 0 || (size_t) size + arrow >= len ||
		memcmp(rest + len - size - arrow, LINK_ARROW, arrow) != 0)
		return false;
	rest[len - size - arrow] = '\0';
	*target = rest + len - size;
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
		char	   *target = NULL;
		bool		is_link;
		struct timespec mtime = {0, 0};
		ManifestLine *more;

		if (first && strcmp(line, MANIFEST_HEADER_V2) == 0)
		{
			v2 = true;
			first = false;
			continue;
		}
		first = false;
		is_link = v2 && strncmp(line, LINK_DIGEST " ", 65) == 0;

		/*
		 * The total must not overflow: it decides whether the package fits
		 * the cache, and a wrapped (negative) total would fit any cache.  A
		 * link's line ends in " -> <target>", cut off before the path is
		 * judged; its size is the target's, not counted in the total.
		 */
		path = line;
		if (sscanf(line, "%64s %lld %o %n", h, &size, &mode, &off) != 3 || off == 0 ||
			strlen(h) != 64 || size < 0 || size > INT64_MAX - *total ||
			!((path = line + off), !v2 || parse_mtime(&path, &mtime)) ||
			(is_link && (mode != 0777 || !split_link((char *) path, size, &target))) ||
			!safe_relative(path) || (is_link && path[strlen(path) - 1] == '/') ||
			(v2 && !mode_allowed(mode, path[strlen(path) - 1] == '/')))
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
		strcpy(l[count].sha256, (h[0] == '-' || is_link) ? "" : h);
		l[count].size = is_link ? 0 : size;
		l[count].mode = mode & (v2 ? 07777 : 0777);
		l[count].has_mtime = v2;
		l[count].mtime = mtime;
		l[count].path = strdup(path);
		l[count].target = target ? strdup(target) : NULL;
		*total += l[count].size;
		count++;
	}
	if (!links_obey_rule(l, count, msg, msglen))
	{
		manifest_free(l, count);
		return false;
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
