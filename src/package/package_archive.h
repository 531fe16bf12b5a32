/*-------------------------------------------------------------------------
 *
 * package_archive.h
 *	  The compressed package file, its manifest, safe extraction, and the
 *	  atomic publishing of a package tree on a distribution point.
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
 *	package file	<package id>.<source version>.tar.gz: a POSIX tar stream of
 *					the source tree plus the manifest, compressed as one or
 *					more concatenated gzip members (so `tar -tzf` lists it and
 *					independent members can be compressed in parallel).
 *	share			a distribution point's <root>/SMS_PKGx directory; a
 *					package is published there as <share>/<package id>/.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PACKAGE_ARCHIVE_H
#define PACKAGE_ARCHIVE_H

#include "smsdist.h"

#include "common/sha2.h"
#include "nodes/pg_list.h"

#define SMS_MAX_PACKAGE_BYTES	((int64) sms_max_package_size_mb * 1024 * 1024)
#define SMS_MAX_MANIFEST_BYTES	((int64) sms_max_manifest_size_kb * 1024)

/* The number of components of a relative path ("a/b/" and "a/b": 2). */
extern int	sms_path_depth(const char *path);

/*
 * Why a relative path's name (any of its bytes) cannot be part of a
 * package, or NULL: not valid UTF-8 or in the database encoding, a
 * control character (C0, DEL, C1, U+2028, U+2029), a backslash.
 */
extern const char *sms_path_name_problem(const char *path);

/* The manifest's name inside the archive; refused as a source file name. */
#define SMS_MANIFEST_NAME	".smsdist-manifest"
/* A delta file's description (package_delta.c); also a reserved name. */
#define SMS_DELTA_NAME		".smsdist-delta"

/*
 * SQLSTATE of "the base version a delta needs is not here, or not intact":
 * the site asks its parent for the full package instead of failing.
 */
#define SMS_ERRCODE_DELTA_BASE	MAKE_SQLSTATE('S','M','D','0','1')

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

/* package_archive.c: writing the tar stream and the manifest */

/*
 * Write an uncompressed tar of source_dir to tar_path (created with
 * O_EXCL; the caller renames it), hashing every file as it is read.  The
 * manifest is the last entry.  durable: fsync the tar before returning (not
 * needed for an intermediate file that is compressed and then removed).  Refuses (ereport ERROR, with the offending
 * relative path in the message): a missing or unreadable source, symbolic
 * links, special files, unsafe names, a file whose size or mtime changed
 * while it was read ("changed while the package was being compressed",
 * ERRCODE_OBJECT_IN_USE).
 */
/*
 * If set, sms_archive_write_tar calls it with sms_archive_tick_arg after
 * every block of a file it reads (a package builder records its progress:
 * the call may run a transaction; an error it throws fails the build).
 */
extern void (*sms_archive_tick) (void *arg);
extern void *sms_archive_tick_arg;

extern SmsManifest *sms_archive_write_tar(const char *source_dir, const char *tar_path,
										  bool durable);

extern char *sms_manifest_to_text(const SmsManifest *m);
/* Parse manifest text; ereport ERROR if malformed or unsafe (what=context) */
extern SmsManifest *sms_manifest_parse(const char *text, size_t len, const char *what);

/* Is a relative path safe to create under a directory? */
extern bool sms_safe_relative_path(const char *path);

/* package_extract.c: reading a package file */

/*
 * Extract the package file archive_path (gzip'd tar) into dest_dir, which
 * must exist and be empty.  Only regular files and directories are created;
 * absolute paths, "..", links of any kind, devices, FIFOs and sockets are
 * refused.  Every file is checked against the archive's manifest (size,
 * mode, SHA-256) and every manifest entry must be present.  Returns the
 * manifest.  On any violation: ereport ERROR (the caller removes dest_dir).
 * A full package may not hold a delta's description (refused like a bad
 * entry).  The limits (smsdist.max_package_files, max_package_size,
 * max_path_depth, max_path_length, max_manifest_size) are checked before
 * each entry is written; no entry is written beyond its declared size.
 * With file_sha256 (SMS_SHA256_HEX_LEN + 1 bytes, or NULL), also gives the
 * SHA-256 of the whole package file as it was read (a large file is read
 * once, by the inflater, for both).
 */
extern SmsManifest *sms_archive_extract(const char *archive_path, const char *dest_dir,
										char *file_sha256);

/*
 * The same for a package file that may be a delta (package_delta.c): the
 * files it does not carry are copied from base_dir, the published tree of
 * base_version, each checked against the new manifest while it is copied.
 * A full package file is extracted as by sms_archive_extract (base_dir is
 * not read).  A base that is missing, is of another version or does not
 * match raises SMS_ERRCODE_DELTA_BASE.  *was_delta says which it was.
 */
extern SmsManifest *sms_archive_extract_delta(const char *archive_path, const char *dest_dir,
											  const char *base_dir, int base_version,
											  bool *was_delta, char *file_sha256);

/*
 * The same for a package file that is still being written (received): it
 * is read as it grows.  When a read finds no more bytes, follow(arg, fd,
 * offset, &why) says whether more may come (SMS_FOLLOW_MORE: read again;
 * it waits a little first), the file is whole (SMS_FOLLOW_END), or the
 * extraction must stop (SMS_FOLLOW_ABANDON, *why the reason: an ERROR).
 * follow runs inside libarchive's read callback and must not raise an
 * ERROR.  file_sha256 is that of every byte read, up to the end.  A delta
 * is refused like any bad entry: a file that grows is a full package.
 */
typedef enum SmsFollowResult
{
	SMS_FOLLOW_MORE,
	SMS_FOLLOW_END,
	SMS_FOLLOW_ABANDON
} SmsFollowResult;
typedef SmsFollowResult (*SmsFollowFn) (void *arg, int fd, int64 offset, char **why);

extern SmsManifest *sms_archive_extract_growing(const char *archive_path, const char *dest_dir,
												SmsFollowFn follow, void *follow_arg,
												char *file_sha256);

/* package_delta.c */
typedef struct SmsDeltaResult
{
	int			files_sent;		/* added or changed */
	int			files_kept;		/* copied from the base at the site */
	int			files_deleted;	/* paths of the base the new version lacks */
	int64		bytes;			/* of the delta file */
	char		sha256[PG_SHA256_DIGEST_LENGTH * 2 + 1];
} SmsDeltaResult;

/*
 * Write the delta from base_version (whose manifest is base_manifest) to the
 * version whose package file is full_path and manifest new_manifest, as
 * out_path (temporary name, fsync, rename).  level: gzip level.
 */
extern void sms_delta_build(const char *full_path, const char *base_manifest,
							const char *new_manifest, int base_version,
							const char *out_path, int level, SmsDeltaResult *res);
/* Parse a delta description: its base version; *deletions: List of char *. */
extern int	sms_delta_parse(const char *text, const char *what, List **deletions);

/* publish.c: distribution point shares */

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

/* sha256.c: SHA-256 as lower-case hex (SMS_SHA256_HEX_LEN chars + NUL) */
#define SMS_SHA256_HEX_LEN	(PG_SHA256_DIGEST_LENGTH * 2)
extern void sms_sha256_digest_hex(const uint8 *digest, char *hex);
extern void sms_sha256_buffer(const void *data, size_t len, char *hex);
extern bool sms_sha256_fd(int fd, char *hex, int64 *size);

/* Write all of buf (short writes retried); false with errno set on failure. */
extern bool sms_write_all(int fd, const char *buf, size_t len);

/* Remove a directory tree we created; refuses to follow symbolic links. */
extern void sms_remove_tree(const char *path);
/* The same, its problems logged as WARNINGs: false if something is left. */
extern bool sms_remove_tree_or_warn(const char *path);

#endif							/* PACKAGE_ARCHIVE_H */
