/*-------------------------------------------------------------------------
 *
 * cache_verify.h
 *	  Checking a cached package again, before its program runs
 *	  (cache_verify.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_CACHE_VERIFY_H
#define SMSDIST_CACHE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "download_cache.h"

/*
 * Check a cached package again, right before its program runs: the
 * manifest kept in the cache must still have the package hash, every file
 * it lists must have its size, SHA-256, type (a regular file, no link on
 * the way), the agent as owner and the cache's mode for it, and nothing
 * else may be there.  False with msg saying what differs.
 */
extern bool cache_verify(const Cache *c, const CacheEntry *e, char *msg, size_t msglen);

#endif							/* SMSDIST_CACHE_VERIFY_H */
