/*-------------------------------------------------------------------------
 *
 * file_tree.c
 *	  Files and directories below a root, never through a link.
 *
 * The download cache is filled from shares that other people control and
 * its programs run as root, so every walk here refuses to follow a
 * symbolic link: one planted on a share or in the cache is an error, not
 * a way out of the tree.  "root" is the directory a relative path ("rel")
 * is taken under.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_tree.h"

char *
path_join(const char *a, const char *b)
{
	size_t		n = strlen(a) + strlen(b) + 2;
	char	   *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

bool
remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

bool
make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0)
		return errno == EEXIST;
	return chmod(path, mode) == 0;
}

bool
make_dirs(const char *root, const char *rel, mode_t mode)
{
	char		buf[MAX_PATH_LEN];
	size_t		rl = strlen(root);

	if (rl + strlen(rel) + 2 > sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s/%s", root, rel);
	for (char *p = buf + rl + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (!make_dir(buf, mode))
			return false;
		*p = '/';
	}
	if (buf[strlen(buf) - 1] != '/' && !make_dir(buf, mode))
		return false;
	return true;
}

/*
 * Every component is opened with O_NOFOLLOW.  The last one is looked at
 * before it is opened: a FIFO or a device is never opened, so it can
 * neither hang the agent nor act on a device.
 */
int
open_beneath(const char *root, const char *rel)
{
	int			dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char		buf[MAX_PATH_LEN];
	char	   *c = buf;

	if (dfd < 0 || strlen(rel) >= sizeof(buf))
	{
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	strcpy(buf, rel);
	for (;;)
	{
		char	   *slash = strchr(c, '/');
		struct stat st;
		int			fd;

		if (slash)
			*slash = '\0';
		else
		{
			int			rc = fstatat(dfd, c, &st, AT_SYMLINK_NOFOLLOW);

			if (rc != 0 || !S_ISREG(st.st_mode))
			{
				int			e = rc != 0 ? errno : (S_ISLNK(st.st_mode) ? ELOOP : EINVAL);

				close(dfd);
				errno = e;
				return -1;
			}
		}
		fd = openat(dfd, c, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (slash ? O_DIRECTORY : 0));
		close(dfd);
		if (fd < 0 || !slash)
			return fd;
		dfd = fd;
		c = slash + 1;
	}
}

int
open_dir_beneath(const char *root, const char *rel)
{
	int			dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char		buf[MAX_PATH_LEN];
	char	   *save = NULL;

	if (dfd < 0 || strlen(rel) >= sizeof(buf))
	{
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	strcpy(buf, rel);
	for (char *c = strtok_r(buf, "/", &save); c && dfd >= 0; c = strtok_r(NULL, "/", &save))
	{
		int			fd = openat(dfd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		close(dfd);
		dfd = fd;
	}
	return dfd;
}

/* Copy the regular file a to b with mode, fsync'd. */
static bool
copy_file(const char *a, const char *b, mode_t mode)
{
	int			in = open(a, O_RDONLY | O_NOFOLLOW);
	int			out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	char		buf[65536];
	ssize_t		r = 0;
	bool		ok;

	if (out >= 0 && fchmod(out, mode) != 0)
	{
		close(out);
		out = -1;
	}
	while (in >= 0 && out >= 0 && (r = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t) r) != r)
		{
			r = -1;
			break;
		}
	ok = in >= 0 && out >= 0 && r == 0 && fsync(out) == 0;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ok;
}

/* A copy's modification time: st's, on the name itself (never through a link). */
static bool
copy_time(const char *b, const struct stat *st)
{
	return utimensat(AT_FDCWD, b, (struct timespec[2]) {{0, UTIME_OMIT}, st->st_mtim}, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Copy the symbolic link a to b: its target as it is, never followed. */
static bool
copy_link(const char *a, const char *b)
{
	char		target[MAX_PATH_LEN];
	ssize_t		len = readlink(a, target, sizeof(target) - 1);

	if (len < 0)
		return false;
	target[len] = '\0';
	return symlink(target, b) == 0;
}

bool
copy_tree(const char *from, const char *to, mode_t dir_mode)
{
	DIR		   *d = opendir(from);
	struct dirent *de;
	struct stat top;
	bool		ok = true;

	if (d == NULL || lstat(from, &top) != 0 || !make_dir(to, dir_mode))
	{
		if (d)
			closedir(d);
		return false;
	}
	while (ok && (de = readdir(d)) != NULL)
	{
		char	   *a,
				   *b;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		a = path_join(from, de->d_name);
		b = path_join(to, de->d_name);
		if (!a || !b || lstat(a, &st) != 0)
			ok = false;
		else if (S_ISDIR(st.st_mode))
			ok = copy_tree(a, b, dir_mode);
		else if (S_ISREG(st.st_mode))
			ok = copy_file(a, b, st.st_mode & 0755) && copy_time(b, &st);	/* never writable by group or others */
		else if (S_ISLNK(st.st_mode))
			ok = copy_link(a, b) && copy_time(b, &st);
		free(a);
		free(b);
	}
	closedir(d);
	/* the directory's setgid and sticky bits, and its time once it is full */
	return ok && chmod(to, dir_mode | (top.st_mode & (S_ISGID | S_ISVTX))) == 0 && copy_time(to, &top);
}
