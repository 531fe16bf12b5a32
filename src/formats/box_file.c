/*-------------------------------------------------------------------------
 *
 * box_file.c
 *	  The files in the box directories: their names, writing one so that
 *	  it appears whole or not at all, and reading one safely.
 *
 * The client agent reads these directories over a network share that
 * others may write to, so a reader trusts neither the name nor the kind
 * of a file: it refuses names that could climb out of the directory, and
 * anything but a regular file of at most SMS_FMT_MAX_FILE bytes.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "box_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ini.h"
#include "values.h"

#define MAX_FILE_NAME		200 /* leaves room for ".<name>.tmp.<pid>" */

/*
 * A file name in a box directory: one component that cannot climb out
 * (no '/', no ".."), is not hidden (the leading dot is how our temporary
 * files are told apart) and cannot break a log line.
 */
bool
sms_fmt_valid_file_name(const char *name)
{
	const unsigned char *p;

	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
		strlen(name) > MAX_FILE_NAME || strchr(name, '/') != NULL ||
		strstr(name, "..") != NULL)
		return false;
	for (p = (const unsigned char *) name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* ----------------------------------------------------------------
 * Files
 * ----------------------------------------------------------------
 */
bool
sms_fmt_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			if (n == 0)
				errno = EIO;
			return false;
		}
		buf += n;
		len -= (size_t) n;
	}
	return true;
}

static bool
check_file_name(const char *name, char *err, size_t errlen)
{
	char		q[100];

	if (sms_fmt_valid_file_name(name))
		return true;
	sms_fmt_error(err, errlen, "invalid file name \"%s\": it must be 1 to %d bytes without '/', \"..\" or control characters, and not start with '.'",
			sms_fmt_quote(name, q, sizeof(q)), MAX_FILE_NAME);
	return false;
}

/* The directory, for the *at() calls on a valid name in it; -1 on failure. */
static int
open_box(const char *dir, const char *name, char *err, size_t errlen)
{
	int			dfd;

	if (!check_file_name(name, err, errlen))
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		sms_fmt_error(err, errlen, "could not open directory \"%s\": %s", dir, strerror(errno));
	return dfd;
}

bool
sms_fmt_write_file(const char *dir, const char *name, const char *buf,
				   size_t len, char *err, size_t errlen)
{
	char		tmp[MAX_FILE_NAME + 64];
	int			dfd;
	int			fd = -1;
	int			save;
	const char *what;

	if ((dfd = open_box(dir, name, err, errlen)) < 0)
		return false;
	snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", name, (long) getpid());

	/* a leftover of a crashed process that had our pid is ours to replace */
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
	{
		what = "remove the old temporary file";
		goto fail;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		what = "create";
		goto fail;
	}
	/* the backend's umask is 077, and clients must be able to read it */
	if (fchmod(fd, 0644) < 0)
	{
		what = "chmod";
		goto fail_unlink;
	}
	if (!sms_fmt_write_all(fd, buf, len))
	{
		what = "write";
		goto fail_unlink;
	}
	if (fsync(fd) < 0)
	{
		what = "fsync";
		goto fail_unlink;
	}
	if (close(fd) < 0)
	{
		fd = -1;
		what = "close";
		goto fail_unlink;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, name) < 0)
	{
		what = "rename";
		goto fail_unlink;
	}
	/*
	 * Make the rename itself durable.  Some file systems cannot fsync a
	 * directory (EINVAL, EBADF); like PostgreSQL's fsync_fname, accept that.
	 */
	if (fsync(dfd) < 0 && errno != EINVAL && errno != EBADF)
	{
		save = errno;
		close(dfd);
		sms_fmt_error(err, errlen, "could not fsync directory \"%s\": %s", dir, strerror(save));
		return false;
	}
	close(dfd);
	return true;

fail_unlink:
	save = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
	close(dfd);
	if (strcmp(what, "rename") == 0)
		sms_fmt_error(err, errlen, "could not rename \"%s/%s\" to \"%s\": %s", dir, tmp, name,
				strerror(save));
	else
		sms_fmt_error(err, errlen, "could not %s \"%s/%s\": %s", what, dir, tmp, strerror(save));
	return false;

fail:
	save = errno;
	close(dfd);
	sms_fmt_error(err, errlen, "could not %s \"%s/%s\": %s", what, dir, tmp, strerror(save));
	return false;
}

bool
sms_fmt_stale_temporary(const char *name, bool own_stale)
{
	const char *t = strstr(name, ".tmp.");
	char	   *end;
	long		pid;

	if (name[0] != '.' || t == NULL || t == name || t[5] == '\0')
		return false;
	errno = 0;
	pid = strtol(t + 5, &end, 10);
	if (*end != '\0' || errno != 0 || pid <= 0 || pid != (long) (pid_t) pid)
		return false;
	if (pid == (long) getpid())
		return own_stale;
	return kill((pid_t) pid, 0) != 0 && errno == ESRCH;
}

bool
sms_fmt_old_temporary(const char *dir, const char *name, int64_t max_age)
{
	char		path[4096];
	struct stat st;

	if (name[0] != '.' || strstr(name, ".tmp.") == NULL ||
		snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path) ||
		lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	return (int64_t) (time(NULL) - st.st_mtime) > max_age;
}

int
sms_fmt_remove_stale_temporaries(const char *dir, const char *prefix,
								 char *err, size_t errlen)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			removed = 0;
	bool		failed = false;
	size_t		plen = prefix ? strlen(prefix) : 0;

	if (d == NULL)
	{
		if (errno == ENOENT)
			return 0;
		sms_fmt_error(err, errlen, "could not read directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL)
	{
		struct stat st;

		/* a file (or a link) only: a directory so named is not ours */
		if ((prefix != NULL && strncmp(de->d_name + 1, prefix, plen) != 0) ||
			!sms_fmt_stale_temporary(de->d_name, true) ||
			fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
			!(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
		else if (errno != ENOENT && !failed)
		{
			failed = true;
			sms_fmt_error(err, errlen, "could not remove \"%s/%s\": %s", dir, de->d_name,
						  strerror(errno));
		}
	}
	closedir(d);
	return failed ? -1 : removed;
}

bool
sms_fmt_read_file(const char *dir, const char *name, char **out, size_t *len,
				  char *err, size_t errlen)
{
	int			dfd;
	int			fd;
	struct stat st;
	struct stat st2;
	char	   *buf = NULL;
	size_t		cap;
	size_t		n = 0;
	int			save;

	*out = NULL;
	*len = 0;
	if ((dfd = open_box(dir, name, err, errlen)) < 0)
		return false;
	/* look before opening, so that a device or FIFO is never opened */
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
	{
		save = errno;
		close(dfd);
		sms_fmt_error(err, errlen, "could not stat \"%s/%s\": %s", dir, name, strerror(save));
		return false;
	}
	if (!S_ISREG(st.st_mode))
	{
		close(dfd);
		sms_fmt_error(err, errlen, "\"%s/%s\" is %s, not a regular file", dir, name,
				S_ISLNK(st.st_mode) ? "a symbolic link" :
				S_ISDIR(st.st_mode) ? "a directory" : "a special file");
		return false;
	}
	/* O_NOFOLLOW and the fstat below close the window after fstatat */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	save = errno;
	close(dfd);
	if (fd < 0)
	{
		sms_fmt_error(err, errlen, "could not open \"%s/%s\": %s", dir, name,
				save == ELOOP ? "it is a symbolic link" : strerror(save));
		return false;
	}
	if (fstat(fd, &st2) < 0 || !S_ISREG(st2.st_mode) ||
		st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
	{
		close(fd);
		sms_fmt_error(err, errlen, "\"%s/%s\" was replaced while it was opened", dir, name);
		return false;
	}
	if (st2.st_size > SMS_FMT_MAX_FILE)
	{
		close(fd);
		sms_fmt_error(err, errlen, "\"%s/%s\" is larger than %d bytes", dir, name, SMS_FMT_MAX_FILE);
		return false;
	}
	cap = (size_t) st2.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL)
	{
		close(fd);
		return sms_fmt_oom(err, errlen);
	}
	for (;;)
	{
		ssize_t		r;

		if (n + 1 >= cap)
		{
			/* it grew while we read: allow up to the limit, plus one to tell */
			size_t		ncap = cap * 2 > (size_t) SMS_FMT_MAX_FILE + 2 ?
				(size_t) SMS_FMT_MAX_FILE + 2 : cap * 2;
			char	   *nb;

			if (n > SMS_FMT_MAX_FILE)
			{
				free(buf);
				close(fd);
				sms_fmt_error(err, errlen, "\"%s/%s\" is larger than %d bytes", dir, name, SMS_FMT_MAX_FILE);
				return false;
			}
			nb = realloc(buf, ncap);
			if (nb == NULL)
			{
				free(buf);
				close(fd);
				return sms_fmt_oom(err, errlen);
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			save = errno;
			free(buf);
			close(fd);
			sms_fmt_error(err, errlen, "could not read \"%s/%s\": %s", dir, name, strerror(save));
			return false;
		}
		if (r == 0)
			break;
		n += (size_t) r;
	}
	close(fd);
	if (n > SMS_FMT_MAX_FILE)
	{
		free(buf);
		sms_fmt_error(err, errlen, "\"%s/%s\" is larger than %d bytes", dir, name, SMS_FMT_MAX_FILE);
		return false;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return true;
}

/* ----------------------------------------------------------------
 * File names
 * ----------------------------------------------------------------
 */
bool
sms_fmt_file_name(SmsFmtFileKind kind, const char *id, int64_t seq,
				  char *buf, size_t buflen, char *err, size_t errlen)
{
	bool		site = (kind == SMS_FILE_LOOKUP_SYSTEM || kind == SMS_FILE_LOOKUP_USER ||
						kind == SMS_FILE_LOOKUP_USERGROUP || kind == SMS_FILE_HEARTBEAT);
	const char *suffix;
	char		q[100];
	int			n;

	switch (kind)
	{
		case SMS_FILE_PCM:
			suffix = "";
			break;
		case SMS_FILE_OFFER:
			suffix = ".OFR";
			break;
		case SMS_FILE_INSTALL:
			suffix = ".INS";
			break;
		case SMS_FILE_LOOKUP_SYSTEM:
			suffix = "SYSTM.LKP";
			break;
		case SMS_FILE_LOOKUP_USER:
			suffix = "USR.LKP";
			break;
		case SMS_FILE_LOOKUP_USERGROUP:
			suffix = "USRGRP.LKP";
			break;
		case SMS_FILE_PACKAGE:
			suffix = ".PKG";
			break;
		case SMS_FILE_ICON:
			suffix = ".ICO";
			break;
		case SMS_FILE_NAL:
			suffix = ".NAL";
			break;
		case SMS_FILE_STATUS:
			suffix = ".SMS";
			break;
		case SMS_FILE_HEARTBEAT:
			suffix = ".HBT";
			break;
		case SMS_FILE_INVENTORY:
			suffix = ".INV";
			break;
		default:
			sms_fmt_error(err, errlen, "unknown file kind %d", (int) kind);
			return false;
	}
	if (site ? !sms_fmt_valid_site_code(id) : !sms_fmt_valid_sms_id(id))
	{
		sms_fmt_error(err, errlen, "invalid %s \"%s\" for a file name", site ? "site code" : "SMS ID",
				sms_fmt_quote(id, q, sizeof(q)));
		return false;
	}
	if (kind == SMS_FILE_STATUS)
	{
		/* zero-padded, so that names sort in sequence order */
		if (seq < 0 || seq > SMS_FMT_MAX_SEQUENCE)
		{
			sms_fmt_error(err, errlen, "status sequence %" PRId64 " out of range (0 to 9999999999)", seq);
			return false;
		}
		n = snprintf(buf, buflen, "%s.%010" PRId64 "%s", id, seq, suffix);
	}
	else
		n = snprintf(buf, buflen, "%s%s", id, suffix);
	if (n < 0 || (size_t) n >= buflen)
	{
		sms_fmt_error(err, errlen, "file name buffer too small");
		return false;
	}
	return true;
}

bool
sms_fmt_parse_status_name(const char *name, char *machine, int64_t *seq)
{
	int64_t		v = 0;
	int			i;

	if (strlen(name) != 23 || name[8] != '.' || strcmp(name + 19, ".SMS") != 0)
		return false;
	memcpy(machine, name, 8);
	machine[8] = '\0';
	if (!sms_fmt_valid_sms_id(machine))
		return false;
	for (i = 9; i < 19; i++)
	{
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (name[i] - '0');
	}
	*seq = v;
	return true;
}

bool
sms_fmt_parse_inventory_name(const char *name, char *machine)
{
	if (strlen(name) != 12 || strcmp(name + 8, ".INV") != 0)
		return false;
	memcpy(machine, name, 8);
	machine[8] = '\0';
	return sms_fmt_valid_sms_id(machine);
}
