/*-------------------------------------------------------------------------
 *
 * package_extract.c
 *	  Reading a package file: safe extraction of a gzip'd tar into an empty
 *	  directory, checked against the manifest the archive carries.
 *
 * A package file travels between sites and sits on disks that fill up and
 * rot, and a child site cannot vouch for what its parent sent, so the
 * archive is untrusted input.  Nothing in it may create anything outside
 * dest_dir, overwrite anything, or leave behind a file the manifest does not
 * vouch for without sms_archive_extract raising an ERROR.
 *
 * Terms:
 *	entry			one tar header and its data, as libarchive returns it.
 *	entry path		the entry's name with the one trailing '/' of a directory
 *					entry removed: relative and '/'-separated, like the paths
 *					of the manifest.
 *	safe path		an entry path that can only name something beneath
 *					dest_dir: not empty, not absolute, no empty, "." or ".."
 *					component, no backslash, no control character, at most
 *					MAX_ENTRY_PATH bytes and NAME_MAX bytes a component.
 *	implied directory	a directory created because an entry path runs
 *					through it; the archive may or may not also have an entry
 *					for it (the manifest lists only empty directories).
 *	item			what this extraction created, file or directory, kept in
 *					a hash table keyed by its entry path: it finds duplicates
 *					and is compared with the manifest at the end.
 *
 * How nothing escapes dest_dir: entry paths must be safe paths, and every
 * path is created by walking its components from a descriptor of dest_dir
 * with openat(O_DIRECTORY | O_NOFOLLOW), the last component being created
 * with openat(O_CREAT | O_EXCL | O_NOFOLLOW) or mkdirat().  So even a
 * symbolic link that appeared on disk behind our back is never followed,
 * and nothing that already exists is ever written to.  Only regular files
 * and directories are created; links, devices, FIFOs and sockets in the
 * archive are refused, as is anything after the manifest.
 *
 * The manifest is the last entry, so it is known only once every file is on
 * disk: each file is hashed while it is written, and everything is compared
 * at the end.  Until sms_archive_extract returns, dest_dir's contents are not
 * to be trusted; on ERROR the caller removes it (sms_remove_tree).
 *
 * Permissions: files and directories get the permission bits of their
 * entries (which must equal the manifest's), without setuid, setgid and
 * sticky, and always with the owner's read bit (files) or rwx (directories):
 * the server must be able to read, publish and later remove what it
 * extracted.  Implied directories without an entry get 0755.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_archive.h"
#include "validate.h"
#include "inflate.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "catalog/pg_authid.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/* libarchive's read size, and ours: big enough that syscalls do not show */
#define EXTRACT_BLOCK_SIZE	(256 * 1024)

typedef struct ExtractItem
{
	char	   *path;			/* hash key: the entry path */
	bool		is_dir;
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

/*
 * Raw descriptors (openat() has no PostgreSQL wrapper) are reported to fd.c
 * so that it closes cached VFDs when we need room, instead of our open
 * failing with EMFILE.
 */
static int
raw_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	int			fd;

	ReserveExternalFD();
	fd = openat(dirfd, name, flags | O_CLOEXEC, mode);
	if (fd < 0)
	{
		int			save_errno = errno;

		ReleaseExternalFD();
		errno = save_errno;
	}
	return fd;
}

static int
raw_close(int fd)
{
	int			rc = close(fd);
	int			save_errno = errno;

	ReleaseExternalFD();
	errno = save_errno;
	return rc;
}

/*
 * Length of the control character at p, or 0 if there is none: ASCII C0 and
 * DEL, and the UTF-8 encodings of the C1 controls (U+0080-U+009F) and of
 * U+2028/U+2029, as in validate.c; here regardless of the database encoding,
 * because a file name reaches Windows clients as UTF-8 whatever the database
 * uses.
 */
static int
control_char_at(const unsigned char *p)
{
	if (*p < 0x20 || *p == 0x7f)
		return 1;
	if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
		return 2;
	if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
		return 3;
	return 0;
}

static bool
has_control_char(const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (control_char_at(p) > 0)
			return true;
	return false;
}

/*
 * An entry name fit for an error message: a refused name may contain line
 * breaks or bytes that are not valid in the server encoding, which must not
 * reach the log or the client raw.  Such bytes are shown as \xNN.
 */
static char *
printable(const char *s)
{
	StringInfoData buf;
	bool		valid = pg_verify_mbstr(GetDatabaseEncoding(), s, strlen(s), true);
	const unsigned char *p = (const unsigned char *) s;

	initStringInfo(&buf);
	while (*p)
	{
		int			k = control_char_at(p);

		if (buf.len > 1024)
		{
			appendStringInfoString(&buf, "...");
			break;
		}
		if (k == 0 && *p >= 0x80 && !valid)
			k = 1;
		if (k > 0)
		{
			for (int i = 0; i < k; i++)
				appendStringInfo(&buf, "\\x%02x", p[i]);
			p += k;
		}
		else
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * Why is entry path p not a safe path, or beyond the limits on paths?
 * NULL if it is fine.  is_dir: p is a directory's (its manifest path has
 * one more byte, the trailing '/').
 */
static const char *
unsafe_path_reason(const char *p, bool is_dir)
{
	size_t		len = strlen(p);
	const char *comp = p;
	const char *problem;

	if (len == 0)
		return "its name is empty";
	if (p[0] == '/')
		return "it is an absolute path";
	if (strchr(p, '\\') != NULL)
		return "its name contains a backslash";
	if (has_control_char(p))
		return "its name contains a control character";
	/* the manifest is text, and clients take names as UTF-8 */
	problem = sms_path_name_problem(p);
	if (problem != NULL)
		return psprintf("its name contains %s", problem);
	if (sms_path_depth(p) > sms_max_path_depth)
		return psprintf("its path is more than %d levels deep (smsdist.max_path_depth)",
						sms_max_path_depth);
	if (len + (is_dir ? 1 : 0) > (size_t) sms_max_path_length)
		return psprintf("its path is longer than %d bytes (smsdist.max_path_length)",
						sms_max_path_length);
	for (;;)
	{
		const char *slash = strchr(comp, '/');
		size_t		clen = slash ? (size_t) (slash - comp) : strlen(comp);

		if (clen == 0)
			return "its name has an empty component";
		if (clen == 1 && comp[0] == '.')
			return "its name has a \".\" component";
		if (clen == 2 && comp[0] == '.' && comp[1] == '.')
			return "its name has a \"..\" component";
		if (clen > NAME_MAX)
			return "a component of its name is longer than 255 bytes";
		if (slash == NULL)
			return NULL;
		comp = slash + 1;
	}
}

/* Does path lie in (or is it) a top-level name the package format reserves? */
static bool
reserved_top_name(const char *path)
{
	static const char *const reserved[] = {SMS_MANIFEST_NAME, SMS_DELTA_NAME};

	for (size_t i = 0; i < lengthof(reserved); i++)
	{
		size_t		n = strlen(reserved[i]);

		if (strncmp(path, reserved[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return true;
	}
	return false;
}

static void
pg_attribute_noreturn()
refuse_entry(Extract *x, const char *path, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("refusing entry \"%s\" of package file \"%s\": %s",
					printable(path), x->archive_path, reason),
			 errdetail("A package file may contain only regular files and directories with relative paths that stay beneath the package directory, each once, followed by the manifest.")));
}

static void
pg_attribute_noreturn()
archive_failed(Extract *x, const char *what)
{
	const char *msg = archive_error_string(x->ar);

	CHECK_FOR_INTERRUPTS();		/* an interrupt stopped the inflater's stream */
	/* a growing file that stopped: libarchive's gzip filter says "truncated" */
	if (x->follow_error != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s", x->follow_error)));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("could not read package file \"%s\": %s%s%s",
					x->archive_path, what,
					msg ? ": " : "", msg ? msg : "")));
}

/* A package file that is readable but does not match its manifest. */
static void
pg_attribute_noreturn()
pg_attribute_printf(2, 3)
mismatch(Extract *x, const char *fmt,...)
{
	StringInfoData detail;

	initStringInfo(&detail);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&detail, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&detail, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("package file \"%s\" does not match its manifest", x->archive_path),
			 errdetail_internal("%s", detail.data)));
}

static void
pg_attribute_noreturn()
hash_failed(Extract *x)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not compute SHA-256 while extracting package file \"%s\": %s",
					x->archive_path, pg_cryptohash_error(x->sha))));
}

/* Hash table of items: the key is a char * pointing to the entry path. */
static uint32
item_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
item_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

static ExtractItem *
find_item(Extract *x, const char *path)
{
	return (ExtractItem *) hash_search(x->items, &path, HASH_FIND, NULL);
}

/*
 * Is there room for one more file or directory?  Called before each is
 * created (entry is the entry being extracted, for the message).
 */
static void
check_room(Extract *x, const char *entry)
{
	if (hash_get_num_entries(x->items) >= sms_max_package_files)
		refuse_entry(x, entry,
					 psprintf("the package holds more than %d files and directories (smsdist.max_package_files)",
							  sms_max_package_files));
}

static ExtractItem *
add_item(Extract *x, const char *path, bool is_dir, bool from_entry, int mode)
{
	char	   *key = pstrdup(path);
	ExtractItem *item;
	bool		found;

	item = (ExtractItem *) hash_search(x->items, &key, HASH_ENTER, &found);
	Assert(!found);
	item->path = key;
	item->is_dir = is_dir;
	item->from_entry = from_entry;
	item->mode = mode;
	item->size = 0;
	memset(item->sha256, 0, sizeof(item->sha256));
	return item;
}

/*
 * A descriptor of directory dir (an entry path, or "" for dest_dir itself),
 * creating the implied directories on the way.  The walk starts at dest_dir
 * and opens every component with O_NOFOLLOW | O_DIRECTORY.  The last
 * directory stays open (x->dir_fd), since archives list the contents of a
 * directory together.  entry is the entry being extracted, for messages.
 */
static int
open_dir(Extract *x, const char *dir, const char *entry)
{
	const char *comp = dir;

	if (dir[0] == '\0')
		return x->dest_fd;
	if (x->dir_rel != NULL && strcmp(x->dir_rel, dir) == 0)
		return x->dir_fd;

	if (x->dir_fd >= 0)
	{
		raw_close(x->dir_fd);
		x->dir_fd = -1;
	}
	x->dir_rel = NULL;

	for (;;)
	{
		const char *slash = strchr(comp, '/');
		size_t		clen = slash ? (size_t) (slash - comp) : strlen(comp);
		char	   *prefix = pnstrdup(dir, (comp - dir) + clen);
		char	   *name = pnstrdup(comp, clen);
		int			cur = x->dir_fd >= 0 ? x->dir_fd : x->dest_fd;
		ExtractItem *item = find_item(x, prefix);
		int			next;

		if (item == NULL)
		{
			check_room(x, entry);
			if (mkdirat(cur, name, S_IRWXU) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not create directory \"%s\" in \"%s\": %m",
								printable(prefix), x->dest_dir)));
			add_item(x, prefix, true, false, 0755);
		}
		else if (!item->is_dir)
			refuse_entry(x, entry,
						 psprintf("\"%s\" is a file, not a directory", printable(prefix)));

		next = raw_openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (next < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open directory \"%s\" in \"%s\": %m",
							printable(prefix), x->dest_dir)));
		if (x->dir_fd >= 0)
			raw_close(x->dir_fd);
		x->dir_fd = next;
		pfree(name);
		pfree(prefix);
		if (slash == NULL)
			break;
		comp = slash + 1;
	}
	x->dir_rel = pstrdup(dir);
	return x->dir_fd;
}


static void
extract_directory(Extract *x, struct archive_entry *entry, const char *path,
				  const char *dir, const char *name)
{
	ExtractItem *item = find_item(x, path);
	int			mode = archive_entry_perm(entry) & 07777;
	int			dfd;

	if (item != NULL)
	{
		if (item->from_entry)
			refuse_entry(x, path, "the archive has more than one entry for it");
		/* an implied directory, created for an earlier entry: fine */
		item->from_entry = true;
		item->mode = mode;
		return;
	}
	dfd = open_dir(x, dir, path);
	check_room(x, path);
	if (mkdirat(dfd, name, S_IRWXU) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\" in \"%s\": %m",
						printable(path), x->dest_dir)));
	add_item(x, path, true, true, mode);
}

static void
extract_file(Extract *x, struct archive_entry *entry, const char *path,
			 const char *dir, const char *name)
{
	ExtractItem *item = find_item(x, path);
	int			dfd;
	int64		declared;

	if (item != NULL)
		refuse_entry(x, path, item->from_entry ?
					 "the archive has more than one entry for it" :
					 "it names a directory that earlier entries are in");

	/*
	 * The entry's declared size bounds what is written for it, and is held
	 * against the limit before anything is: a sparse entry, whose data is
	 * smaller than the file it makes, is refused.
	 */
	if (!archive_entry_size_is_set(entry) || archive_entry_size(entry) < 0)
		refuse_entry(x, path, "its size is not given");
	if (archive_entry_sparse_count(entry) > 0)
		refuse_entry(x, path, "it is a sparse file");
	declared = archive_entry_size(entry);
	if (declared > SMS_MAX_PACKAGE_BYTES - x->total_bytes)
		refuse_entry(x, path,
					 psprintf("its " INT64_FORMAT " bytes would take the package beyond %d MB (smsdist.max_package_size)",
							  declared, sms_max_package_size_mb));
	x->total_bytes += declared;

	dfd = open_dir(x, dir, path);
	check_room(x, path);
	x->file_fd = raw_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
							S_IRUSR | S_IWUSR);
	if (x->file_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\" in \"%s\": %m",
						printable(path), x->dest_dir)));
	item = add_item(x, path, false, true, archive_entry_perm(entry) & 07777);

	if (pg_cryptohash_init(x->sha) < 0)
		hash_failed(x);
	for (;;)
	{
		la_ssize_t	n;

		CHECK_FOR_INTERRUPTS();
		n = archive_read_data(x->ar, x->buf, EXTRACT_BLOCK_SIZE);
		if (n == 0)
			break;
		if (n < 0)
			archive_failed(x, psprintf("entry \"%s\"", printable(path)));
		if (n > declared - item->size)
			refuse_entry(x, path,
						 psprintf("it holds more than the " INT64_FORMAT " bytes its header declares",
								  declared));
		if (pg_cryptohash_update(x->sha, (uint8 *) x->buf, n) < 0)
			hash_failed(x);
		if (!sms_write_all(x->file_fd, x->buf, n))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\" in \"%s\": %m",
							printable(path), x->dest_dir)));
		item->size += n;
	}
	if (pg_cryptohash_final(x->sha, item->sha256, sizeof(item->sha256)) < 0)
		hash_failed(x);

	if (fchmod(x->file_fd, (item->mode & 0777) | S_IRUSR) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set permissions of file \"%s\" in \"%s\": %m",
						printable(path), x->dest_dir)));
	if (archive_entry_mtime_is_set(entry))
	{
		struct timespec ts[2];

		ts[0].tv_sec = 0;
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1].tv_sec = archive_entry_mtime(entry);
		ts[1].tv_nsec = archive_entry_mtime_nsec(entry);
		/* a modification time is a courtesy to clients, not worth an error */
		(void) futimens(x->file_fd, ts);
	}

	/*
	 * No fsync: the extracted tree is a temporary that a crash throws away
	 * (a Despooler that starts removes it and extracts again); the copy that
	 * matters, the published one, is made durable by publish.c with one
	 * syncfs() before it becomes visible.  But the kernel is asked to start
	 * writing the file out now (as PostgreSQL's checkpointer does with
	 * pg_flush_data), so that the syncfs() finds little left to write.
	 */
	pg_flush_data(x->file_fd, 0, 0);
	if (raw_close(x->file_fd) != 0)
	{
		x->file_fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\" in \"%s\": %m",
						printable(path), x->dest_dir)));
	}
	x->file_fd = -1;
}

/*
 * Read a text entry (the manifest, a delta description) into memory.  Its
 * declared size is held against smsdist.max_manifest_size before a byte is
 * read, and memory grows with the bytes that actually come, never by the
 * declaration: a header that declares a gigabyte over a kilobyte of data
 * costs a kilobyte.
 */
static void
read_text_entry(Extract *x, struct archive_entry *entry, const char *name,
				char **text, size_t *len)
{
	la_int64_t	size = archive_entry_size(entry);
	StringInfoData buf;

	if (!archive_entry_size_is_set(entry) || size < 0)
		refuse_entry(x, name, "its size is not given");
	if (archive_entry_sparse_count(entry) > 0)
		refuse_entry(x, name, "it is a sparse file");
	if (size > SMS_MAX_MANIFEST_BYTES)
		refuse_entry(x, name,
					 psprintf("it declares " INT64_FORMAT " bytes, more than %d kB (smsdist.max_manifest_size)",
							  (int64) size, sms_max_manifest_size_kb));
	initStringInfo(&buf);
	for (;;)
	{
		la_ssize_t	n;

		CHECK_FOR_INTERRUPTS();
		n = archive_read_data(x->ar, x->buf, EXTRACT_BLOCK_SIZE);
		if (n < 0)
			archive_failed(x, name);
		if (n == 0)
			break;
		if (n > size - buf.len)
			refuse_entry(x, name, "it holds more bytes than its header declares");
		appendBinaryStringInfo(&buf, x->buf, n);
	}
	if (buf.len != size)
		archive_failed(x, psprintf("%s is truncated", name));
	if (strlen(buf.data) != (size_t) buf.len)
		refuse_entry(x, name, "it contains a NUL byte");
	*text = buf.data;
	*len = buf.len;
}

/* libarchive's read callback over the inflater's stream (no ERROR here) */
static la_ssize_t
inflated_read(struct archive *a, void *client_data, const void **buffer)
{
	Extract    *x = client_data;
	char	   *err = NULL;
	ssize_t		n = sms_inflater_read(x->inflater, buffer, &err);

	if (n < 0)
	{
		x->inflate_error = err;
		archive_set_error(a, EIO, "%s", err);
		return -1;
	}
	return n;
}

/*
 * libarchive's read callback over a file that is still being written: the
 * next bytes, waiting for them (follow) when there are none yet; 0 once
 * the file is whole.  Hashes what it reads.  No ERROR here.
 */
static la_ssize_t
growing_read(struct archive *a, void *client_data, const void **buffer)
{
	Extract    *x = client_data;

	for (;;)
	{
		ssize_t		n = read(x->archive_fd, x->follow_buf, EXTRACT_BLOCK_SIZE);
		char	   *why = NULL;

		if (n > 0)
		{
			if (pg_cryptohash_update(x->follow_sha, (uint8 *) x->follow_buf, n) < 0)
			{
				x->follow_error = pstrdup("could not compute SHA-256");
				break;
			}
			x->follow_offset += n;
			*buffer = x->follow_buf;
			return n;
		}
		if (n < 0)
		{
			if (errno == EINTR || errno == EAGAIN)
				continue;
			x->follow_error = psprintf("could not read: %m");
			break;
		}
		switch (x->follow(x->follow_arg, x->archive_fd, x->follow_offset, &why))
		{
			case SMS_FOLLOW_MORE:
				continue;
			case SMS_FOLLOW_END:
				return 0;
			case SMS_FOLLOW_ABANDON:
				x->follow_error = why ? why : pstrdup("stopped");
				break;
		}
		break;
	}
	archive_set_error(a, EIO, "%s", x->follow_error);
	return -1;
}

/*
 * libarchive's own gzip filter under the tar reader, over the package file
 * (or, with x->follow, over the file as it grows).
 */
static void
open_gzip_filter(Extract *x)
{
	int			r;

	/*
	 * ARCHIVE_WARN here means libarchive lacks zlib and would run an
	 * external gzip program, which we do not want a server process to do.
	 */
	if (archive_read_support_filter_gzip(x->ar) != ARCHIVE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("libarchive was built without zlib support")));
	if (x->follow != NULL)
		r = archive_read_open(x->ar, x, NULL, growing_read, NULL);
	else
		r = archive_read_open_fd(x->ar, x->archive_fd, EXTRACT_BLOCK_SIZE);
	if (r != ARCHIVE_OK)
		archive_failed(x, "not a gzip-compressed tar stream");

	/* one gzip filter under the tar reader; a plain tar is not a package */
	if (archive_filter_count(x->ar) != 2 ||
		archive_filter_code(x->ar, 0) != ARCHIVE_FILTER_GZIP)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("package file \"%s\" is not gzip-compressed", x->archive_path)));
}

static void
extract_open(Extract *x)
{
	DIR		   *dir;
	struct dirent *de;
	bool		empty = true;
	struct stat st;

	dir = AllocateDir(x->dest_dir);
	while ((de = ReadDir(dir, x->dest_dir)) != NULL)
	{
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
		{
			empty = false;
			break;
		}
	}
	FreeDir(dir);
	if (!empty)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot extract package file \"%s\" into \"%s\": the directory is not empty",
						x->archive_path, x->dest_dir)));

	x->dest_fd = OpenTransientFile(x->dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->dest_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", x->dest_dir)));

	/* O_NONBLOCK: a FIFO put in the archive's place must not hang us */
	x->archive_fd = OpenTransientFile(x->archive_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (x->archive_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open package file \"%s\": %m", x->archive_path)));
	if (fstat(x->archive_fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat package file \"%s\": %m", x->archive_path)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("package file \"%s\" is not a regular file", x->archive_path)));

	x->ar = archive_read_new();
	if (x->ar == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));

	/*
	 * A large package is inflated by an inflater process while we read the
	 * tar stream it sends (inflate.c): the two halves of the work run side
	 * by side.  The inflater checks the gzip stream as libarchive would.
	 */
	if (archive_read_support_format_tar(x->ar) != ARCHIVE_OK)
		archive_failed(x, "tar support");
	if (x->follow != NULL)
	{
		/*
		 * A file still being written is inflated here, by libarchive, as it
		 * arrives: the inflater reads a file to its end, which this one
		 * has not reached yet.
		 */
		x->follow_sha = pg_cryptohash_create(PG_SHA256);
		if (x->follow_sha == NULL || pg_cryptohash_init(x->follow_sha) < 0)
			elog(ERROR, "could not initialize SHA-256");
		x->follow_buf = palloc(EXTRACT_BLOCK_SIZE);
		open_gzip_filter(x);
	}
	else if (st.st_size >= SMS_INFLATER_MIN_BYTES &&
		(x->inflater = sms_inflater_start(x->archive_path)) != NULL)
	{
		if (archive_read_open(x->ar, x, NULL, inflated_read, NULL) != ARCHIVE_OK)
			archive_failed(x, "not a gzip-compressed tar stream");
	}
	else
		open_gzip_filter(x);

	x->sha = pg_cryptohash_create(PG_SHA256);
	if (x->sha == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	x->buf = palloc(EXTRACT_BLOCK_SIZE);
}

static void
extract_entries(Extract *x)
{
	struct archive_entry *entry;
	int			r;

	while ((r = archive_read_next_header(x->ar, &entry)) == ARCHIVE_OK ||
		   r == ARCHIVE_WARN)
	{
		const char *name = archive_entry_pathname(entry);
		mode_t		type = archive_entry_filetype(entry);
		char	   *path;
		size_t		len;
		const char *reason;
		char	   *slash;

		CHECK_FOR_INTERRUPTS();
		/* a UTF-8 (pax) name the server's locale cannot represent */
		if (name == NULL)
			name = archive_entry_pathname_utf8(entry);
		if (name == NULL)
			refuse_entry(x, "", "its name cannot be read");

		/* links and special files first: their type is the reason */
		if (archive_entry_hardlink(entry) != NULL)
			refuse_entry(x, name, psprintf("it is a hard link to \"%s\"",
										   printable(archive_entry_hardlink(entry))));
		if (archive_entry_symlink(entry) != NULL || type == AE_IFLNK)
			refuse_entry(x, name, "it is a symbolic link");
		if (type != AE_IFREG && type != AE_IFDIR)
			refuse_entry(x, name,
						 type == AE_IFCHR ? "it is a character device" :
						 type == AE_IFBLK ? "it is a block device" :
						 type == AE_IFIFO ? "it is a FIFO" :
						 type == AE_IFSOCK ? "it is a socket" :
						 "it is neither a regular file nor a directory");
		if (x->manifest_text != NULL)
			refuse_entry(x, name, "it follows the manifest, which must be the last entry");

		if (type == AE_IFREG && strcmp(name, SMS_MANIFEST_NAME) == 0)
		{
			read_text_entry(x, entry, SMS_MANIFEST_NAME, &x->manifest_text, &x->manifest_len);
			continue;
		}
		if (type == AE_IFREG && strcmp(name, SMS_DELTA_NAME) == 0)
		{
			/*
			 * Only a delta, applied to its base, may carry a description:
			 * in a full package the name is refused like any bad entry, so
			 * the package fails with the reason instead of being taken for
			 * a delta whose base is missing and asked for again and again.
			 */
			if (x->base_dir == NULL)
				refuse_entry(x, name,
							 "a full package file may not contain the name reserved for a delta's description");
			if (x->delta_text != NULL)
				refuse_entry(x, name, "the archive has more than one entry for it");
			read_text_entry(x, entry, SMS_DELTA_NAME, &x->delta_text, &x->delta_len);
			continue;
		}

		/* entry path: a directory's name may end in one '/' */
		path = pstrdup(name);
		len = strlen(path);
		if (type == AE_IFDIR && len > 1 && path[len - 1] == '/')
			path[len - 1] = '\0';
		reason = unsafe_path_reason(path, type == AE_IFDIR);
		if (reason != NULL)
			refuse_entry(x, name, reason);
		if (reserved_top_name(path))
			refuse_entry(x, name, "its top-level name is reserved for the manifest and a delta's description");

		/* split into directory ("" for dest_dir) and last component */
		slash = strrchr(path, '/');
		if (slash != NULL)
		{
			char	   *dir = pnstrdup(path, slash - path);

			if (type == AE_IFDIR)
				extract_directory(x, entry, path, dir, slash + 1);
			else
				extract_file(x, entry, path, dir, slash + 1);
			pfree(dir);
		}
		else if (type == AE_IFDIR)
			extract_directory(x, entry, path, "", path);
		else
			extract_file(x, entry, path, "", path);
		pfree(path);
	}
	if (r != ARCHIVE_EOF)
		archive_failed(x, "invalid tar stream");
	if (x->manifest_text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("package file \"%s\" has no manifest", x->archive_path),
				 errdetail("The last entry of a package file must be the manifest, \"%s\".",
						   SMS_MANIFEST_NAME)));
}

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
find_entry(SmsManifestEntry **sorted, int n, const char *key)
{
	int			i = lower_bound(sorted, n, key);

	return (i < n && strcmp(sorted[i]->path, key) == 0) ? sorted[i] : NULL;
}

static char *
hex(const uint8 *digest)
{
	char	   *s = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);

	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(s + 2 * i, "%02x", digest[i]);
	return s;
}

/*
 * Everything extracted must be in the manifest, and equal to it; everything
 * in the manifest must have been extracted.  Returns the items, sorted.
 */
static ExtractItem **
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
			mismatch(x, "The manifest lists \"%s\" twice.", printable(sorted[j]->path));

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
		if (!item->is_dir)
		{
			e = find_entry(sorted, m->nentries, item->path);
			if (e == NULL || e->is_dir)
				mismatch(x, "The archive has a file \"%s\" that the manifest does not list.",
						 printable(item->path));
			if (item->size != e->size)
				mismatch(x, "File \"%s\" is " INT64_FORMAT " bytes long; the manifest says " INT64_FORMAT ".",
						 printable(item->path), item->size, e->size);
			if (memcmp(item->sha256, e->sha256, PG_SHA256_DIGEST_LENGTH) != 0)
				mismatch(x, "The SHA-256 of file \"%s\" is %s; the manifest says %s.",
						 printable(item->path), hex(item->sha256), hex(e->sha256));
			if (item->mode != (e->mode & 07777))
				mismatch(x, "File \"%s\" has mode %04o; the manifest says %04o.",
						 printable(item->path), item->mode, e->mode & 07777);
		}
		else
		{
			char	   *key = psprintf("%s/", item->path);
			int			k;

			e = find_entry(sorted, m->nentries, key);
			if (e != NULL)
			{
				if (item->from_entry && item->mode != (e->mode & 07777))
					mismatch(x, "Directory \"%s\" has mode %04o; the manifest says %04o.",
							 printable(item->path), item->mode, e->mode & 07777);
			}
			else
			{
				/* not listed, so it must hold something that is */
				k = lower_bound(sorted, m->nentries, key);
				if (k >= m->nentries || strncmp(sorted[k]->path, key, strlen(key)) != 0)
					mismatch(x, "The archive has a directory \"%s\" that the manifest neither lists nor implies.",
							 printable(item->path));
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
		item = find_item(x, path);
		if (item == NULL || item->is_dir != e->is_dir)
			mismatch(x, "The manifest lists %s \"%s\", which is not in the archive.",
					 e->is_dir ? "directory" : "file", printable(e->path));
		pfree(path);
	}

	*nitems = n;
	return items;
}

/*
 * Give directories their permissions, now that nothing more is created in
 * them, deepest first.  Not fsynced: the tree is a temporary (see
 * extract_file_data).
 */
static void
finish_directories(Extract *x, ExtractItem **items, int n)
{
	for (int i = n - 1; i >= 0; i--)
	{
		ExtractItem *item = items[i];
		int			fd;
		int			mode;

		if (!item->is_dir)
			continue;
		fd = open_dir(x, item->path, item->path);
		mode = item->from_entry ? ((item->mode & 0777) | S_IRWXU) : 0755;
		if (fchmod(fd, mode) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not set permissions of directory \"%s\" in \"%s\": %m",
							printable(item->path), x->dest_dir)));
	}
}

/* Release everything; on the error path too, so it must not fail. */
static void
extract_cleanup(Extract *x)
{
	if (x->file_fd >= 0)
		raw_close(x->file_fd);
	x->file_fd = -1;
	if (x->dir_fd >= 0)
		raw_close(x->dir_fd);
	x->dir_fd = -1;
	if (x->ar != NULL)
		archive_read_free(x->ar);
	x->ar = NULL;
	if (x->archive_fd >= 0)
		CloseTransientFile(x->archive_fd);
	x->archive_fd = -1;
	if (x->dest_fd >= 0)
		CloseTransientFile(x->dest_fd);
	x->dest_fd = -1;
	if (x->sha != NULL)
		pg_cryptohash_free(x->sha);
	x->sha = NULL;
	if (x->base_file_fd >= 0)
		raw_close(x->base_file_fd);
	x->base_file_fd = -1;
	if (x->base_fd >= 0)
		CloseTransientFile(x->base_fd);
	x->base_fd = -1;
	sms_inflater_stop(x->inflater);
	x->inflater = NULL;
	if (x->follow_sha != NULL)
		pg_cryptohash_free(x->follow_sha);
	x->follow_sha = NULL;
}

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
	int			dfd;
	char	   *dir;
	const char *name;

	/* open the base file, component by component */
	while ((slash = strchr(comp, '/')) != NULL)
	{
		char	   *c = pnstrdup(comp, slash - comp);
		int			next = raw_openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);

		if (next < 0)
			base_unusable(x, "directory of \"%s\" cannot be opened: %m", printable(e->path));
		if (opened >= 0)
			raw_close(opened);
		opened = cur = next;
		pfree(c);
		comp = slash + 1;
	}
	x->base_file_fd = raw_openat(cur, comp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
	if (opened >= 0)
		raw_close(opened);
	if (x->base_file_fd < 0)
		base_unusable(x, "file \"%s\" cannot be opened: %m", printable(e->path));
	if (fstat(x->base_file_fd, &st) != 0 || !S_ISREG(st.st_mode))
		base_unusable(x, "\"%s\" is not a regular file", printable(e->path));

	/* create it in dest_dir */
	slash = strrchr(e->path, '/');
	dir = slash ? pnstrdup(e->path, slash - e->path) : pstrdup("");
	name = slash ? slash + 1 : e->path;
	if (find_item(x, e->path) != NULL)
		refuse_entry(x, e->path, "the delta both sends it and keeps it");
	dfd = open_dir(x, dir, e->path);
	check_room(x, e->path);
	x->file_fd = raw_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
							S_IRUSR | S_IWUSR);
	if (x->file_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\" in \"%s\": %m",
						printable(e->path), x->dest_dir)));
	item = add_item(x, e->path, false, true, e->mode & 07777);

	if (pg_cryptohash_init(x->sha) < 0)
		hash_failed(x);
	for (;;)
	{
		ssize_t		n;

		CHECK_FOR_INTERRUPTS();
		n = read(x->base_file_fd, x->buf, EXTRACT_BLOCK_SIZE);
		if (n == 0)
			break;
		if (n < 0)
			base_unusable(x, "file \"%s\" cannot be read: %m", printable(e->path));
		/* never more than the new manifest declares for it */
		if (n > e->size - item->size)
			base_unusable(x, "file \"%s\" there is larger than the " INT64_FORMAT " bytes the new version keeps",
						  printable(e->path), e->size);
		if (pg_cryptohash_update(x->sha, (uint8 *) x->buf, n) < 0)
			hash_failed(x);
		if (!sms_write_all(x->file_fd, x->buf, n))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\" in \"%s\": %m",
							printable(e->path), x->dest_dir)));
		item->size += n;
	}
	if (pg_cryptohash_final(x->sha, item->sha256, sizeof(item->sha256)) < 0)
		hash_failed(x);
	if (item->size != e->size || memcmp(item->sha256, e->sha256, PG_SHA256_DIGEST_LENGTH) != 0)
		base_unusable(x, "file \"%s\" there is not the one the new version keeps (" INT64_FORMAT " bytes, SHA-256 %s; expected " INT64_FORMAT " bytes, SHA-256 %s)",
					  printable(e->path), item->size, hex(item->sha256), e->size, hex(e->sha256));

	if (fchmod(x->file_fd, (item->mode & 0777) | S_IRUSR) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set permissions of file \"%s\" in \"%s\": %m",
						printable(e->path), x->dest_dir)));
	{
		struct timespec ts[2];

		ts[0].tv_sec = 0;
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1] = st.st_mtim;
		(void) futimens(x->file_fd, ts);
	}
	/* no fsync, as for an extracted file: see extract_file */
	raw_close(x->base_file_fd);
	x->base_file_fd = -1;
	if (raw_close(x->file_fd) != 0)
	{
		x->file_fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\" in \"%s\": %m",
						printable(e->path), x->dest_dir)));
	}
	x->file_fd = -1;
	pfree(dir);
}

/* Does the (sorted) manifest list path? */
static bool
manifest_lists(const SmsManifest *m, const char *path)
{
	int			lo = 0,
				hi = m->nentries;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(m->entries[mid].path, path);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * A delta: check its description against the manifest, then copy every
 * file the archive did not carry from the base tree.  Linear in the sizes
 * of the description and the manifest (but for the binary searches), and
 * interruptible between any two paths.
 */
static void
apply_delta(Extract *x)
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
		if (manifest_lists(m, path))
			mismatch(x, "The delta deletes \"%s\", which the manifest lists.", printable(path));
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
		if (e->is_dir || find_item(x, e->path) != NULL)
			continue;
		copy_from_base(x, e);
	}
}

/*
 * A growing file after the tar stream's end: the rest of it (the tar's
 * padding, the last member's trailer), read as it arrives, and the SHA-256
 * of the whole file.
 */
static void
growing_finish(Extract *x, char *file_sha256)
{
	const void *data;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	la_ssize_t	n;

	while ((n = growing_read(x->ar, x, &data)) > 0)
		CHECK_FOR_INTERRUPTS();
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not read package file \"%s\": %s", x->archive_path, x->follow_error)));
	if (pg_cryptohash_final(x->follow_sha, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256");
	if (file_sha256)
		sms_sha256_digest_hex(digest, file_sha256);
}

static SmsManifest *
extract_internal(const char *archive_path, const char *dest_dir,
				 const char *base_dir, int base_version, bool *was_delta,
				 SmsFollowFn follow, void *follow_arg, char *file_sha256)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext workcxt;
	Extract    *x;
	SmsManifest *manifest;
	HASHCTL		ctl;

	workcxt = AllocSetContextCreate(CurrentMemoryContext,
									"smsdist package extraction",
									ALLOCSET_DEFAULT_SIZES);
	x = MemoryContextAllocZero(workcxt, sizeof(Extract));
	x->archive_path = MemoryContextStrdup(workcxt, archive_path);
	x->dest_dir = MemoryContextStrdup(workcxt, dest_dir);
	x->archive_fd = x->dest_fd = x->dir_fd = x->file_fd = -1;
	x->base_fd = x->base_file_fd = -1;
	x->base_dir = base_dir ? MemoryContextStrdup(workcxt, base_dir) : NULL;
	x->base_version = base_version;
	x->follow = follow;
	x->follow_arg = follow_arg;

	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(ExtractItem);
	ctl.hash = item_hash;
	ctl.match = item_match;
	ctl.hcxt = workcxt;
	x->items = hash_create("smsdist extracted items", 1024, &ctl,
						   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);

	MemoryContextSwitchTo(workcxt);
	PG_TRY();
	{
		ExtractItem **items;
		int			nitems;

		extract_open(x);
		extract_entries(x);
		if (x->follow != NULL)
			growing_finish(x, file_sha256);
		else if (x->inflater != NULL)
		{
			char		sha[SMS_SHA256_HEX_LEN + 1];

			/* the rest of the stream (the tar's padding) inflates cleanly too */
			sms_inflater_finish(x->inflater, x->archive_path, sha);
			x->inflater = NULL;
			if (file_sha256)
				strlcpy(file_sha256, sha, SMS_SHA256_HEX_LEN + 1);
		}
		else if (file_sha256)
		{
			int64		size;

			/* a small file, inflated here: read it once more */
			if (!sms_sha256_fd(x->archive_fd, file_sha256, &size))
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read package file \"%s\": %m", x->archive_path)));
		}

		MemoryContextSwitchTo(callercxt);
		x->manifest = sms_manifest_parse(x->manifest_text, x->manifest_len,
										 psprintf("package file \"%s\"",
												  archive_path));
		MemoryContextSwitchTo(workcxt);

		/* what the manifest declares, against the limits, before any copy */
		if (x->manifest->nentries > sms_max_package_files)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("package file \"%s\" lists %d files and directories, more than %d (smsdist.max_package_files)",
							archive_path, x->manifest->nentries, sms_max_package_files)));
		if (x->manifest->total_bytes > SMS_MAX_PACKAGE_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("package file \"%s\" declares " INT64_FORMAT " bytes of files, more than %d MB (smsdist.max_package_size)",
							archive_path, x->manifest->total_bytes, sms_max_package_size_mb)));
		if (x->delta_text != NULL)
			apply_delta(x);
		items = extract_verify(x, &nitems);
		finish_directories(x, items, nitems);
	}
	PG_CATCH();
	{
		extract_cleanup(x);
		MemoryContextSwitchTo(callercxt);
		MemoryContextDelete(workcxt);
		PG_RE_THROW();
	}
	PG_END_TRY();

	extract_cleanup(x);
	manifest = x->manifest;
	if (was_delta)
		*was_delta = x->delta_text != NULL;
	MemoryContextSwitchTo(callercxt);
	MemoryContextDelete(workcxt);
	return manifest;
}

SmsManifest *
sms_archive_extract(const char *archive_path, const char *dest_dir, char *file_sha256)
{
	return extract_internal(archive_path, dest_dir, NULL, 0, NULL, NULL, NULL, file_sha256);
}

SmsManifest *
sms_archive_extract_growing(const char *archive_path, const char *dest_dir,
							SmsFollowFn follow, void *follow_arg, char *file_sha256)
{
	return extract_internal(archive_path, dest_dir, NULL, 0, NULL, follow, follow_arg,
							file_sha256);
}

SmsManifest *
sms_archive_extract_delta(const char *archive_path, const char *dest_dir,
						  const char *base_dir, int base_version, bool *was_delta,
						  char *file_sha256)
{
	return extract_internal(archive_path, dest_dir, base_dir, base_version, was_delta,
							NULL, NULL, file_sha256);
}

/*
 * smsdist_extract_package(archive text, dest text) RETURNS text: extract a
 * package file into an existing empty directory and return its manifest.
 * For tests and repairs; it reads and writes server files, so it needs the
 * privileges of pg_read_server_files and pg_write_server_files.  On ERROR
 * dest is left as it was, for inspection.
 */
PG_FUNCTION_INFO_V1(smsdist_extract_package);
Datum
smsdist_extract_package(PG_FUNCTION_ARGS)
{
	char	   *archive = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *dest = text_to_cstring(PG_GETARG_TEXT_PP(1));
	SmsManifest *m;

	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES) ||
		!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to extract a package file"),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" and \"pg_write_server_files\" roles may read and write files on the server.")));
	sms_valid_server_path(archive, "package file path", true);
	sms_valid_server_path(dest, "destination directory", true);

	m = sms_archive_extract(archive, dest, NULL);
	PG_RETURN_TEXT_P(cstring_to_text(sms_manifest_to_text(m)));
}
