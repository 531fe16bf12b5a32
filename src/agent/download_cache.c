/*-------------------------------------------------------------------------
 *
 * download_cache.c
 *	  The client agent's download cache, as SMS's Advanced Client kept it:
 *	  its packages and their state.
 *
 * Terms:
 *	cache		a directory (its location and size are settings) holding
 *				one directory per package version, <PACKAGE>.<VERSION>, a
 *				copy of each one's manifest (cache_manifest.h), and its
 *				state, cache.state: one line per entry, in download order.
 *	entry		a package version in the cache and its record in the state.
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
 *
 * Downloading is cache_fetch.c, checking a package again before its
 * program runs cache_verify.c, moving the cache cache_move.c, and who may
 * change the cache cache_ground.c.  The state file is written whole
 * (temporary name, fsync, rename) after every change.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_ground.h"
#include "cache_manifest.h"
#include "download_cache.h"
#include "file_tree.h"
#include "sms_formats.h"

/* ----------------------------------------------------------------
 * Entries
 * ---------------------------------------------------------------- */

bool
cache_add_entry(Cache *c, const CacheEntry *e)
{
	CacheEntry *more = realloc(c->entries, sizeof(CacheEntry) * (c->n + 1));

	if (more == NULL)
		return false;
	c->entries = more;
	c->entries[c->n++] = *e;
	return true;
}

void
cache_forget_entry(Cache *c, size_t i)
{
	memmove(&c->entries[i], &c->entries[i + 1], sizeof(CacheEntry) * (c->n - i - 1));
	c->n--;
}

char *
cache_entry_dir_in(const char *dir, const CacheEntry *e)
{
	char		name[64];

	snprintf(name, sizeof(name), "%s.%lld", e->package_id, (long long) e->version);
	return path_join(dir, name);
}

char *
cache_entry_dir(const Cache *c, const CacheEntry *e)
{
	return cache_entry_dir_in(c->dir, e);
}

/* Remove an entry's files (its directory and its manifest) from dir. */
bool
cache_remove_entry_files(const char *dir, const CacheEntry *e)
{
	char	   *p = cache_entry_dir_in(dir, e);
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

/* ----------------------------------------------------------------
 * State
 * ---------------------------------------------------------------- */

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
	ok = sms_fmt_write_file(c->dir, CACHE_STATE_FILE, buf, len, err, errlen);
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

	if (!sms_fmt_read_file(c->dir, CACHE_STATE_FILE, &buf, &len, e2, sizeof(e2)))
	{
		struct stat st;
		char	   *p = path_join(c->dir, CACHE_STATE_FILE);
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
			if (!sms_fmt_valid_sms_id(e.package_id) || !cache_add_entry(c, &e))
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
 * What a download or a write cut off by a crash left goes (a download
 * starts over), and an entry whose directory is gone (removed by hand) is
 * forgotten.
 */
static bool
tidy_after_crash(Cache *c, char *err, size_t errlen)
{
	DIR		   *d;
	struct dirent *de;

	if ((d = opendir(c->dir)) == NULL)
	{
		snprintf(err, errlen, "cannot read the cache directory \"%s\": %s", c->dir, strerror(errno));
		return false;
	}
	while ((de = readdir(d)) != NULL)
	{
		if (strncmp(de->d_name, CACHE_PARTIAL_PREFIX, strlen(CACHE_PARTIAL_PREFIX)) == 0)
		{
			char	   *p = path_join(c->dir, de->d_name);

			remove_tree(p);
			free(p);
		}
	}
	closedir(d);
	/* the state and manifests are written whole (box_file.c) */
	if (sms_fmt_remove_stale_temporaries(c->dir, NULL, err, errlen) < 0)
		return false;
	for (size_t i = 0; i < c->n;)
	{
		char	   *p = cache_entry_dir(c, &c->entries[i]);
		struct stat st;
		bool		gone = p && lstat(p, &st) != 0;

		free(p);
		if (gone)
		{
			cache_remove_entry_files(c->dir, &c->entries[i]);	/* its manifest */
			cache_forget_entry(c, i);
		}
		else
			i++;
	}
	return true;
}

bool
cache_open(Cache *c, const char *dir, int64_t limit, char *err, size_t errlen)
{
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
	if (!secure_cache_dir(dir, err, errlen))
		return false;
	if (!load_state(c, err, errlen))
		return false;
	return tidy_after_crash(c, err, errlen);
}

void
cache_close(Cache *c)
{
	free(c->dir);
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

/* ----------------------------------------------------------------
 * Locks and room
 * ---------------------------------------------------------------- */

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

bool
cache_make_room(Cache *c, int64_t need, char *msg, size_t msglen)
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
		cache_remove_entry_files(c->dir, &c->entries[oldest]);
		cache_forget_entry(c, oldest);
	}
	return true;
}

/* ----------------------------------------------------------------
 * Removing and administration
 * ---------------------------------------------------------------- */

bool
cache_drop(Cache *c, CacheEntry *e, char *err, size_t errlen)
{
	bool		ok = cache_remove_entry_files(c->dir, e);
	char		e2[512];

	/* forgotten even if a file stays behind: a new download replaces it */
	if (!ok)
		snprintf(err, errlen, "cannot remove package %s version %lld from the cache: %s", e->package_id,
				 (long long) e->version, strerror(errno));
	cache_forget_entry(c, (size_t) (e - c->entries));
	if (!cache_save(c, e2, sizeof(e2)))
	{
		if (ok)
			snprintf(err, errlen, "%s", e2);
		ok = false;
	}
	return ok;
}

bool
cache_resize(Cache *c, int64_t limit, int64_t now, char *err, size_t errlen)
{
	int64_t		old = c->limit;

	c->limit = limit;
	cache_update_locks(c, now);
	if (cache_used(c) > limit && !cache_make_room(c, 0, err, errlen))
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
		bool		ok = cache_remove_entry_files(c->dir, &c->entries[c->n - 1]);

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
