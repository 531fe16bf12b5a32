/*-------------------------------------------------------------------------
 *
 * package_manifest.h
 *	  A package's manifest and the rules for the paths in a package
 *	  (package_manifest.c).
 *
 * Terms:
 *
 *	source tree		a package's source directory (packages.source_directory):
 *					regular files and directories only.  Symbolic links,
 *					devices, FIFOs and sockets are refused, as are names that
 *					contain control characters or a backslash.
 *	manifest		one line per regular file of the tree, sorted by path:
 *						<sha256 hex> <size> <mode, octal> <relative path>\n
 *					(path last, so it may contain spaces).  Directories are
 *					implied by the paths; empty directories are listed as
 *						<64 '-'> 0 <mode> <relative path>/\n
 *					It is stored in the archive as its last entry, named
 *					SMS_MANIFEST_NAME, and in smsdist.package_builds.
 *	reserved names	SMS_MANIFEST_NAME and SMS_DELTA_NAME (a delta file's
 *					description, package_delta.h): no package may hold a
 *					file or directory of either name at its top level.
 *	package limits	the settings smsdist.max_package_files, max_package_size,
 *					max_path_depth, max_path_length and max_manifest_size,
 *					checked where a package is built and where it is
 *					extracted; SMS_MAX_PACKAGE_BYTES and SMS_MAX_MANIFEST_BYTES
 *					are the two sizes in bytes.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PACKAGE_MANIFEST_H
#define SMSDIST_PACKAGE_MANIFEST_H

#include "smsdist.h"

#include "common/sha2.h"

#define SMS_MAX_PACKAGE_BYTES	((int64) sms_max_package_size_mb * 1024 * 1024)
#define SMS_MAX_MANIFEST_BYTES	((int64) sms_max_manifest_size_kb * 1024)

/* The manifest's name inside the archive; refused as a source file name. */
#define SMS_MANIFEST_NAME	".smsdist-manifest"
/* A delta file's description (package_delta.c); also a reserved name. */
#define SMS_DELTA_NAME		".smsdist-delta"

typedef struct SmsManifestEntry
{
	char	   *path;			/* relative, '/'-separated; dirs end in '/' */
	int64		size;
	int			mode;			/* permission bits only (07777) */
	bool		is_dir;
	uint8		sha256[PG_SHA256_DIGEST_LENGTH];	/* zero for directories */
} SmsManifestEntry;

typedef struct SmsManifest
{
	int			nentries;
	SmsManifestEntry *entries;	/* sorted by path (strcmp) */
	int64		total_bytes;	/* sum of file sizes */
} SmsManifest;

/* Is a relative path safe to create under a directory? */
extern bool sms_safe_relative_path(const char *path);

/*
 * Why a relative path's name (any of its bytes) cannot be part of a
 * package, or NULL: not valid UTF-8 or in the database encoding, a
 * control character (C0, DEL, C1, U+2028, U+2029), a backslash.
 */
extern const char *sms_path_name_problem(const char *path);

/* The number of components of a relative path ("a/b/" and "a/b": 2). */
extern int	sms_path_depth(const char *path);

/* A path as it may appear in a message: controls and bad bytes escaped. */
extern char *sms_path_printable(const char *path);

/* Bytes of the manifest line of a path with a file of size bytes. */
extern int64 sms_manifest_line_bytes(const char *path, int64 size);

extern char *sms_manifest_to_text(const SmsManifest *m);
/* Parse manifest text; ereport ERROR if malformed or unsafe (what=context) */
extern SmsManifest *sms_manifest_parse(const char *text, size_t len, const char *what);

/* The entry of a (sorted) manifest for path, or NULL. */
extern const SmsManifestEntry *sms_manifest_find(const SmsManifest *m, const char *path);

#endif							/* SMSDIST_PACKAGE_MANIFEST_H */
