/*-------------------------------------------------------------------------
 *
 * package_extract.h
 *	  Reading a package file: safe extraction of a full package, of a delta
 *	  over its base tree, or of a package file still being received
 *	  (package_extract.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_PACKAGE_EXTRACT_H
#define SMSDIST_PACKAGE_EXTRACT_H

#include "package_manifest.h"
#include "sha256.h"

/*
 * SQLSTATE of "the base version a delta needs is not here, or not intact":
 * the site asks its parent for the full package instead of failing.
 */
#define SMS_ERRCODE_DELTA_BASE	MAKE_SQLSTATE('S','M','D','0','1')

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

#endif							/* SMSDIST_PACKAGE_EXTRACT_H */
