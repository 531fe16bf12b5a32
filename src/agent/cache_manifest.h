/*-------------------------------------------------------------------------
 *
 * cache_manifest.h
 *	  A package's manifest and SHA-256 checks against it
 *	  (cache_manifest.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_CACHE_MANIFEST_H
#define SMSDIST_CACHE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SHA256_HEX_BUFLEN	65	/* 64 lower-case hex digits and a NUL */

/*
 * One line of a manifest: a file, a directory (its path ends in '/') or,
 * in version 2, a symbolic link (target not NULL; sha256 "", size 0).
 */
typedef struct ManifestLine
{
	char		sha256[SHA256_HEX_BUFLEN];	/* "" for a directory */
	int64_t		size;
	int			mode;			/* permission bits; version 2: a directory's
								 * setgid and sticky bits too */
	bool		has_mtime;		/* a version 2 manifest's line */
	struct timespec mtime;
	char	   *path;			/* relative, no empty, "." or ".." component */
	char	   *target;			/* a link's target, by the link rule; or NULL */
} ManifestLine;

/* The first line of a version 2 manifest (docs/formats.md). */
#define MANIFEST_HEADER_V2	"smsdist-manifest 2"

/*
 * Parse "<sha256|64 '-'> <size> <mode> <path>" lines (version 1), or after
 * MANIFEST_HEADER_V2 "<sha256|64 '-'> <size> <mode> <mtime> <path>" lines
 * (text is cut up); *total is the sum of the files' sizes.  A symbolic
 * link (64 '@', "<path> -> <target>") must obey the server's link rule
 * (docs/packages.md), and nothing may lie below a link; a version 2 mode
 * is never setuid, and setgid or sticky only on a directory.  False with msg for
 * a bad line or link.
 */
extern bool manifest_parse(char *text, ManifestLine **out, size_t *n, int64_t *total,
						   char *msg, size_t msglen);
extern void manifest_free(ManifestLine *l, size_t n);

/* "<PACKAGE>.<VERSION>.manifest": on the share beside the package, and in the cache */
extern void manifest_name(const char *package_id, int64_t version, char *out, size_t outlen);

/* SHA-256 of buf as hex; false if it cannot be computed */
extern bool sha256_of_buffer(const char *buf, size_t len, char *hex);

typedef enum HashResult
{
	HASH_OK,
	HASH_NO_DIGEST,				/* the SHA-256 could not be set up */
	HASH_READ_FAILED,			/* errno says why */
	HASH_WRITE_FAILED			/* errno says why */
} HashResult;

/*
 * Read in to its end, hashing what it reads and writing it to copy_to as
 * well unless that is -1: the SHA-256 as hex and the bytes read (*total).
 */
extern HashResult sha256_of_file(int in, int copy_to, char *hex, int64_t *total);

#endif							/* SMSDIST_CACHE_MANIFEST_H */
