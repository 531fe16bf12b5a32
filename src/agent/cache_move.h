/*-------------------------------------------------------------------------
 *
 * cache_move.h
 *	  Moving the download cache to another directory (cache_move.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_CACHE_MOVE_H
#define SMSDIST_CACHE_MOVE_H

#include <stdbool.h>
#include <stddef.h>

#include "download_cache.h"

/* Move every package and the state to newdir (saved there); all or nothing. */
extern bool cache_move(Cache *c, const char *newdir, char *err, size_t errlen);

#endif							/* SMSDIST_CACHE_MOVE_H */
