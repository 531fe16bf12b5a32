/*-------------------------------------------------------------------------
 *
 * source_walk.c
 *	  The first pass of a package build over its source tree (see
 *	  source_walk.h for the terms).
 *
 * The source directory itself is opened normally (it is an administrator's
 * server path and may lie below a symbolic link such as /srv -> /data/srv);
 * nothing below it is ever followed: every directory is opened relative to
 * its parent's path from the source directory with O_NOFOLLOW, and checked
 * to be the directory the walk saw in its parent.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "source_walk.h"
#include "source_roots.h"

#include <fcntl.h>
#include <unistd.h>

#include "package_manifest.h"

#include "miscadmin.h"
#include "utils/memutils.h"

/* paths a failed build lists by name; the rest are counted */
#define PROBLEMS_LISTED 100

/* What a package source may hold (docs/packages.md). */
#define SOURCE_HINT "A package source may contain only regular files, directories and relative symbolic links that stay inside it, that the server can read, with valid names, and no setuid bit (nor setgid or sticky bit on a file)."

/* The first size of the entries array; it doubles as needed. */
#define FIRST_MAX_ENTRIES 256

/* The source changed under us: the builder retries on this message. */
void
sms_source_changed(const char *source_dir, const char *relpath, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("file \"%s\" changed while the package was being compressed",
					sms_path_printable(relpath)),
			 errdetail("In package source \"%s\": %s.", source_dir, why),
			 errhint("Do not change a package source while its package is being built.")));
}

/* ------------------------------------------------------------------------
 * One directory
 * ------------------------------------------------------------------------
 */

static int
walk_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const SmsWalkEntry *) a)->path, ((const SmsWalkEntry *) b)->path);
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
walk_problem(SmsSourceWalk *w, int sqlerrcode, const char *relpath, const char *reason,
			 const char *message, const char *detail, const char *hint)
{
	if (w->nproblems == 0)
	{
		initStringInfo(&w->problems);
		w->first_errcode = sqlerrcode;
		w->first_message = pstrdup(message);
		w->first_detail = detail ? pstrdup(detail) : NULL;
		w->first_hint = hint ? pstrdup(hint) : NULL;
	}
	if (w->nproblems < PROBLEMS_LISTED)
		appendStringInfo(&w->problems, "%s\"%s\" (%s)",
						 w->nproblems > 0 ? "; " : "", sms_path_printable(relpath), reason);
	w->nproblems++;
}

/* After the walk: the paths it could not package, all in one error. */
static void
walk_problems_raise(SmsSourceWalk *w)
{
	if (w->nproblems == 0)
		return;
	if (w->nproblems == 1)
		ereport(ERROR,
				(errcode(w->first_errcode),
				 errmsg_internal("%s", w->first_message),
				 w->first_detail ? errdetail_internal("%s", w->first_detail) : 0,
				 w->first_hint ? errhint("%s", w->first_hint) : 0));
	if (w->nproblems > PROBLEMS_LISTED)
		ereport(ERROR,
				(errcode(w->first_errcode),
				 errmsg("package source \"%s\" has %d paths that cannot be packaged: %s; and %d more",
						w->source_dir, w->nproblems, w->problems.data, w->nproblems - PROBLEMS_LISTED),
				 errhint("%s", SOURCE_HINT)));
	ereport(ERROR,
			(errcode(w->first_errcode),
			 errmsg("package source \"%s\" has %d paths that cannot be packaged: %s",
					w->source_dir, w->nproblems, w->problems.data),
			 errhint("A package source may contain only regular files and directories that the server can read, with valid names.")));
}

/*
 * Refuse anything but a regular file, a directory or a symbolic link, naming
 * what it is, and a mode that cannot be distributed: false (recorded) if
 * refused.
 */
static bool
check_file_type(SmsSourceWalk *w, const char *relpath, mode_t mode)
{
	const char *what;

	if (S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode))
	{
		const char *problem = sms_mode_problem(mode & 07777, S_ISDIR(mode), S_ISLNK(mode));

		if (problem == NULL)
			return true;
		walk_problem(w, ERRCODE_INVALID_PARAMETER_VALUE, relpath, psprintf("mode %04o: %s", (int) (mode & 07777), problem),
					 psprintf("package source \"%s\" contains \"%s\" with mode %04o: %s",
							  w->source_dir, sms_path_printable(relpath), (int) (mode & 07777), problem),
					 NULL, SOURCE_HINT);
		return false;
	}
	else if (S_ISCHR(mode) || S_ISBLK(mode))
		what = "a device file";
	else if (S_ISFIFO(mode))
		what = "a FIFO";
	else if (S_ISSOCK(mode))
		what = "a socket";
	else
		what = "a file of unknown type";

	walk_problem(w, ERRCODE_INVALID_PARAMETER_VALUE, relpath, what,
				 psprintf("package source \"%s\" contains %s: \"%s\"",
						  w->source_dir, what, sms_path_printable(relpath)),
				 NULL, SOURCE_HINT);
	return false;
}

/*
 * Open directory dirpath of the tree (see walk_directory) for listing, as
 * w->dir.  false if it cannot be read: recorded as a problem, its contents
 * skipped.
 */
static bool
open_walk_directory(SmsSourceWalk *w, const char *dirpath, int parent)
{
	struct stat st;
	size_t		dirlen = strlen(dirpath);
	int			fd;

	if (parent < 0)
		fd = openat(w->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else
	{
		/* without the trailing '/', which would make O_NOFOLLOW follow */
		char	   *name = pnstrdup(dirpath, dirlen - 1);

		fd = openat(w->root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		pfree(name);
	}
	if (fd < 0)
	{
		if (parent >= 0 && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR))
			sms_source_changed(w->source_dir, dirpath, "it was removed or replaced");
		if (parent >= 0)
		{
			/* an unreadable directory: named with the others, its contents skipped */
			int			save_errno = errno;
			char	   *reason = psprintf("could not open directory: %s", strerror(save_errno));

			walk_problem(w, errcode_for_file_access_code(save_errno), dirpath, reason,
						 psprintf("could not open directory \"%s\" in package source \"%s\": %s",
								  sms_path_printable(dirpath), w->source_dir, strerror(save_errno)),
						 NULL, NULL);
			return false;
		}
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\" in package source \"%s\": %m",
						parent < 0 ? "." : sms_path_printable(dirpath), w->source_dir)));
	}
	w->dir_fd = fd;

	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat directory \"%s\" in package source \"%s\": %m",
						parent < 0 ? "." : sms_path_printable(dirpath), w->source_dir)));
	if (parent >= 0 &&
		(st.st_dev != w->entries[parent].dev || st.st_ino != w->entries[parent].ino))
		sms_source_changed(w->source_dir, dirpath, "it was replaced");

	w->dir = fdopendir(fd);
	if (w->dir == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read directory \"%s\" in package source \"%s\": %m",
						parent < 0 ? "." : sms_path_printable(dirpath), w->source_dir)));
	w->dir_fd = -1;			/* now w->dir's */
	return true;
}

/*
 * One name found in directory dirpath (parent as for walk_directory), st
 * filled from its lstat: its relative path (a directory's ending in '/') if
 * it can be packaged, else NULL, the problem recorded.  The limits on the
 * whole package raise an ERROR at once.
 */
static char *
walk_check(SmsSourceWalk *w, const char *dirpath, int parent, const char *name,
		   struct stat *st, char **target)
{
	const char *problem;
	char	   *relpath = psprintf("%s%s", dirpath, name);


	if (parent < 0 && (strcmp(name, SMS_MANIFEST_NAME) == 0 ||
					   strcmp(name, SMS_DELTA_NAME) == 0))
	{
		walk_problem(w, ERRCODE_INVALID_PARAMETER_VALUE, relpath, "a reserved name at the top level",
					 psprintf("package source \"%s\" contains \"%s\" at its top level",
							  w->source_dir, name),
					 "That name is reserved for the package's manifest and delta description.", NULL);
		return NULL;
	}
	problem = sms_path_name_problem(name);
	if (problem != NULL)
	{
		walk_problem(w, ERRCODE_INVALID_PARAMETER_VALUE, relpath, psprintf("a name with %s", problem),
					 psprintf("package source \"%s\" contains a name with %s: \"%s\"",
							  w->source_dir, problem, sms_path_printable(relpath)),
					 "Names in a package must be valid UTF-8 without control characters or backslashes.", NULL);
		return NULL;
	}

	if (fstatat(dirfd(w->dir), name, st, AT_SYMLINK_NOFOLLOW) != 0)
	{
		int			save_errno = errno;

		if (errno == ENOENT)
			sms_source_changed(w->source_dir, relpath, "it was removed while its directory was read");
		walk_problem(w, errcode_for_file_access_code(save_errno), relpath,
					 psprintf("could not stat: %s", strerror(save_errno)),
					 psprintf("could not stat \"%s\" in package source \"%s\": %s",
							  sms_path_printable(relpath), w->source_dir, strerror(save_errno)),
					 NULL, NULL);
		return NULL;
	}
	if (!check_file_type(w, relpath, st->st_mode))
		return NULL;
	*target = NULL;
	if (S_ISLNK(st->st_mode))
	{
		char		buf[SMS_PATH_LENGTH_CEILING + 1];
		ssize_t		n = readlinkat(dirfd(w->dir), name, buf, sizeof(buf));

		if (n < 0 && (errno == ENOENT || errno == EINVAL))
			sms_source_changed(w->source_dir, relpath, "it was removed or replaced while its directory was read");
		if (n < 0 || n >= (ssize_t) sizeof(buf))
		{
			int			save_errno = errno;

			walk_problem(w, n < 0 ? errcode_for_file_access_code(save_errno) : ERRCODE_PROGRAM_LIMIT_EXCEEDED, relpath,
						 n < 0 ? psprintf("could not read link: %s", strerror(save_errno)) :
						 "a symbolic link with a target too long",
						 psprintf("could not read symbolic link \"%s\" in package source \"%s\"",
								  sms_path_printable(relpath), w->source_dir),
						 NULL, NULL);
			return NULL;
		}
		buf[n] = '\0';
		*target = pnstrdup(buf, n);
	}
	/* a file the server cannot read: named now, with every other one */
	if (S_ISREG(st->st_mode) && faccessat(dirfd(w->dir), name, R_OK, AT_EACCESS) != 0 &&
		errno != ENOENT)
	{
		int			save_errno = errno;

		walk_problem(w, errcode_for_file_access_code(save_errno), relpath,
					 psprintf("could not open: %s", strerror(save_errno)),
					 psprintf("could not open file \"%s\" in package source \"%s\": %s",
							  sms_path_printable(relpath), w->source_dir, strerror(save_errno)),
					 NULL, NULL);
		return NULL;
	}
	if (S_ISDIR(st->st_mode))
	{
		char	   *dirname = psprintf("%s/", relpath);

		pfree(relpath);
		relpath = dirname;
	}
	/* the limits, before anything is written (docs/packages.md) */
	if (strlen(relpath) > (size_t) sms_max_path_length)
	{
		walk_problem(w, ERRCODE_PROGRAM_LIMIT_EXCEEDED, relpath,
					 psprintf("longer than %d bytes", sms_max_path_length),
					 psprintf("package source \"%s\" contains a path longer than %d bytes: \"%s\"",
							  w->source_dir, sms_max_path_length, sms_path_printable(relpath)),
					 NULL, "The limit is smsdist.max_path_length.");
		return NULL;
	}
	if (sms_path_depth(relpath) > sms_max_path_depth)
	{
		walk_problem(w, ERRCODE_PROGRAM_LIMIT_EXCEEDED, relpath,
					 psprintf("more than %d levels deep", sms_max_path_depth),
					 psprintf("package source \"%s\" contains a path more than %d levels deep: \"%s\"",
							  w->source_dir, sms_max_path_depth, sms_path_printable(relpath)),
					 NULL, "The limit is smsdist.max_path_depth.");
		return NULL;
	}
	if (w->nentries >= sms_max_package_files)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("package source \"%s\" holds more than %d files and directories",
						w->source_dir, sms_max_package_files),
				 errdetail("The walk had come to \"%s\".", sms_path_printable(relpath)),
				 errhint("The limit is smsdist.max_package_files.")));
	if (S_ISREG(st->st_mode))
	{
		w->total_bytes += st->st_size;
		if (w->total_bytes > SMS_MAX_PACKAGE_BYTES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("package source \"%s\" holds more than %d MB",
							w->source_dir, sms_max_package_size_mb),
					 errdetail("The walk had come to \"%s\" (" INT64_FORMAT " bytes).",
							   sms_path_printable(relpath), (int64) st->st_size),
					 errhint("The limit is smsdist.max_package_size.")));
	}
	Assert(sms_safe_relative_path(relpath));
	return relpath;
}

/*
 * List one directory of the tree (dirpath "" is the source directory
 * itself, otherwise a walk entry's path ending in '/') and append its
 * entries.  parent is that directory's walk entry, or -1 for the root.
 */
static void
walk_directory(SmsSourceWalk *w, const char *dirpath, int parent)
{
	struct stat st;
	struct dirent *de;
	int			nchildren = 0;

	if (!open_walk_directory(w, dirpath, parent))
		return;
	for (;;)
	{
		char	   *relpath;
		char	   *target = NULL;
		SmsWalkEntry *we;

		CHECK_FOR_INTERRUPTS();

		errno = 0;
		de = readdir(w->dir);
		if (de == NULL)
		{
			if (errno != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read directory \"%s\" in package source \"%s\": %m",
								parent < 0 ? "." : sms_path_printable(dirpath), w->source_dir)));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		relpath = walk_check(w, dirpath, parent, de->d_name, &st, &target);
		if (relpath == NULL)
			continue;

		if (w->nentries == w->maxentries)
		{
			w->maxentries *= 2;
			w->entries = repalloc_huge(w->entries, sizeof(SmsWalkEntry) * w->maxentries);
		}
		we = &w->entries[w->nentries++];
		we->path = relpath;
		we->mode = st.st_mode;
		we->mtime = st.st_mtim;
		we->target = target;
		we->size = S_ISREG(st.st_mode) ? st.st_size : 0;
		we->dev = st.st_dev;
		we->ino = st.st_ino;
		we->nchildren = 0;
		nchildren++;
	}

	closedir(w->dir);
	w->dir = NULL;
	if (parent >= 0)
		w->entries[parent].nchildren = nchildren;
}


/* ------------------------------------------------------------------------
 * The whole walk
 * ------------------------------------------------------------------------
 */

void
sms_walk_init(SmsSourceWalk *w, const char *source_dir)
{
	memset(w, 0, sizeof(*w));
	w->source_dir = source_dir;
	w->root_fd = -1;
	w->dir_fd = -1;
}

bool
sms_walk_listed(const SmsWalkEntry *we)
{
	return true;
}

/* SmsIsLinkFn over the sorted entries of a walk. */
static bool
walk_is_link(void *arg, const char *path)
{
	SmsSourceWalk *w = (SmsSourceWalk *) arg;
	SmsWalkEntry key;
	SmsWalkEntry *we;

	key.path = (char *) path;
	we = bsearch(&key, w->entries, w->nentries, sizeof(SmsWalkEntry), walk_entry_cmp);
	return we != NULL && S_ISLNK(we->mode);
}

/* Every link must follow the link rule: the others named with the problems. */
static void
walk_check_links(SmsSourceWalk *w)
{
	for (int i = 0; i < w->nentries; i++)
	{
		SmsWalkEntry *we = &w->entries[i];
		const char *problem;

		if (!S_ISLNK(we->mode))
			continue;
		problem = sms_link_target_problem(we->path, we->target, walk_is_link, w);
		if (problem == NULL)
			continue;
		walk_problem(w, ERRCODE_INVALID_PARAMETER_VALUE, we->path,
					 psprintf("a symbolic link to \"%s\": %s", sms_path_printable(we->target), problem),
					 psprintf("package source \"%s\" contains a symbolic link that cannot be distributed: \"%s\" -> \"%s\": %s",
							  w->source_dir, sms_path_printable(we->path),
							  sms_path_printable(we->target), problem),
					 NULL, SOURCE_HINT);
	}
}

void
sms_walk_source(SmsSourceWalk *w)
{
	int64		manifest_bytes = 0;

	w->root_fd = open(w->source_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->root_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open package source \"%s\": %m", w->source_dir)));
	/* the directory opened, whatever led to it, must be one allowed */
	sms_check_source_directory(w->source_dir, w->root_fd);

	/* breadth first; entries appended while we go are visited too */
	w->maxentries = FIRST_MAX_ENTRIES;
	w->entries = palloc(sizeof(SmsWalkEntry) * w->maxentries);
	walk_directory(w, "", -1);
	for (int i = 0; i < w->nentries; i++)
	{
		if (S_ISDIR(w->entries[i].mode))
			walk_directory(w, w->entries[i].path, i);
	}

	/*
	 * Manifest order.  With a directory's path ending in '/', plain strcmp
	 * order puts every directory before its contents.
	 */
	qsort(w->entries, w->nentries, sizeof(SmsWalkEntry), walk_entry_cmp);
	walk_check_links(w);
	walk_problems_raise(w);
	manifest_bytes = sms_manifest_header_bytes();

	/* the manifest's size, from the walk: refused before the tar is begun */
	for (int i = 0; i < w->nentries; i++)
	{
		SmsWalkEntry *we = &w->entries[i];

		if (!sms_walk_listed(we))
			continue;
		w->nlisted++;
		manifest_bytes += sms_manifest_line_bytes(we->path,
												  S_ISREG(we->mode) ? (int64) we->size :
												  S_ISLNK(we->mode) ? (int64) strlen(we->target) : 0,
												  &we->mtime, we->target);
	}
	if (manifest_bytes > SMS_MAX_MANIFEST_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the manifest of package source \"%s\" would be " INT64_FORMAT " bytes, more than %d kB",
						w->source_dir, manifest_bytes, sms_max_manifest_size_kb),
				 errhint("The limit is smsdist.max_manifest_size.")));
}

void
sms_walk_release(SmsSourceWalk *w)
{
	if (w->dir != NULL)
	{
		closedir(w->dir);
		w->dir = NULL;
	}
	if (w->dir_fd >= 0)
	{
		close(w->dir_fd);
		w->dir_fd = -1;
	}
	if (w->root_fd >= 0)
	{
		close(w->root_fd);
		w->root_fd = -1;
	}
}
