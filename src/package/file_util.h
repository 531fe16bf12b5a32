/*-------------------------------------------------------------------------
 *
 * file_util.h
 *	  File helpers of the package modules (file_util.c): writing a whole
 *	  buffer, descriptors opened with openat() and accounted to fd.c,
 *	  removing a directory tree without following a symbolic link, and
 *	  recognising a full disk.
 *
 * Terms:
 *	external descriptor	one opened with openat() (PostgreSQL has no wrapper
 *					for it) and reported to fd.c (ReserveExternalFD), so that
 *					fd.c closes cached files when we need room instead of our
 *					open failing with EMFILE.
 *	descriptor set	the external descriptors one operation holds, so that its
 *					error path can close every one (sms_fdset_close_all).
 *	full disk	an error whose cause is a file system without room: ENOSPC
 *					or EDQUOT (SQLSTATE 53100, disk_full), or a message that
 *					says so.  Work that meets one waits and is tried again
 *					rather than failed (smsdist.disk_full_give_up_after).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_FILE_UTIL_H
#define SMSDIST_FILE_UTIL_H

#include "postgres.h"

#include <dirent.h>
#include <sys/types.h>

#include "nodes/pg_list.h"

/* Write all of buf (short writes retried); false with errno set on failure. */
extern bool sms_write_all(int fd, const char *buf, size_t len);

/*
 * Up to this many new files are made durable by an fsync each, more by one
 * syncfs() of their file system.  A syncfs() also writes out whatever else
 * is dirty there (other clusters, a package being extracted): 126 ms was
 * seen for a 1 KB package on a busy machine, where its fsyncs took a few.
 */
#define SMS_FEW_FILES 32

/* openat() as an external descriptor (O_CLOEXEC added); -1 with errno. */
extern int	sms_openat_external(int dirfd, const char *name, int flags, mode_t mode);
/* close() of an external descriptor; errno as close() left it. */
extern int	sms_close_external(int fd);

typedef struct SmsFdSet
{
	int		   *fds;
	int			nfds;
	int			maxfds;
	DIR		   *dir;			/* a directory being listed, or NULL */
} SmsFdSet;

/* sms_openat_external, the descriptor recorded in s. */
extern int	sms_fdset_openat(SmsFdSet *s, int dirfd, const char *name, int flags, mode_t mode);
/* Close a descriptor of s. */
extern int	sms_fdset_close(SmsFdSet *s, int fd);
/* Close every descriptor of s; on every exit path, so it does not fail. */
extern void sms_fdset_close_all(SmsFdSet *s);

/*
 * The names in directory dirfd, except "." and "..", read to the end before
 * anything is changed in it.  false, with errno set, if it cannot be read.
 */
extern bool sms_list_names(SmsFdSet *s, int dirfd, List **names);

/*
 * Remove name in directory dirfd: a file, a symbolic link (never what it
 * points to) or a whole directory tree.  path is its full name, for
 * messages.  Absent is not a problem.  Problems are reported at elevel;
 * below ERROR the rest is still removed and the result is false.
 */
extern bool sms_remove_at(SmsFdSet *s, int dirfd, const char *name, const char *path,
						  int elevel);

/* Remove a directory tree we created; refuses to follow symbolic links. */
extern void sms_remove_tree(const char *path);
/* The same, its problems logged as WARNINGs: false if something is left. */
extern bool sms_remove_tree_or_warn(const char *path);
/* Is this error a full disk (see above)? */
extern bool sms_error_is_disk_full(ErrorData *edata);
/* The bytes an unprivileged writer may still use on path's file system; -1 if unknown. */
extern int64 sms_free_bytes(const char *path);
/*
 * The reason of a full disk, said the same way everywhere: "the <what>
 * "<path>" is full (F bytes free, N bytes needed): <error>" (needed < 0:
 * unknown, left out).
 */
extern char *sms_disk_full_reason(const char *what, const char *path, int64 needed,
								  const char *error);

#endif							/* SMSDIST_FILE_UTIL_H */
