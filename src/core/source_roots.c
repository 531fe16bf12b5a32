/*-------------------------------------------------------------------------
 *
 * source_roots.c
 *	  Package sources come only from directories a superuser allowed.
 *
 * A package builder reads its source tree as the server's OS user, and
 * what it reads is published on distribution points that every
 * workstation reads.  Operators choose a package's source directory, so a
 * source directory is a read of any file the server can read -- the data
 * directory included (pg_authid's password verifiers).  The directories
 * sources may come from are therefore a superuser's setting,
 * smsdist.source_roots, and the server's own files are refused even below
 * a root.
 *
 * Terms:
 *	root		a directory listed in smsdist.source_roots, with its symbolic
 *				links resolved (realpath) each time a check runs.
 *	resolved	the real path of a source directory.  At build time it is
 *				read back from the open descriptor the builder walks
 *				(/proc/self/fd), so a symbolic link swapped in after the
 *				check cannot lead the walk elsewhere; at INSERT it is the
 *				realpath of the directory if it exists, else the path as
 *				written.
 *	server files the data directory and the directories of the
 *				configuration, hba and ident files: a source may be neither
 *				in one of them nor contain one.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "source_roots.h"
#include "validate.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

/* path is dir or below it (both absolute and canonical) */
static bool
path_within(const char *path, const char *dir)
{
	size_t		len = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

/* realpath, or the path itself when it cannot be resolved */
static char *
resolve(const char *path)
{
	char		buf[PATH_MAX];

	if (realpath(path, buf) == NULL)
		return pstrdup(path);
	return pstrdup(buf);
}

static void
refuse_overlap(const char *source_dir, const char *resolved, const char *server_path,
			   const char *what)
{
	char	   *server;

	if (server_path == NULL || server_path[0] == '\0')
		return;
	server = resolve(server_path);
	if (path_within(resolved, server))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("package source \"%s\" is inside the server's %s \"%s\"",
						source_dir, what, server),
				 errdetail("A package source may not be the server's own files.")));
	if (path_within(server, resolved))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("package source \"%s\" contains the server's %s \"%s\"",
						source_dir, what, server),
				 errdetail("A package source may not include the server's own files.")));
}

static char *
dir_of(const char *file)
{
	char	   *d;

	if (file == NULL)
		return NULL;
	d = pstrdup(file);
	get_parent_directory(d);
	return d;
}

/*
 * The check itself: `resolved` is the source's real path (or its path as
 * written, when it does not exist yet).
 */
static void
check_resolved(const char *source_dir, const char *resolved)
{
	char	   *rawcopy;
	List	   *roots = NIL;
	ListCell   *lc;
	bool		allowed = false;

	refuse_overlap(source_dir, resolved, DataDir, "data directory");
	refuse_overlap(source_dir, resolved, dir_of(ConfigFileName), "configuration directory");
	refuse_overlap(source_dir, resolved, dir_of(HbaFileName), "hba file's directory");
	refuse_overlap(source_dir, resolved, dir_of(IdentFileName), "ident file's directory");

	rawcopy = pstrdup(sms_source_roots ? sms_source_roots : "");
	if (!SplitDirectoriesString(rawcopy, ',', &roots))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("smsdist.source_roots is not a valid list of directories: \"%s\"",
						sms_source_roots)));
	foreach(lc, roots)
	{
		const char *root = lfirst(lc);
		char		buf[PATH_MAX];

		/* a relative or missing root allows nothing */
		if (!is_absolute_path(root) || realpath(root, buf) == NULL)
			continue;
		if (path_within(resolved, buf))
		{
			allowed = true;
			break;
		}
	}
	if (allowed)
		return;
	if (roots == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("package source \"%s\" is not allowed: smsdist.source_roots is empty", source_dir),
				 errdetail("No package can be built until a superuser lists the directories package sources may come from."),
				 errhint("Set smsdist.source_roots in postgresql.conf and reload.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("package source \"%s\" is not under any directory of smsdist.source_roots", source_dir),
			 strcmp(resolved, source_dir) != 0 ?
			 errdetail("Its real path is \"%s\"; smsdist.source_roots is \"%s\".", resolved, sms_source_roots) :
			 errdetail("smsdist.source_roots is \"%s\".", sms_source_roots),
			 errhint("A superuser adds directories to smsdist.source_roots in postgresql.conf.")));
}

/*
 * Called by the builder with the descriptor of the source directory it has
 * opened (and will walk with openat): the directory actually opened is
 * checked, whatever links led to it.
 */
void
sms_check_source_directory(const char *source_dir, int dirfd)
{
	char		link[64];
	char		buf[PATH_MAX];
	ssize_t		n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0 || n >= (ssize_t) sizeof(buf) - 1 || buf[0] != '/')
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not resolve package source \"%s\": %m", source_dir)));
	buf[n] = '\0';
	check_resolved(source_dir, buf);
}

/*
 * smsdist.require_allowed_source(path): the same check when an operator
 * names a source, so the mistake is seen at INSERT rather than at the
 * first build.  The build checks again: the setting or the tree may change.
 */
PG_FUNCTION_INFO_V1(smsdist_require_allowed_source);
Datum
smsdist_require_allowed_source(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));

	sms_valid_server_path(path, "package source directory", true);
	check_resolved(path, resolve(path));
	PG_RETURN_BOOL(true);
}
