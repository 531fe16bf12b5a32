/*-------------------------------------------------------------------------
 *
 * downloads.h
 *	  The agent's download cache: where it is, and the offers' packages
 *	  downloaded into it (downloads.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_DOWNLOADS_H
#define SMSDIST_DOWNLOADS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "download_cache.h"
#include "offers.h"

/* Where the cache is (malloc'd): where it was last moved, else --cache-dir, else <state dir>/cache. */
extern char *cache_location(const Config *c);

/* Open the agent's cache; false if it cannot be (said on standard error when say). */
extern bool agent_cache_open(const Config *c, Cache *cache, bool say);

/*
 * Download the package of every offer that is not waiting into the cache,
 * and say what happened (standard output, and a status message once per
 * package version and outcome).
 */
extern void download_offers(const Config *c, int64_t now, const Offers *o);

#endif							/* SMSDIST_DOWNLOADS_H */
