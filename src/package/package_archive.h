/*-------------------------------------------------------------------------
 *
 * package_archive.h
 *	  Writing a package's tar stream and its manifest (package_archive.c).
 *
 * Terms (the manifest and the rules for paths: package_manifest.h):
 *
 *	package file	<package id>.<source version>.tar.gz: a POSIX tar stream of
 *					the source tree plus the manifest, compressed as one or
 *					more concatenated gzip members (so `tar -tzf` lists it and
 *					independent members can be compressed in parallel, by
 *					compress.c).  This module writes the tar stream.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef PACKAGE_ARCHIVE_H
#define PACKAGE_ARCHIVE_H

#include "package_manifest.h"

/*
 * If set, sms_archive_write_tar calls it with sms_archive_tick_arg after
 * every block of a file it reads (a package builder records its progress:
 * the call may run a transaction; an error it throws fails the build).
 */
extern void (*sms_archive_tick) (void *arg);
extern void *sms_archive_tick_arg;

/*
 * Write an uncompressed tar of source_dir to tar_path (created with
 * O_EXCL; the caller renames it), hashing every file as it is read.  The
 * manifest is the last entry.  durable: fsync the tar before returning (not
 * needed for an intermediate file that is compressed and then removed).
 * Refuses (ereport ERROR, with the offending relative path in the message):
 * a missing or unreadable source, symbolic links that break the link rule,
 * special files, setuid bits, unsafe names, a file whose size or mtime changed while it was read ("changed
 * while the package was being compressed", ERRCODE_OBJECT_IN_USE).
 */
extern SmsManifest *sms_archive_write_tar(const char *source_dir, const char *tar_path,
										  bool durable);

#endif							/* PACKAGE_ARCHIVE_H */
