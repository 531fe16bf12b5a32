/*-------------------------------------------------------------------------
 *
 * file_util.c
 *	  File helpers of the package modules (see file_util.h for the terms).
 *
 * Every directory walk here works on descriptors (openat, unlinkat, all
 * with O_NOFOLLOW) rather than path names, so a symbolic link planted in a
 * tree is never followed: the removal unlinks the link itself.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "file_util.h"

#include <sys/statvfs.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

/*
 * Write all of buf, retrying short writes and EINTR.  false with errno set
 * on failure (a write that makes no progress is taken as a full disk).
 */
bool
sms_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n;

		errno = 0;
		n = write(fd, buf, len);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return false;
		}
		if (n == 0)
		{
			/* no progress and no error: assume the disk is full */
			errno = ENOSPC;
			return false;
		}
		buf += n;
		len -= n;
	}
	return true;
}


int
sms_openat_external(int dirfd, const char *name, int flags, mode_t mode)
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

int
sms_close_external(int fd)
{
	int			rc = close(fd);
	int			save_errno = errno;

	ReleaseExternalFD();
	errno = save_errno;
	return rc;
}

int
sms_fdset_openat(SmsFdSet *s, int dirfd, const char *name, int flags, mode_t mode)
{
	int			fd;

	/* room first, so that a descriptor is never left unrecorded */
	if (s->nfds == s->maxfds)
	{
		s->maxfds = Max(16, s->maxfds * 2);
		s->fds = s->fds ? repalloc(s->fds, sizeof(int) * s->maxfds) :
			palloc(sizeof(int) * s->maxfds);
	}
	fd = sms_openat_external(dirfd, name, flags, mode);
	if (fd < 0)
		return -1;
	s->fds[s->nfds++] = fd;
	return fd;
}

int
sms_fdset_close(SmsFdSet *s, int fd)
{
	for (int i = s->nfds - 1; i >= 0; i--)
	{
		if (s->fds[i] == fd)
		{
			s->fds[i] = s->fds[--s->nfds];
			break;
		}
	}
	return sms_close_external(fd);
}

/* On every exit path; must not fail. */
void
sms_fdset_close_all(SmsFdSet *s)
{
	if (s->dir != NULL)
	{
		closedir(s->dir);
		ReleaseExternalFD();
		s->dir = NULL;
	}
	while (s->nfds > 0)
	{
		close(s->fds[--s->nfds]);
		ReleaseExternalFD();
	}
}

/*
 * The names in directory dirfd, except "." and "..", read to the end before
 * anything is changed in it.  false, with errno set, if it cannot be read.
 */
bool
sms_list_names(SmsFdSet *s, int dirfd, List **names)
{
	int			fd;
	int			save_errno;
	struct dirent *de;

	*names = NIL;
	/* a fresh open: fdopendir() would take over dirfd and its offset */
	ReserveExternalFD();
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (s->dir = fdopendir(fd)) == NULL)
	{
		save_errno = errno;
		if (fd >= 0)
			close(fd);
		ReleaseExternalFD();
		errno = save_errno;
		return false;
	}
	for (;;)
	{
		errno = 0;
		de = readdir(s->dir);
		if (de == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		*names = lappend(*names, pstrdup(de->d_name));
	}
	save_errno = errno;
	closedir(s->dir);
	s->dir = NULL;
	ReleaseExternalFD();
	if (save_errno != 0)
	{
		list_free_deep(*names);
		*names = NIL;
		errno = save_errno;
		return false;
	}
	return true;
}


/*
 * One directory of a removal in progress: its name in its parent, its
 * identity (to check the way back up), the names still to remove in it,
 * and whether everything in it could be removed.
 */
typedef struct RemoveLevel
{
	char	   *name;
	char	   *path;			/* for messages */
	dev_t		dev;
	ino_t		ino;
	List	   *names;
	int			next;			/* index into names */
	bool		ok;
} RemoveLevel;

/*
 * Open directory name in dirfd for emptying it: O_NOFOLLOW, with rwx for
 * us (fchmod works only if it is ours anyway).  -1 with errno on failure.
 */
static int
open_for_removal(SmsFdSet *s, int dirfd, const char *name, struct stat *st)
{
	int			fd;

	fd = sms_fdset_openat(s, dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (fd < 0 && errno == EACCES &&
		fchmodat(dirfd, name, S_IRWXU, AT_SYMLINK_NOFOLLOW) == 0)
		fd = sms_fdset_openat(s, dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) != 0)
	{
		int			save_errno = errno;

		sms_fdset_close(s, fd);
		errno = save_errno;
		return -1;
	}
	if ((st->st_mode & S_IRWXU) != S_IRWXU)
		(void) fchmod(fd, (st->st_mode & 07777) | S_IRWXU);
	return fd;
}


/* What enter_level found of a name */
typedef enum EnterResult
{
	ENTER_GONE,					/* removed, or absent */
	ENTER_FAILED,				/* could not be removed: reported */
	ENTER_OPENED				/* a directory, opened to be emptied */
} EnterResult;

/*
 * Remove name in dirfd if it is not a directory; if it is, open it and
 * list it: *level describes it and *fd is its descriptor.  Most entries are
 * files, so unlinking is tried first (Linux says EISDIR otherwise).
 */
static EnterResult
enter_level(SmsFdSet *s, int dirfd, const char *name, const char *path, int elevel,
			RemoveLevel **level, int *fd)
{
	int			unlink_errno;
	struct stat st;
	RemoveLevel *l;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return ENTER_GONE;
	unlink_errno = errno;
	if (unlink_errno != EISDIR && unlink_errno != EPERM)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", path)));
		return ENTER_FAILED;
	}

	*fd = open_for_removal(s, dirfd, name, &st);
	if (*fd < 0)
	{
		if (errno == ENOENT)
			return ENTER_GONE;
		/* not a directory after all: the unlink's error is the one */
		if (errno == ENOTDIR || errno == ELOOP)
			errno = unlink_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not remove \"%s\": %m", path)));
		return ENTER_FAILED;
	}

	l = palloc0(sizeof(RemoveLevel));
	l->name = pstrdup(name);
	l->path = pstrdup(path);
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->ok = true;
	if (!sms_list_names(s, *fd, &l->names))
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not read directory \"%s\": %m", path)));
		sms_fdset_close(s, *fd);
		pfree(l->name);
		pfree(l->path);
		pfree(l);
		return ENTER_FAILED;
	}
	*level = l;
	return ENTER_OPENED;
}

/*
 * Go back up from the emptied directory top (*fd) to its parent up, by
 * "..", and remove top there.  false if ".." is not up (the tree was
 * moved meanwhile): the removal stops, whatever elevel says.
 */
static bool
leave_level(SmsFdSet *s, int *fd, RemoveLevel *top, RemoveLevel *up, const char *path,
			int elevel)
{
	struct stat st;
	int			ufd = sms_fdset_openat(s, *fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);

	if (ufd < 0 || fstat(ufd, &st) != 0 ||
		st.st_dev != up->dev || st.st_ino != up->ino)
	{
		int			save_errno = errno;

		if (ufd >= 0)
			sms_fdset_close(s, ufd);
		sms_fdset_close(s, *fd);
		errno = save_errno;
		ereport(elevel,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not remove \"%s\": its directory \"%s\" was moved while it was removed",
						path, up->path)));
		return false;
	}
	sms_fdset_close(s, *fd);
	*fd = ufd;
	if (top->ok && unlinkat(*fd, top->name, AT_REMOVEDIR) != 0 && errno != ENOENT)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not remove directory \"%s\": %m", top->path)));
		top->ok = false;
	}
	if (!top->ok)
		up->ok = false;
	list_free_deep(top->names);
	pfree(top->path);
	pfree(top);
	return true;
}

/*
 * The walk holds one directory descriptor, however deep the tree: it goes
 * down with openat(O_NOFOLLOW) and back up with openat(".."), checking that
 * ".." is the directory it came from (device and inode), so a directory
 * moved meanwhile stops the removal instead of leading it elsewhere.  The
 * names of each directory on the way are kept in memory, not descriptors:
 * a tree thousands of levels deep cannot run us out of them.
 */
bool
sms_remove_at(SmsFdSet *s, int dirfd, const char *name, const char *path, int elevel)
{
	int			fd;
	List	   *stack;			/* of RemoveLevel *, deepest last */
	RemoveLevel *top;
	bool		ok = true;

	/* not while cleaning up after an error: a cancel would interrupt that */
	if (elevel >= ERROR)
		CHECK_FOR_INTERRUPTS();

	switch (enter_level(s, dirfd, name, path, elevel, &top, &fd))
	{
		case ENTER_GONE:
			return true;
		case ENTER_FAILED:
			return false;
		case ENTER_OPENED:
			break;
	}
	stack = list_make1(top);

	while (stack != NIL)
	{
		top = llast(stack);

		if (elevel >= ERROR)
			CHECK_FOR_INTERRUPTS();

		if (top->next < list_length(top->names))
		{
			char	   *child = list_nth(top->names, top->next++);
			char	   *child_path = psprintf("%s/%s", top->path, child);
			RemoveLevel *down;
			int			cfd;
			EnterResult r = enter_level(s, fd, child, child_path, elevel, &down, &cfd);

			pfree(child_path);
			if (r == ENTER_FAILED)
				top->ok = false;
			if (r != ENTER_OPENED)
				continue;
			/* one descriptor: the parent is found again through ".." */
			sms_fdset_close(s, fd);
			fd = cfd;
			stack = lappend(stack, down);
			continue;
		}

		/* top is empty (or what is left in it could not be removed) */
		stack = list_delete_last(stack);
		if (stack != NIL)
		{
			if (!leave_level(s, &fd, top, llast(stack), path, elevel))
				return false;
			continue;
		}
		/* the directory we started from: dirfd is its parent */
		sms_fdset_close(s, fd);
		if (top->ok && unlinkat(dirfd, top->name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		{
			ereport(elevel,
					(errcode_for_file_access(),
					 errmsg("could not remove directory \"%s\": %m", top->path)));
			top->ok = false;
		}
		ok = top->ok;
	}
	return ok;
}

/* sms_remove_tree, its problems reported at elevel; true if all is gone */
static bool
remove_tree(const char *path, int elevel)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = false;
	MemoryContext workcxt;
	const char *slash = strrchr(path, '/');
	const char *last;
	char	   *parent;
	int			parent_fd;
	SmsFdSet   *s;

	if (path[0] != '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("refusing to remove \"%s\": it is not an absolute path", path)));
	last = slash + 1;
	if (*last == '\0' || strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("refusing to remove \"%s\": it does not end in a file name", path)));

	/* the parent is the caller's and may be reached through links; not below */
	parent = slash == path ? pstrdup("/") : pnstrdup(path, slash - path);
	parent_fd = OpenTransientFile(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (parent_fd < 0)
	{
		if (errno == ENOENT)
			return true;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", parent)));
		return false;
	}

	workcxt = AllocSetContextCreate(CurrentMemoryContext, "smsdist remove tree",
									ALLOCSET_SMALL_SIZES);
	s = MemoryContextAllocZero(workcxt, sizeof(SmsFdSet));
	MemoryContextSwitchTo(workcxt);
	PG_TRY();
	{
		ok = sms_remove_at(s, parent_fd, last, path, elevel);
	}
	PG_FINALLY();
	{
		sms_fdset_close_all(s);
		CloseTransientFile(parent_fd);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(workcxt);
	}
	PG_END_TRY();
	return ok;
}


void
sms_remove_tree(const char *path)
{
	(void) remove_tree(path, ERROR);
}

bool
sms_remove_tree_or_warn(const char *path)
{
	return remove_tree(path, WARNING);
}


/* ---------------------------------------------------------------------
 * Full disks
 * ---------------------------------------------------------------------
 */

bool
sms_error_is_disk_full(ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_DISK_FULL)
		return true;
	return edata->message != NULL &&
		(strstr(edata->message, "No space left on device") != NULL ||
		 strstr(edata->message, "Disk quota exceeded") != NULL);
}

int64
sms_free_bytes(const char *path)
{
	struct statvfs fs;

	if (statvfs(path, &fs) != 0)
		return -1;
	return (int64) fs.f_bavail * (int64) fs.f_frsize;
}

char *
sms_disk_full_reason(const char *what, const char *path, int64 needed, const char *error)
{
	int64		free_bytes = sms_free_bytes(path);
	char	   *free_text;

	free_text = free_bytes >= 0 ?
		psprintf("%lld bytes free", (long long) free_bytes) :
		pstrdup("free space unknown");
	if (needed >= 0)
		return psprintf("the %s \"%s\" is full (%s, %lld bytes needed): %s",
						what, path, free_text, (long long) needed, error);
	return psprintf("the %s \"%s\" is full (%s): %s", what, path, free_text, error);
}
