/*-------------------------------------------------------------------------
 *
 * download_cache.h
 *	  The client agent's download cache (download_cache.c).
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

typedef enum CacheResult
{
	CACHE_DOWNLOADED,			/* fetched, verified and locked */
	CACHE_PRESENT,				/* already there, verified when it came */
	CACHE_TOO_LARGE,			/* larger than the whole cache */
	CACHE_FULL,					/* the unlocked packages do not free enough */
	CACHE_UNAVAILABLE,			/* no location has it (yet), or it does not verify */
	CACHE_ERROR					/* the cache itself could not be written */
} CacheResult;

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

/*
 * Make package_id version (hash sha256) present: from the first location
 * that has it, every file checked against the manifest published beside it,
 * whose SHA-256 must be sha256.  Evicts the oldest unlocked packages if it
 * does not fit.  msg says what happened, for a status message.
 */
extern CacheResult cache_fetch(Cache *c, const char *package_id, int64_t version,
							   const char *sha256, char *const *locations, size_t nlocations,
							   int64_t now, char *msg, size_t msglen);

extern void cache_mark_ran(Cache *c, CacheEntry *e, int64_t now);

/*
 * Check a cached package again, right before its program runs: the
 * manifest kept in the cache must still have the package hash, every file
 * it lists must have its size, SHA-256, type (a regular file, no link on
 * the way), the agent as owner and the cache's mode for it, and nothing
 * else may be there.  False with msg saying what differs.
 */
extern bool cache_verify(const Cache *c, const CacheEntry *e, char *msg, size_t msglen);
/* Remove an entry (its files and its record) and save the state; e is gone. */
extern bool cache_drop(Cache *c, CacheEntry *e, char *err, size_t errlen);

/* "a/b", malloc'd; NULL if out of memory (shared with smsdist-agent.c) */
extern char *path_join(const char *a, const char *b);

/* Administration: each saves the state. */
extern bool cache_resize(Cache *c, int64_t limit, int64_t now, char *err, size_t errlen);
extern bool cache_clear(Cache *c, char *err, size_t errlen);
extern bool cache_move(Cache *c, const char *newdir, char *err, size_t errlen);

#endif							/* SMSDIST_DOWNLOAD_CACHE_H */
