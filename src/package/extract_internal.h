/*-------------------------------------------------------------------------
 *
 * extract_internal.h
 *	  What the files of the extraction module share, and nothing outside it
 *	  uses: package_extract.c (reading the archive), extract_tree.c
 *	  (creating the tree under dest_dir), extract_verify.c (checking it
 *	  against the manifest) and extract_delta.c (completing a delta from
 *	  its base tree).  The terms are package_extract.c's.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_EXTRACT_INTERNAL_H
#define SMSDIST_EXTRACT_INTERNAL_H

#include "package_extract.h"
#include "inflate.h"

#include <time.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/cryptohash.h"
#include "lib/stringinfo.h"
#include "utils/hsearch.h"

/* libarchive's read size, and ours: big enough that syscalls do not show */
#define EXTRACT_BLOCK_SIZE	(256 * 1024)

typedef struct ExtractItem
{
	char	   *path;			/* hash key: the entry path */
	bool		is_dir;
	bool		is_link;
	char	   *target;			/* links: the target */
	bool		from_entry;		/* the archive has an entry for it */
	int			mode;			/* the entry's mode & 07777 */
	int64		size;			/* bytes written (files) */
	uint8		sha256[PG_SHA256_DIGEST_LENGTH];	/* of those bytes (files) */
} ExtractItem;

/*
 * Everything one extraction holds.  Descriptors live here, not in local
 * variables, so that the error path closes every one of them.
 */
typedef struct Extract
{
	const char *archive_path;
	const char *dest_dir;
	int			archive_fd;		/* OpenTransientFile, or -1 */
	int			dest_fd;		/* OpenTransientFile, or -1 */
	struct archive *ar;
	int			dir_fd;			/* raw: directory dir_rel, or -1 */
	char	   *dir_rel;		/* entry path of dir_fd; NULL if none */
	int			file_fd;		/* raw: the file being written, or -1 */
	pg_cryptohash_ctx *sha;
	HTAB	   *items;
	char	   *buf;
	char	   *manifest_text;	/* the manifest entry's data, NUL-terminated */
	size_t		manifest_len;
	char	   *delta_text;		/* the delta description's, or NULL */
	size_t		delta_len;
	const char *base_dir;		/* a delta's base tree, or NULL */
	int			base_version;
	int			base_fd;		/* OpenTransientFile of base_dir, or -1 */
	int			base_file_fd;	/* raw: the base file being copied, or -1 */
	SmsManifest *manifest;		/* parsed, in the caller's memory context */
	int64		total_bytes;	/* declared by the file entries so far */
	SmsInflater *inflater;		/* inflating in another process, or NULL */
	char	   *inflate_error;	/* why the inflated stream stopped */
	/* a file still being written (sms_archive_extract_growing), or NULL */
	SmsFollowFn follow;
	void	   *follow_arg;
	char	   *follow_buf;		/* the compressed bytes read */
	int64		follow_offset;	/* how many */
	pg_cryptohash_ctx *follow_sha;	/* their SHA-256 */
	char	   *follow_error;	/* why reading stopped */
} Extract;

/* extract_tree.c: names, errors, and what is created under dest_dir */
extern char *extract_printable(const char *s);
extern const char *extract_unsafe_path_reason(const char *p, bool is_dir);
extern bool extract_reserved_top_name(const char *path);
extern void extract_refuse_entry(Extract *x, const char *path, const char *reason) pg_attribute_noreturn();
extern void extract_archive_failed(Extract *x, const char *what) pg_attribute_noreturn();
extern void extract_mismatch(Extract *x, const char *fmt,...) pg_attribute_noreturn() pg_attribute_printf(2, 3);
extern void extract_hash_failed(Extract *x) pg_attribute_noreturn();
extern HTAB *extract_items_create(MemoryContext cxt);
extern ExtractItem *extract_find_item(Extract *x, const char *path);
extern int	extract_open_dir(Extract *x, const char *dir, const char *entry);
extern ExtractItem *extract_create_file(Extract *x, const char *path, const char *dir,
										const char *name, int mode);
extern void extract_write_block(Extract *x, ExtractItem *item, const char *path,
								const char *data, size_t n);
extern void extract_close_file(Extract *x, ExtractItem *item, const char *path,
							   const struct timespec *mtime);
extern void extract_directory(Extract *x, struct archive_entry *entry, const char *path,
							  const char *dir, const char *name);
extern void extract_file(Extract *x, struct archive_entry *entry, const char *path,
						 const char *dir, const char *name);
extern void extract_link(Extract *x, const char *target, const char *path,
						 const char *dir, const char *name);

/* extract_verify.c */
extern char *extract_hex(const uint8 *digest);
extern ExtractItem **extract_verify(Extract *x, int *nitems);
extern void extract_finish_directories(Extract *x, ExtractItem **items, int n);

/* extract_delta.c */
extern void extract_apply_delta(Extract *x);

#endif							/* SMSDIST_EXTRACT_INTERNAL_H */
