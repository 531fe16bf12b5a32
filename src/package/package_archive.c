/*-------------------------------------------------------------------------
 *
 * package_archive.c
 *	  Writing a package's tar stream and its manifest.
 *
 * A package build reads the source tree once: every regular file is hashed
 * (SHA-256) while it is streamed into the tar, so the manifest describes
 * exactly the bytes that went into the archive.  The compressor (compress.c)
 * reads the tar file while it grows, so the tar is written front to back and
 * nothing in it is patched afterwards.
 *
 * Terms (see also package_archive.h, package_manifest.h and source_walk.h):
 *
 *	stream		the second pass, after the walk (source_walk.c), in manifest
 *				order: each file is opened again (relative to the source
 *				directory, O_NOFOLLOW), checked to be the inode the walk saw,
 *				copied into the tar in blocks and hashed on the way.
 *				O_NOFOLLOW guards only the last component of a path; the
 *				inode check is what catches a directory above it that was
 *				swapped for a symbolic link since the walk.
 *	changed		a file whose size, modification or change time differs after
 *				it was read from what it was when it was opened, that was
 *				replaced or removed between the walk and the stream, or that
 *				did not yield exactly its size in bytes (sms_source_changed).
 *	tar entries	every file, directory and symbolic link of the tree, sorted
 *				by path as in the manifest (a directory's path ends in '/',
 *				so it comes before its contents), then the manifest itself
 *				(SMS_MANIFEST_NAME, mode 0644).  Every entry carries its
 *				mode and its modification time to the nanosecond (pax
 *				headers), and the manifest (version 2) lists them all, so a
 *				tree is extracted and published as it was.  Owner and group
 *				are 0 with no names, so the archive does not depend on the
 *				accounts of the server that built it.  The manifest entry's
 *				mtime is the newest mtime in the tree, so the same tree
 *				always gives the same tar, byte for byte.
 *	file names	pax headers carry UTF-8 names, and libarchive converts
 *				through the current locale, which in a database with
 *				LC_CTYPE=C would turn every non-ASCII name into a
 *				"hdrcharset=BINARY" header that GNU tar warns about.  So
 *				headers are written with the thread's LC_CTYPE switched to
 *				C.UTF-8.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_archive.h"
#include "source_roots.h"
#include "validate.h"

#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "source_walk.h"

#include "catalog/pg_authid.h"
#include "common/cryptohash.h"
#include "common/file_perm.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/* called after every block a build reads (see package_archive.h) */
void		(*sms_archive_tick) (void *arg) = NULL;
void	   *sms_archive_tick_arg = NULL;

/* Read (and hash, and archive) files in blocks of this size. */
#define READ_BLOCK_SIZE		(256 * 1024)

/*
 * libarchive's output block: it gathers headers and small files up to this
 * size before write().  Because the file is a regular file, libarchive pads
 * only the last block to 512 bytes, so this changes the number of write()
 * calls, never the bytes written.
 */
#define TAR_WRITE_BLOCK		(128 * 1024)

/*
 * Everything one build holds that must be released if it fails.  It lives
 * in palloc'd memory (not on the stack) so that its fields are reliable in
 * the PG_CATCH block after a longjmp.
 */
typedef struct TarBuild
{
	const char *source_dir;
	const char *tar_path;
	MemoryContext cxt;			/* the walk's entries, the read buffer */
	SmsSourceWalk walk;			/* the first pass; its root_fd is source_dir */
	int			tar_fd;
	bool		tar_created;	/* tar_path is ours to remove on failure */
	bool		durable;		/* fsync the tar before returning */
	int			file_fd;		/* the file being read */
	struct archive *archive;
	struct archive_entry *entry;
	pg_cryptohash_ctx *hash;
	ResourceOwner owner;		/* our own, when the caller had none */
	locale_t	utf8_locale;	/* C.UTF-8 for libarchive's name conversion */
	uint8	   *buf;			/* READ_BLOCK_SIZE bytes, reused for every file */
	struct timespec newest_mtime;
} TarBuild;

/* ------------------------------------------------------------------------
 * Errors of the build
 * ------------------------------------------------------------------------
 */

/*
 * libarchive failed; it has kept errno (or its own code) and a message.
 * relpath is the entry being written, or NULL.
 */
static void
pg_attribute_noreturn()
archive_failed(TarBuild *b, const char *relpath)
{
	int			err = archive_errno(b->archive);
	const char *msg = archive_error_string(b->archive);

	if (msg == NULL)
		msg = "unknown libarchive error";
	/* libarchive says "Write error"; say why, too */
	if (err > 0)
	{
		errno = err;
		msg = psprintf("%s: %s", msg, strerror(err));
	}
	if (relpath == NULL)
		ereport(ERROR,
				(err > 0 ? errcode_for_file_access() : errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not write tar file \"%s\": %s", b->tar_path, msg)));
	ereport(ERROR,
			(err > 0 ? errcode_for_file_access() : errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not write \"%s\" to tar file \"%s\": %s",
					sms_path_printable(relpath), b->tar_path, msg)));
}

/*
 * libarchive converts names through the thread's LC_CTYPE; make that UTF-8
 * for the one call that converts (see the header comment).  No ereport can
 * happen between the two uselocale() calls.
 */
static void
write_header(TarBuild *b, const char *relpath)
{
	locale_t	saved = (locale_t) 0;
	int			r;

	if (b->utf8_locale != (locale_t) 0)
		saved = uselocale(b->utf8_locale);
	r = archive_write_header(b->archive, b->entry);
	if (b->utf8_locale != (locale_t) 0)
		uselocale(saved);

	/* a warning means a name was not stored as given: not acceptable */
	if (r != ARCHIVE_OK)
		archive_failed(b, relpath);
}

/*
 * Write the tar header of one entry: owner and group 0, no names (see the
 * header comment).
 */
static void
write_entry_header(TarBuild *b, const char *relpath, mode_t type, int perm, int64 size,
				   const struct timespec *mtime, const char *target)
{
	archive_entry_clear(b->entry);
	archive_entry_copy_pathname(b->entry, relpath);
	archive_entry_set_filetype(b->entry, type);
	archive_entry_set_perm(b->entry, perm);
	archive_entry_set_size(b->entry, size);
	archive_entry_set_mtime(b->entry, mtime->tv_sec, mtime->tv_nsec);
	if (target != NULL)
		archive_entry_copy_symlink(b->entry, target);
	archive_entry_set_uid(b->entry, 0);
	archive_entry_set_gid(b->entry, 0);
	write_header(b, relpath);
}

static void
write_data(TarBuild *b, const char *relpath, const void *data, size_t len)
{
	la_ssize_t	n = archive_write_data(b->archive, data, len);

	if (n < 0 || (size_t) n != len)
		archive_failed(b, relpath);
}

/*
 * Release what a build holds.  On failure also remove the partial tar file,
 * if we created it, so the same path can be tried again (O_EXCL).
 */
static void
release_build(TarBuild *b, bool failed)
{
	sms_walk_release(&b->walk);
	if (b->file_fd >= 0)
	{
		close(b->file_fd);
		b->file_fd = -1;
	}
	if (b->archive != NULL)
	{
		/* don't let archive_write_free() flush a trailer onto a failed tar */
		if (failed)
			archive_write_fail(b->archive);
		archive_write_free(b->archive);
		b->archive = NULL;
	}
	if (b->entry != NULL)
	{
		archive_entry_free(b->entry);
		b->entry = NULL;
	}
	if (b->tar_fd >= 0)
	{
		close(b->tar_fd);
		b->tar_fd = -1;
	}
	if (failed && b->tar_created)
		(void) unlink(b->tar_path);
	b->tar_created = false;
	if (b->hash != NULL)
	{
		pg_cryptohash_free(b->hash);
		b->hash = NULL;
	}
	if (b->owner != NULL)
	{
		ResourceOwner owner = b->owner;

		b->owner = NULL;
		/* top-level, like an auxiliary process's owner: it has no parent */
		ResourceOwnerRelease(owner, RESOURCE_RELEASE_BEFORE_LOCKS, !failed, true);
		ResourceOwnerRelease(owner, RESOURCE_RELEASE_LOCKS, !failed, true);
		ResourceOwnerRelease(owner, RESOURCE_RELEASE_AFTER_LOCKS, !failed, true);
		CurrentResourceOwner = NULL;
		ResourceOwnerDelete(owner);
	}
	if (b->utf8_locale != (locale_t) 0)
	{
		freelocale(b->utf8_locale);
		b->utf8_locale = (locale_t) 0;
	}
	if (b->cxt != NULL)
	{
		MemoryContextDelete(b->cxt);
		b->cxt = NULL;
	}
}



/* ------------------------------------------------------------------------
 * The stream
 * ------------------------------------------------------------------------
 */

static bool
same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* The manifest entry's mtime is the newest in the tree. */
static void
note_mtime(TarBuild *b, const struct timespec *t)
{
	if (t->tv_sec > b->newest_mtime.tv_sec ||
		(t->tv_sec == b->newest_mtime.tv_sec && t->tv_nsec > b->newest_mtime.tv_nsec))
		b->newest_mtime = *t;
}

/* Copy one regular file into the tar, hashing it; fill its manifest entry. */
static void
stream_file(TarBuild *b, const SmsWalkEntry *we, SmsManifestEntry *me)
{
	struct stat before;
	struct stat after;
	int64		done = 0;
	int			fd;

	fd = openat(b->walk.root_fd, we->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT || errno == ELOOP)
			sms_source_changed(b->source_dir, we->path, "it was removed or replaced");
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" in package source \"%s\": %m",
						sms_path_printable(we->path), b->source_dir)));
	}
	b->file_fd = fd;

	if (fstat(fd, &before) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\" in package source \"%s\": %m",
						sms_path_printable(we->path), b->source_dir)));
	if (!S_ISREG(before.st_mode) || before.st_dev != we->dev || before.st_ino != we->ino)
		sms_source_changed(b->source_dir, we->path, "it was replaced");

	/* a hint only: ask for aggressive read-ahead */
	(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	write_entry_header(b, we->path, AE_IFREG, before.st_mode & 07777, before.st_size,
					   &before.st_mtim, NULL);

	if (pg_cryptohash_init(b->hash) < 0)
		elog(ERROR, "could not initialize SHA-256 context: %s",
			 pg_cryptohash_error(b->hash));

	/* read to end of file, so growth shows up as more bytes than the size */
	for (;;)
	{
		ssize_t		n;

		CHECK_FOR_INTERRUPTS();

		n = read(fd, b->buf, READ_BLOCK_SIZE);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\" in package source \"%s\": %m",
							sms_path_printable(we->path), b->source_dir)));
		}
		if (n == 0)
			break;
		if (done + n > (int64) before.st_size)
			sms_source_changed(b->source_dir, we->path, "it grew while it was read");
		if (pg_cryptohash_update(b->hash, b->buf, n) < 0)
			elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(b->hash));
		write_data(b, we->path, b->buf, n);
		done += n;
		if (sms_archive_tick)
			sms_archive_tick(sms_archive_tick_arg);
	}

	if (fstat(fd, &after) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\" in package source \"%s\": %m",
						sms_path_printable(we->path), b->source_dir)));
	if (done != (int64) before.st_size || after.st_size != before.st_size)
		sms_source_changed(b->source_dir, we->path,
					   psprintf("its size was %lld bytes when it was opened, %lld bytes were read, and it is now %lld bytes",
								(long long) before.st_size, (long long) done,
								(long long) after.st_size));
	if (!same_time(&after.st_mtim, &before.st_mtim) ||
		!same_time(&after.st_ctim, &before.st_ctim))
		sms_source_changed(b->source_dir, we->path, "it was modified while it was read");

	if (pg_cryptohash_final(b->hash, me->sha256, sizeof(me->sha256)) < 0)
		elog(ERROR, "could not finish SHA-256: %s", pg_cryptohash_error(b->hash));

	close(fd);
	b->file_fd = -1;

	if (archive_write_finish_entry(b->archive) != ARCHIVE_OK)
		archive_failed(b, we->path);

	me->size = before.st_size;
	me->mode = before.st_mode & 07777;
	me->is_dir = false;
	me->has_mtime = true;
	me->mtime = before.st_mtim;
	note_mtime(b, &before.st_mtim);
}

/* A directory's tar entry and manifest entry, from what the walk saw. */
static void
stream_directory(TarBuild *b, const SmsWalkEntry *we, SmsManifestEntry *me)
{
	write_entry_header(b, we->path, AE_IFDIR, we->mode & 07777, 0, &we->mtime, NULL);
	if (archive_write_finish_entry(b->archive) != ARCHIVE_OK)
		archive_failed(b, we->path);
	note_mtime(b, &we->mtime);

	me->size = 0;
	me->mode = we->mode & 07777;
	me->is_dir = true;
	me->has_mtime = true;
	me->mtime = we->mtime;
	memset(me->sha256, 0, sizeof(me->sha256));
}

/*
 * A symbolic link's tar entry and manifest entry.  It is read again, never
 * followed, and must still be the link the walk saw, with the target the
 * walk checked.  Its target is copied into result_cxt, the manifest's.
 */
static void
stream_link(TarBuild *b, const SmsWalkEntry *we, SmsManifestEntry *me,
			MemoryContext result_cxt)
{
	char		buf[SMS_PATH_LENGTH_CEILING + 1];
	struct stat st;
	ssize_t		n;

	if (fstatat(b->walk.root_fd, we->path, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		!S_ISLNK(st.st_mode) || st.st_dev != we->dev || st.st_ino != we->ino)
		sms_source_changed(b->source_dir, we->path, "it was removed or replaced");
	n = readlinkat(b->walk.root_fd, we->path, buf, sizeof(buf));
	if (n < 0 || n >= (ssize_t) sizeof(buf) || (size_t) n != strlen(we->target) ||
		memcmp(buf, we->target, n) != 0)
		sms_source_changed(b->source_dir, we->path, "its target changed");

	write_entry_header(b, we->path, AE_IFLNK, 0777, 0, &we->mtime, we->target);
	if (archive_write_finish_entry(b->archive) != ARCHIVE_OK)
		archive_failed(b, we->path);
	note_mtime(b, &we->mtime);

	me->size = strlen(we->target);
	me->mode = 0777;
	me->is_link = true;
	me->target = MemoryContextStrdup(result_cxt, we->target);
	me->has_mtime = true;
	me->mtime = we->mtime;
}

/*
 * The body of sms_archive_write_tar: everything it acquires is recorded in
 * b, for release_build().  The manifest is built in result_cxt.
 */
static SmsManifest *
write_tar(TarBuild *b, MemoryContext result_cxt)
{
	SmsManifest *m;
	char	   *text;
	size_t		textlen;
	int			nmanifest;
	int			i;
	int			k;

	sms_walk_source(&b->walk);
	nmanifest = b->walk.nlisted;

	m = MemoryContextAllocZero(result_cxt, sizeof(SmsManifest));
	m->version = SMS_MANIFEST_VERSION;
	m->nentries = nmanifest;
	m->entries = MemoryContextAllocHuge(result_cxt,
										sizeof(SmsManifestEntry) * Max(nmanifest, 1));
	memset(m->entries, 0, sizeof(SmsManifestEntry) * Max(nmanifest, 1));

	/* the tar file, and its writer */
	b->tar_fd = open(b->tar_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | PG_BINARY,
					 pg_file_create_mode);
	if (b->tar_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create tar file \"%s\": %m", b->tar_path)));
	b->tar_created = true;

	b->entry = archive_entry_new();
	b->archive = archive_write_new();
	if (b->entry == NULL || b->archive == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (archive_write_set_format_pax_restricted(b->archive) != ARCHIVE_OK ||
		archive_write_set_bytes_per_block(b->archive, TAR_WRITE_BLOCK) != ARCHIVE_OK ||
		archive_write_set_bytes_in_last_block(b->archive, 1) != ARCHIVE_OK ||
		archive_write_open_fd(b->archive, b->tar_fd) != ARCHIVE_OK)
		archive_failed(b, NULL);

	/* the stream: every walk entry, each listed */
	for (i = 0, k = 0; i < b->walk.nentries; i++)
	{
		SmsWalkEntry *we = &b->walk.entries[i];
		SmsManifestEntry *me = &m->entries[k++];

		Assert(sms_walk_listed(we));
		me->path = MemoryContextStrdup(result_cxt, we->path);
		if (S_ISDIR(we->mode))
			stream_directory(b, we, me);
		else if (S_ISLNK(we->mode))
			stream_link(b, we, me, result_cxt);
		else
		{
			stream_file(b, we, me);
			m->total_bytes += me->size;
		}
	}
	Assert(k == nmanifest);

	/* the manifest, last */
	text = sms_manifest_to_text(m);
	textlen = strlen(text);
	write_entry_header(b, SMS_MANIFEST_NAME, AE_IFREG, 0644, textlen, &b->newest_mtime, NULL);
	write_data(b, SMS_MANIFEST_NAME, text, textlen);
	if (archive_write_close(b->archive) != ARCHIVE_OK)
		archive_failed(b, NULL);

	/*
	 * Durable before the caller renames or publishes anything made from it.
	 * A failure here is an ERROR, not the PANIC PostgreSQL uses for its own
	 * data files: nobody will use this file if we fail, so no page the
	 * kernel may have dropped can be read later.
	 */
	if (b->durable && pg_fsync(b->tar_fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync tar file \"%s\": %m", b->tar_path)));
	if (close(b->tar_fd) != 0)
	{
		b->tar_fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close tar file \"%s\": %m", b->tar_path)));
	}
	b->tar_fd = -1;

	return m;
}

SmsManifest *
sms_archive_write_tar(const char *source_dir, const char *tar_path, bool durable)
{
	MemoryContext result_cxt = CurrentMemoryContext;
	TarBuild   *b;
	SmsManifest *m = NULL;

	/* the source path came from a table: check it again before we use it */
	sms_valid_server_path(source_dir, "package source", true);

	b = palloc0(sizeof(TarBuild));
	b->source_dir = source_dir;
	b->tar_path = tar_path;
	b->durable = durable;
	sms_walk_init(&b->walk, source_dir);
	b->tar_fd = -1;
	b->file_fd = -1;

	PG_TRY();
	{
		/* everything but the result lives here; gone when we return */
		b->cxt = AllocSetContextCreate(CurrentMemoryContext,
									   "smsdist package tar",
									   ALLOCSET_DEFAULT_SIZES);
		MemoryContextSwitchTo(b->cxt);
		b->buf = palloc(READ_BLOCK_SIZE);

		/*
		 * The SHA-256 context is tracked by the current resource owner.  A
		 * package builder may call us outside a transaction, with none: then
		 * bring our own for the length of the build.
		 */
		if (CurrentResourceOwner == NULL)
		{
			b->owner = ResourceOwnerCreate(NULL, "smsdist package tar");
			CurrentResourceOwner = b->owner;
		}
		b->hash = pg_cryptohash_create(PG_SHA256);
		if (b->hash == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));

		/* without C.UTF-8 non-ASCII names fail with a clear error instead */
		{
			locale_t	base = duplocale(LC_GLOBAL_LOCALE);

			if (base != (locale_t) 0)
			{
				b->utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", base);
				if (b->utf8_locale == (locale_t) 0)
					freelocale(base);
			}
		}

		m = write_tar(b, result_cxt);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(result_cxt);
		release_build(b, true);
		PG_RE_THROW();
	}
	PG_END_TRY();

	MemoryContextSwitchTo(result_cxt);
	release_build(b, false);
	pfree(b);
	return m;
}



/* ------------------------------------------------------------------------
 * SQL: for tests
 * ------------------------------------------------------------------------
 */

/*
 * smsdist_build_tar(source text, tar_path text) RETURNS text: write the tar
 * of source to tar_path (which must not exist) and return the manifest.
 * For tests.  It reads and writes files as the server, so the extension
 * script revokes it from PUBLIC, and, like smsdist_extract_package, it
 * also demands the privileges of pg_read_server_files and
 * pg_write_server_files.
 */
PG_FUNCTION_INFO_V1(smsdist_build_tar);
Datum
smsdist_build_tar(PG_FUNCTION_ARGS)
{
	char	   *source;
	char	   *tar_path;
	SmsManifest *m;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("package source and tar path must not be null")));
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES) ||
		!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to build a package tar file"),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" and \"pg_write_server_files\" roles may read and write files on the server.")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tar_path = text_to_cstring(PG_GETARG_TEXT_PP(1));

	sms_valid_server_path(source, "package source", true);
	/* absolute: a relative path would land in the data directory */
	sms_valid_server_path(tar_path, "tar path", true);

	m = sms_archive_write_tar(source, tar_path, true);
	PG_RETURN_TEXT_P(cstring_to_text(sms_manifest_to_text(m)));
}
