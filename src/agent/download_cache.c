/*-------------------------------------------------------------------------
 *
 * download_cache.c
 *	  The client agent's download cache, as SMS's Advanced Client kept it.
 *
 * Terms:
 *	cache		a directory (its location and size are settings) holding
 *				one directory per package version, <PACKAGE>.<VERSION>, and
 *				its state, cache.state.
 *	locked		a package downloaded for an advertisement or a job is locked:
 *				it is never deleted to make room.  It unlocks 24 hours after
 *				its program ran, or 30 days after the download if the
 *				program never ran.  An unlocked package is never locked
 *				again: only removing it and downloading it again locks it.
 *	room		when a download does not fit, the oldest unlocked packages
 *				(by download time) are deleted until it fits -- but only if
 *				that is enough: otherwise nothing is deleted, the package is
 *				not downloaded, and the caller reports why.  A package
 *				larger than the whole cache is never downloaded.
 *	partial		a download in progress, .partial.<PACKAGE>.<VERSION>: renamed
 *				to its place only when every file is there and verified, so
 *				no half package is ever used; one left by a crash is removed
 *				when the cache is next opened, and the download starts over.
 *	verified	the manifest published beside the package on the
 *				distribution point (<share>/<PACKAGE>.<VERSION>.manifest) must
 *				have the package hash as its SHA-256, and every file must
 *				have the size and SHA-256 the manifest gives.  A copy of the
 *				manifest is kept in the cache (<PACKAGE>.<VERSION>.manifest)
 *				so that the package can be checked again before its program
 *				runs (cache_verify).
 *	own ground	programs run from the cache as root, so nobody else may
 *				change it: the cache directory belongs to the agent's account
 *				and is not writable by group or others (cache_open makes it
 *				so, or refuses it); every cached directory is 0755 and every
 *				cached file 0644, or 0755 when the manifest gives it an
 *				execute bit -- never writable by group or others, never
 *				setuid, setgid or sticky, whatever the manifest says.
 *
 * The state file is written whole (temporary name, fsync, rename) after
 * every change, and the downloaded files are made durable (syncfs) before
 * the rename that makes them a cache entry.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "download_cache.h"
#include "sms_formats.h"

#define STATE_FILE		"cache.state"
#define PARTIAL_PREFIX	".partial."
#define MANIFEST_SUFFIX	".manifest"
#define MAX_PATH_LEN	4096
#define CACHED_DIR_MODE	0755

/*
 * The mode of a cached file: the manifest only says whether it is
 * executable.  Readable by every local account, since a program that runs
 * with the user's rights reads it (as any client may on the distribution
 * point); writable only by the agent.
 */
static mode_t
cached_file_mode(int manifest_mode)
{
	return (manifest_mode & 0111) ? 0755 : 0644;
}

/* ----------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------- */

char *
path_join(const char *a, const char *b)
{
	size_t		n = strlen(a) + strlen(b) + 2;
	char	   *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -r that never follows a link */
static bool
remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

static void
hex(const unsigned char *d, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[64] = '\0';
}

static bool
sha256_buffer(const char *buf, size_t len, char *out)
{
	unsigned char d[32];
	unsigned int dl = 0;

	if (!EVP_Digest(buf, len, d, &dl, EVP_sha256(), NULL) || dl != 32)
		return false;
	hex(d, out);
	return true;
}

/* A manifest path is relative, with no empty, "." or ".." component. */
static bool
safe_relative(const char *p)
{
	const char *c = p;

	if (*p == '\0' || *p == '/' || strlen(p) > 1024)
		return false;
	for (const char *q = p; *q; q++)
		if ((unsigned char) *q < 0x20 || *q == 0x7f || *q == '\\')
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

/* ----------------------------------------------------------------
 * State
 * ---------------------------------------------------------------- */

static bool
add_entry(Cache *c, const CacheEntry *e)
{
	CacheEntry *more = realloc(c->entries, sizeof(CacheEntry) * (c->n + 1));

	if (more == NULL)
		return false;
	c->entries = more;
	c->entries[c->n++] = *e;
	return true;
}

static void
drop_entry(Cache *c, size_t i)
{
	memmove(&c->entries[i], &c->entries[i + 1], sizeof(CacheEntry) * (c->n - i - 1));
	c->n--;
}

/* A package's directory in cache directory dir (malloc'd). */
static char *
entry_dir_in(const char *dir, const CacheEntry *e)
{
	char		name[64];

	snprintf(name, sizeof(name), "%s.%lld", e->package_id, (long long) e->version);
	return path_join(dir, name);
}

char *
cache_entry_dir(const Cache *c, const CacheEntry *e)
{
	return entry_dir_in(c->dir, e);
}

/* The name of the copy of an entry's manifest, in the cache directory. */
static void
manifest_name(const char *package_id, int64_t version, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.%lld" MANIFEST_SUFFIX, package_id, (long long) version);
}

/* Remove an entry's files (its directory and its manifest) from dir. */
static bool
remove_entry_files(const char *dir, const CacheEntry *e)
{
	char	   *p = entry_dir_in(dir, e);
	char		name[64];
	char	   *m;
	bool		ok = p != NULL && remove_tree(p);

	free(p);
	manifest_name(e->package_id, e->version, name, sizeof(name));
	m = path_join(dir, name);
	if (m == NULL || (unlink(m) != 0 && errno != ENOENT))
		ok = false;
	free(m);
	return ok;
}

bool
cache_save(const Cache *c, char *err, size_t errlen)
{
	size_t		cap = 128 + c->n * 160;
	char	   *buf = malloc(cap);
	size_t		len;
	bool		ok;

	if (buf == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return false;
	}
	len = (size_t) snprintf(buf, cap, "smsdist-cache 1\nlimit %lld\n", (long long) c->limit);
	for (size_t i = 0; i < c->n; i++)
	{
		const CacheEntry *e = &c->entries[i];

		len += (size_t) snprintf(buf + len, cap - len, "entry %s %lld %s %lld %lld %lld %d\n",
								 e->package_id, (long long) e->version, e->sha256, (long long) e->bytes,
								 (long long) e->downloaded_at, (long long) e->ran_at, e->locked ? 1 : 0);
	}
	ok = sms_fmt_write_file(c->dir, STATE_FILE, buf, len, err, errlen);
	free(buf);
	return ok;
}

static bool
load_state(Cache *c, char *err, size_t errlen)
{
	char	   *buf;
	size_t		len;
	char		e2[256];
	char	   *line,
			   *save = NULL;

	if (!sms_fmt_read_file(c->dir, STATE_FILE, &buf, &len, e2, sizeof(e2)))
	{
		struct stat st;
		char	   *p = path_join(c->dir, STATE_FILE);
		bool		missing = p && lstat(p, &st) != 0 && errno == ENOENT;

		free(p);
		if (missing)
			return cache_save(c, err, errlen);	/* a new cache */
		snprintf(err, errlen, "cannot read the cache state in \"%s\": %s", c->dir, e2);
		return false;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		CacheEntry	e = {0};
		long long	v, b, d, r;
		int			locked;

		if (strncmp(line, "limit ", 6) == 0)
			c->limit = strtoll(line + 6, NULL, 10);
		else if (sscanf(line, "entry %15s %lld %64s %lld %lld %lld %d", e.package_id, &v, e.sha256, &b, &d, &r, &locked) == 7)
		{
			e.version = v;
			e.bytes = b;
			e.downloaded_at = d;
			e.ran_at = r;
			e.locked = locked != 0;
			if (!sms_fmt_valid_sms_id(e.package_id) || !add_entry(c, &e))
			{
				snprintf(err, errlen, "the cache state in \"%s\" is damaged: \"%s\"", c->dir, line);
				free(buf);
				return false;
			}
		}
	}
	free(buf);
	return true;
}

/*
 * Whoever can write a directory above the cache can rename the cache away
 * and put one of theirs in its place.  Every directory above path (an
 * absolute path) must belong to root or to the agent's account and be
 * writable by nobody else, unless it is sticky (like /tmp: others cannot
 * rename what they do not own there).  Links on the way are not judged
 * here: the caller checks the resolved path as well.
 */
static bool
safe_above(const char *path, const char *cache, char *err, size_t errlen)
{
	char		buf[MAX_PATH_LEN];
	char	   *slash;
	struct stat st;
	size_t		len = strlen(path);

	if (len >= sizeof(buf))
	{
		snprintf(err, errlen, "the cache directory \"%s\" has too long a path", cache);
		return false;
	}
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	while ((slash = strrchr(buf, '/')) != NULL)
	{
		if (slash == buf)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (lstat(buf, &st) != 0)
		{
			snprintf(err, errlen, "cannot check \"%s\", above the cache directory \"%s\": %s", buf, cache,
					 strerror(errno));
			return false;
		}
		if (S_ISDIR(st.st_mode) &&
			((st.st_uid != 0 && st.st_uid != geteuid()) ||
			 ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)))
		{
			snprintf(err, errlen, "the directory \"%s\", above the cache directory \"%s\", belongs to user ID %u "
					 "with mode %04o: another account than root and the agent's could replace the cache; "
					 "refusing to run programs from it", buf, cache, (unsigned) st.st_uid,
					 (unsigned) (st.st_mode & 07777));
			return false;
		}
		if (slash == buf)
			break;
	}
	return true;
}

/*
 * The cache directory must be the agent's own and writable by nobody else:
 * whoever could rename or replace what is in it would choose what the
 * agent runs.  One owned by another account, or below a directory another
 * account can write, is refused; group or other write, setgid or sticky
 * bits on the agent's own are taken away, and said.
 */
static bool
own_cache_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	char	   *real;
	char		cwd[MAX_PATH_LEN];
	char	   *abs = NULL;
	bool		ok;

	if (stat(dir, &st) != 0)
	{
		snprintf(err, errlen, "cannot use the cache directory \"%s\": %s", dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode))
	{
		snprintf(err, errlen, "the cache directory \"%s\" is not a directory", dir);
		return false;
	}
	if (st.st_uid != geteuid())
	{
		snprintf(err, errlen, "the cache directory \"%s\" belongs to user ID %u, not to the agent's account (user ID %u): "
				 "refusing to run programs from a directory another account controls",
				 dir, (unsigned) st.st_uid, (unsigned) geteuid());
		return false;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH | S_ISUID | S_ISGID | S_ISVTX)) != 0)
	{
		if (chmod(dir, CACHED_DIR_MODE) != 0)
		{
			snprintf(err, errlen, "the cache directory \"%s\" is writable by group or others (mode %04o) and cannot be "
					 "made 0755: %s", dir, (unsigned) (st.st_mode & 07777), strerror(errno));
			return false;
		}
		fprintf(stderr, "smsdist-agent: the cache directory \"%s\" had mode %04o; made it 0755, so that only the agent "
				"can change it\n", dir, (unsigned) (st.st_mode & 07777));
	}
	/* the path as given and the resolved one */
	if (dir[0] != '/')
	{
		if (getcwd(cwd, sizeof(cwd)) == NULL)
		{
			snprintf(err, errlen, "cannot check the directories above the cache directory \"%s\": %s", dir,
					 strerror(errno));
			return false;
		}
		abs = path_join(cwd, dir);
	}
	if ((real = realpath(dir, NULL)) == NULL || (dir[0] != '/' && abs == NULL))
	{
		snprintf(err, errlen, "cannot check the directories above the cache directory \"%s\": %s", dir,
				 real == NULL ? strerror(errno) : "out of memory");
		free(real);
		free(abs);
		return false;
	}
	ok = safe_above(abs ? abs : dir, dir, err, errlen) && safe_above(real, dir, err, errlen);
	free(real);
	free(abs);
	return ok;
}

bool
cache_open(Cache *c, const char *dir, int64_t limit, char *err, size_t errlen)
{
	DIR		   *d;
	struct dirent *de;

	memset(c, 0, sizeof(*c));
	c->dir = strdup(dir);
	c->limit = limit;
	/*
	 * Readable by all local accounts: a program that runs with the user's
	 * rights runs from here (the content is what every client may read on
	 * the distribution point anyway).
	 */
	if (c->dir == NULL || (mkdir(dir, CACHED_DIR_MODE) != 0 && errno != EEXIST))
	{
		snprintf(err, errlen, "cannot create the cache directory \"%s\": %s", dir, strerror(errno));
		return false;
	}
	if (!own_cache_dir(dir, err, errlen))
		return false;
	if (!load_state(c, err, errlen))
		return false;
	/* what a download cut off by a crash left: it starts over */
	if ((d = opendir(dir)) == NULL)
	{
		snprintf(err, errlen, "cannot read the cache directory \"%s\": %s", dir, strerror(errno));
		return false;
	}
	while ((de = readdir(d)) != NULL)
	{
		if (strncmp(de->d_name, PARTIAL_PREFIX, strlen(PARTIAL_PREFIX)) == 0)
		{
			char	   *p = path_join(dir, de->d_name);

			remove_tree(p);
			free(p);
		}
	}
	closedir(d);
	/* an entry whose directory is gone (removed by hand) is forgotten */
	for (size_t i = 0; i < c->n;)
	{
		char	   *p = cache_entry_dir(c, &c->entries[i]);
		struct stat st;
		bool		gone = p && lstat(p, &st) != 0;

		free(p);
		if (gone)
		{
			remove_entry_files(c->dir, &c->entries[i]);	/* its manifest */
			drop_entry(c, i);
		}
		else
			i++;
	}
	return true;
}

void
cache_close(Cache *c)
{
	free(c->dir);
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

int64_t
cache_unlock_at(const CacheEntry *e)
{
	return e->ran_at ? e->ran_at + CACHE_UNLOCK_AFTER_RUN : e->downloaded_at + CACHE_UNLOCK_NEVER_RAN;
}

void
cache_update_locks(Cache *c, int64_t now)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->entries[i].locked && now >= cache_unlock_at(&c->entries[i]))
			c->entries[i].locked = false;
}

int64_t
cache_used(const Cache *c)
{
	int64_t		n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += c->entries[i].bytes;
	return n;
}

CacheEntry *
cache_find(Cache *c, const char *package_id, int64_t version, const char *sha256)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->entries[i].package_id, package_id) == 0 && c->entries[i].version == version &&
			(sha256 == NULL || strcmp(c->entries[i].sha256, sha256) == 0))
			return &c->entries[i];
	return NULL;
}

void
cache_mark_ran(Cache *c, CacheEntry *e, int64_t now)
{
	e->ran_at = now;
}

/* Delete the oldest unlocked entries until need more bytes fit; false if they cannot. */
static bool
make_room(Cache *c, int64_t need, char *msg, size_t msglen)
{
	int64_t		freeable = 0;

	for (size_t i = 0; i < c->n; i++)
		if (!c->entries[i].locked)
			freeable += c->entries[i].bytes;
	if (cache_used(c) - freeable + need > c->limit)
	{
		snprintf(msg, msglen, "the cache is full: %lld bytes are needed, %lld are free and %lld more could be freed"
				 " (the rest is locked)", (long long) need, (long long) (c->limit - cache_used(c)),
				 (long long) freeable);
		return false;
	}
	while (cache_used(c) + need > c->limit)
	{
		size_t		oldest = c->n;

		for (size_t i = 0; i < c->n; i++)
			if (!c->entries[i].locked &&
				(oldest == c->n || c->entries[i].downloaded_at < c->entries[oldest].downloaded_at))
				oldest = i;
		if (oldest == c->n)
			return false;		/* cannot happen: freeable said so */
		remove_entry_files(c->dir, &c->entries[oldest]);
		drop_entry(c, oldest);
	}
	return true;
}

/* ----------------------------------------------------------------
 * Fetching one package version
 * ---------------------------------------------------------------- */

typedef struct ManifestLine
{
	char		sha256[65];		/* "" for a directory */
	int64_t		size;
	int			mode;
	char	   *path;
} ManifestLine;

static void
free_lines(ManifestLine *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].path);
	free(l);
}

/* Parse "<sha256|64 '-'> <size> <mode> <path>" lines; false with msg. */
static bool
parse_manifest(char *text, ManifestLine **out, size_t *n, int64_t *total, char *msg, size_t msglen)
{
	ManifestLine *l = NULL;
	size_t		count = 0;
	char	   *save = NULL;

	*total = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char		h[65];
		long long	size;
		int			mode,
					off = 0;
		ManifestLine *more;

		/*
		 * The total must not overflow: it decides whether the package fits
		 * the cache, and a wrapped (negative) total would fit any cache.
		 */
		if (sscanf(line, "%64s %lld %o %n", h, &size, &mode, &off) != 3 || off == 0 ||
			strlen(h) != 64 || size < 0 || size > INT64_MAX - *total ||
			!safe_relative(line + off))
		{
			snprintf(msg, msglen, "the manifest has a bad line: \"%.100s\"", line);
			free_lines(l, count);
			return false;
		}
		more = realloc(l, sizeof(ManifestLine) * (count + 1));
		if (more == NULL)
		{
			free_lines(l, count);
			snprintf(msg, msglen, "out of memory");
			return false;
		}
		l = more;
		strcpy(l[count].sha256, h[0] == '-' ? "" : h);
		l[count].size = size;
		l[count].mode = mode & 0777;
		l[count].path = strdup(line + off);
		*total += size;
		count++;
	}
	*out = l;
	*n = count;
	return true;
}

/* mkdir with the cache's directory mode, whatever the umask; true if it exists */
static bool
make_dir(const char *path)
{
	if (mkdir(path, CACHED_DIR_MODE) != 0)
		return errno == EEXIST;
	return chmod(path, CACHED_DIR_MODE) == 0;
}

/* mkdir -p of rel under root (each component a real directory, never a link) */
static bool
make_dirs(const char *root, const char *rel)
{
	char		buf[MAX_PATH_LEN];
	size_t		rl = strlen(root);

	if (rl + strlen(rel) + 2 > sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s/%s", root, rel);
	for (char *p = buf + rl + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (!make_dir(buf))
			return false;
		*p = '/';
	}
	if (buf[strlen(buf) - 1] != '/' && !make_dir(buf))
		return false;
	return true;
}

/*
 * Open the regular file rel under root for reading, every component with
 * O_NOFOLLOW: a link planted on the share or in the cache is refused, not
 * followed (ELOOP; ENOTDIR for a link in place of a directory).  The last
 * component is looked at before it is opened: a FIFO or a device is never
 * opened (EINVAL), so it can neither hang the agent nor act on a device.
 */
static int
open_beneath(const char *root, const char *rel)
{
	int			dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char		buf[MAX_PATH_LEN];
	char	   *c = buf;

	if (dfd < 0 || strlen(rel) >= sizeof(buf))
	{
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	strcpy(buf, rel);
	for (;;)
	{
		char	   *slash = strchr(c, '/');
		struct stat st;
		int			fd;

		if (slash)
			*slash = '\0';
		else
		{
			int			rc = fstatat(dfd, c, &st, AT_SYMLINK_NOFOLLOW);

			if (rc != 0 || !S_ISREG(st.st_mode))
			{
				int			e = rc != 0 ? errno : (S_ISLNK(st.st_mode) ? ELOOP : EINVAL);

				close(dfd);
				errno = e;
				return -1;
			}
		}
		fd = openat(dfd, c, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (slash ? O_DIRECTORY : 0));
		close(dfd);
		if (fd < 0 || !slash)
			return fd;
		dfd = fd;
		c = slash + 1;
	}
}

/* Copy one file, checking size and SHA-256; false with msg. */
static bool
copy_verified(const char *src_root, const ManifestLine *l, const char *dst_root, char *msg, size_t msglen)
{
	int			in = open_beneath(src_root, l->path);
	int			out;
	char	   *dst;
	char		buf[65536];
	ssize_t		r;
	int64_t		total = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	unsigned int dl = 0;
	char		got[65];
	struct stat st;
	bool		ok = false;

	if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode))
	{
		snprintf(msg, msglen, "\"%s\" is missing or not a regular file on the distribution point", l->path);
		if (in >= 0)
			close(in);
		EVP_MD_CTX_free(md);
		return false;
	}
	{
		char	   *slash;
		char		rel[MAX_PATH_LEN];

		snprintf(rel, sizeof(rel), "%s", l->path);
		if ((slash = strrchr(rel, '/')) != NULL)
		{
			slash[1] = '\0';
			make_dirs(dst_root, rel);
		}
	}
	dst = path_join(dst_root, l->path);
	out = dst ? open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	if (out < 0 || md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
	{
		snprintf(msg, msglen, "cannot create \"%s\": %s", dst ? dst : l->path, strerror(errno));
		goto done;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0)
	{
		if (write(out, buf, (size_t) r) != r)
		{
			snprintf(msg, msglen, "cannot write \"%s\": %s", dst, strerror(errno));
			goto done;
		}
		EVP_DigestUpdate(md, buf, (size_t) r);
		total += r;
	}
	EVP_DigestFinal_ex(md, d, &dl);
	hex(d, got);
	if (r < 0)
		snprintf(msg, msglen, "cannot read \"%s\" on the distribution point: %s", l->path, strerror(errno));
	else if (total != l->size || strcmp(got, l->sha256) != 0)
		snprintf(msg, msglen, "\"%s\" does not match the manifest (%lld bytes, SHA-256 %.12s..., not %lld bytes, %.12s...)",
				 l->path, (long long) total, got, (long long) l->size, l->sha256);
	else if (fchmod(out, cached_file_mode(l->mode)) != 0)
		snprintf(msg, msglen, "cannot set the mode of \"%s\": %s", dst, strerror(errno));
	else
		ok = true;
done:
	if (out >= 0)
		close(out);
	close(in);
	EVP_MD_CTX_free(md);
	free(dst);
	return ok;
}

/* Download from one location into partial; false with msg. */
static bool
fetch_from(Cache *c, const char *location, const char *package_id, int64_t version, const char *sha256,
		   const char *partial, int64_t now, char *msg, size_t msglen, CacheResult *verdict)
{
	char		parent[MAX_PATH_LEN];
	char		name[64];
	char	   *slash;
	char	   *text;
	char	   *kept;
	size_t		len;
	char		err[512];
	char		got[65];
	ManifestLine *lines = NULL;
	size_t		n = 0;
	int64_t		total;
	bool		ok = true;

	*verdict = CACHE_UNAVAILABLE;
	snprintf(parent, sizeof(parent), "%s", location);
	if ((slash = strrchr(parent, '/')) == NULL || slash == parent)
	{
		snprintf(msg, msglen, "location \"%s\" is not a path on a share", location);
		return false;
	}
	*slash = '\0';
	manifest_name(package_id, version, name, sizeof(name));
	if (!sms_fmt_read_file(parent, name, &text, &len, err, sizeof(err)))
	{
		snprintf(msg, msglen, "no manifest of version %lld at \"%s\": %s", (long long) version, parent, err);
		return false;
	}
	if (!sha256_buffer(text, len, got) || strcmp(got, sha256) != 0)
	{
		snprintf(msg, msglen, "the manifest at \"%s\" does not match the package hash (SHA-256 %.12s..., not %.12s...)",
				 parent, got, sha256);
		free(text);
		return false;
	}
	/* kept in the cache, to check the package again before a run */
	if ((kept = malloc(len ? len : 1)) == NULL)
	{
		snprintf(msg, msglen, "out of memory");
		free(text);
		*verdict = CACHE_ERROR;
		return false;
	}
	memcpy(kept, text, len);
	if (!parse_manifest(text, &lines, &n, &total, msg, msglen))
	{
		free(text);
		free(kept);
		return false;
	}
	free(text);
	if (total > c->limit)
	{
		snprintf(msg, msglen, "the package (%lld bytes) is larger than the whole cache (%lld bytes)",
				 (long long) total, (long long) c->limit);
		*verdict = CACHE_TOO_LARGE;
		free_lines(lines, n);
		free(kept);
		return false;
	}
	cache_update_locks(c, now);
	if (!make_room(c, total, msg, msglen))
	{
		*verdict = CACHE_FULL;
		free_lines(lines, n);
		free(kept);
		return false;
	}
	remove_tree(partial);
	if (mkdir(partial, 0700) != 0)
	{
		snprintf(msg, msglen, "cannot create \"%s\": %s", partial, strerror(errno));
		*verdict = CACHE_ERROR;
		free_lines(lines, n);
		free(kept);
		return false;
	}
	for (size_t i = 0, copied = 0; ok && i < n; i++)
	{
		size_t		pl = strlen(lines[i].path);

		if (lines[i].path[pl - 1] == '/')
		{
			if (!(ok = make_dirs(partial, lines[i].path)))
				snprintf(msg, msglen, "cannot create directory \"%s\" in \"%s\": %s", lines[i].path, partial,
						 strerror(errno));
		}
		else
		{
			ok = copy_verified(location, &lines[i], partial, msg, msglen);
			/* tests only: a crash in the middle of a download */
			if (ok && ++copied == (size_t) atoi(getenv("SMSDIST_AGENT_TEST_CRASH_AFTER_FILES") ?
												getenv("SMSDIST_AGENT_TEST_CRASH_AFTER_FILES") : "0"))
				kill(getpid(), SIGKILL);
		}
	}
	free_lines(lines, n);
	if (ok && !sms_fmt_write_file(c->dir, name, kept, len, err, sizeof(err)))
	{
		snprintf(msg, msglen, "cannot keep the manifest in the cache: %s", err);
		*verdict = CACHE_ERROR;
		ok = false;
	}
	free(kept);
	if (!ok)
	{
		remove_tree(partial);
		return false;
	}
	{
		/* durable before it becomes a cache entry */
		int			fd = open(partial, O_RDONLY | O_DIRECTORY);

		if (fd < 0 || syncfs(fd) != 0)
		{
			snprintf(msg, msglen, "cannot flush \"%s\": %s", partial, strerror(errno));
			if (fd >= 0)
				close(fd);
			remove_tree(partial);
			*verdict = CACHE_ERROR;
			return false;
		}
		close(fd);
	}
	*verdict = CACHE_DOWNLOADED;
	snprintf(msg, msglen, "%lld bytes from \"%s\", every file verified", (long long) total, location);
	{
		CacheEntry	e = {0};

		snprintf(e.package_id, sizeof(e.package_id), "%s", package_id);
		e.version = version;
		snprintf(e.sha256, sizeof(e.sha256), "%s", sha256);
		e.bytes = total;
		e.downloaded_at = now;
		e.locked = true;
		if (!add_entry(c, &e))
		{
			*verdict = CACHE_ERROR;
			return false;
		}
	}
	return true;
}

CacheResult
cache_fetch(Cache *c, const char *package_id, int64_t version, const char *sha256,
			char *const *locations, size_t nlocations, int64_t now, char *msg, size_t msglen)
{
	char		pname[96];
	char	   *partial;
	CacheEntry *e;
	CacheResult verdict = CACHE_UNAVAILABLE;
	char		err[512];

	cache_update_locks(c, now);
	if ((e = cache_find(c, package_id, version, sha256)) != NULL)
	{
		snprintf(msg, msglen, "already in the cache (%s)", e->locked ? "locked" : "unlocked");
		return CACHE_PRESENT;
	}
	/* another copy of this version (another hash): it goes */
	if ((e = cache_find(c, package_id, version, NULL)) != NULL)
	{
		remove_entry_files(c->dir, e);
		drop_entry(c, (size_t) (e - c->entries));
	}
	if (nlocations == 0)
	{
		snprintf(msg, msglen, "the package has no location yet");
		return CACHE_UNAVAILABLE;
	}
	snprintf(pname, sizeof(pname), PARTIAL_PREFIX "%s.%lld", package_id, (long long) version);
	partial = path_join(c->dir, pname);
	for (size_t i = 0; i < nlocations; i++)
	{
		if (fetch_from(c, locations[i], package_id, version, sha256, partial, now, msg, msglen, &verdict))
		{
			CacheEntry *done = &c->entries[c->n - 1];
			char	   *final = cache_entry_dir(c, done);

			remove_tree(final);
			if (chmod(partial, 0755) != 0 || rename(partial, final) != 0)
			{
				snprintf(msg, msglen, "cannot rename \"%s\": %s", partial, strerror(errno));
				drop_entry(c, c->n - 1);
				remove_tree(partial);
				verdict = CACHE_ERROR;
			}
			free(final);
			break;
		}
		if (verdict == CACHE_TOO_LARGE || verdict == CACHE_FULL || verdict == CACHE_ERROR)
			break;				/* another location would not change that */
	}
	free(partial);
	if (!cache_save(c, err, sizeof(err)))
	{
		snprintf(msg, msglen, "cannot save the cache state: %s", err);
		return CACHE_ERROR;
	}
	return verdict;
}

/* ----------------------------------------------------------------
 * Checking a cached package again, before its program runs
 * ---------------------------------------------------------------- */

/* what the walk of an entry's tree found (nftw has no argument for it) */
static struct
{
	size_t		rootlen;
	size_t		files;
	char	   *msg;
	size_t		msglen;
}			walk;

static bool
own_dir(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid() && (st->st_mode & 07777) == CACHED_DIR_MODE;
}

static int
walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = path[walk.rootlen] == '/' ? path + walk.rootlen + 1 : ".";

	if (flag == FTW_SL || flag == FTW_SLN)
		snprintf(walk.msg, walk.msglen, "\"%s\" is a symbolic link", rel);
	else if (flag == FTW_NS || flag == FTW_DNR)
		snprintf(walk.msg, walk.msglen, "\"%s\" cannot be read: %s", rel, strerror(errno));
	else if (flag == FTW_D)
	{
		if (own_dir(st))
			return 0;
		snprintf(walk.msg, walk.msglen, "directory \"%s\" has owner %u and mode %04o, not %u and %04o",
				 rel, (unsigned) st->st_uid, (unsigned) (st->st_mode & 07777), (unsigned) geteuid(), CACHED_DIR_MODE);
	}
	else if (S_ISREG(st->st_mode))
	{
		walk.files++;
		return 0;
	}
	else
		snprintf(walk.msg, walk.msglen, "\"%s\" is not a regular file or a directory", rel);
	return 1;
}

/* Check one file of the manifest in root: type, owner, mode, size, SHA-256. */
static bool
verify_file(const char *root, const ManifestLine *l, char *msg, size_t msglen)
{
	int			fd = open_beneath(root, l->path);
	struct stat st;
	EVP_MD_CTX *md = NULL;
	unsigned char d[32];
	unsigned int dl = 0;
	char		got[65];
	char		buf[65536];
	ssize_t		r;
	int64_t		total = 0;
	bool		ok = false;

	if (fd < 0)
	{
		if (errno == ELOOP || errno == ENOTDIR)
			snprintf(msg, msglen, "\"%s\" is a symbolic link (or lies below one)", l->path);
		else if (errno == EINVAL)
			snprintf(msg, msglen, "\"%s\" is not a regular file", l->path);
		else
			snprintf(msg, msglen, "\"%s\" cannot be opened: %s", l->path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0)
		snprintf(msg, msglen, "\"%s\" cannot be read: %s", l->path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(msg, msglen, "\"%s\" is not a regular file", l->path);
	else if (st.st_uid != geteuid())
		snprintf(msg, msglen, "\"%s\" belongs to user ID %u, not to the agent (%u)", l->path,
				 (unsigned) st.st_uid, (unsigned) geteuid());
	else if ((st.st_mode & 07777) != cached_file_mode(l->mode))
		snprintf(msg, msglen, "\"%s\" has mode %04o, not %04o", l->path, (unsigned) (st.st_mode & 07777),
				 (unsigned) cached_file_mode(l->mode));
	else if (st.st_size != l->size)
		snprintf(msg, msglen, "\"%s\" has %lld bytes, not %lld", l->path, (long long) st.st_size, (long long) l->size);
	else if ((md = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		snprintf(msg, msglen, "cannot compute a SHA-256");
	else
	{
		while ((r = read(fd, buf, sizeof(buf))) > 0)
		{
			EVP_DigestUpdate(md, buf, (size_t) r);
			total += r;
		}
		EVP_DigestFinal_ex(md, d, &dl);
		hex(d, got);
		if (r < 0)
			snprintf(msg, msglen, "\"%s\" cannot be read: %s", l->path, strerror(errno));
		else if (total != l->size || strcmp(got, l->sha256) != 0)
			snprintf(msg, msglen, "\"%s\" has changed (%lld bytes, SHA-256 %.12s..., not %lld bytes, %.12s...)",
					 l->path, (long long) total, got, (long long) l->size, l->sha256);
		else
			ok = true;
	}
	EVP_MD_CTX_free(md);
	close(fd);
	return ok;
}

bool
cache_verify(const Cache *c, const CacheEntry *e, char *msg, size_t msglen)
{
	char		name[64];
	char	   *text = NULL;
	size_t		len;
	char		err[512];
	char		got[65];
	ManifestLine *lines = NULL;
	size_t		n = 0,
				files = 0;
	int64_t		total;
	char	   *root = cache_entry_dir(c, e);
	struct stat st;
	bool		ok = false;

	manifest_name(e->package_id, e->version, name, sizeof(name));
	if (root == NULL)
		snprintf(msg, msglen, "out of memory");
	else if (!sms_fmt_read_file(c->dir, name, &text, &len, err, sizeof(err)))
	{
		snprintf(msg, msglen, "its manifest is not kept in the cache: %s", err);
		text = NULL;
	}
	else if (!sha256_buffer(text, len, got) || strcmp(got, e->sha256) != 0)
		snprintf(msg, msglen, "the manifest kept in the cache does not match the package hash (SHA-256 %.12s..., not %.12s...)",
				 got, e->sha256);
	else if (parse_manifest(text, &lines, &n, &total, msg, msglen))
	{
		if (lstat(root, &st) != 0 || !own_dir(&st))
			snprintf(msg, msglen, "the package directory \"%s\" is not a directory of the agent's with mode %04o",
					 root, CACHED_DIR_MODE);
		else
		{
			ok = true;
			for (size_t i = 0; ok && i < n; i++)
			{
				size_t		pl = strlen(lines[i].path);

				if (lines[i].path[pl - 1] == '/')
					continue;	/* an empty directory: the walk checks it */
				files++;
				ok = verify_file(root, &lines[i], msg, msglen);
			}
			if (ok)
			{
				/* nothing else in the tree: no link, no special file, no extra file */
				walk.rootlen = strlen(root);
				walk.files = 0;
				walk.msg = msg;
				walk.msglen = msglen;
				msg[0] = '\0';
				if (nftw(root, walk_one, 16, FTW_PHYS) != 0)
				{
					if (msg[0] == '\0')
						snprintf(msg, msglen, "cannot walk \"%s\": %s", root, strerror(errno));
					ok = false;
				}
				else if (walk.files != files)
				{
					snprintf(msg, msglen, "it holds %zu files, the manifest lists %zu", walk.files, files);
					ok = false;
				}
			}
		}
		free_lines(lines, n);
	}
	free(text);
	free(root);
	return ok;
}

bool
cache_drop(Cache *c, CacheEntry *e, char *err, size_t errlen)
{
	bool		ok = remove_entry_files(c->dir, e);
	char		e2[512];

	/* forgotten even if a file stays behind: a new download replaces it */
	if (!ok)
		snprintf(err, errlen, "cannot remove package %s version %lld from the cache: %s", e->package_id,
				 (long long) e->version, strerror(errno));
	drop_entry(c, (size_t) (e - c->entries));
	if (!cache_save(c, e2, sizeof(e2)))
	{
		if (ok)
			snprintf(err, errlen, "%s", e2);
		ok = false;
	}
	return ok;
}

/* ----------------------------------------------------------------
 * Administration
 * ---------------------------------------------------------------- */

bool
cache_resize(Cache *c, int64_t limit, int64_t now, char *err, size_t errlen)
{
	int64_t		old = c->limit;

	c->limit = limit;
	cache_update_locks(c, now);
	if (cache_used(c) > limit && !make_room(c, 0, err, errlen))
	{
		c->limit = old;
		snprintf(err, errlen, "the locked packages take %lld bytes, more than %lld: not resized",
				 (long long) cache_used(c), (long long) limit);
		return false;
	}
	return cache_save(c, err, errlen);
}

bool
cache_clear(Cache *c, char *err, size_t errlen)
{
	while (c->n > 0)
	{
		bool		ok = remove_entry_files(c->dir, &c->entries[c->n - 1]);

		if (!ok)
		{
			snprintf(err, errlen, "cannot remove a package from the cache: %s", strerror(errno));
			cache_save(c, err, errlen);
			return false;
		}
		c->n--;
	}
	return cache_save(c, err, errlen);
}

/* Copy a tree (the cache's own files: regular files and directories). */
static bool
copy_tree(const char *from, const char *to)
{
	DIR		   *d = opendir(from);
	struct dirent *de;
	bool		ok = true;

	if (d == NULL || !make_dir(to))
	{
		if (d)
			closedir(d);
		return false;
	}
	while (ok && (de = readdir(d)) != NULL)
	{
		char	   *a,
				   *b;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		a = path_join(from, de->d_name);
		b = path_join(to, de->d_name);
		if (!a || !b || lstat(a, &st) != 0)
			ok = false;
		else if (S_ISDIR(st.st_mode))
			ok = copy_tree(a, b);
		else if (S_ISREG(st.st_mode))
		{
			int			in = open(a, O_RDONLY | O_NOFOLLOW);
			int			out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
			char		buf[65536];
			ssize_t		r = 0;

			/* the mode it had, never writable by group or others */
			if (out >= 0 && fchmod(out, st.st_mode & 0755) != 0)
			{
				close(out);
				out = -1;
			}

			while (in >= 0 && out >= 0 && (r = read(in, buf, sizeof(buf))) > 0)
				if (write(out, buf, (size_t) r) != r)
				{
					r = -1;
					break;
				}
			ok = in >= 0 && out >= 0 && r == 0 && fsync(out) == 0;
			if (in >= 0)
				close(in);
			if (out >= 0)
				close(out);
		}
		free(a);
		free(b);
	}
	closedir(d);
	return ok;
}

/*
 * Copy an entry's manifest from one cache directory to another.  An entry
 * without one (made by an older agent) has none to copy: it fails the check
 * before its next run and is downloaded again.
 */
static bool
copy_manifest(const char *olddir, const char *newdir, const CacheEntry *e, char *err, size_t errlen)
{
	char		name[64];
	char	   *text;
	size_t		len;
	char		e2[256];
	bool		ok;

	manifest_name(e->package_id, e->version, name, sizeof(name));
	if (!sms_fmt_read_file(olddir, name, &text, &len, e2, sizeof(e2)))
		return true;
	ok = sms_fmt_write_file(newdir, name, text, len, e2, sizeof(e2));
	if (!ok)
		snprintf(err, errlen, "cannot copy the manifest \"%s\" to \"%s\": %s", name, newdir, e2);
	free(text);
	return ok;
}

bool
cache_move(Cache *c, const char *newdir, char *err, size_t errlen)
{
	char	   *olddir = c->dir;
	char	   *newstate;
	bool	   *copied = calloc(c->n ? c->n : 1, sizeof(bool));
	size_t		moved = 0;
	bool		ok = true;

	if (copied == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return false;
	}
	if (strcmp(olddir, newdir) == 0)
	{
		free(copied);
		return true;			/* already there */
	}
	if (mkdir(newdir, CACHED_DIR_MODE) != 0 && errno != EEXIST)
	{
		snprintf(err, errlen, "cannot create \"%s\": %s", newdir, strerror(errno));
		free(copied);
		return false;
	}
	if (!own_cache_dir(newdir, err, errlen))
	{
		free(copied);
		return false;
	}

	/*
	 * Each package is renamed into the new place, or copied there from
	 * another file system (the old copy stays until the new place is
	 * recorded).  If one cannot be moved, those moved already go back and
	 * the copies are removed: the cache stays whole where it was.
	 */
	for (; moved < c->n && ok; moved++)
	{
		char	   *from = entry_dir_in(olddir, &c->entries[moved]);
		char	   *to = entry_dir_in(newdir, &c->entries[moved]);

		if (rename(from, to) != 0)
		{
			if (errno == EXDEV && copy_tree(from, to))
				copied[moved] = true;
			else
			{
				snprintf(err, errlen, "cannot move \"%s\" to \"%s\": %s", from, to, strerror(errno));
				if (errno == EXDEV)
					remove_tree(to);	/* the part copied */
				ok = false;
				moved--;		/* this one did not move */
			}
		}
		if (ok && !copy_manifest(olddir, newdir, &c->entries[moved], err, errlen))
		{
			/* this one goes back (or its copy goes) now: the undo below does the others */
			if (copied[moved])
				remove_tree(to);
			else if (rename(to, from) != 0)
				fprintf(stderr, "smsdist-agent: could not move \"%s\" back to \"%s\": %s\n",
						to, from, strerror(errno));
			ok = false;
			moved--;
		}
		free(from);
		free(to);
	}
	if (ok)
	{
		c->dir = strdup(newdir);
		ok = c->dir != NULL && cache_save(c, err, errlen);
		if (!ok)
		{
			free(c->dir);
			c->dir = olddir;
		}
	}
	if (!ok)
	{
		/* undo, newest first */
		while (moved-- > 0)
		{
			char	   *back = entry_dir_in(olddir, &c->entries[moved]);
			char	   *there = entry_dir_in(newdir, &c->entries[moved]);

			char		name[64];
			char	   *m;

			if (copied[moved])
				remove_tree(there);
			else if (rename(there, back) != 0)
				fprintf(stderr, "smsdist-agent: could not move \"%s\" back to \"%s\": %s\n",
						there, back, strerror(errno));
			manifest_name(c->entries[moved].package_id, c->entries[moved].version, name, sizeof(name));
			if ((m = path_join(newdir, name)) != NULL)
				unlink(m);
			free(m);
			free(back);
			free(there);
		}
		newstate = path_join(newdir, STATE_FILE);
		unlink(newstate);
		free(newstate);
		rmdir(newdir);			/* if we made it and nothing else is there */
		free(copied);
		return false;
	}
	/* recorded in the new place: the old copies, manifests and state go */
	for (size_t i = 0; i < c->n; i++)
	{
		char		name[64];
		char	   *m;

		if (copied[i])
		{
			char	   *from = entry_dir_in(olddir, &c->entries[i]);

			remove_tree(from);
			free(from);
		}
		manifest_name(c->entries[i].package_id, c->entries[i].version, name, sizeof(name));
		if ((m = path_join(olddir, name)) != NULL)
			unlink(m);
		free(m);
	}
	{
		char	   *old_state = path_join(olddir, STATE_FILE);

		unlink(old_state);
		free(old_state);
		rmdir(olddir);			/* if nothing else is there */
	}
	free(copied);
	free(olddir);
	return true;
}
