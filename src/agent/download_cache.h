/*-------------------------------------------------------------------------
 *
 * download_cache.h
 *	  The client agent's download cache: its packages and their state
 *	  (download_cache.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_DOWNLOAD_CACHE_H
#define SMSDIST_DOWNLOAD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_UNLOCK_AFTER_RUN		(24 * 3600)			/* as in SMS's Advanced Client */
#define CACHE_UNLOCK_NEVER_RAN		(30 * 24 * 3600)	/* as in SMS's Advanced Client */
#define CACHE_STATE_FILE			"cache.state"
#define CACHE_PARTIAL_PREFIX		".partial."	/* a download in progress (cache_fetch.c) */

typedef struct CacheEntry
{
	char		package_id[16];
	int64_t		version;
	char		sha256[65];		/* the package hash (of its manifest) */
	int64_t		bytes;			/* sum of its files' sizes */
	int64_t		downloaded_at;
	int64_t		ran_at;			/* 0: its program never ran */
	bool		locked;			/* once false, never true again */
} CacheEntry;

typedef struct Cache
{
	char	   *dir;
	int64_t		limit;			/* bytes */
	CacheEntry *entries;		/* in download order, oldest first */
	size_t		n;
} Cache;

/*
 * Open the cache in dir (created if missing; limit is used only then):
 * read its state, and remove what a download that was cut off left.
 */
extern bool cache_open(Cache *c, const char *dir, int64_t limit, char *err, size_t errlen);
extern void cache_close(Cache *c);
extern bool cache_save(const Cache *c, char *err, size_t errlen);

/* Unlock what has come due at now (24 h after a run, 30 days without). */
extern void cache_update_locks(Cache *c, int64_t now);
extern int64_t cache_unlock_at(const CacheEntry *e);
extern int64_t cache_used(const Cache *c);
extern CacheEntry *cache_find(Cache *c, const char *package_id, int64_t version, const char *sha256);
/* the directory holding an entry's files (malloc'd) */
extern char *cache_entry_dir(const Cache *c, const CacheEntry *e);
extern void cache_mark_ran(Cache *c, CacheEntry *e, int64_t now);
/* Remove an entry (its files and its record) and save the state; e is gone. */
extern bool cache_drop(Cache *c, CacheEntry *e, char *err, size_t errlen);

/* Administration: each saves the state. */
extern bool cache_resize(Cache *c, int64_t limit, int64_t now, char *err, size_t errlen);
extern bool cache_clear(Cache *c, char *err, size_t errlen);

/*
 * For the cache's other files (cache_fetch.c, cache_move.c): the records
 * alone (cache_add_entry, cache_forget_entry: nothing saved, no file
 * touched) and an entry's files in a cache directory dir.
 */
extern bool cache_add_entry(Cache *c, const CacheEntry *e);
extern void cache_forget_entry(Cache *c, size_t i);
extern char *cache_entry_dir_in(const char *dir, const CacheEntry *e);
extern bool cache_remove_entry_files(const char *dir, const CacheEntry *e);
/* Delete the oldest unlocked entries until need more bytes fit; false (msg) if they cannot. */
extern bool cache_make_room(Cache *c, int64_t need, char *msg, size_t msglen);

#endif							/* SMSDIST_DOWNLOAD_CACHE_H */
