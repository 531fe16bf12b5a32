/*-------------------------------------------------------------------------
 *
 * cache_verify.c
 *	  Checking a cached package again, before its program runs.
 *
 * A package was verified when it was downloaded (cache_fetch.c), but the
 * program runs later, perhaps as root: whoever changed the copy since must
 * not choose what runs.  So, right before each run, the copy is compared
 * with the manifest kept in the cache (whose SHA-256 must still be the
 * package hash): every file it lists, and then the walk of the package
 * directory, which must hold nothing else -- no extra file, no symbolic
 * link but the manifest's, each with exactly its target (read, never
 * followed), no special file, no directory that is not the agent's with
 * the mode cached_dir_mode gives its line (CACHED_DIR_MODE if unlisted).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_ground.h"
#include "cache_manifest.h"
#include "cache_verify.h"
#include "file_tree.h"
#include "sms_formats.h"

/* what the walk of an entry's tree found (nftw has no argument for it) */
static struct
{
	size_t		rootlen;
	size_t		files;
	size_t		links;
	const ManifestLine *lines;
	size_t		n;
	char	   *msg;
	size_t		msglen;
}			walk;

/*
 * The link at path (rel in the package) is the agent's and is listed in
 * the manifest with exactly the target it has; it is read, never followed.
 * If not, walk.msg says why.
 */
static bool
link_is_listed(const char *path, const char *rel, const struct stat *st)
{
	char		got[MAX_PATH_LEN];
	ssize_t		len;

	for (size_t i = 0; i < walk.n; i++)
	{
		if (walk.lines[i].target == NULL || strcmp(walk.lines[i].path, rel) != 0)
			continue;
		if (st->st_uid != geteuid())
			snprintf(walk.msg, walk.msglen, "the link \"%s\" belongs to user ID %u, not to the agent (%u)", rel,
					 (unsigned) st->st_uid, (unsigned) geteuid());
		else if ((len = readlink(path, got, sizeof(got) - 1)) < 0)
			snprintf(walk.msg, walk.msglen, "the link \"%s\" cannot be read: %s", rel, strerror(errno));
		else if ((got[len] = '\0', strcmp(got, walk.lines[i].target) != 0))
			snprintf(walk.msg, walk.msglen, "the link \"%s\" points to \"%.200s\", not \"%.200s\"", rel, got,
					 walk.lines[i].target);
		else
			return true;
		return false;
	}
	snprintf(walk.msg, walk.msglen, "\"%s\" is a symbolic link", rel);
	return false;
}

/* The mode the directory rel should have: by its line, if it has one. */
static mode_t
listed_dir_mode(const char *rel)
{
	size_t		rl = strlen(rel);

	for (size_t i = 0; i < walk.n; i++)
	{
		const char *p = walk.lines[i].path;

		if (strncmp(p, rel, rl) == 0 && p[rl] == '/' && p[rl + 1] == '\0')
			return cached_dir_mode(walk.lines[i].mode);
	}
	return CACHED_DIR_MODE;
}

static int
walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *rel = path[walk.rootlen] == '/' ? path + walk.rootlen + 1 : ".";

	if (flag == FTW_SL || flag == FTW_SLN)
	{
		if (link_is_listed(path, rel, st))
		{
			walk.links++;
			return 0;
		}
	}
	else if (flag == FTW_NS || flag == FTW_DNR)
		snprintf(walk.msg, walk.msglen, "\"%s\" cannot be read: %s", rel, strerror(errno));
	else if (flag == FTW_D)
	{
		mode_t		want = listed_dir_mode(rel);

		if (cached_dir_is_own(st, want))
			return 0;
		snprintf(walk.msg, walk.msglen, "directory \"%s\" has owner %u and mode %04o, not %u and %04o",
				 rel, (unsigned) st->st_uid, (unsigned) (st->st_mode & 07777), (unsigned) geteuid(), (unsigned) want);
	}
	else if (S_ISREG(st->st_mode))
	{
		walk.files++;
		return 0;
	}
	else
		snprintf(walk.msg, walk.msglen, "\"%s\" is not a regular file or a directory", rel);
	return 1;
}

/*
 * The tree at root holds the files and links of the manifest (lines; files
 * and links of them) and nothing else.
 */
static bool
nothing_else_in(const char *root, const ManifestLine *lines, size_t n, size_t files, size_t links,
				char *msg, size_t msglen)
{
	walk.rootlen = strlen(root);
	walk.files = 0;
	walk.links = 0;
	walk.lines = lines;
	walk.n = n;
	walk.msg = msg;
	walk.msglen = msglen;
	msg[0] = '\0';
	if (nftw(root, walk_one, 16, FTW_PHYS) != 0)
	{
		if (msg[0] == '\0')
			snprintf(msg, msglen, "cannot walk \"%s\": %s", root, strerror(errno));
		return false;
	}
	if (walk.files != files)
	{
		snprintf(msg, msglen, "it holds %zu files, the manifest lists %zu", walk.files, files);
		return false;
	}
	if (walk.links != links)
	{
		snprintf(msg, msglen, "it holds %zu links, the manifest lists %zu", walk.links, links);
		return false;
	}
	return true;
}

/* Why a file of the manifest could not be opened below root (errno from open_beneath). */
static void
say_unopened(const ManifestLine *l, char *msg, size_t msglen)
{
	if (errno == ELOOP || errno == ENOTDIR)
		snprintf(msg, msglen, "\"%s\" is a symbolic link (or lies below one)", l->path);
	else if (errno == EINVAL)
		snprintf(msg, msglen, "\"%s\" is not a regular file", l->path);
	else
		snprintf(msg, msglen, "\"%s\" cannot be opened: %s", l->path, strerror(errno));
}

/* Check one file of the manifest in root: type, owner, mode, size, SHA-256. */
static bool
verify_file(const char *root, const ManifestLine *l, char *msg, size_t msglen)
{
	int			fd = open_beneath(root, l->path);
	struct stat st;
	char		got[SHA256_HEX_BUFLEN];
	int64_t		total = 0;
	HashResult	hashed;
	bool		ok = false;

	if (fd < 0)
	{
		say_unopened(l, msg, msglen);
		return false;
	}
	if (fstat(fd, &st) != 0)
		snprintf(msg, msglen, "\"%s\" cannot be read: %s", l->path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(msg, msglen, "\"%s\" is not a regular file", l->path);
	else if (st.st_uid != geteuid())
		snprintf(msg, msglen, "\"%s\" belongs to user ID %u, not to the agent (%u)", l->path,
				 (unsigned) st.st_uid, (unsigned) geteuid());
	else if ((st.st_mode & 07777) != cached_file_mode(l->mode))
		snprintf(msg, msglen, "\"%s\" has mode %04o, not %04o", l->path, (unsigned) (st.st_mode & 07777),
				 (unsigned) cached_file_mode(l->mode));
	else if (st.st_size != l->size)
		snprintf(msg, msglen, "\"%s\" has %lld bytes, not %lld", l->path, (long long) st.st_size, (long long) l->size);
	else if ((hashed = sha256_of_file(fd, -1, got, &total)) == HASH_NO_DIGEST)
		snprintf(msg, msglen, "cannot compute a SHA-256");
	else if (hashed == HASH_READ_FAILED)
		snprintf(msg, msglen, "\"%s\" cannot be read: %s", l->path, strerror(errno));
	else if (total != l->size || strcmp(got, l->sha256) != 0)
		snprintf(msg, msglen, "\"%s\" has changed (%lld bytes, SHA-256 %.12s..., not %lld bytes, %.12s...)",
				 l->path, (long long) total, got, (long long) l->size, l->sha256);
	else
		ok = true;
	close(fd);
	return ok;
}

/* The package directory root against the manifest's lines. */
static bool
verify_tree(const char *root, const ManifestLine *lines, size_t n, char *msg, size_t msglen)
{
	struct stat st;
	size_t		files = 0;
	size_t		links = 0;

	if (lstat(root, &st) != 0 || !cached_dir_is_own(&st, CACHED_DIR_MODE))
	{
		snprintf(msg, msglen, "the package directory \"%s\" is not a directory of the agent's with mode %04o",
				 root, CACHED_DIR_MODE);
		return false;
	}
	for (size_t i = 0; i < n; i++)
	{
		size_t		pl = strlen(lines[i].path);

		if (lines[i].target != NULL)
		{
			links++;			/* the walk checks it */
			continue;
		}
		if (lines[i].path[pl - 1] == '/')
			continue;			/* an empty directory: the walk checks it */
		files++;
		if (!verify_file(root, &lines[i], msg, msglen))
			return false;
	}
	return nothing_else_in(root, lines, n, files, links, msg, msglen);
}

bool
cache_verify(const Cache *c, const CacheEntry *e, char *msg, size_t msglen)
{
	char		name[64];
	char	   *text = NULL;
	size_t		len;
	char		err[512];
	char		got[SHA256_HEX_BUFLEN];
	ManifestLine *lines = NULL;
	size_t		n = 0;
	int64_t		total;
	char	   *root = cache_entry_dir(c, e);
	bool		ok = false;

	manifest_name(e->package_id, e->version, name, sizeof(name));
	if (root == NULL)
		snprintf(msg, msglen, "out of memory");
	else if (!sms_fmt_read_file(c->dir, name, &text, &len, err, sizeof(err)))
	{
		snprintf(msg, msglen, "its manifest is not kept in the cache: %s", err);
		text = NULL;
	}
	else if (!sha256_of_buffer(text, len, got) || strcmp(got, e->sha256) != 0)
		snprintf(msg, msglen, "the manifest kept in the cache does not match the package hash (SHA-256 %.12s..., not %.12s...)",
				 got, e->sha256);
	else if (manifest_parse(text, &lines, &n, &total, msg, msglen))
	{
		ok = verify_tree(root, lines, n, msg, msglen);
		manifest_free(lines, n);
	}
	free(text);
	free(root);
	return ok;
}
