/*-------------------------------------------------------------------------
 *
 * cache_move.c
 *	  Moving the download cache to another directory.
 *
 * Each package is renamed into the new place, or copied there from
 * another file system (the old copy stays until the new place is
 * recorded); its kept manifest is copied.  If one cannot be moved, those
 * moved already go back and the copies are removed: the cache stays whole
 * where it was.  Only once the state is saved in the new place do the old
 * copies, manifests and state go.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_util.h"
#include "cache_ground.h"
#include "cache_manifest.h"
#include "cache_move.h"
#include "file_tree.h"
#include "sms_formats.h"

/*
 * Copy an entry's manifest from one cache directory to another.  An entry
 * without one (made by an older agent) has none to copy: it fails the check
 * before its next run and is downloaded again.
 */
static bool
copy_manifest(const char *olddir, const char *newdir, const CacheEntry *e, char *err, size_t errlen)
{
	char		name[64];
	char	   *text;
	size_t		len;
	char		e2[256];
	bool		ok;

	manifest_name(e->package_id, e->version, name, sizeof(name));
	if (!sms_fmt_read_file(olddir, name, &text, &len, e2, sizeof(e2)))
		return true;
	ok = sms_fmt_write_file(newdir, name, text, len, e2, sizeof(e2));
	if (!ok)
		snprintf(err, errlen, "cannot copy the manifest \"%s\" to \"%s\": %s", name, newdir, e2);
	free(text);
	return ok;
}

/* Remove the manifest of e from cache directory dir, if it is there. */
static void
unlink_manifest(const char *dir, const CacheEntry *e)
{
	char		name[64];
	char	   *m;

	manifest_name(e->package_id, e->version, name, sizeof(name));
	if ((m = path_join(dir, name)) != NULL)
		unlink(m);
	free(m);
}

/* A package directory that was renamed to there goes back (a copy is just removed). */
static void
put_back(const char *there, const char *back, bool copied)
{
	if (copied)
		remove_tree(there);
	else if (rename(there, back) != 0)
		agent_warn("could not move \"%s\" back to \"%s\": %s", there, back, strerror(errno));
}

/*
 * Move (or copy, copied[i] set) entry i's directory and manifest to newdir;
 * false with err, and nothing of this entry left moved.
 */
static bool
move_entry(const Cache *c, size_t i, const char *newdir, bool *copied, char *err, size_t errlen)
{
	char	   *from = cache_entry_dir_in(c->dir, &c->entries[i]);
	char	   *to = cache_entry_dir_in(newdir, &c->entries[i]);
	bool		ok = true;

	if (rename(from, to) != 0)
	{
		if (errno == EXDEV && copy_tree(from, to, CACHED_DIR_MODE))
			copied[i] = true;
		else
		{
			snprintf(err, errlen, "cannot move \"%s\" to \"%s\": %s", from, to, strerror(errno));
			if (errno == EXDEV)
				remove_tree(to);	/* the part copied */
			ok = false;
		}
	}
	if (ok && !copy_manifest(c->dir, newdir, &c->entries[i], err, errlen))
	{
		put_back(to, from, copied[i]);
		ok = false;
	}
	free(from);
	free(to);
	return ok;
}

/* Undo the first moved entries' moves, newest first, and what newdir got. */
static void
undo_moves(const Cache *c, const char *olddir, const char *newdir, const bool *copied, size_t moved)
{
	char	   *newstate;

	while (moved-- > 0)
	{
		char	   *back = cache_entry_dir_in(olddir, &c->entries[moved]);
		char	   *there = cache_entry_dir_in(newdir, &c->entries[moved]);

		put_back(there, back, copied[moved]);
		unlink_manifest(newdir, &c->entries[moved]);
		free(back);
		free(there);
	}
	newstate = path_join(newdir, CACHE_STATE_FILE);
	unlink(newstate);
	free(newstate);
	rmdir(newdir);				/* if we made it and nothing else is there */
}

/* Recorded in the new place: the old copies, manifests and state go. */
static void
remove_old_place(const Cache *c, const char *olddir, const bool *copied)
{
	char	   *old_state = path_join(olddir, CACHE_STATE_FILE);

	for (size_t i = 0; i < c->n; i++)
	{
		if (copied[i])
		{
			char	   *from = cache_entry_dir_in(olddir, &c->entries[i]);

			remove_tree(from);
			free(from);
		}
		unlink_manifest(olddir, &c->entries[i]);
	}
	unlink(old_state);
	free(old_state);
	rmdir(olddir);				/* if nothing else is there */
}

/* The new directory, made if missing, must be the agent's own ground. */
static bool
prepare_new_dir(const char *newdir, char *err, size_t errlen)
{
	if (mkdir(newdir, CACHED_DIR_MODE) != 0 && errno != EEXIST)
	{
		snprintf(err, errlen, "cannot create \"%s\": %s", newdir, strerror(errno));
		return false;
	}
	return secure_cache_dir(newdir, err, errlen);
}

bool
cache_move(Cache *c, const char *newdir, char *err, size_t errlen)
{
	char	   *olddir = c->dir;
	bool	   *copied = calloc(c->n ? c->n : 1, sizeof(bool));
	size_t		moved = 0;
	bool		ok = true;

	if (copied == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return false;
	}
	if (strcmp(olddir, newdir) == 0)
	{
		free(copied);
		return true;			/* already there */
	}
	if (!prepare_new_dir(newdir, err, errlen))
	{
		free(copied);
		return false;
	}
	for (; moved < c->n && ok; moved++)
		if (!move_entry(c, moved, newdir, copied, err, errlen))
		{
			ok = false;
			break;				/* this one did not move */
		}
	if (ok)
	{
		c->dir = strdup(newdir);
		ok = c->dir != NULL && cache_save(c, err, errlen);
		if (!ok)
		{
			free(c->dir);
			c->dir = olddir;
		}
	}
	if (!ok)
	{
		undo_moves(c, olddir, newdir, copied, moved);
		free(copied);
		return false;
	}
	remove_old_place(c, olddir, copied);
	free(copied);
	free(olddir);
	return true;
}
