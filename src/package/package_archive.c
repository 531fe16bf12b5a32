/*-------------------------------------------------------------------------
 *
 * package_archive.c
 *	  Writing a package's tar stream and its manifest; the manifest's text
 *	  form and the rule for a safe relative path.
 *
 * A package build reads the source tree once: every regular file is hashed
 * (SHA-256) while it is streamed into the tar, so the manifest describes
 * exactly the bytes that went into the archive.  The compressor (compress.c)
 * reads the tar file while it grows, so the tar is written front to back and
 * nothing in it is patched afterwards.
 *
 * Terms (see also package_archive.h):
 *
 *	walk		the first pass over the source tree: one directory at a time,
 *				lstat-ing every name, refusing anything that is not a regular
 *				file or a directory and every name that could not be
 *				distributed.  It records each entry's device and inode.
 *	stream		the second pass, in manifest order: each file is opened again
 *				(relative to the source directory, O_NOFOLLOW), checked to be
 *				the inode the walk saw, copied into the tar in blocks and
 *				hashed on the way.  O_NOFOLLOW guards only the last component
 *				of a path; the inode check is what catches a directory above
 *				it that was swapped for a symbolic link since the walk.
 *	changed		a file whose size, modification or change time differs after
 *				it was read from what it was when it was opened, that was
 *				replaced or removed between the walk and the stream, or that
 *				did not yield exactly its size in bytes.  The package would not
 *				be a consistent copy, so the build fails with "changed while
 *				the package was being compressed" (ERRCODE_OBJECT_IN_USE); the
 *				package builder looks for that phrase and starts over.
 *	tar entries	every file and directory of the tree, sorted by path as in
 *				the manifest (a directory's path ends in '/', so it comes
 *				before its contents), then the manifest itself
 *				(SMS_MANIFEST_NAME, mode 0644).  Every directory has an entry,
 *				so `tar -x` restores its mode, but the manifest lists only the
 *				empty ones: the others are implied by their contents' paths.
 *				Owner and group are 0 with no names, so the archive does not
 *				depend on the accounts of the server that built it.  The
 *				manifest entry's mtime is the newest mtime in the tree, so the
 *				same tree always gives the same tar, byte for byte.
 *	file names	bytes, as on disk, but they must be valid UTF-8 (and valid in
 *				the database encoding, since the manifest is stored as text):
 *				pax headers carry UTF-8 names, and libarchive converts through
 *				the current locale, which in a database with LC_CTYPE=C would
 *				turn every non-ASCII name into a "hdrcharset=BINARY" header
 *				that GNU tar warns about.  So headers are written with the
 *				thread's LC_CTYPE switched to C.UTF-8.
 *
 * The source directory itself is opened normally (it is an administrator's
 * server path and may lie below a symbolic link such as /srv -> /data/srv);
 * nothing below it is ever followed.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_archive.h"
#include "source_roots.h"
#include "validate.h"

#include <dirent.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "catalog/pg_authid.h"
#include "common/cryptohash.h"
#include "common/file_perm.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
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

/* The manifest's placeholder digest for a directory: 64 '-'. */
#define DIR_DIGEST_CHARS	(PG_SHA256_DIGEST_LENGTH * 2)

/* One name found by the walk. */
typedef struct WalkEntry
{
	char	   *path;			/* relative; a directory's ends in '/' */
	mode_t		mode;			/* st_mode from the walk's lstat */
	time_t		mtime;
	off_t		size;			/* regular files: st_size from the walk */
	dev_t		dev;
	ino_t		ino;
	int			nchildren;		/* directories: names directly inside */
} WalkEntry;

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
	int			root_fd;		/* source_dir */
	int			tar_fd;
	bool		tar_created;	/* tar_path is ours to remove on failure */
	bool		durable;		/* fsync the tar before returning */
	int			file_fd;		/* the file or directory being read */
	DIR		   *dir;			/* the directory being listed */
	struct archive *archive;
	struct archive_entry *entry;
	pg_cryptohash_ctx *hash;
	ResourceOwner owner;		/* our own, when the caller had none */
	locale_t	utf8_locale;	/* C.UTF-8 for libarchive's name conversion */

	WalkEntry  *entries;
	int			nentries;
	int			maxentries;
	int64		total_bytes;	/* of the regular files the walk saw */
	uint8	   *buf;			/* READ_BLOCK_SIZE bytes, reused for every file */
	time_t		newest_mtime;

	/*
	 * What the walk found wrong with single paths (unreadable, refused
	 * types and names): the walk goes on, so that the error names them all
	 * (walk_problems_raise).  The first one's whole report is kept: alone,
	 * it is raised as it is.
	 */
	int			nproblems;
	StringInfoData problems;	/* "path" (reason); ... for the first PROBLEMS_LISTED */
	int			first_errcode;
	char	   *first_message;
	char	   *first_detail;
	char	   *first_hint;
} TarBuild;

/* paths a failed build lists by name; the rest are counted */
#define PROBLEMS_LISTED 100


/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------
 */

/*
 * Is path safe to create below a directory?  Non-empty, relative, at most
 * SMS_PATH_LENGTH_CEILING bytes (smsdist.max_path_length, lower, is checked
 * where a package is built or extracted), no empty, "." or ".." component, no backslash
 * (a directory separator on the Windows clients that receive packages), no
 * control character (bytes below 0x20, and 0x7f: the manifest is line-
 * oriented).  One trailing '/' is accepted, because that is how the manifest
 * and the tar mark a directory; a caller that expects a file must check
 * for it itself.  This is a byte-level rule, independent of encoding and
 * locale, so the reader of a package applies exactly the rule its writer did.
 */
bool
sms_safe_relative_path(const char *path)
{
	size_t		len = strlen(path);
	const char *comp = path;

	if (len == 0 || len > SMS_PATH_LENGTH_CEILING || path[0] == '/')
		return false;
	for (const unsigned char *p = (const unsigned char *) path; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			return false;
	}

	/* walk the components; a final '/' ends the path, it opens no component */
	for (;;)
	{
		const char *slash = strchr(comp, '/');
		size_t		clen = slash ? (size_t) (slash - comp) : strlen(comp);

		if (clen == 0 ||
			(clen == 1 && comp[0] == '.') ||
			(clen == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
		if (slash == NULL || slash[1] == '\0')
			return true;
		comp = slash + 1;
	}
}

/*
 * A name or path as it may appear in a message: control characters, and
 * every non-ASCII byte if the string is not valid in the database encoding,
 * are shown as \xNN, the Unicode controls of a UTF-8 database as \uNNNN,
 * so a hostile name can neither break nor hide in a log line, nor upset the
 * client's conversion of the message.
 */
static char *
printable(const char *s)
{
	StringInfoData buf;
	bool		valid = pg_verifymbstr(s, strlen(s), true);
	bool		utf8 = valid && GetDatabaseEncoding() == PG_UTF8;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !valid))
			appendStringInfo(&buf, "\\x%02x", *p);
		else if (utf8 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
		{
			/* the invisible C1 controls, U+0080-U+009F */
			appendStringInfo(&buf, "\\u%04x", p[1]);
			p++;
		}
		else if (utf8 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
		{
			/* U+2028, U+2029: line and paragraph separators */
			appendStringInfo(&buf, "\\u%04x", 0x2000 + (p[2] - 0x80));
			p += 2;
		}
		else
			appendStringInfoChar(&buf, (char) *p);
	}
	return buf.data;
}

/*
 * Why a directory entry's name (one component, never "." or "..") cannot be
 * part of a package, or NULL if it can.  Beyond what sms_safe_relative_path
 * demands: valid UTF-8 (see the header comment), valid in the database
 * encoding, and none of the Unicode controls that validate.c refuses in
 * names (C1 controls, U+2028, U+2029), which would fool a reader of the
 * manifest or of a listing.
 */
static const char *
name_problem(const char *name)
{
	int			len = strlen(name);
	const unsigned char *p;

	for (p = (const unsigned char *) name; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			return "a control character";
		if (*p == '\\')
			return "a backslash";
	}
	if (pg_encoding_verifymbstr(PG_UTF8, name, len) != len)
		return "bytes that are not valid UTF-8";
	if (!pg_verifymbstr(name, len, true))
		return "characters that are not valid in the database encoding";
	for (p = (const unsigned char *) name; *p; p++)
	{
		if ((p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) ||
			(p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)))
			return "a Unicode control character";
	}
	return NULL;
}

const char *
sms_path_name_problem(const char *path)
{
	return name_problem(path);
}

int
sms_path_depth(const char *path)
{
	int			depth = 1;

	for (const char *p = path; *p; p++)
	{
		if (*p == '/' && p[1] != '\0')
			depth++;
	}
	return depth;
}

/* Bytes of the manifest line of a path with a file of size bytes. */
static int64
manifest_line_bytes(const char *path, int64 size)
{
	char		digits[32];

	/* digest, space, size, space, mode (4), space, path, newline */
	return DIR_DIGEST_CHARS + 1 + snprintf(digits, sizeof(digits), INT64_FORMAT, size) +
		1 + 4 + 1 + strlen(path) + 1;
}


/* ------------------------------------------------------------------------
 * Errors of the build
 * ------------------------------------------------------------------------
 */

/* The source changed under us: the builder retries on this message. */
static void
pg_attribute_noreturn()
source_changed(TarBuild *b, const char *relpath, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("file \"%s\" changed while the package was being compressed",
					printable(relpath)),
			 errdetail("In package source \"%s\": %s.", b->source_dir, why),
			 errhint("Do not change a package source while its package is being built.")));
}

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
					printable(relpath), b->tar_path, msg)));
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
	if (b->dir != NULL)
	{
		closedir(b->dir);
		b->dir = NULL;
	}
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
	if (b->root_fd >= 0)
	{
		close(b->root_fd);
		b->root_fd = -1;
	}
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
 * The walk
 * ------------------------------------------------------------------------
 */

static int
walk_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const WalkEntry *) a)->path, ((const WalkEntry *) b)->path);
}

/* The SQLSTATE errcode_for_file_access() gives for errno e. */
static int
errcode_for_file_access_code(int e)
{
	switch (e)
	{
		case EPERM:
		case EACCES:
#ifdef EROFS
		case EROFS:
#endif
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		case ENOENT:
			return ERRCODE_UNDEFINED_FILE;
		case EEXIST:
			return ERRCODE_DUPLICATE_FILE;
		case ENOTDIR:
		case EISDIR:
		case ENOTEMPTY:
			return ERRCODE_WRONG_OBJECT_TYPE;
		case ENOSPC:
			return ERRCODE_DISK_FULL;
		case ENFILE:
		case EMFILE:
			return ERRCODE_INSUFFICIENT_RESOURCES;
		case EIO:
			return ERRCODE_IO_ERROR;
		default:
			return ERRCODE_INTERNAL_ERROR;
	}
}

/*
 * One path the walk cannot package: recorded, and the walk goes on.  reason
 * is what the list says of it, message (detail, hint) the error raised if
 * it is the only one.
 */
static void
walk_problem(TarBuild *b, int sqlerrcode, const char *relpath, const char *reason,
			 const char *message, const char *detail, const char *hint)
{
	if (b->nproblems == 0)
	{
		initStringInfo(&b->problems);
		b->first_errcode = sqlerrcode;
		b->first_message = pstrdup(message);
		b->first_detail = detail ? pstrdup(detail) : NULL;
		b->first_hint = hint ? pstrdup(hint) : NULL;
	}
	if (b->nproblems < PROBLEMS_LISTED)
		appendStringInfo(&b->problems, "%s\"%s\" (%s)",
						 b->nproblems > 0 ? "; " : "", printable(relpath), reason);
	b->nproblems++;
}

/* After the walk: the paths it could not package, all in one error. */
static void
walk_problems_raise(TarBuild *b)
{
	if (b->nproblems == 0)
		return;
	if (b->nproblems == 1)
		ereport(ERROR,
				(errcode(b->first_errcode),
				 errmsg_internal("%s", b->first_message),
				 b->first_detail ? errdetail_internal("%s", b->first_detail) : 0,
				 b->first_hint ? errhint("%s", b->first_hint) : 0));
	if (b->nproblems > PROBLEMS_LISTED)
		ereport(ERROR,
				(errcode(b->first_errcode),
				 errmsg("package source \"%s\" has %d paths that cannot be packaged: %s; and %d more",
						b->source_dir, b->nproblems, b->problems.data, b->nproblems - PROBLEMS_LISTED),
				 errhint("A package source may contain only regular files and directories that the server can read, with valid names.")));
	ereport(ERROR,
			(errcode(b->first_errcode),
			 errmsg("package source \"%s\" has %d paths that cannot be packaged: %s",
					b->source_dir, b->nproblems, b->problems.data),
			 errhint("A package source may contain only regular files and directories that the server can read, with valid names.")));
}

/*
 * Refuse anything but a regular file or a directory, naming what it is:
 * false (recorded) if refused.
 */
static bool
check_file_type(TarBuild *b, const char *relpath, mode_t mode)
{
	const char *what;

	if (S_ISREG(mode) || S_ISDIR(mode))
		return true;
	if (S_ISLNK(mode))
		what = "a symbolic link";
	else if (S_ISCHR(mode) || S_ISBLK(mode))
		what = "a device file";
	else if (S_ISFIFO(mode))
		what = "a FIFO";
	else if (S_ISSOCK(mode))
		what = "a socket";
	else
		what = "a file of unknown type";

	walk_problem(b, ERRCODE_INVALID_PARAMETER_VALUE, relpath, what,
				 psprintf("package source \"%s\" contains %s: \"%s\"",
						  b->source_dir, what, printable(relpath)),
				 NULL, "A package source may contain only regular files and directories.");
	return false;
}

/*
 * List one directory of the tree (dirpath "" is the source directory
 * itself, otherwise a walk entry's path ending in '/') and append its
 * entries.  parent is that directory's walk entry, or NULL for the root.
 */
static void
walk_directory(TarBuild *b, const char *dirpath, int parent)
{
	struct stat st;
	struct dirent *de;
	size_t		dirlen = strlen(dirpath);
	int			fd;
	int			nchildren = 0;

	if (parent < 0)
		fd = openat(b->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else
	{
		/* without the trailing '/', which would make O_NOFOLLOW follow */
		char	   *name = pnstrdup(dirpath, dirlen - 1);

		fd = openat(b->root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		pfree(name);
	}
	if (fd < 0)
	{
		if (parent >= 0 && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR))
			source_changed(b, dirpath, "it was removed or replaced");
		if (parent >= 0)
		{
			/* an unreadable directory: named with the others, its contents skipped */
			int			save_errno = errno;
			char	   *reason = psprintf("could not open directory: %s", strerror(save_errno));

			walk_problem(b, errcode_for_file_access_code(save_errno), dirpath, reason,
						 psprintf("could not open directory \"%s\" in package source \"%s\": %s",
								  printable(dirpath), b->source_dir, strerror(save_errno)),
						 NULL, NULL);
			return;
		}
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\" in package source \"%s\": %m",
						parent < 0 ? "." : printable(dirpath), b->source_dir)));
	}
	b->file_fd = fd;

	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat directory \"%s\" in package source \"%s\": %m",
						parent < 0 ? "." : printable(dirpath), b->source_dir)));
	if (parent >= 0 &&
		(st.st_dev != b->entries[parent].dev || st.st_ino != b->entries[parent].ino))
		source_changed(b, dirpath, "it was replaced");

	b->dir = fdopendir(fd);
	if (b->dir == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read directory \"%s\" in package source \"%s\": %m",
						parent < 0 ? "." : printable(dirpath), b->source_dir)));
	b->file_fd = -1;			/* now b->dir's */

	for (;;)
	{
		const char *problem;
		char	   *relpath;
		WalkEntry  *we;

		CHECK_FOR_INTERRUPTS();

		errno = 0;
		de = readdir(b->dir);
		if (de == NULL)
		{
			if (errno != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read directory \"%s\" in package source \"%s\": %m",
								parent < 0 ? "." : printable(dirpath), b->source_dir)));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;

		relpath = psprintf("%s%s", dirpath, de->d_name);

		if (parent < 0 && (strcmp(de->d_name, SMS_MANIFEST_NAME) == 0 ||
						   strcmp(de->d_name, SMS_DELTA_NAME) == 0))
		{
			walk_problem(b, ERRCODE_INVALID_PARAMETER_VALUE, relpath, "a reserved name at the top level",
						 psprintf("package source \"%s\" contains \"%s\" at its top level",
								  b->source_dir, de->d_name),
						 "That name is reserved for the package's manifest and delta description.", NULL);
			continue;
		}
		problem = name_problem(de->d_name);
		if (problem != NULL)
		{
			walk_problem(b, ERRCODE_INVALID_PARAMETER_VALUE, relpath, psprintf("a name with %s", problem),
						 psprintf("package source \"%s\" contains a name with %s: \"%s\"",
								  b->source_dir, problem, printable(relpath)),
						 "Names in a package must be valid UTF-8 without control characters or backslashes.", NULL);
			continue;
		}

		if (fstatat(dirfd(b->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			int			save_errno = errno;

			if (errno == ENOENT)
				source_changed(b, relpath, "it was removed while its directory was read");
			walk_problem(b, errcode_for_file_access_code(save_errno), relpath,
						 psprintf("could not stat: %s", strerror(save_errno)),
						 psprintf("could not stat \"%s\" in package source \"%s\": %s",
								  printable(relpath), b->source_dir, strerror(save_errno)),
						 NULL, NULL);
			continue;
		}
		if (!check_file_type(b, relpath, st.st_mode))
			continue;
		/* a file the server cannot read: named now, with every other one */
		if (S_ISREG(st.st_mode) && faccessat(dirfd(b->dir), de->d_name, R_OK, AT_EACCESS) != 0 &&
			errno != ENOENT)
		{
			int			save_errno = errno;

			walk_problem(b, errcode_for_file_access_code(save_errno), relpath,
						 psprintf("could not open: %s", strerror(save_errno)),
						 psprintf("could not open file \"%s\" in package source \"%s\": %s",
								  printable(relpath), b->source_dir, strerror(save_errno)),
						 NULL, NULL);
			continue;
		}
		if (S_ISDIR(st.st_mode))
		{
			char	   *dirname = psprintf("%s/", relpath);

			pfree(relpath);
			relpath = dirname;
		}
		/* the limits, before anything is written (docs/packages.md) */
		if (strlen(relpath) > (size_t) sms_max_path_length)
		{
			walk_problem(b, ERRCODE_PROGRAM_LIMIT_EXCEEDED, relpath,
						 psprintf("longer than %d bytes", sms_max_path_length),
						 psprintf("package source \"%s\" contains a path longer than %d bytes: \"%s\"",
								  b->source_dir, sms_max_path_length, printable(relpath)),
						 NULL, "The limit is smsdist.max_path_length.");
			continue;
		}
		if (sms_path_depth(relpath) > sms_max_path_depth)
		{
			walk_problem(b, ERRCODE_PROGRAM_LIMIT_EXCEEDED, relpath,
						 psprintf("more than %d levels deep", sms_max_path_depth),
						 psprintf("package source \"%s\" contains a path more than %d levels deep: \"%s\"",
								  b->source_dir, sms_max_path_depth, printable(relpath)),
						 NULL, "The limit is smsdist.max_path_depth.");
			continue;
		}
		if (b->nentries >= sms_max_package_files)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("package source \"%s\" holds more than %d files and directories",
							b->source_dir, sms_max_package_files),
					 errdetail("The walk had come to \"%s\".", printable(relpath)),
					 errhint("The limit is smsdist.max_package_files.")));
		if (S_ISREG(st.st_mode))
		{
			b->total_bytes += st.st_size;
			if (b->total_bytes > SMS_MAX_PACKAGE_BYTES)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("package source \"%s\" holds more than %d MB",
								b->source_dir, sms_max_package_size_mb),
						 errdetail("The walk had come to \"%s\" (" INT64_FORMAT " bytes).",
								   printable(relpath), (int64) st.st_size),
						 errhint("The limit is smsdist.max_package_size.")));
		}
		Assert(sms_safe_relative_path(relpath));

		if (b->nentries == b->maxentries)
		{
			b->maxentries *= 2;
			b->entries = repalloc_huge(b->entries, sizeof(WalkEntry) * b->maxentries);
		}
		we = &b->entries[b->nentries++];
		we->path = relpath;
		we->mode = st.st_mode;
		we->mtime = st.st_mtime;
		we->size = S_ISREG(st.st_mode) ? st.st_size : 0;
		we->dev = st.st_dev;
		we->ino = st.st_ino;
		we->nchildren = 0;
		nchildren++;
	}

	closedir(b->dir);
	b->dir = NULL;
	if (parent >= 0)
		b->entries[parent].nchildren = nchildren;
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

/* Copy one regular file into the tar, hashing it; fill its manifest entry. */
static void
stream_file(TarBuild *b, const WalkEntry *we, SmsManifestEntry *me)
{
	struct stat before;
	struct stat after;
	int64		done = 0;
	int			fd;

	fd = openat(b->root_fd, we->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT || errno == ELOOP)
			source_changed(b, we->path, "it was removed or replaced");
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" in package source \"%s\": %m",
						printable(we->path), b->source_dir)));
	}
	b->file_fd = fd;

	if (fstat(fd, &before) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\" in package source \"%s\": %m",
						printable(we->path), b->source_dir)));
	if (!S_ISREG(before.st_mode) || before.st_dev != we->dev || before.st_ino != we->ino)
		source_changed(b, we->path, "it was replaced");

	/* a hint only: ask for aggressive read-ahead */
	(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	archive_entry_clear(b->entry);
	archive_entry_copy_pathname(b->entry, we->path);
	archive_entry_set_filetype(b->entry, AE_IFREG);
	archive_entry_set_perm(b->entry, before.st_mode & 07777);
	archive_entry_set_size(b->entry, before.st_size);
	archive_entry_set_mtime(b->entry, before.st_mtime, 0);
	archive_entry_set_uid(b->entry, 0);
	archive_entry_set_gid(b->entry, 0);
	write_header(b, we->path);

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
							printable(we->path), b->source_dir)));
		}
		if (n == 0)
			break;
		if (done + n > (int64) before.st_size)
			source_changed(b, we->path, "it grew while it was read");
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
						printable(we->path), b->source_dir)));
	if (done != (int64) before.st_size || after.st_size != before.st_size)
		source_changed(b, we->path,
					   psprintf("its size was %lld bytes when it was opened, %lld bytes were read, and it is now %lld bytes",
								(long long) before.st_size, (long long) done,
								(long long) after.st_size));
	if (!same_time(&after.st_mtim, &before.st_mtim) ||
		!same_time(&after.st_ctim, &before.st_ctim))
		source_changed(b, we->path, "it was modified while it was read");

	if (pg_cryptohash_final(b->hash, me->sha256, sizeof(me->sha256)) < 0)
		elog(ERROR, "could not finish SHA-256: %s", pg_cryptohash_error(b->hash));

	close(fd);
	b->file_fd = -1;

	if (archive_write_finish_entry(b->archive) != ARCHIVE_OK)
		archive_failed(b, we->path);

	me->size = before.st_size;
	me->mode = before.st_mode & 07777;
	me->is_dir = false;
	if (before.st_mtime > b->newest_mtime)
		b->newest_mtime = before.st_mtime;
}

/*
 * A directory's tar entry, from what the walk saw; me is its manifest entry
 * if it is empty, NULL if its contents imply it.
 */
static void
stream_directory(TarBuild *b, const WalkEntry *we, SmsManifestEntry *me)
{
	archive_entry_clear(b->entry);
	archive_entry_copy_pathname(b->entry, we->path);
	archive_entry_set_filetype(b->entry, AE_IFDIR);
	archive_entry_set_perm(b->entry, we->mode & 07777);
	archive_entry_set_size(b->entry, 0);
	archive_entry_set_mtime(b->entry, we->mtime, 0);
	archive_entry_set_uid(b->entry, 0);
	archive_entry_set_gid(b->entry, 0);
	write_header(b, we->path);
	if (archive_write_finish_entry(b->archive) != ARCHIVE_OK)
		archive_failed(b, we->path);
	if (we->mtime > b->newest_mtime)
		b->newest_mtime = we->mtime;

	if (me != NULL)
	{
		me->size = 0;
		me->mode = we->mode & 07777;
		me->is_dir = true;
		memset(me->sha256, 0, sizeof(me->sha256));
	}
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
	int			nmanifest = 0;
	int			i;
	int			k;

	b->root_fd = open(b->source_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->root_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open package source \"%s\": %m", b->source_dir)));
	/* the directory opened, whatever led to it, must be one allowed */
	sms_check_source_directory(b->source_dir, b->root_fd);

	/* the walk: breadth first; entries appended while we go are visited too */
	b->maxentries = 256;
	b->entries = palloc(sizeof(WalkEntry) * b->maxentries);
	walk_directory(b, "", -1);
	for (i = 0; i < b->nentries; i++)
	{
		if (S_ISDIR(b->entries[i].mode))
			walk_directory(b, b->entries[i].path, i);
	}
	walk_problems_raise(b);

	/*
	 * Manifest order.  With a directory's path ending in '/', plain strcmp
	 * order puts every directory before its contents.
	 */
	qsort(b->entries, b->nentries, sizeof(WalkEntry), walk_entry_cmp);
	for (i = 0; i < b->nentries; i++)
	{
		if (!S_ISDIR(b->entries[i].mode) || b->entries[i].nchildren == 0)
			nmanifest++;
	}

	/* the manifest's size, from the walk: refused before the tar is begun */
	{
		int64		manifest_bytes = 0;

		for (i = 0; i < b->nentries; i++)
		{
			WalkEntry  *we = &b->entries[i];

			if (S_ISDIR(we->mode) && we->nchildren > 0)
				continue;
			manifest_bytes += manifest_line_bytes(we->path, S_ISDIR(we->mode) ? 0 : we->size);
		}
		if (manifest_bytes > SMS_MAX_MANIFEST_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the manifest of package source \"%s\" would be " INT64_FORMAT " bytes, more than %d kB",
							b->source_dir, manifest_bytes, sms_max_manifest_size_kb),
					 errhint("The limit is smsdist.max_manifest_size.")));
	}

	m = MemoryContextAllocZero(result_cxt, sizeof(SmsManifest));
	m->nentries = nmanifest;
	m->entries = MemoryContextAllocHuge(result_cxt,
										sizeof(SmsManifestEntry) * Max(nmanifest, 1));

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

	/* the stream: every walk entry, but only files and empty dirs listed */
	for (i = 0, k = 0; i < b->nentries; i++)
	{
		WalkEntry  *we = &b->entries[i];
		SmsManifestEntry *me = NULL;

		if (!S_ISDIR(we->mode) || we->nchildren == 0)
		{
			me = &m->entries[k++];
			me->path = MemoryContextStrdup(result_cxt, we->path);
		}
		if (S_ISDIR(we->mode))
			stream_directory(b, we, me);
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
	archive_entry_clear(b->entry);
	archive_entry_copy_pathname(b->entry, SMS_MANIFEST_NAME);
	archive_entry_set_filetype(b->entry, AE_IFREG);
	archive_entry_set_perm(b->entry, 0644);
	archive_entry_set_size(b->entry, textlen);
	archive_entry_set_mtime(b->entry, b->newest_mtime, 0);
	archive_entry_set_uid(b->entry, 0);
	archive_entry_set_gid(b->entry, 0);
	write_header(b, SMS_MANIFEST_NAME);
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
	b->root_fd = -1;
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
 * The manifest's text form
 * ------------------------------------------------------------------------
 */

char *
sms_manifest_to_text(const SmsManifest *m)
{
	StringInfoData buf;
	static const char hex[] = "0123456789abcdef";

	initStringInfo(&buf);
	for (int i = 0; i < m->nentries; i++)
	{
		const SmsManifestEntry *e = &m->entries[i];

		if (e->is_dir)
		{
			for (int j = 0; j < DIR_DIGEST_CHARS; j++)
				appendStringInfoChar(&buf, '-');
		}
		else
		{
			for (int j = 0; j < PG_SHA256_DIGEST_LENGTH; j++)
			{
				appendStringInfoChar(&buf, hex[e->sha256[j] >> 4]);
				appendStringInfoChar(&buf, hex[e->sha256[j] & 0x0f]);
			}
		}
		appendStringInfo(&buf, " " INT64_FORMAT " %04o %s\n",
						 e->size, e->mode & 07777, e->path);
	}
	return buf.data;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The manifest entry for path, or NULL (entries sorted by strcmp). */
static const SmsManifestEntry *
find_entry(const SmsManifest *m, const char *path)
{
	int			lo = 0;
	int			hi = m->nentries - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(path, m->entries[mid].path);

		if (c == 0)
			return &m->entries[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void
pg_attribute_noreturn()
manifest_error(const char *what, int lineno, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid manifest in %s, line %d: %s", what, lineno, problem)));
}

/*
 * Parse the text form, accepting only what sms_manifest_to_text writes:
 * one space between fields, a size without sign or leading zeros, a mode
 * of exactly four octal digits, lines sorted and unique, every line ended
 * by a newline, safe paths.  The tree described must also be possible: no
 * path below a name that is listed as a file, and no directory listed as
 * empty that has something in it.  So one package has one manifest text.
 */
SmsManifest *
sms_manifest_parse(const char *text, size_t len, const char *what)
{
	SmsManifest *m = palloc0(sizeof(SmsManifest));
	const char *p = text;
	const char *end = text + len;
	const char *nul = memchr(text, '\0', len);
	int			nlines = 0;
	int			lineno;

	if (nul != NULL)
	{
		lineno = 1;
		for (const char *q = text; q < nul; q++)
			lineno += (*q == '\n');
		manifest_error(what, lineno, "it contains a NUL byte");
	}
	for (const char *q = text; q < end; q++)
		nlines += (*q == '\n');
	if (len > 0 && text[len - 1] != '\n')
		manifest_error(what, nlines + 1, "the last line does not end with a newline");

	m->entries = palloc_extended(sizeof(SmsManifestEntry) * Max(nlines, 1),
								 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	for (lineno = 1; p < end; lineno++)
	{
		const char *nl = memchr(p, '\n', end - p);
		SmsManifestEntry *e = &m->entries[m->nentries];
		const char *f = p;
		bool		dashes = true;
		bool		hexdigits = true;
		int64		size = 0;
		int			ndigits = 0;
		int			mode = 0;
		size_t		pathlen;

		Assert(nl != NULL);

		/* digest: 64 lower-case hex digits, or 64 '-' for a directory */
		if (nl - f < DIR_DIGEST_CHARS + 1)
			manifest_error(what, lineno, "the line is too short");
		for (int i = 0; i < DIR_DIGEST_CHARS; i++)
		{
			dashes &= (f[i] == '-');
			hexdigits &= (hex_value(f[i]) >= 0);
		}
		if (!dashes && !hexdigits)
			manifest_error(what, lineno,
						   "the line does not begin with 64 lower-case hexadecimal digits or 64 '-'");
		e->is_dir = dashes;
		if (hexdigits)
		{
			for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
				e->sha256[i] = (hex_value(f[2 * i]) << 4) | hex_value(f[2 * i + 1]);
		}
		f += DIR_DIGEST_CHARS;
		if (*f++ != ' ')
			manifest_error(what, lineno, "expected one space after the digest");

		/* size: decimal, no sign, no leading zeros */
		while (f < nl && *f >= '0' && *f <= '9')
		{
			if (size > (PG_INT64_MAX - (*f - '0')) / 10)
				manifest_error(what, lineno, "the size is out of range");
			size = size * 10 + (*f - '0');
			ndigits++;
			f++;
		}
		if (ndigits == 0 || (ndigits > 1 && f[-ndigits] == '0'))
			manifest_error(what, lineno, "the size is not a decimal number without leading zeros");
		if (f >= nl || *f++ != ' ')
			manifest_error(what, lineno, "expected one space after the size");

		/* mode: exactly four octal digits */
		for (int i = 0; i < 4; i++, f++)
		{
			if (f >= nl || *f < '0' || *f > '7')
				manifest_error(what, lineno, "the mode is not four octal digits");
			mode = mode * 8 + (*f - '0');
		}
		if (f >= nl || *f++ != ' ')
			manifest_error(what, lineno, "expected one space after the mode");

		/* path: the rest of the line */
		pathlen = nl - f;
		e->path = pnstrdup(f, pathlen);
		e->size = size;
		e->mode = mode;
		if (!sms_safe_relative_path(e->path))
			manifest_error(what, lineno,
						   psprintf("unsafe path \"%s\"", printable(e->path)));
		{
			const char *problem = name_problem(e->path);

			if (problem != NULL)
				manifest_error(what, lineno,
							   psprintf("path \"%s\" contains %s", printable(e->path), problem));
		}
		if (e->is_dir != (e->path[pathlen - 1] == '/'))
			manifest_error(what, lineno,
						   e->is_dir ? "a directory's path must end with '/'"
						   : "a file's path must not end with '/'");
		if (e->is_dir && size != 0)
			manifest_error(what, lineno, "a directory's size must be 0");
		if (strcmp(e->path, SMS_MANIFEST_NAME) == 0 ||
			strcmp(e->path, SMS_MANIFEST_NAME "/") == 0 ||
			strcmp(e->path, SMS_DELTA_NAME) == 0 ||
			strcmp(e->path, SMS_DELTA_NAME "/") == 0)
			manifest_error(what, lineno,
						   psprintf("the name \"%s\" is reserved", e->path));

		if (m->nentries > 0)
		{
			int			c = strcmp(m->entries[m->nentries - 1].path, e->path);

			if (c == 0)
				manifest_error(what, lineno,
							   psprintf("duplicate path \"%s\" (also on line %d)",
										printable(e->path), lineno - 1));
			if (c > 0)
				manifest_error(what, lineno,
							   psprintf("path \"%s\" is out of order: lines must be sorted by path",
										printable(e->path)));
		}

		if (m->total_bytes > PG_INT64_MAX - size)
			manifest_error(what, lineno, "the total size is out of range");
		m->total_bytes += size;
		m->nentries++;
		p = nl + 1;
	}

	/*
	 * The tree must be possible.  For each entry, none of its ancestors may
	 * be listed, neither as a file ("a" for "a/b") nor as an empty directory
	 * ("a/" for "a/b"); and a directory "a/" may not also be a file "a".
	 */
	for (int i = 0; i < m->nentries; i++)
	{
		const char *path = m->entries[i].path;
		size_t		plen = strlen(path);
		char	   *prefix = palloc(plen + 1);
		const SmsManifestEntry *other;

		CHECK_FOR_INTERRUPTS();
		for (size_t j = 0; j < plen; j++)
		{
			if (path[j] != '/')
				continue;
			memcpy(prefix, path, j);
			prefix[j] = '\0';
			other = find_entry(m, prefix);
			if (other != NULL && j + 1 == plen)
				manifest_error(what, i + 1,
							   psprintf("\"%s\" is listed both as a file and as a directory",
										printable(prefix)));
			if (other != NULL)
				manifest_error(what, i + 1,
							   psprintf("\"%s\" is inside \"%s\", which is listed as a file",
										printable(path), printable(prefix)));
			if (j + 1 < plen)
			{
				prefix[j] = '/';
				prefix[j + 1] = '\0';
				other = find_entry(m, prefix);
				if (other != NULL)
					manifest_error(what, i + 1,
								   psprintf("directory \"%s\" is listed as empty, but \"%s\" is inside it",
											printable(prefix), printable(path)));
			}
		}
		pfree(prefix);
	}

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
