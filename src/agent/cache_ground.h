/*-------------------------------------------------------------------------
 *
 * cache_ground.h
 *	  Who may change the download cache: its owner and modes
 *	  (cache_ground.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_CACHE_GROUND_H
#define SMSDIST_CACHE_GROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* the mode of the cache directory, and the permission bits of every directory in it */
#define CACHED_DIR_MODE	0755

/* the mode of a cached file whose manifest mode is manifest_mode */
extern mode_t cached_file_mode(int manifest_mode);

/* the mode of a cached directory whose manifest mode is manifest_mode */
extern mode_t cached_dir_mode(int manifest_mode);

/* Is st a directory of the agent's with mode want? */
extern bool cached_dir_is_own(const struct stat *st, mode_t want);

/*
 * Make the existing directory dir the agent's own ground, or refuse it
 * (false with err): see cache_ground.c.
 */
extern bool secure_cache_dir(const char *dir, char *err, size_t errlen);

#endif							/* SMSDIST_CACHE_GROUND_H */
