/*-------------------------------------------------------------------------
 *
 * package_delta.c
 *	  Delta package files: what a site that already holds an earlier
 *	  version of a package needs to have the new one.
 *
 * Terms:
 *	base version	the version the receiving site has published; the delta
 *					is applied to that tree (package_extract.c).
 *	kept file		a regular file of the new manifest whose path, size, mode
 *					and SHA-256 are the same in the base manifest: it does
 *					not travel, the site copies it from its base tree (and
 *					checks its SHA-256 while copying).
 *	sent file		any other regular file of the new manifest (added or
 *					changed, content or mode).
 *	deletion		a path of the base manifest that the new one lacks.
 *	delta file		a package file (gzip'd POSIX tar, as docs/packages.md
 *					describes) that holds every directory entry of the new
 *					version, the sent files, then SMS_DELTA_NAME, then the new
 *					version's whole manifest as the last entry.  SMS_DELTA_NAME
 *					is text:
 *						smsdist-delta 1
 *						base-version <B>
 *						delete <path>		(one line per deletion)
 *
 * The delta is made from the new version's package file, not from the
 * source directory, which may have changed since: so the delta describes
 * exactly the tree that a full send would publish, and extracting it over
 * the base gives that tree, checked against the same manifest.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_delta.h"
#include "file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "formats/box_file.h"

#define DELTA_BLOCK_SIZE	(256 * 1024)

/*
 * Is the new entry e the same file in the base manifest: same bytes, mode
 * and modification time?  Directories and links are always sent.
 */
static bool
kept_file(const SmsManifest *base, const SmsManifestEntry *e)
{
	const SmsManifestEntry *b = sms_manifest_find(base, e->path);

	return b != NULL && !b->is_dir && !b->is_link && b->size == e->size &&
		(b->mode & 07777) == (e->mode & 07777) &&
		b->has_mtime == e->has_mtime &&
		(!b->has_mtime || (b->mtime.tv_sec == e->mtime.tv_sec &&
						   b->mtime.tv_nsec == e->mtime.tv_nsec)) &&
		memcmp(b->sha256, e->sha256, PG_SHA256_DIGEST_LENGTH) == 0;
}

/* Everything a delta build holds, released on every path. */
typedef struct DeltaBuild
{
	const char *full_path;
	char	   *tmp_path;
	int			in_fd;
	int			out_fd;
	struct archive *in;
	struct archive *out;
	bool		out_ok;			/* out was closed cleanly */
	char	   *buf;
} DeltaBuild;

static void
pg_attribute_noreturn()
delta_archive_failed(DeltaBuild *d, struct archive *a, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("could not make a delta from package file \"%s\": %s: %s",
					d->full_path, what,
					a && archive_error_string(a) ? archive_error_string(a) : "unknown error")));
}

static void
delta_cleanup(DeltaBuild *d)
{
	if (d->in != NULL)
		archive_read_free(d->in);
	d->in = NULL;
	if (d->out != NULL)
	{
		if (!d->out_ok)
			archive_write_fail(d->out);
		archive_write_free(d->out);
	}
	d->out = NULL;
	if (d->in_fd >= 0)
		close(d->in_fd);
	d->in_fd = -1;
	if (d->out_fd >= 0)
		close(d->out_fd);
	d->out_fd = -1;
}

static void
write_text_entry(DeltaBuild *d, const char *name, const char *text, size_t len)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_copy_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, len);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(d->out, e) != ARCHIVE_OK)
	{
		archive_entry_free(e);
		delta_archive_failed(d, d->out, name);
	}
	archive_entry_free(e);
	if (len > 0 && archive_write_data(d->out, text, len) != (la_ssize_t) len)
		delta_archive_failed(d, d->out, name);
}

/* Copy the current entry of d->in (header and data) to d->out. */
static void
copy_entry(DeltaBuild *d, struct archive_entry *entry, const char *path)
{
	if (archive_write_header(d->out, entry) != ARCHIVE_OK)
		delta_archive_failed(d, d->out, path);
	for (;;)
	{
		la_ssize_t	n;

		CHECK_FOR_INTERRUPTS();
		n = archive_read_data(d->in, d->buf, DELTA_BLOCK_SIZE);
		if (n == 0)
			break;
		if (n < 0)
			delta_archive_failed(d, d->in, path);
		if (archive_write_data(d->out, d->buf, n) != n)
			delta_archive_failed(d, d->out, path);
	}
	if (archive_write_finish_entry(d->out) != ARCHIVE_OK)
		delta_archive_failed(d, d->out, path);
}

static void
delta_build_body(DeltaBuild *d, const SmsManifest *base, const SmsManifest *cur,
				 const char *new_manifest_text, size_t new_manifest_len,
				 int base_version, int level, SmsDeltaResult *res)
{
	struct archive_entry *entry;
	StringInfoData delta;
	int			r;
	int			sent = 0;
	char		levelopt[32];

	/* the deletions, and what must be sent */
	initStringInfo(&delta);
	appendStringInfo(&delta, "smsdist-delta 1\nbase-version %d\n", base_version);
	for (int i = 0; i < base->nentries; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (sms_manifest_find(cur, base->entries[i].path) == NULL)
		{
			appendStringInfo(&delta, "delete %s\n", base->entries[i].path);
			res->files_deleted++;
		}
	}
	for (int i = 0; i < cur->nentries; i++)
	{
		if (cur->entries[i].is_dir || cur->entries[i].is_link)
			continue;
		if (kept_file(base, &cur->entries[i]))
			res->files_kept++;
		else
			res->files_sent++;
	}

	d->in_fd = open(d->full_path, O_RDONLY | O_CLOEXEC | PG_BINARY);
	if (d->in_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open package file \"%s\": %m", d->full_path)));
	d->in = archive_read_new();
	d->out = archive_write_new();
	if (d->in == NULL || d->out == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (archive_read_support_filter_gzip(d->in) != ARCHIVE_OK ||
		archive_read_support_format_tar(d->in) != ARCHIVE_OK ||
		archive_read_open_fd(d->in, d->in_fd, DELTA_BLOCK_SIZE) != ARCHIVE_OK)
		delta_archive_failed(d, d->in, "opening it");

	d->out_fd = open(d->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | PG_BINARY,
					 S_IRUSR | S_IWUSR);
	if (d->out_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create delta file \"%s\": %m", d->tmp_path)));
	snprintf(levelopt, sizeof(levelopt), "gzip:compression-level=%d", level);
	if (archive_write_set_format_pax_restricted(d->out) != ARCHIVE_OK ||
		archive_write_add_filter_gzip(d->out) != ARCHIVE_OK ||
		archive_write_set_options(d->out, levelopt) != ARCHIVE_OK ||
		archive_write_set_bytes_in_last_block(d->out, 1) != ARCHIVE_OK ||
		archive_write_open_fd(d->out, d->out_fd) != ARCHIVE_OK)
		delta_archive_failed(d, d->out, "creating the delta file");
	d->buf = palloc(DELTA_BLOCK_SIZE);

	while ((r = archive_read_next_header(d->in, &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN)
	{
		const char *name = archive_entry_pathname(entry);
		mode_t		type = archive_entry_filetype(entry);

		CHECK_FOR_INTERRUPTS();
		if (name == NULL)
			name = archive_entry_pathname_utf8(entry);
		if (name == NULL)
			delta_archive_failed(d, d->in, "an entry's name cannot be read");
		if (type == AE_IFDIR || type == AE_IFLNK)
			copy_entry(d, entry, name);
		else if (type == AE_IFREG && strcmp(name, SMS_MANIFEST_NAME) == 0)
			continue;			/* written last, below */
		else if (type == AE_IFREG)
		{
			const SmsManifestEntry *e = sms_manifest_find(cur, name);

			if (e == NULL || e->is_dir || e->is_link)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not make a delta from package file \"%s\": it has a file \"%s\" that its manifest does not list",
								d->full_path, name)));
			if (!kept_file(base, e))
			{
				copy_entry(d, entry, name);
				sent++;
			}
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not make a delta from package file \"%s\": entry \"%s\" is neither a file nor a directory",
							d->full_path, name)));
	}
	if (r != ARCHIVE_EOF)
		delta_archive_failed(d, d->in, "reading it");
	if (sent != res->files_sent)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not make a delta from package file \"%s\": %d of the %d files to send are in it",
						d->full_path, sent, res->files_sent)));

	write_text_entry(d, SMS_DELTA_NAME, delta.data, delta.len);
	write_text_entry(d, SMS_MANIFEST_NAME, new_manifest_text, new_manifest_len);
	if (archive_write_close(d->out) != ARCHIVE_OK)
		delta_archive_failed(d, d->out, "finishing the delta file");
	d->out_ok = true;
	if (pg_fsync(d->out_fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync delta file \"%s\": %m", d->tmp_path)));
	if (lseek(d->out_fd, 0, SEEK_SET) != 0 || !sms_sha256_fd(d->out_fd, res->sha256, &res->bytes))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read delta file \"%s\": %m", d->tmp_path)));
}

/*
 * A delta is written to ".<name>.tmp.<pid>" beside its final name, so that a
 * builder killed before the rename leaves a name sms_fmt_stale_temporary knows.
 */
static char *
delta_tmp_path(const char *out_path)
{
	const char *slash = strrchr(out_path, '/');

	if (slash == NULL)
		return psprintf(".%s.tmp.%d", out_path, MyProcPid);
	return psprintf("%.*s/.%s.tmp.%d", (int) (slash - out_path), out_path, slash + 1,
					MyProcPid);
}

/*
 * Remove the temporaries of delta builders that are gone from dir (the
 * deltas directory).  The caller has no delta of its own in flight.
 * Nothing else would ever remove them: the next build of the same delta is
 * made by another process, or by none if the job ended meanwhile.
 */
void
sms_delta_remove_stale(const char *dir)
{
	DIR		   *d;
	struct dirent *de;

	d = AllocateDir(dir);
	if (d == NULL)
		return;					/* no deltas yet */
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		if (sms_fmt_stale_temporary(de->d_name, true))
		{
			char	   *p = psprintf("%s/%s", dir, de->d_name);

			if (unlink(p) != 0 && errno != ENOENT)
				ereport(LOG,
						(errcode_for_file_access(),
						 errmsg("could not remove \"%s\": %m", p)));
			pfree(p);
		}
	}
	FreeDir(d);
}

void
sms_delta_build(const char *full_path, const char *base_manifest, const char *new_manifest,
				int base_version, const char *out_path, int level, SmsDeltaResult *res)
{
	DeltaBuild	d = {0};
	SmsManifest *base;
	SmsManifest *cur;

	memset(res, 0, sizeof(*res));
	base = sms_manifest_parse(base_manifest, strlen(base_manifest), "the base version's manifest");
	cur = sms_manifest_parse(new_manifest, strlen(new_manifest), "the new version's manifest");
	d.full_path = full_path;
	d.tmp_path = delta_tmp_path(out_path);
	d.in_fd = d.out_fd = -1;
	/* what killed builders left, and a crashed attempt of this process id */
	{
		char	   *dir = pstrdup(out_path);
		char	   *slash = strrchr(dir, '/');

		if (slash != NULL)
		{
			*slash = '\0';
			sms_delta_remove_stale(dir);
		}
		pfree(dir);
	}
	(void) unlink(d.tmp_path);

	PG_TRY();
	{
		delta_build_body(&d, base, cur, new_manifest, strlen(new_manifest),
						 base_version, level, res);
	}
	PG_CATCH();
	{
		delta_cleanup(&d);
		(void) unlink(d.tmp_path);
		PG_RE_THROW();
	}
	PG_END_TRY();
	delta_cleanup(&d);
	(void) durable_rename(d.tmp_path, out_path, ERROR);
}

/*
 * Parse a delta entry's text: returns its base version and the list of
 * deleted paths (char *); ereport ERROR (DATA_CORRUPTED) if malformed.
 */
int
sms_delta_parse(const char *text, const char *what, List **deletions)
{
	const char *p = text;
	int			base = 0;
	int			lineno = 0;

	*deletions = NIL;
	while (*p)
	{
		const char *nl = strchr(p, '\n');
		char	   *line;

		CHECK_FOR_INTERRUPTS();
		if (nl == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("%s: the delta description does not end with a newline", what)));
		line = pnstrdup(p, nl - p);
		lineno++;
		if (lineno == 1)
		{
			if (strcmp(line, "smsdist-delta 1") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("%s: unknown delta description \"%s\"", what, line)));
		}
		else if (lineno == 2)
		{
			char	   *end = NULL;
			long		v = 0;

			/*
			 * Range-checked as a long before it becomes an int: a cast alone
			 * would read "base-version 4294967297" as version 1.
			 */
			errno = 0;
			if (strncmp(line, "base-version ", 13) == 0)
				v = strtol(line + 13, &end, 10);
			if (v < 1 || v > PG_INT32_MAX || errno != 0 || *end != '\0')
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("%s: line 2 of the delta description must be \"base-version <n>\"", what)));
			base = (int) v;
		}
		else if (strncmp(line, "delete ", 7) == 0 && sms_safe_relative_path(line + 7))
			*deletions = lappend(*deletions, pstrdup(line + 7));
		else
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("%s: line %d of the delta description is not a safe deletion", what, lineno)));
		p = nl + 1;
	}
	if (base == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s: the delta description names no base version", what)));
	return base;
}
