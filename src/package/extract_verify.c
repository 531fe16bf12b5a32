/*-------------------------------------------------------------------------
 *
 * extract_verify.c
 *	  Checking an extracted tree against the manifest its archive carries,
 *	  and giving its directories their modes once it is whole (the terms
 *	  are package_extract.c's).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "extract_internal.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "miscadmin.h"

static int
cmp_manifest_entry(const void *a, const void *b)
{
	return strcmp((*(SmsManifestEntry *const *) a)->path,
				  (*(SmsManifestEntry *const *) b)->path);
}

static int
cmp_item(const void *a, const void *b)
{
	return strcmp((*(ExtractItem *const *) a)->path,
				  (*(ExtractItem *const *) b)->path);
}

/* Index of the first of the n sorted entries whose path is >= key. */
static int
lower_bound(SmsManifestEntry **sorted, int n, const char *key)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (strcmp(sorted[mid]->path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static SmsManifestEntry *
find_sorted(SmsManifestEntry **sorted, int n, const char *key)
{
	int			i = lower_bound(sorted, n, key);

	return (i < n && strcmp(sorted[i]->path, key) == 0) ? sorted[i] : NULL;
}

/* A digest as hex, for a message. */
char *
extract_hex(const uint8 *digest)
{
	char	   *s = palloc(SMS_SHA256_HEX_LEN + 1);

	sms_sha256_digest_hex(digest, s);
	return s;
}

/*
 * Everything extracted must be in the manifest, and equal to it; everything
 * in the manifest must have been extracted.  Returns the items, sorted.
 */
ExtractItem **
extract_verify(Extract *x, int *nitems)
{
	SmsManifest *m = x->manifest;
	SmsManifestEntry **sorted = palloc(sizeof(SmsManifestEntry *) * Max(m->nentries, 1));
	ExtractItem **items;
	long		n = hash_get_num_entries(x->items);
	HASH_SEQ_STATUS seq;
	ExtractItem *item;
	int			i = 0;

	/* the parser sorts; sorting again costs little and relies on nothing */
	for (int j = 0; j < m->nentries; j++)
		sorted[j] = &m->entries[j];
	qsort(sorted, m->nentries, sizeof(SmsManifestEntry *), cmp_manifest_entry);
	for (int j = 1; j < m->nentries; j++)
		if (strcmp(sorted[j - 1]->path, sorted[j]->path) == 0)
			extract_mismatch(x, "The manifest lists \"%s\" twice.", extract_printable(sorted[j]->path));

	items = palloc(sizeof(ExtractItem *) * Max(n, 1));
	hash_seq_init(&seq, x->items);
	while ((item = hash_seq_search(&seq)) != NULL)
		items[i++] = item;
	Assert(i == n);
	qsort(items, n, sizeof(ExtractItem *), cmp_item);

	for (i = 0; i < n; i++)
	{
		SmsManifestEntry *e;

		item = items[i];
		if (item->is_link)
		{
			e = find_sorted(sorted, m->nentries, item->path);
			if (e == NULL || !e->is_link)
				extract_mismatch(x, "The archive has a symbolic link \"%s\" that the manifest does not list.",
						 extract_printable(item->path));
			if (strcmp(item->target, e->target) != 0)
				extract_mismatch(x, "Symbolic link \"%s\" points to \"%s\"; the manifest says \"%s\".",
						 extract_printable(item->path), extract_printable(item->target),
						 extract_printable(e->target));
		}
		else if (!item->is_dir)
		{
			e = find_sorted(sorted, m->nentries, item->path);
			if (e == NULL || e->is_dir || e->is_link)
				extract_mismatch(x, "The archive has a file \"%s\" that the manifest does not list.",
						 extract_printable(item->path));
			if (item->size != e->size)
				extract_mismatch(x, "File \"%s\" is " INT64_FORMAT " bytes long; the manifest says " INT64_FORMAT ".",
						 extract_printable(item->path), item->size, e->size);
			if (memcmp(item->sha256, e->sha256, PG_SHA256_DIGEST_LENGTH) != 0)
				extract_mismatch(x, "The SHA-256 of file \"%s\" is %s; the manifest says %s.",
						 extract_printable(item->path), extract_hex(item->sha256), extract_hex(e->sha256));
			if (item->mode != (e->mode & 07777))
				extract_mismatch(x, "File \"%s\" has mode %04o; the manifest says %04o.",
						 extract_printable(item->path), item->mode, e->mode & 07777);
		}
		else
		{
			char	   *key = psprintf("%s/", item->path);
			int			k;

			e = find_sorted(sorted, m->nentries, key);
			if (e != NULL)
			{
				if (item->from_entry && item->mode != (e->mode & 07777))
					extract_mismatch(x, "Directory \"%s\" has mode %04o; the manifest says %04o.",
							 extract_printable(item->path), item->mode, e->mode & 07777);
			}
			else
			{
				/* not listed, so it must hold something that is (version 1) */
				k = lower_bound(sorted, m->nentries, key);
				if (m->version >= 2 || k >= m->nentries ||
					strncmp(sorted[k]->path, key, strlen(key)) != 0)
					extract_mismatch(x, "The archive has a directory \"%s\" that the manifest %s.",
							 extract_printable(item->path),
							 m->version >= 2 ? "does not list" : "neither lists nor implies");
			}
			pfree(key);
		}
	}

	for (int j = 0; j < m->nentries; j++)
	{
		SmsManifestEntry *e = sorted[j];
		char	   *path = pstrdup(e->path);
		size_t		len = strlen(path);

		if (e->is_dir && len > 0 && path[len - 1] == '/')
			path[len - 1] = '\0';
		item = extract_find_item(x, path);
		if (item == NULL || item->is_dir != e->is_dir || item->is_link != e->is_link)
			extract_mismatch(x, "The manifest lists %s \"%s\", which is not in the archive.",
					 e->is_dir ? "directory" : e->is_link ? "symbolic link" : "file",
					 extract_printable(e->path));
		pfree(path);
	}

	*nitems = n;
	return items;
}

/*
 * The manifest entry of an item (a directory's path there ends in '/'), or
 * NULL.
 */
static const SmsManifestEntry *
item_entry(Extract *x, const ExtractItem *item)
{
	const SmsManifestEntry *e;
	char	   *key;

	if (!item->is_dir)
		return sms_manifest_find(x->manifest, item->path);
	key = psprintf("%s/", item->path);
	e = sms_manifest_find(x->manifest, key);
	pfree(key);
	return e;
}

/*
 * Set the modification time of a file or link from its manifest entry,
 * without following a link: relative to its directory, reached as every
 * path of the extraction is.
 */
static void
set_item_time(Extract *x, const ExtractItem *item, const struct timespec *mtime)
{
	const char *slash = strrchr(item->path, '/');
	char	   *dir = slash ? pnstrdup(item->path, slash - item->path) : pstrdup("");
	int			dfd = extract_open_dir(x, dir, item->path);
	struct timespec ts[2];

	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1] = *mtime;
	if (utimensat(dfd, slash ? slash + 1 : item->path, ts, AT_SYMLINK_NOFOLLOW) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set the modification time of \"%s\" in \"%s\": %m",
						extract_printable(item->path), x->dest_dir)));
	pfree(dir);
}

/*
 * Give directories their permissions, now that nothing more is created in
 * them, and with a version 2 manifest every item its modification time,
 * deepest first (items are sorted by path, so the contents of a directory
 * come after it): a directory's time is set once nothing in it changes any
 * more.  Not fsynced: the tree is a temporary (see extract_file).
 */
void
extract_finish_directories(Extract *x, ExtractItem **items, int n)
{
	bool		times = x->manifest->version >= 2;

	for (int i = n - 1; i >= 0; i--)
	{
		ExtractItem *item = items[i];
		const SmsManifestEntry *e = times ? item_entry(x, item) : NULL;
		int			fd;
		int			mode;

		CHECK_FOR_INTERRUPTS();
		if (!item->is_dir)
		{
			if (e != NULL)
				set_item_time(x, item, &e->mtime);
			continue;
		}
		fd = extract_open_dir(x, item->path, item->path);
		if (e != NULL)
			mode = (e->mode & 03777) | S_IRWXU;
		else
			mode = item->from_entry ? ((item->mode & 03777) | S_IRWXU) : 0755;
		if (fchmod(fd, mode) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not set permissions of directory \"%s\" in \"%s\": %m",
							extract_printable(item->path), x->dest_dir)));
		if (e != NULL)
		{
			struct timespec ts[2];

			ts[0].tv_sec = 0;
			ts[0].tv_nsec = UTIME_OMIT;
			ts[1] = e->mtime;
			if (futimens(fd, ts) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not set the modification time of directory \"%s\" in \"%s\": %m",
								extract_printable(item->path), x->dest_dir)));
		}
	}
}
