/*-------------------------------------------------------------------------
 *
 * extract_tree.c
 *	  Creating the extracted tree under dest_dir: the entry paths allowed,
 *	  the errors of an extraction, and the files and directories made,
 *	  never outside dest_dir (the terms are package_extract.c's).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "extract_internal.h"
#include "message_text.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_util.h"

#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

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
char *
extract_printable(const char *s)
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
const char *
extract_unsafe_path_reason(const char *p, bool is_dir)
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
bool
extract_reserved_top_name(const char *path)
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


void
extract_refuse_entry(Extract *x, const char *path, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("refusing entry \"%s\" of package file \"%s\": %s",
					extract_printable(path), x->archive_path, reason),
			 errdetail("A package file may contain only regular files, directories and relative symbolic links with relative paths that stay beneath the package directory, each once, followed by the manifest.")));
}

void
extract_archive_failed(Extract *x, const char *what)
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
void
extract_mismatch(Extract *x, const char *fmt,...)
{
	char	   *detail;

	{
		va_list		args;

		va_start(args, fmt);
		detail = sms_vformat(fmt, args);
		va_end(args);
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("package file \"%s\" does not match its manifest", x->archive_path),
			 errdetail_internal("%s", detail)));
}

void
extract_hash_failed(Extract *x)
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

/* The items of one extraction, in cxt. */
HTAB *
extract_items_create(MemoryContext cxt)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(ExtractItem);
	ctl.hash = item_hash;
	ctl.match = item_match;
	ctl.hcxt = cxt;
	return hash_create("smsdist extracted items", 1024, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

ExtractItem *
extract_find_item(Extract *x, const char *path)
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
		extract_refuse_entry(x, entry,
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
	item->is_link = false;
	item->target = NULL;
	item->from_entry = from_entry;
	item->mode = mode;
	item->size = 0;
	memset(item->sha256, 0, sizeof(item->sha256));
	return item;
}


/*
 * Create the regular file path (name in directory dir) under dest_dir as
 * x->file_fd, and its item with the given mode; its hash begins.
 */
ExtractItem *
extract_create_file(Extract *x, const char *path, const char *dir, const char *name, int mode)
{
	int			dfd = extract_open_dir(x, dir, path);
	ExtractItem *item;

	check_room(x, path);
	x->file_fd = sms_openat_external(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
									 S_IRUSR | S_IWUSR);
	if (x->file_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\" in \"%s\": %m",
						extract_printable(path), x->dest_dir)));
	item = add_item(x, path, false, true, mode);
	if (pg_cryptohash_init(x->sha) < 0)
		extract_hash_failed(x);
	return item;
}

/* Write n more bytes of the file being created, hashing them. */
void
extract_write_block(Extract *x, ExtractItem *item, const char *path, const char *data, size_t n)
{
	if (pg_cryptohash_update(x->sha, (const uint8 *) data, n) < 0)
		extract_hash_failed(x);
	if (!sms_write_all(x->file_fd, data, n))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\" in \"%s\": %m",
						extract_printable(path), x->dest_dir)));
	item->size += n;
}

/*
 * Finish the file being created: its permissions (always readable by the
 * owner, see the header comment of package_extract.c), its modification
 * time if mtime is given (a courtesy to clients, not worth an error), and
 * close it.
 */
void
extract_close_file(Extract *x, ExtractItem *item, const char *path, const struct timespec *mtime)
{
	if (fchmod(x->file_fd, (item->mode & 0777) | S_IRUSR) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set permissions of file \"%s\" in \"%s\": %m",
						extract_printable(path), x->dest_dir)));
	if (mtime != NULL)
	{
		struct timespec ts[2];

		ts[0].tv_sec = 0;
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1] = *mtime;
		(void) futimens(x->file_fd, ts);
	}
	if (sms_close_external(x->file_fd) != 0)
	{
		x->file_fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\" in \"%s\": %m",
						extract_printable(path), x->dest_dir)));
	}
	x->file_fd = -1;
}

/*
 * A descriptor of directory dir (an entry path, or "" for dest_dir itself),
 * creating the implied directories on the way.  The walk starts at dest_dir
 * and opens every component with O_NOFOLLOW | O_DIRECTORY.  The last
 * directory stays open (x->dir_fd), since archives list the contents of a
 * directory together.  entry is the entry being extracted, for messages.
 */
int
extract_open_dir(Extract *x, const char *dir, const char *entry)
{
	const char *comp = dir;

	if (dir[0] == '\0')
		return x->dest_fd;
	if (x->dir_rel != NULL && strcmp(x->dir_rel, dir) == 0)
		return x->dir_fd;

	if (x->dir_fd >= 0)
	{
		sms_close_external(x->dir_fd);
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
		ExtractItem *item = extract_find_item(x, prefix);
		int			next;

		if (item == NULL)
		{
			check_room(x, entry);
			if (mkdirat(cur, name, S_IRWXU) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not create directory \"%s\" in \"%s\": %m",
								extract_printable(prefix), x->dest_dir)));
			add_item(x, prefix, true, false, 0755);
		}
		else if (!item->is_dir)
			extract_refuse_entry(x, entry,
						 psprintf("\"%s\" is a %s, not a directory", extract_printable(prefix),
								  item->is_link ? "symbolic link" : "file"));

		next = sms_openat_external(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (next < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open directory \"%s\" in \"%s\": %m",
							extract_printable(prefix), x->dest_dir)));
		if (x->dir_fd >= 0)
			sms_close_external(x->dir_fd);
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


void
extract_directory(Extract *x, struct archive_entry *entry, const char *path,
				  const char *dir, const char *name)
{
	ExtractItem *item = extract_find_item(x, path);
	int			mode = archive_entry_perm(entry) & 07777;
	int			dfd;

	if (item != NULL)
	{
		if (item->from_entry)
			extract_refuse_entry(x, path, "the archive has more than one entry for it");
		/* an implied directory, created for an earlier entry: fine */
		item->from_entry = true;
		item->mode = mode;
		return;
	}
	dfd = extract_open_dir(x, dir, path);
	check_room(x, path);
	if (mkdirat(dfd, name, S_IRWXU) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\" in \"%s\": %m",
						extract_printable(path), x->dest_dir)));
	add_item(x, path, true, true, mode);
}

void
extract_file(Extract *x, struct archive_entry *entry, const char *path,
			 const char *dir, const char *name)
{
	ExtractItem *item = extract_find_item(x, path);
	int64		declared;

	if (item != NULL)
		extract_refuse_entry(x, path, item->from_entry ?
					 "the archive has more than one entry for it" :
					 "it names a directory that earlier entries are in");

	/*
	 * The entry's declared size bounds what is written for it, and is held
	 * against the limit before anything is: a sparse entry, whose data is
	 * smaller than the file it makes, is refused.
	 */
	if (!archive_entry_size_is_set(entry) || archive_entry_size(entry) < 0)
		extract_refuse_entry(x, path, "its size is not given");
	if (archive_entry_sparse_count(entry) > 0)
		extract_refuse_entry(x, path, "it is a sparse file");
	declared = archive_entry_size(entry);
	if (declared > SMS_MAX_PACKAGE_BYTES - x->total_bytes)
		extract_refuse_entry(x, path,
					 psprintf("its " INT64_FORMAT " bytes would take the package beyond %d MB (smsdist.max_package_size)",
							  declared, sms_max_package_size_mb));
	x->total_bytes += declared;

	item = extract_create_file(x, path, dir, name, archive_entry_perm(entry) & 07777);
	for (;;)
	{
		la_ssize_t	n;

		CHECK_FOR_INTERRUPTS();
		n = archive_read_data(x->ar, x->buf, EXTRACT_BLOCK_SIZE);
		if (n == 0)
			break;
		if (n < 0)
			extract_archive_failed(x, psprintf("entry \"%s\"", extract_printable(path)));
		if (n > declared - item->size)
			extract_refuse_entry(x, path,
						 psprintf("it holds more than the " INT64_FORMAT " bytes its header declares",
								  declared));
		extract_write_block(x, item, path, x->buf, n);
	}
	if (pg_cryptohash_final(x->sha, item->sha256, sizeof(item->sha256)) < 0)
		extract_hash_failed(x);

	/*
	 * No fsync: the extracted tree is a temporary that a crash throws away
	 * (a Despooler that starts removes it and extracts again); the copy that
	 * matters, the published one, is made durable by publish.c with one
	 * syncfs() before it becomes visible.  But the kernel is asked to start
	 * writing the file out now (as PostgreSQL's checkpointer does with
	 * pg_flush_data), so that the syncfs() finds little left to write.
	 */
	pg_flush_data(x->file_fd, 0, 0);
	if (archive_entry_mtime_is_set(entry))
	{
		struct timespec mtime;

		mtime.tv_sec = archive_entry_mtime(entry);
		mtime.tv_nsec = archive_entry_mtime_nsec(entry);
		extract_close_file(x, item, path, &mtime);
	}
	else
		extract_close_file(x, item, path, NULL);
}


/* SmsIsLinkFn over the items extracted so far. */
static bool
item_is_link(void *arg, const char *path)
{
	ExtractItem *item = extract_find_item((Extract *) arg, path);

	return item != NULL && item->is_link;
}

/*
 * A symbolic link entry: its target is held to the link rule against the
 * links extracted so far (and against the whole manifest once it is read),
 * and it is created with symlinkat() in a directory reached without
 * following links, so nothing is ever written through it.
 */
void
extract_link(Extract *x, const char *target, const char *path,
			 const char *dir, const char *name)
{
	ExtractItem *item = extract_find_item(x, path);
	const char *problem;
	int			dfd;

	if (item != NULL)
		extract_refuse_entry(x, path, item->from_entry ?
					 "the archive has more than one entry for it" :
					 "it names a directory that earlier entries are in");
	problem = sms_link_target_problem(path, target, item_is_link, x);
	if (problem != NULL)
		extract_refuse_entry(x, path,
					 psprintf("it is a symbolic link to \"%s\": %s", extract_printable(target), problem));
	dfd = extract_open_dir(x, dir, path);
	check_room(x, path);
	if (symlinkat(target, dfd, name) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create symbolic link \"%s\" in \"%s\": %m",
						extract_printable(path), x->dest_dir)));
	item = add_item(x, path, false, true, 0777);
	item->is_link = true;
	item->target = pstrdup(target);
}
