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
 *					for it (a version 1 manifest lists only empty directories,
 *					version 2 every one).
 *	item			what this extraction created, file, directory or link, kept in
 *					a hash table keyed by its entry path: it finds duplicates
 *					and is compared with the manifest at the end.
 *
 * How nothing escapes dest_dir: entry paths must be safe paths, and every
 * path is created by walking its components from a descriptor of dest_dir
 * with openat(O_DIRECTORY | O_NOFOLLOW), the last component being created
 * with openat(O_CREAT | O_EXCL | O_NOFOLLOW) or mkdirat().  So even a
 * symbolic link that appeared on disk behind our back is never followed,
 * and nothing that already exists is ever written to.  Only regular files,
 * directories and symbolic links are created; a link's target must follow
 * the link rule (package_manifest.h), checked when it is created and again
 * against the whole manifest, and a link is made with symlinkat() and never
 * followed, since every later entry is reached with O_NOFOLLOW: an entry
 * below a link is refused.  Hard links, devices, FIFOs and sockets in the
 * archive are refused, as is anything after the manifest.
 *
 * The manifest is the last entry, so it is known only once every file is on
 * disk: each file is hashed while it is written, and everything is compared
 * at the end.  Until sms_archive_extract returns, dest_dir's contents are not
 * to be trusted; on ERROR the caller removes it (sms_remove_tree).
 *
 * Permissions: files and directories get the permission bits of their
 * entries (which must equal the manifest's): files without setuid, setgid
 * and sticky, directories with setgid and sticky but never setuid, and
 * always with the owner's read bit (files) or rwx (directories): the server
 * must be able to read, publish and later remove what it extracted.
 * Implied directories without an entry get the manifest's mode (version
 * 2), or 0755.  Times: with a version 2 manifest, every file, link and
 * directory gets the manifest's modification time, directories after
 * everything in them, deepest first (extract_finish_directories).
 *
 * The work is shared by the files of this module (extract_internal.h):
 * this one reads the archive and drives the extraction; extract_tree.c
 * creates what it holds under dest_dir; extract_verify.c compares that with
 * the manifest; extract_delta.c completes a delta from its base tree.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "validate.h"
#include "inflate.h"
#include "extract_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_util.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

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
		extract_refuse_entry(x, name, "its size is not given");
	if (archive_entry_sparse_count(entry) > 0)
		extract_refuse_entry(x, name, "it is a sparse file");
	if (size > SMS_MAX_MANIFEST_BYTES)
		extract_refuse_entry(x, name,
					 psprintf("it declares " INT64_FORMAT " bytes, more than %d kB (smsdist.max_manifest_size)",
							  (int64) size, sms_max_manifest_size_kb));
	initStringInfo(&buf);
	for (;;)
	{
		la_ssize_t	n;

		CHECK_FOR_INTERRUPTS();
		n = archive_read_data(x->ar, x->buf, EXTRACT_BLOCK_SIZE);
		if (n < 0)
			extract_archive_failed(x, name);
		if (n == 0)
			break;
		if (n > size - buf.len)
			extract_refuse_entry(x, name, "it holds more bytes than its header declares");
		appendBinaryStringInfo(&buf, x->buf, n);
	}
	if (buf.len != size)
		extract_archive_failed(x, psprintf("%s is truncated", name));
	if (strlen(buf.data) != (size_t) buf.len)
		extract_refuse_entry(x, name, "it contains a NUL byte");
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
		extract_archive_failed(x, "not a gzip-compressed tar stream");

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
		extract_archive_failed(x, "tar support");
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
			extract_archive_failed(x, "not a gzip-compressed tar stream");
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
		const char *target = NULL;
		char	   *path;
		size_t		len;
		const char *reason;
		char	   *slash;

		CHECK_FOR_INTERRUPTS();
		/* a UTF-8 (pax) name the server's locale cannot represent */
		if (name == NULL)
			name = archive_entry_pathname_utf8(entry);
		if (name == NULL)
			extract_refuse_entry(x, "", "its name cannot be read");

		/* links and special files first: their type is the reason */
		if (archive_entry_hardlink(entry) != NULL)
			extract_refuse_entry(x, name, psprintf("it is a hard link to \"%s\"",
										   extract_printable(archive_entry_hardlink(entry))));
		if (type == AE_IFLNK)
		{
			target = archive_entry_symlink(entry);
			if (target == NULL)
				target = archive_entry_symlink_utf8(entry);
			if (target == NULL)
				extract_refuse_entry(x, name, "it is a symbolic link whose target cannot be read");
		}
		else if (archive_entry_symlink(entry) != NULL)
			extract_refuse_entry(x, name, "it has a link target but is not a symbolic link");
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
			extract_refuse_entry(x, name,
						 type == AE_IFCHR ? "it is a character device" :
						 type == AE_IFBLK ? "it is a block device" :
						 type == AE_IFIFO ? "it is a FIFO" :
						 type == AE_IFSOCK ? "it is a socket" :
						 "it is neither a regular file nor a directory");
		if (x->manifest_text != NULL)
			extract_refuse_entry(x, name, "it follows the manifest, which must be the last entry");

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
				extract_refuse_entry(x, name,
							 "a full package file may not contain the name reserved for a delta's description");
			if (x->delta_text != NULL)
				extract_refuse_entry(x, name, "the archive has more than one entry for it");
			read_text_entry(x, entry, SMS_DELTA_NAME, &x->delta_text, &x->delta_len);
			continue;
		}

		/* entry path: a directory's name may end in one '/' */
		path = pstrdup(name);
		len = strlen(path);
		if (type == AE_IFDIR && len > 1 && path[len - 1] == '/')
			path[len - 1] = '\0';
		reason = extract_unsafe_path_reason(path, type == AE_IFDIR);
		if (reason != NULL)
			extract_refuse_entry(x, name, reason);
		if (extract_reserved_top_name(path))
			extract_refuse_entry(x, name, "its top-level name is reserved for the manifest and a delta's description");

		/* split into directory ("" for dest_dir) and last component */
		slash = strrchr(path, '/');
		if (slash != NULL)
		{
			char	   *dir = pnstrdup(path, slash - path);

			if (type == AE_IFDIR)
				extract_directory(x, entry, path, dir, slash + 1);
			else if (type == AE_IFLNK)
				extract_link(x, target, path, dir, slash + 1);
			else
				extract_file(x, entry, path, dir, slash + 1);
			pfree(dir);
		}
		else if (type == AE_IFDIR)
			extract_directory(x, entry, path, "", path);
		else if (type == AE_IFLNK)
			extract_link(x, target, path, "", path);
		else
			extract_file(x, entry, path, "", path);
		pfree(path);
	}
	if (r != ARCHIVE_EOF)
		extract_archive_failed(x, "invalid tar stream");
	if (x->manifest_text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("package file \"%s\" has no manifest", x->archive_path),
				 errdetail("The last entry of a package file must be the manifest, \"%s\".",
						   SMS_MANIFEST_NAME)));
}

/* Release everything; on the error path too, so it must not fail. */
static void
extract_cleanup(Extract *x)
{
	if (x->file_fd >= 0)
		sms_close_external(x->file_fd);
	x->file_fd = -1;
	if (x->dir_fd >= 0)
		sms_close_external(x->dir_fd);
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
		sms_close_external(x->base_file_fd);
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

	x->items = extract_items_create(workcxt);

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
			extract_apply_delta(x);
		items = extract_verify(x, &nitems);
		extract_finish_directories(x, items, nitems);
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
