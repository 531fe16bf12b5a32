/*-------------------------------------------------------------------------
 *
 * cache_command.h
 *	  "smsdist-agent cache ...": the download cache's administration
 *	  (cache_command.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_CACHE_COMMAND_H
#define SMSDIST_CACHE_COMMAND_H

#include "config.h"

/*
 * The words after "cache" (argc of them in argv): show (the default),
 * size MEGABYTES, move DIRECTORY or clear.  Returns the exit status.
 */
extern int	cache_command(const Config *c, int argc, char **argv);

#endif							/* SMSDIST_CACHE_COMMAND_H */
