/*-------------------------------------------------------------------------
 *
 * package_manifest.h
 *	  A package's manifest and the rules for the paths in a package
 *	  (package_manifest.c).
 *
 * Terms:
 *
 *	source tree		a package's source directory (packages.source_directory):
 *					regular files, directories and relative symbolic links
 *					that stay inside it.  Devices, FIFOs, sockets, other
 *					links, setuid bits, setgid and sticky bits on files are
 *					refused, as are names that contain control characters
 *					or a backslash.
 *	manifest		one line per entry of the tree, sorted by path (path last,
 *					so it may contain spaces).  Version 2, what is written,
 *					begins with the line SMS_MANIFEST_HEADER and lists every
 *					file, directory and symbolic link with its modification
 *					time (seconds.nanoseconds):
 *						<sha256 hex> <size> <mode> <mtime> <path>\n
 *						<64 '-'> 0 <mode> <mtime> <path>/\n
 *						<64 '@'> <target bytes> 0777 <mtime> <path> -> <target>\n
 *					Version 1 (no header, written before 0.9, still read)
 *					has no mtime and no links, and lists only empty
 *					directories.  A reader that knows only version 1 refuses
 *					the header line.  The manifest is stored in the archive
 *					as its last entry, named SMS_MANIFEST_NAME, and in
 *					smsdist.package_builds.
 *	link rule		a symbolic link's target must be relative, and resolved
 *					lexically from the link's directory it must stay inside
 *					the package, name neither the root nor a directory
 *					holding the link, and pass through no directory that is
 *					itself a link (sms_link_target_problem).
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

#include <time.h>

#include "common/sha2.h"

#define SMS_MAX_PACKAGE_BYTES	((int64) sms_max_package_size_mb * 1024 * 1024)
#define SMS_MAX_MANIFEST_BYTES	((int64) sms_max_manifest_size_kb * 1024)

/* The manifest's name inside the archive; refused as a source file name. */
#define SMS_MANIFEST_NAME	".smsdist-manifest"
/* A delta file's description (package_delta.c); also a reserved name. */
#define SMS_DELTA_NAME		".smsdist-delta"

/* The first line of a version 2 manifest. */
#define SMS_MANIFEST_HEADER	"smsdist-manifest 2"
#define SMS_MANIFEST_VERSION	2

/* Between a link's path and its target on its manifest line. */
#define SMS_LINK_ARROW		" -> "

typedef struct SmsManifestEntry
{
	char	   *path;			/* relative, '/'-separated; dirs end in '/' */
	int64		size;			/* links: the target's length */
	int			mode;			/* permission bits only (07777) */
	bool		is_dir;
	bool		is_link;
	char	   *target;			/* links: the target, else NULL */
	bool		has_mtime;		/* version 2 */
	struct timespec mtime;
	uint8		sha256[PG_SHA256_DIGEST_LENGTH];	/* zero for dirs and links */
} SmsManifestEntry;

typedef struct SmsManifest
{
	int			version;		/* 1 or 2 (SMS_MANIFEST_VERSION) */
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

/*
 * Bytes of the version 2 manifest line of a path with a file of size bytes
 * (or a link to target, if not NULL) modified at mtime; and of its header.
 */
extern int64 sms_manifest_line_bytes(const char *path, int64 size,
									 const struct timespec *mtime, const char *target);
extern int64 sms_manifest_header_bytes(void);

/*
 * Why a mode cannot be distributed, or NULL: setuid on anything, setgid or
 * sticky on what is not a directory, anything but 0777 on a link.
 */
extern const char *sms_mode_problem(int mode, bool is_dir, bool is_link);

/*
 * Why the link at linkpath (a manifest path) may not point at target, or
 * NULL (the link rule, in the header comment).  is_link says whether a path
 * of the package (a manifest path, without a trailing '/') is a link.
 */
typedef bool (*SmsIsLinkFn) (void *arg, const char *path);
extern const char *sms_link_target_problem(const char *linkpath, const char *target,
										   SmsIsLinkFn is_link, void *arg);

extern char *sms_manifest_to_text(const SmsManifest *m);
/* Parse manifest text; ereport ERROR if malformed or unsafe (what=context) */
extern SmsManifest *sms_manifest_parse(const char *text, size_t len, const char *what);

/* The entry of a (sorted) manifest for path, or NULL. */
extern const SmsManifestEntry *sms_manifest_find(const SmsManifest *m, const char *path);

#endif							/* SMSDIST_PACKAGE_MANIFEST_H */
