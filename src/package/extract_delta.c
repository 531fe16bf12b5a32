/*-------------------------------------------------------------------------
 *
 * extract_delta.c
 *	  Completing an extracted delta from its base tree: every file of the
 *	  new manifest that the delta does not carry is copied from the base
 *	  (terms: package_delta.c and package_extract.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "extract_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_util.h"
#include "package_delta.h"

#include "miscadmin.h"
#include "storage/fd.h"

/* The base tree a delta needs is not usable: the site needs the full package. */
static void
pg_attribute_noreturn()
pg_attribute_printf(2, 3)
base_unusable(Extract *x, const char *fmt,...)
{
	va_list		ap;
	char		buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(SMS_ERRCODE_DELTA_BASE),
			 errmsg("delta package file \"%s\" cannot be applied to \"%s\" (version %d): %s",
					x->archive_path, x->base_dir, x->base_version, buf),
			 errhint("The full package file is needed.")));
}

/*
 * Copy the kept file e from the base tree into dest_dir, checking it against
 * the new manifest while it is copied.  The base path is walked from the
 * base directory with O_NOFOLLOW, like every path we create: a link planted
 * in a distribution point's copy is not followed.
 */
static void
copy_from_base(Extract *x, const SmsManifestEntry *e)
{
	const char *comp = e->path;
	int			cur = x->base_fd;
	int			opened = -1;
	const char *slash;
	struct stat st;
	ExtractItem *item;
	char	   *dir;
	const char *name;

	/* open the base file, component by component */
	while ((slash = strchr(comp, '/')) != NULL)
	{
		char	   *c = pnstrdup(comp, slash - comp);
		int			next = sms_openat_external(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);

		if (next < 0)
			base_unusable(x, "directory of \"%s\" cannot be opened: %m", extract_printable(e->path));
		if (opened >= 0)
			sms_close_external(opened);
		opened = cur = next;
		pfree(c);
		comp = slash + 1;
	}
	x->base_file_fd = sms_openat_external(cur, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
	if (opened >= 0)
		sms_close_external(opened);
	if (x->base_file_fd < 0)
		base_unusable(x, "file \"%s\" cannot be opened: %m", extract_printable(e->path));
	if (fstat(x->base_file_fd, &st) != 0 || !S_ISREG(st.st_mode))
		base_unusable(x, "\"%s\" is not a regular file", extract_printable(e->path));

	/* create it in dest_dir */
	slash = strrchr(e->path, '/');
	dir = slash ? pnstrdup(e->path, slash - e->path) : pstrdup("");
	name = slash ? slash + 1 : e->path;
	if (extract_find_item(x, e->path) != NULL)
		extract_refuse_entry(x, e->path, "the delta both sends it and keeps it");
	item = extract_create_file(x, e->path, dir, name, e->mode & 07777);
	for (;;)
	{
		ssize_t		n;

		CHECK_FOR_INTERRUPTS();
		n = read(x->base_file_fd, x->buf, EXTRACT_BLOCK_SIZE);
		if (n == 0)
			break;
		if (n < 0)
			base_unusable(x, "file \"%s\" cannot be read: %m", extract_printable(e->path));
		/* never more than the new manifest declares for it */
		if (n > e->size - item->size)
			base_unusable(x, "file \"%s\" there is larger than the " INT64_FORMAT " bytes the new version keeps",
						  extract_printable(e->path), e->size);
		extract_write_block(x, item, e->path, x->buf, n);
	}
	if (pg_cryptohash_final(x->sha, item->sha256, sizeof(item->sha256)) < 0)
		extract_hash_failed(x);
	if (item->size != e->size || memcmp(item->sha256, e->sha256, PG_SHA256_DIGEST_LENGTH) != 0)
		base_unusable(x, "file \"%s\" there is not the one the new version keeps (" INT64_FORMAT " bytes, SHA-256 %s; expected " INT64_FORMAT " bytes, SHA-256 %s)",
					  extract_printable(e->path), item->size, extract_hex(item->sha256), e->size, extract_hex(e->sha256));

	/* no fsync, as for an extracted file: see extract_file */
	sms_close_external(x->base_file_fd);
	x->base_file_fd = -1;
	extract_close_file(x, item, e->path, &st.st_mtim);
	pfree(dir);
}

/*
 * A delta: check its description against the manifest, then copy every
 * file the archive did not carry from the base tree.  Linear in the sizes
 * of the description and the manifest (but for the binary searches), and
 * interruptible between any two paths.
 */
void
extract_apply_delta(Extract *x)
{
	List	   *deletions;
	ListCell   *lc;
	int			base;
	SmsManifest *m = x->manifest;

	base = sms_delta_parse(x->delta_text, psprintf("package file \"%s\"", x->archive_path),
						   &deletions);
	/* the manifest is sorted (the parser checks): one binary search each */
	foreach(lc, deletions)
	{
		const char *path = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		if (sms_manifest_find(m, path) != NULL)
			extract_mismatch(x, "The delta deletes \"%s\", which the manifest lists.", extract_printable(path));
	}
	if (x->base_dir == NULL)
		ereport(ERROR,
				(errcode(SMS_ERRCODE_DELTA_BASE),
				 errmsg("package file \"%s\" is a delta from version %d: it can only be applied to that version's tree",
						x->archive_path, base)));
	if (base != x->base_version)
		base_unusable(x, "it is a delta from version %d", base);

	x->base_fd = OpenTransientFile(x->base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->base_fd < 0)
		base_unusable(x, "it cannot be opened: %m");
	for (int i = 0; i < m->nentries; i++)
	{
		const SmsManifestEntry *e = &m->entries[i];

		CHECK_FOR_INTERRUPTS();
		if (e->is_dir || e->is_link || extract_find_item(x, e->path) != NULL)
			continue;
		copy_from_base(x, e);
	}
}

