/*-------------------------------------------------------------------------
 *
 * file_tree.h
 *	  Files and directories below a root, never through a link
 *	  (file_tree.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_FILE_TREE_H
#define SMSDIST_FILE_TREE_H

#include <stdbool.h>
#include <sys/types.h>

#define MAX_PATH_LEN	4096

/* "a/b", malloc'd; NULL if out of memory */
extern char *path_join(const char *a, const char *b);

/* rm -r that never follows a link; true if path is gone */
extern bool remove_tree(const char *path);

/* mkdir with mode, whatever the umask; true if it exists */
extern bool make_dir(const char *path, mode_t mode);
/* mkdir -p of rel under root (each component a real directory, never a link) */
extern bool make_dirs(const char *root, const char *rel, mode_t mode);

/*
 * Open the regular file rel under root for reading, no component a link
 * (errno ELOOP or ENOTDIR) and the file itself no FIFO or device (EINVAL);
 * -1 on failure.
 */
extern int	open_beneath(const char *root, const char *rel);

/* Open the directory rel under root, no component a link; -1 on failure. */
extern int	open_dir_beneath(const char *root, const char *rel);

/*
 * Copy a tree of directories (made with dir_mode and the setgid and sticky
 * bits they had), regular files (the mode they had, never writable by
 * group or others; each fsync'd) and symbolic links (their targets, never
 * followed), all with their modification times.
 */
extern bool copy_tree(const char *from, const char *to, mode_t dir_mode);

#endif							/* SMSDIST_FILE_TREE_H */
