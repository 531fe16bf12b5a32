/*-------------------------------------------------------------------------
 *
 * source_walk.h
 *	  The walk of a package source: the first pass of a package build, which
 *	  lists the tree and refuses what cannot be packaged (source_walk.c).
 *
 * Terms:
 *	walk		one directory at a time, breadth first, lstat-ing every name,
 *				refusing anything that is not a regular file, a directory or
 *				a symbolic link (never followed; its target read and held to
 *				the link rule of package_manifest.h once the walk is done),
 *				every mode that could not be distributed (sms_mode_problem)
 *				and every name that could not be distributed.  It records
 *				each entry's device and inode, so that the stream (the
 *				second pass, package_archive.c) can check that it reads what
 *				the walk saw.
 *	problem		one path the walk cannot package (unreadable, a refused type
 *				or name, beyond a limit on paths).  The walk goes on, so
 *				that the error names them all.
 *	listed		an entry the manifest lists: every one (version 2 of the
 *				manifest lists every file, directory and link).
 *	changed		a file or directory that was replaced or removed since the
 *				walk saw it, or a file that changed while it was read: the
 *				build fails with "changed while the package was being
 *				compressed" (ERRCODE_OBJECT_IN_USE), the phrase the package
 *				builder looks for to start over.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_SOURCE_WALK_H
#define SMSDIST_SOURCE_WALK_H

#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>

#include "lib/stringinfo.h"

/* One name found by the walk. */
typedef struct SmsWalkEntry
{
	char	   *path;			/* relative; a directory's ends in '/' */
	mode_t		mode;			/* st_mode from the walk's lstat */
	struct timespec mtime;
	char	   *target;			/* links: the target, else NULL */
	off_t		size;			/* regular files: st_size from the walk */
	dev_t		dev;
	ino_t		ino;
	int			nchildren;		/* directories: names directly inside */
} SmsWalkEntry;

/*
 * One walk.  Its descriptors are released by sms_walk_release, on the
 * error path too; its memory is the caller's current context.
 */
typedef struct SmsSourceWalk
{
	const char *source_dir;
	int			root_fd;		/* source_dir, or -1 */
	int			dir_fd;			/* the directory being opened, or -1 */
	DIR		   *dir;			/* the directory being listed, or NULL */

	SmsWalkEntry *entries;		/* sorted by path once the walk is done */
	int			nentries;
	int			maxentries;
	int			nlisted;		/* entries the manifest lists */
	int64		total_bytes;	/* of the regular files */

	/*
	 * The problems found.  The first one's whole report is kept: alone, it
	 * is raised as it is.
	 */
	int			nproblems;
	StringInfoData problems;	/* "path" (reason); ... for the first ones */
	int			first_errcode;
	char	   *first_message;
	char	   *first_detail;
	char	   *first_hint;
} SmsSourceWalk;

/* Set w up for source_dir, holding nothing yet. */
extern void sms_walk_init(SmsSourceWalk *w, const char *source_dir);

/*
 * Walk the tree: open the source directory (it must be an allowed package
 * source), list every entry, raise one ERROR naming every problem, sort the
 * entries by path and check the manifest they make against its limit.
 */
extern void sms_walk_source(SmsSourceWalk *w);

/* Does the manifest list this entry? */
extern bool sms_walk_listed(const SmsWalkEntry *we);

/* Close what the walk holds; must not fail. */
extern void sms_walk_release(SmsSourceWalk *w);

/* ERROR: relpath of the package source changed under the build. */
extern void sms_source_changed(const char *source_dir, const char *relpath,
							   const char *why) pg_attribute_noreturn();

#endif							/* SMSDIST_SOURCE_WALK_H */
