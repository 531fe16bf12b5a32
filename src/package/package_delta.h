/*-------------------------------------------------------------------------
 *
 * package_delta.h
 *	  Delta package files: making one, and reading its description
 *	  (package_delta.c; applying one to its base is package_extract.h's
 *	  sms_archive_extract_delta).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PACKAGE_DELTA_H
#define SMSDIST_PACKAGE_DELTA_H

#include "package_manifest.h"
#include "sha256.h"

#include "nodes/pg_list.h"

typedef struct SmsDeltaResult
{
	int			files_sent;		/* added or changed */
	int			files_kept;		/* copied from the base at the site */
	int			files_deleted;	/* paths of the base the new version lacks */
	int64		bytes;			/* of the delta file */
	char		sha256[SMS_SHA256_HEX_LEN + 1];
} SmsDeltaResult;

/*
 * Write the delta from base_version (whose manifest is base_manifest) to the
 * version whose package file is full_path and manifest new_manifest, as
 * out_path (temporary name, fsync, rename).  level: gzip level.
 */
extern void sms_delta_remove_stale(const char *dir);
extern void sms_delta_build(const char *full_path, const char *base_manifest,
							const char *new_manifest, int base_version,
							const char *out_path, int level, SmsDeltaResult *res);

/* Parse a delta description: its base version; *deletions: List of char *. */
extern int	sms_delta_parse(const char *text, const char *what, List **deletions);

#endif							/* SMSDIST_PACKAGE_DELTA_H */
