/*-------------------------------------------------------------------------
 *
 * cache_fetch.h
 *	  Downloading a package version into the cache (cache_fetch.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_CACHE_FETCH_H
#define SMSDIST_CACHE_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "download_cache.h"

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
 * Make package_id version (hash sha256) present: from the first location
 * that has it, every file checked against the manifest published beside it,
 * whose SHA-256 must be sha256.  Evicts the oldest unlocked packages if it
 * does not fit.  msg says what happened, for a status message.
 */
extern CacheResult cache_fetch(Cache *c, const char *package_id, int64_t version,
							   const char *sha256, char *const *locations, size_t nlocations,
							   int64_t now, char *msg, size_t msglen);

#endif							/* SMSDIST_CACHE_FETCH_H */
