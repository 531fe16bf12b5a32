/*-------------------------------------------------------------------------
 *
 * publish.h
 *	  Publishing a package tree on a distribution point's share, and
 *	  unpublishing it (publish.c).
 *
 * Terms:
 *	share			a distribution point's <root>/SMS_PKGx directory.
 *	published tree	<share>/<package id> (sms_published_tree_path): what
 *					clients see.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PUBLISH_H
#define SMSDIST_PUBLISH_H

#include "smsdist.h"

/*
 * Publish the tree src_dir as <share_dir>/<name>: copy it to a temporary
 * sibling, fsync every file and directory, then swap it in with one
 * rename (renameat2 RENAME_EXCHANGE when a version is already there) and
 * remove the old version.  A reader sees the old or the new tree, never a
 * mixture.  On failure (a full disk, say) the temporary copy is removed,
 * the old version stays published, and ERROR is raised.  Creates
 * share_dir if needed.  name must be an SMS ID.  With may_move, src_dir is
 * moved into the share instead of copied when both are on one file system
 * (then src_dir is gone and true is returned).
 */
extern bool sms_publish_tree(const char *src_dir, const char *share_dir, const char *name,
							 bool may_move);

/* Remove <share_dir>/<name> (rename away, then delete); no error if absent. */
extern void sms_unpublish(const char *share_dir, const char *name);

/* The published tree of a package on a share. */
extern char *sms_published_tree_path(const char *share_dir, const char *package_id);

#endif							/* SMSDIST_PUBLISH_H */
