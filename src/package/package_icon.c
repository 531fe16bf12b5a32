/*-------------------------------------------------------------------------
 *
 * package_icon.c
 *	  A package's icon, read from a published tree for the Offer Manager
 *	  (see package_icon.h for the terms).
 *
 * The tree is on a distribution point, which other people may write to:
 * every component of the path is opened with O_NOFOLLOW from the one
 * before, so that neither the file nor a directory on its way can be a
 * symbolic link out of the tree (to /etc/passwd, say), and the file must be
 * a regular file, no larger than the limit, before a byte of it is read.
 * The limit is checked again on what was read: the file may grow between
 * the fstat and the read.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_icon.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_util.h"
#include "formats/icon_file.h"
#include "package_manifest.h"

/* Why an open of a path component failed, for an administrator. */
static char *
open_problem(int err, const char *what)
{
	if (err == ELOOP || err == EMLINK)
		return psprintf("%s is a symbolic link", what);
	if (err == ENOENT)
		return psprintf("%s is not in the package", what);
	if (err == ENOTDIR)
		return psprintf("%s is not a directory", what);
	return psprintf("%s cannot be opened: %s", what, strerror(err));
}

/* Read all of the regular file fd, at most limit + 1 bytes. */
static bool
read_limited(int fd, size_t limit, char **buf, size_t *len, char **problem)
{
	char	   *b = palloc(limit + 2);
	size_t		n = 0;

	for (;;)
	{
		ssize_t		r = read(fd, b + n, limit + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			*problem = psprintf("the icon cannot be read: %m");
			pfree(b);
			return false;
		}
		if (r == 0 || (n += r) > limit)
			break;
	}
	*buf = b;
	*len = n;
	return true;
}

bool
sms_read_package_icon(const char *tree, const char *icon_file, char **buf, size_t *len,
					  char **problem)
{
	SmsFdSet	fds = {0};
	char	   *rest = pstrdup(icon_file);
	char	   *what = psprintf("the icon \"%s\"", sms_path_printable(icon_file));
	char	   *slash;
	char		err[256];
	struct stat st;
	int			dir;
	int			fd;
	bool		ok = false;

	*buf = NULL;
	*len = 0;
	*problem = NULL;
	if ((dir = sms_fdset_openat(&fds, AT_FDCWD, tree, O_RDONLY | O_DIRECTORY, 0)) < 0)
	{
		*problem = psprintf("the published tree \"%s\" cannot be opened: %m", tree);
		goto done;
	}
	/* the directories on the way, each without following a link */
	while ((slash = strchr(rest, '/')) != NULL)
	{
		*slash = '\0';
		fd = sms_fdset_openat(&fds, dir, rest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (fd < 0)
		{
			int			e = errno;

			/* O_DIRECTORY says ENOTDIR for a link too: tell which */
			if (e == ENOTDIR && fstatat(dir, rest, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				e = ELOOP;
			*problem = open_problem(e, psprintf("the directory \"%s\" of %s", sms_path_printable(rest), what));
			goto done;
		}
		dir = fd;
		rest = slash + 1;
	}
	/* O_NONBLOCK: a FIFO put there must not hold the step */
	if ((fd = sms_fdset_openat(&fds, dir, rest, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0)) < 0)
		*problem = open_problem(errno, what);
	else if (fstat(fd, &st) != 0)
		*problem = psprintf("%s cannot be examined: %m", what);
	else if (!S_ISREG(st.st_mode))
		*problem = psprintf("%s is not a regular file", what);
	else if (st.st_size > SMS_FMT_ICON_MAX_BYTES)
		*problem = psprintf("%s is larger than %d bytes (%lld bytes)", what,
							SMS_FMT_ICON_MAX_BYTES, (long long) st.st_size);
	else if (read_limited(fd, SMS_FMT_ICON_MAX_BYTES, buf, len, problem))
	{
		if (sms_icon_check((const unsigned char *) *buf, *len, err, sizeof(err)))
			ok = true;
		else
		{
			*problem = psprintf("%s was refused: %s", what, err);
			pfree(*buf);
			*buf = NULL;
		}
	}
done:
	sms_fdset_close_all(&fds);
	return ok;
}
