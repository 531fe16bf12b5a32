/*-------------------------------------------------------------------------
 *
 * cache_ground.c
 *	  Who may change the download cache: its owner and modes.
 *
 * Terms:
 *	own ground	programs run from the cache as root, so nobody else may
 *				change it: the cache directory belongs to the agent's account
 *				and is not writable by group or others (secure_cache_dir
 *				makes it so, or refuses it); every cached directory is 0755
 *				plus the setgid and sticky bits the manifest gives it, and
 *				every cached file 0644, or 0755 when the manifest gives it
 *				an execute bit -- never writable by group or others, a
 *				file never setuid, setgid or sticky, whatever the manifest
 *				says.
 *	above		the directories on the way to the cache: whoever can write
 *				one of them can rename the cache away and put another in
 *				its place, so they are checked too.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_util.h"
#include "cache_ground.h"
#include "file_tree.h"

/*
 * The manifest only says whether a file is executable.  Readable by every
 * local account, since a program that runs with the user's rights reads it
 * (as any client may on the distribution point); writable only by the agent.
 */
mode_t
cached_file_mode(int manifest_mode)
{
	return (manifest_mode & 0111) ? 0755 : 0644;
}

/*
 * A directory keeps the manifest's setgid and sticky bits, which only
 * decide the group and the deletion of what is created in it; its
 * permission bits stay CACHED_DIR_MODE, so that nobody but the agent can
 * change the package.
 */
mode_t
cached_dir_mode(int manifest_mode)
{
	return CACHED_DIR_MODE | (manifest_mode & (S_ISGID | S_ISVTX));
}

bool
cached_dir_is_own(const struct stat *st, mode_t want)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid() && (st->st_mode & 07777) == want;
}

/*
 * Every directory above path (an absolute path) must belong to root or to
 * the agent's account and be writable by nobody else, unless it is sticky
 * (like /tmp: others cannot rename what they do not own there).  Links on
 * the way are not judged here: the caller checks the resolved path as well.
 */
static bool
safe_above(const char *path, const char *cache, char *err, size_t errlen)
{
	char		buf[MAX_PATH_LEN];
	char	   *slash;
	struct stat st;
	size_t		len = strlen(path);

	if (len >= sizeof(buf))
	{
		snprintf(err, errlen, "the cache directory \"%s\" has too long a path", cache);
		return false;
	}
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	while ((slash = strrchr(buf, '/')) != NULL)
	{
		if (slash == buf)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (lstat(buf, &st) != 0)
		{
			snprintf(err, errlen, "cannot check \"%s\", above the cache directory \"%s\": %s", buf, cache,
					 strerror(errno));
			return false;
		}
		if (S_ISDIR(st.st_mode) &&
			((st.st_uid != 0 && st.st_uid != geteuid()) ||
			 ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)))
		{
			snprintf(err, errlen, "the directory \"%s\", above the cache directory \"%s\", belongs to user ID %u "
					 "with mode %04o: another account than root and the agent's could replace the cache; "
					 "refusing to run programs from it", buf, cache, (unsigned) st.st_uid,
					 (unsigned) (st.st_mode & 07777));
			return false;
		}
		if (slash == buf)
			break;
	}
	return true;
}

/* The directories above dir, both as given and resolved, are safe_above. */
static bool
safe_paths_above(const char *dir, char *err, size_t errlen)
{
	char	   *real;
	char		cwd[MAX_PATH_LEN];
	char	   *abs = NULL;
	bool		ok;

	if (dir[0] != '/')
	{
		if (getcwd(cwd, sizeof(cwd)) == NULL)
		{
			snprintf(err, errlen, "cannot check the directories above the cache directory \"%s\": %s", dir,
					 strerror(errno));
			return false;
		}
		abs = path_join(cwd, dir);
	}
	if ((real = realpath(dir, NULL)) == NULL || (dir[0] != '/' && abs == NULL))
	{
		snprintf(err, errlen, "cannot check the directories above the cache directory \"%s\": %s", dir,
				 real == NULL ? strerror(errno) : "out of memory");
		free(real);
		free(abs);
		return false;
	}
	ok = safe_above(abs ? abs : dir, dir, err, errlen) && safe_above(real, dir, err, errlen);
	free(real);
	free(abs);
	return ok;
}

/*
 * Whoever could rename or replace what is in the cache would choose what
 * the agent runs.  One owned by another account, or below a directory
 * another account can write, is refused; group or other write, setgid or
 * sticky bits on the agent's own are taken away, and said.
 */
bool
secure_cache_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) != 0)
	{
		snprintf(err, errlen, "cannot use the cache directory \"%s\": %s", dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode))
	{
		snprintf(err, errlen, "the cache directory \"%s\" is not a directory", dir);
		return false;
	}
	if (st.st_uid != geteuid())
	{
		snprintf(err, errlen, "the cache directory \"%s\" belongs to user ID %u, not to the agent's account (user ID %u): "
				 "refusing to run programs from a directory another account controls",
				 dir, (unsigned) st.st_uid, (unsigned) geteuid());
		return false;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH | S_ISUID | S_ISGID | S_ISVTX)) != 0)
	{
		if (chmod(dir, CACHED_DIR_MODE) != 0)
		{
			snprintf(err, errlen, "the cache directory \"%s\" is writable by group or others (mode %04o) and cannot be "
					 "made 0755: %s", dir, (unsigned) (st.st_mode & 07777), strerror(errno));
			return false;
		}
		agent_warn("the cache directory \"%s\" had mode %04o; made it 0755, so that only the agent "
				   "can change it", dir, (unsigned) (st.st_mode & 07777));
	}
	return safe_paths_above(dir, err, errlen);
}
