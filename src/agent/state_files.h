/*-------------------------------------------------------------------------
 *
 * state_files.h
 *	  The agent's state directory and its files of lines (state_files.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_STATE_FILES_H
#define SMSDIST_STATE_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Create the state directory if missing; false (said) if it cannot be. */
extern bool make_state_dir(const Config *c);

/* <state dir>/name, malloc'd and NUL-terminated (*len bytes if len); NULL if it cannot be read */
extern char *state_read(const Config *c, const char *name, size_t *len);
/* <state dir>/name made len bytes of text, whole; false (said) if it cannot be */
extern bool state_write(const Config *c, const char *name, const char *text, size_t len);

/*
 * The next line of text (after *pos; *pos NULL: from the start) that
 * starts with prefix: returns what follows the prefix, and moves *pos past
 * that line; NULL when there is none (or text is NULL).
 */
extern const char *next_line_with(const char *text, const char **pos, const char *prefix);
/* Does text hold this whole line (with its newline)? */
extern bool has_line(const char *text, const char *line);

#endif							/* SMSDIST_STATE_FILES_H */
