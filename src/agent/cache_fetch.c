/*-------------------------------------------------------------------------
 *
 * cache_fetch.c
 *	  Downloading a package version into the cache.
 *
 * Terms:
 *	location	a distribution point path of the package (a directory on a
 *				share); its manifest lies beside it, in the share.
 *	verified	the manifest must have the package hash as its SHA-256,
 *				and every file must have the size and SHA-256 the manifest
 *				gives.  A copy of the manifest is kept in the cache so that
 *				the package can be checked again before its program runs
 *				(cache_verify.c).
 *	partial		a download in progress, .partial.<PACKAGE>.<VERSION>: renamed
 *				to its place only when every file is there and verified, so
 *				no half package is ever used; one left by a crash is removed
 *				when the cache is next opened, and the download starts over.
 *
 * The downloaded files are made durable (syncfs) before the rename that
 * makes them a cache entry.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_fetch.h"
#include "cache_ground.h"
#include "cache_manifest.h"
#include "file_tree.h"
#include "sms_formats.h"

/* Copy one file, checking size and SHA-256; false with msg. */
static bool
copy_verified(const char *src_root, const ManifestLine *l, const char *dst_root, char *msg, size_t msglen)
{
	int			in = open_beneath(src_root, l->path);
	int			out;
	char	   *dst;
	char		got[SHA256_HEX_BUFLEN];
	int64_t		total = 0;
	HashResult	hashed;
	struct stat st;
	bool		ok = false;

	if (in < 0 || fstat(in, &st) != 0 || !S_ISREG(st.st_mode))
	{
		snprintf(msg, msglen, "\"%s\" is missing or not a regular file on the distribution point", l->path);
		if (in >= 0)
			close(in);
		return false;
	}
	{
		char	   *slash;
		char		rel[MAX_PATH_LEN];

		snprintf(rel, sizeof(rel), "%s", l->path);
		if ((slash = strrchr(rel, '/')) != NULL)
		{
			slash[1] = '\0';
			make_dirs(dst_root, rel, CACHED_DIR_MODE);
		}
	}
	dst = path_join(dst_root, l->path);
	out = dst ? open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	hashed = out < 0 ? HASH_NO_DIGEST : sha256_of_file(in, out, got, &total);
	if (hashed == HASH_NO_DIGEST)
		snprintf(msg, msglen, "cannot create \"%s\": %s", dst ? dst : l->path, strerror(errno));
	else if (hashed == HASH_WRITE_FAILED)
		snprintf(msg, msglen, "cannot write \"%s\": %s", dst, strerror(errno));
	else if (hashed == HASH_READ_FAILED)
		snprintf(msg, msglen, "cannot read \"%s\" on the distribution point: %s", l->path, strerror(errno));
	else if (total != l->size || strcmp(got, l->sha256) != 0)
		snprintf(msg, msglen, "\"%s\" does not match the manifest (%lld bytes, SHA-256 %.12s..., not %lld bytes, %.12s...)",
				 l->path, (long long) total, got, (long long) l->size, l->sha256);
	else if (fchmod(out, cached_file_mode(l->mode)) != 0)
		snprintf(msg, msglen, "cannot set the mode of \"%s\": %s", dst, strerror(errno));
	else if (l->has_mtime && futimens(out, (struct timespec[2]) {{0, UTIME_OMIT}, l->mtime}) != 0)
		snprintf(msg, msglen, "cannot set the modification time of \"%s\": %s", dst, strerror(errno));
	else
		ok = true;
	if (out >= 0)
		close(out);
	close(in);
	free(dst);
	return ok;
}

/*
 * The manifest published beside location, whose SHA-256 must be the
 * package hash: its text (malloc'd, *len bytes), or NULL with msg.
 */
static char *
fetch_manifest(const char *location, const CacheEntry *want, size_t *len, char *msg, size_t msglen)
{
	char		parent[MAX_PATH_LEN];
	char		name[64];
	char	   *slash;
	char	   *text;
	char		err[512];
	char		got[SHA256_HEX_BUFLEN];

	snprintf(parent, sizeof(parent), "%s", location);
	if ((slash = strrchr(parent, '/')) == NULL || slash == parent)
	{
		snprintf(msg, msglen, "location \"%s\" is not a path on a share", location);
		return NULL;
	}
	*slash = '\0';
	manifest_name(want->package_id, want->version, name, sizeof(name));
	if (!sms_fmt_read_file(parent, name, &text, len, err, sizeof(err)))
	{
		snprintf(msg, msglen, "no manifest of version %lld at \"%s\": %s", (long long) want->version, parent, err);
		return NULL;
	}
	if (!sha256_of_buffer(text, *len, got) || strcmp(got, want->sha256) != 0)
	{
		snprintf(msg, msglen, "the manifest at \"%s\" does not match the package hash (SHA-256 %.12s..., not %.12s...)",
				 parent, got, want->sha256);
		free(text);
		return NULL;
	}
	return text;
}

/* Does a package of total bytes fit, once the oldest unlocked ones are gone? */
static bool
room_for(Cache *c, int64_t total, int64_t now, char *msg, size_t msglen, CacheResult *verdict)
{
	if (total > c->limit)
	{
		snprintf(msg, msglen, "the package (%lld bytes) is larger than the whole cache (%lld bytes)",
				 (long long) total, (long long) c->limit);
		*verdict = CACHE_TOO_LARGE;
		return false;
	}
	cache_update_locks(c, now);
	if (!cache_make_room(c, total, msg, msglen))
	{
		*verdict = CACHE_FULL;
		return false;
	}
	return true;
}

/*
 * The directories' modes (cached_dir_mode) and modification times (version
 * 2 manifests), once nothing more is created in them: deepest first, since
 * the lines are sorted by path and a directory comes before its contents.
 * Each is opened without following a link.
 */
static bool
set_dir_attrs(const ManifestLine *lines, size_t n, const char *partial, char *msg, size_t msglen)
{
	for (size_t i = n; i-- > 0;)
	{
		size_t		pl = strlen(lines[i].path);
		int			fd;
		bool		ok;

		if (lines[i].path[pl - 1] != '/' || lines[i].target != NULL)
			continue;
		fd = open_dir_beneath(partial, lines[i].path);
		ok = fd >= 0 && fchmod(fd, cached_dir_mode(lines[i].mode)) == 0 &&
			(!lines[i].has_mtime || futimens(fd, (struct timespec[2]) {{0, UTIME_OMIT}, lines[i].mtime}) == 0);
		if (!ok)
			snprintf(msg, msglen, "cannot set the mode and time of directory \"%s\" in \"%s\": %s",
					 lines[i].path, partial, strerror(errno));
		if (fd >= 0)
			close(fd);
		if (!ok)
			return false;
	}
	return true;
}

/*
 * The link l in partial, made with symlinkat in its directory, which is
 * opened component by component without following a link; its time is
 * set on the link itself.  The manifest reader made sure that the target
 * obeys the link rule and that nothing of the package lies below a link.
 */
static bool
make_link(const ManifestLine *l, const char *partial, char *msg, size_t msglen)
{
	char		rel[MAX_PATH_LEN];
	char	   *slash;
	const char *name = l->path;
	int			dfd;
	bool		ok;

	snprintf(rel, sizeof(rel), "%s", l->path);
	if ((slash = strrchr(rel, '/')) != NULL)
	{
		*slash = '\0';
		name = slash + 1;
		dfd = make_dirs(partial, rel, CACHED_DIR_MODE) ? open_dir_beneath(partial, rel) : -1;
	}
	else
		dfd = open(partial, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	ok = dfd >= 0 && symlinkat(l->target, dfd, name) == 0 &&
		(!l->has_mtime ||
		 utimensat(dfd, name, (struct timespec[2]) {{0, UTIME_OMIT}, l->mtime}, AT_SYMLINK_NOFOLLOW) == 0);
	if (!ok)
		snprintf(msg, msglen, "cannot create the link \"%s\" in \"%s\": %s", l->path, partial, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	return ok;
}

/*
 * Copy every file and directory of the manifest from location into
 * partial, then make its links: last, so that nothing is created after a
 * link that could lead elsewhere.
 */
static bool
copy_package(const char *location, const ManifestLine *lines, size_t n, const char *partial,
			 char *msg, size_t msglen)
{
	bool		ok = true;

	for (size_t i = 0, copied = 0; ok && i < n; i++)
	{
		size_t		pl = strlen(lines[i].path);

		if (lines[i].target != NULL)
			continue;
		if (lines[i].path[pl - 1] == '/')
		{
			if (!(ok = make_dirs(partial, lines[i].path, CACHED_DIR_MODE)))
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
	for (size_t i = 0; ok && i < n; i++)
		if (lines[i].target != NULL)
			ok = make_link(&lines[i], partial, msg, msglen);
	return ok && set_dir_attrs(lines, n, partial, msg, msglen);
}

/* The downloaded files durable (syncfs) before they become a cache entry. */
static bool
flush_partial(const char *partial, char *msg, size_t msglen)
{
	int			fd = open(partial, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || syncfs(fd) != 0)
	{
		snprintf(msg, msglen, "cannot flush \"%s\": %s", partial, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

/*
 * Into partial, a fresh directory: the files of the manifest (lines, total
 * bytes) from location, then the manifest's text (kept) into the cache,
 * everything durable.  What is left of partial goes on failure.
 */
static bool
fill_partial(Cache *c, const char *location, const CacheEntry *want, const ManifestLine *lines, size_t n,
			 const char *kept, size_t len, const char *partial, char *msg, size_t msglen, CacheResult *verdict)
{
	char		name[64];
	char		err[512];

	remove_tree(partial);
	if (mkdir(partial, 0700) != 0)
	{
		snprintf(msg, msglen, "cannot create \"%s\": %s", partial, strerror(errno));
		*verdict = CACHE_ERROR;
		return false;
	}
	if (!copy_package(location, lines, n, partial, msg, msglen))
	{
		remove_tree(partial);
		return false;
	}
	manifest_name(want->package_id, want->version, name, sizeof(name));
	if (!sms_fmt_write_file(c->dir, name, kept, len, err, sizeof(err)))
		snprintf(msg, msglen, "cannot keep the manifest in the cache: %s", err);
	else if (flush_partial(partial, msg, msglen))
		return true;
	remove_tree(partial);
	*verdict = CACHE_ERROR;
	return false;
}

/* Download want from one location into partial and record it; false with msg. */
static bool
fetch_from(Cache *c, const char *location, const CacheEntry *want, const char *partial,
		   int64_t now, char *msg, size_t msglen, CacheResult *verdict)
{
	char	   *text;
	char	   *kept;
	size_t		len;
	ManifestLine *lines = NULL;
	size_t		n = 0;
	int64_t		total;
	bool		ok;
	CacheEntry	e = *want;

	*verdict = CACHE_UNAVAILABLE;
	if ((text = fetch_manifest(location, want, &len, msg, msglen)) == NULL)
		return false;
	/* kept in the cache, to check the package again before a run */
	if ((kept = malloc(len ? len : 1)) == NULL)
	{
		snprintf(msg, msglen, "out of memory");
		free(text);
		*verdict = CACHE_ERROR;
		return false;
	}
	memcpy(kept, text, len);
	ok = manifest_parse(text, &lines, &n, &total, msg, msglen);
	free(text);
	ok = ok && room_for(c, total, now, msg, msglen, verdict) &&
		fill_partial(c, location, want, lines, n, kept, len, partial, msg, msglen, verdict);
	manifest_free(lines, n);
	free(kept);
	if (!ok)
		return false;
	*verdict = CACHE_DOWNLOADED;
	snprintf(msg, msglen, "%lld bytes from \"%s\", every file verified", (long long) total, location);
	e.bytes = total;
	e.downloaded_at = now;
	e.locked = true;
	if (!cache_add_entry(c, &e))
	{
		*verdict = CACHE_ERROR;
		return false;
	}
	return true;
}

/* The fetched entry (the last one) into its place; false (msg) if it cannot be. */
static bool
put_in_place(Cache *c, const char *partial, char *msg, size_t msglen)
{
	CacheEntry *done = &c->entries[c->n - 1];
	char	   *final = cache_entry_dir(c, done);
	bool		ok = true;

	remove_tree(final);
	if (chmod(partial, 0755) != 0 || rename(partial, final) != 0)
	{
		snprintf(msg, msglen, "cannot rename \"%s\": %s", partial, strerror(errno));
		cache_forget_entry(c, c->n - 1);
		remove_tree(partial);
		ok = false;
	}
	free(final);
	return ok;
}

CacheResult
cache_fetch(Cache *c, const char *package_id, int64_t version, const char *sha256,
			char *const *locations, size_t nlocations, int64_t now, char *msg, size_t msglen)
{
	char		pname[96];
	char	   *partial;
	CacheEntry *e;
	CacheEntry	want = {0};
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
		cache_remove_entry_files(c->dir, e);
		cache_forget_entry(c, (size_t) (e - c->entries));
	}
	if (nlocations == 0)
	{
		snprintf(msg, msglen, "the package has no location yet");
		return CACHE_UNAVAILABLE;
	}
	snprintf(want.package_id, sizeof(want.package_id), "%s", package_id);
	want.version = version;
	snprintf(want.sha256, sizeof(want.sha256), "%s", sha256);
	snprintf(pname, sizeof(pname), CACHE_PARTIAL_PREFIX "%s.%lld", package_id, (long long) version);
	partial = path_join(c->dir, pname);
	for (size_t i = 0; i < nlocations; i++)
	{
		if (fetch_from(c, locations[i], &want, partial, now, msg, msglen, &verdict))
		{
			if (!put_in_place(c, partial, msg, msglen))
				verdict = CACHE_ERROR;
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
