/*-------------------------------------------------------------------------
 *
 * despooler_validate.c
 *	  Content validation: the Despooler checks what the distribution points
 *	  of this site hold against the manifests of the versions
 *	  package_locations says they hold, records what differs in
 *	  smsdist.content_validations, and repairs a tree that differs by
 *	  publishing it again from the verified package file.
 *
 *	location	a package_locations row of this site on an enabled
 *				distribution point: a published tree and its version
 *	due			a location whose content_validations row has requested_at
 *				set (validate_content(), a machine's 10004), or whose last
 *				check -- or, never checked, its publication -- is
 *				smsdist.content_validation_interval old (0: never due so)
 *	finding		one difference between tree and manifest:
 *				missing		an entry of the manifest that is not there
 *				extra		something in the tree the manifest does not list
 *				changed		a file of another size, mode or SHA-256, or a
 *							manifest beside the tree that is not the build's
 *				wrong type	a directory where a file should be, a link or
 *							a special file, a file where a directory should be
 *
 * A step checks one due location (bounded work: the tree once, and at most
 * one extraction), between distribute items: a step that found an item
 * does not validate.  A location that differs is extracted from its
 * version's package file, after that file's SHA-256 was checked against the
 * build's, on the despool drive and published atomically on that
 * distribution point alone (publish.c), then checked again.  A package file
 * that is damaged is compressed again (or, received from the parent, cannot
 * be here and is reported); the location stays queued and is repaired once
 * the build is ready again.  An error while checking one location is
 * recorded on its row ('failed') and the others go on.
 *
 * Part of the Despooler (despooler.c runs the steps); the terms drive and
 * share are defined there, published manifest in despooler_content.c.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "despooler_content.h"
#include "despooler.h"
#include "status.h"
#include "validate.h"
#include "worker.h"
#include "package_store.h"
#include "package_extract.h"
#include "publish.h"
#include "file_util.h"
#include "package_manifest.h"
#include "sha256.h"
#include "formats/sms_formats.h"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "storage/fd.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* how many findings a row names; the counts are of all */
#define MAX_FINDINGS	20

/* One due location, as the query found it. */
typedef struct Location
{
	char	   *package_id;
	int			dp_id;
	int			version;
	char	   *share;
	char	   *manifest_text;
	TimestampTz started;		/* a request made after this is kept */
	char	   *tmpdir;			/* of a repair, removed after it */
} Location;

/* What a check found. */
typedef struct Findings
{
	int			missing;
	int			extra;
	int			changed;
	int			wrong_type;
	List	   *named;			/* of char *, the first MAX_FINDINGS */
	List	   *paths;			/* of char *, the path of every finding */
	List	   *dir_times;		/* of SmsManifestEntry *: a directory whose
								 * time differs (see check_dir_times) */
} Findings;

static int
findings_total(Findings *f)
{
	return f->missing + f->extra + f->changed + f->wrong_type;
}

static void
add_finding(Findings *f, int *counter, const char *kind, const char *path, const char *how)
{
	(*counter)++;
	f->paths = lappend(f->paths, pstrdup(path));
	if (list_length(f->named) < MAX_FINDINGS)
		f->named = lappend(f->named, psprintf("%s: %s%s%s", kind, sms_path_printable(path),
											  how ? " " : "", how ? how : ""));
}

/* Has it the manifest's modification time (version 2 manifests carry one)? */
static bool
same_mtime(const struct stat *st, const SmsManifestEntry *e)
{
	return !e->has_mtime ||
		(st->st_mtim.tv_sec == e->mtime.tv_sec && st->st_mtim.tv_nsec == e->mtime.tv_nsec);
}

static char *
mtime_how(const struct stat *st, const SmsManifestEntry *e)
{
	return psprintf("(modified at %lld.%09ld, not %lld.%09ld)",
					(long long) st->st_mtim.tv_sec, (long) st->st_mtim.tv_nsec,
					(long long) e->mtime.tv_sec, (long) e->mtime.tv_nsec);
}

/*
 * One manifest entry against what is at <tree>/<path>: type, size, mode,
 * link target, modification time, SHA-256.
 */
static void
check_entry(Findings *f, const char *tree, SmsManifestEntry *e)
{
	char	   *path = psprintf("%s/%s", tree, e->path);
	struct stat st;
	int			fd;
	char		want[SMS_SHA256_HEX_LEN + 1];
	char		got[SMS_SHA256_HEX_LEN + 1];
	int64		size;

	/* without a directory's trailing '/', which would follow a link */
	if (e->is_dir)
		path[strlen(path) - 1] = '\0';
	if (lstat(path, &st) != 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			add_finding(f, &f->missing, "missing", e->path, NULL);
		else
			add_finding(f, &f->changed, "changed", e->path, psprintf("(cannot be examined: %m)"));
		return;
	}
	if (e->is_dir)
	{
		if (!S_ISDIR(st.st_mode))
			add_finding(f, &f->wrong_type, "wrong type", e->path,
						S_ISLNK(st.st_mode) ? "(a symbolic link, not a directory)" : "(not a directory)");
		else if ((int) (st.st_mode & 07777) != ((e->mode & 03777) | S_IRWXU))
			add_finding(f, &f->changed, "changed", e->path,
						psprintf("(mode %04o, not %04o)", (int) (st.st_mode & 07777),
								 (e->mode & 03777) | S_IRWXU));
		else if (!same_mtime(&st, e))
			f->dir_times = lappend(f->dir_times, e);
		return;
	}
	if (e->is_link)
	{
		char		target[SMS_PATH_LENGTH_CEILING + 1];
		ssize_t		n;

		if (!S_ISLNK(st.st_mode))
		{
			add_finding(f, &f->wrong_type, "wrong type", e->path, "(not a symbolic link)");
			return;
		}
		n = readlink(path, target, sizeof(target));
		if (n < 0 || n >= (ssize_t) sizeof(target))
			add_finding(f, &f->changed, "changed", e->path, "(its target cannot be read)");
		else if ((size_t) n != strlen(e->target) || memcmp(target, e->target, n) != 0)
			add_finding(f, &f->changed, "changed", e->path,
						psprintf("(points to \"%s\", not \"%s\")",
								 sms_path_printable(pnstrdup(target, n)), sms_path_printable(e->target)));
		else if (!same_mtime(&st, e))
			add_finding(f, &f->changed, "changed", e->path, mtime_how(&st, e));
		return;
	}
	if (!S_ISREG(st.st_mode))
	{
		add_finding(f, &f->wrong_type, "wrong type", e->path,
					S_ISDIR(st.st_mode) ? "(a directory, not a file)" :
					S_ISLNK(st.st_mode) ? "(a symbolic link, not a file)" : "(not a regular file)");
		return;
	}
	if (st.st_size != e->size)
	{
		add_finding(f, &f->changed, "changed", e->path,
					psprintf("(%lld bytes, not %lld)", (long long) st.st_size, (long long) e->size));
		return;
	}
	if ((int) (st.st_mode & 07777) != e->mode)
	{
		add_finding(f, &f->changed, "changed", e->path,
					psprintf("(mode %04o, not %04o)", (int) (st.st_mode & 07777), e->mode));
		return;
	}
	fd = OpenTransientFile(path, O_RDONLY | O_NOFOLLOW | PG_BINARY);
	if (fd < 0)
	{
		add_finding(f, &f->changed, "changed", e->path, psprintf("(cannot be opened: %m)"));
		return;
	}
	if (!sms_sha256_fd(fd, got, &size))
		snprintf(got, sizeof(got), "unreadable");
	CloseTransientFile(fd);
	sms_sha256_digest_hex(e->sha256, want);
	if (size != e->size || strcmp(got, want) != 0)
		add_finding(f, &f->changed, "changed", e->path, "(its SHA-256 is not the manifest's)");
	else if (!same_mtime(&st, e))
		add_finding(f, &f->changed, "changed", e->path, mtime_how(&st, e));
	pfree(path);
}

/*
 * Is dir ("a/b/") a directory of the manifest: listed itself (an empty
 * one), or above an entry?  The entries are sorted (strcmp), so the first
 * one not before dir tells.
 */
static bool
manifest_has_dir(SmsManifest *m, const char *dir)
{
	int			lo = 0;
	int			hi = m->nentries;
	size_t		len = strlen(dir);

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (strcmp(m->entries[mid].path, dir) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nentries && strncmp(m->entries[lo].path, dir, len) == 0;
}

/*
 * What is in <tree>/<rel> that the manifest does not list.  A directory
 * that is listed or implied is walked; one that is not is one extra
 * finding (what is in it is not walked).  Entries listed with another type
 * were found by check_entry; something other than a directory where the
 * manifest implies one (a link to a directory elsewhere, say) is found
 * here.
 */
static void
walk_extras(Findings *f, const char *tree, const char *rel, SmsManifest *m, int depth)
{
	char	   *dir = rel[0] ? psprintf("%s/%s", tree, rel) : pstrdup(tree);
	DIR		   *d;
	struct dirent *de;

	if (depth > sms_max_path_depth)
		return;
	d = AllocateDir(dir);
	if (d == NULL)
		return;					/* missing or not a directory: found already */
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char	   *sub;
		char	   *as_dir;
		struct stat st;

		CHECK_FOR_INTERRUPTS();
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		sub = rel[0] ? psprintf("%s%s", rel, de->d_name) : pstrdup(de->d_name);
		as_dir = psprintf("%s/", sub);
		if (lstat(psprintf("%s/%s", tree, sub), &st) != 0)
			continue;			/* gone meanwhile */
		if (S_ISDIR(st.st_mode))
		{
			if (manifest_has_dir(m, as_dir))
				walk_extras(f, tree, as_dir, m, depth + 1);
			else if (sms_manifest_find(m, sub) == NULL)
				add_finding(f, &f->extra, "extra", as_dir, NULL);
		}
		else if (manifest_has_dir(m, as_dir))
		{
			/* a listed directory was found by check_entry; an implied one here */
			if (sms_manifest_find(m, as_dir) == NULL)
				add_finding(f, &f->wrong_type, "wrong type", as_dir,
							S_ISLNK(st.st_mode) ? "(a symbolic link, not a directory)" : "(not a directory)");
		}
		else if (sms_manifest_find(m, sub) == NULL)
			add_finding(f, &f->extra, "extra", sub, NULL);
	}
	FreeDir(d);
}

/*
 * A directory whose time is not the manifest's is a finding of its own only
 * if nothing in it was found: adding, removing or replacing a name in a
 * directory changes its time, and that finding already says what happened.
 */
static void
check_dir_times(Findings *f, const char *tree)
{
	ListCell   *lc;

	foreach(lc, f->dir_times)
	{
		SmsManifestEntry *e = lfirst(lc);
		size_t		len = strlen(e->path);
		bool		inside = false;
		ListCell   *lp;
		struct stat st;

		foreach(lp, f->paths)
		{
			const char *p = lfirst(lp);

			if (strncmp(p, e->path, len) == 0 && p[len] != '\0')
			{
				inside = true;
				break;
			}
		}
		if (!inside && lstat(psprintf("%s/%.*s", tree, (int) len - 1, e->path), &st) == 0)
			add_finding(f, &f->changed, "changed", e->path, mtime_how(&st, e));
	}
}

/* The published tree and the manifest beside it against the build's manifest. */
static Findings *
check_location(Location *loc, SmsManifest *m)
{
	Findings   *f = palloc0(sizeof(Findings));
	char	   *tree = sms_published_tree_path(loc->share, loc->package_id);
	char		name[64];
	char		err[512];
	char	   *text = NULL;
	size_t		len;
	struct stat st;

	snprintf(name, sizeof(name), "%s.%d.manifest", loc->package_id, loc->version);
	if (!sms_fmt_read_file(loc->share, name, &text, &len, err, sizeof(err)))
		add_finding(f, &f->missing, "missing", name, psprintf("(beside the tree: %s)", err));
	else
	{
		if (len != strlen(loc->manifest_text) || memcmp(text, loc->manifest_text, len) != 0)
			add_finding(f, &f->changed, "changed", name, "(beside the tree: not the build's manifest)");
		free(text);
	}
	if (lstat(tree, &st) != 0 || !S_ISDIR(st.st_mode))
	{
		f->missing += m->nentries;
		f->named = lappend(f->named, psprintf("missing: the tree \"%s\" (%d entries)", tree, m->nentries));
		return f;
	}
	for (int i = 0; i < m->nentries; i++)
	{
		CHECK_FOR_INTERRUPTS();
		check_entry(f, tree, &m->entries[i]);
	}
	walk_extras(f, tree, "", m, 1);
	check_dir_times(f, tree);
	return f;
}

/* The next due location of this site, or NULL; *next_due when none is. */
static Location *
next_location(TimestampTz *next_due)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(sms_site_code), Int32GetDatum(sms_content_validation_interval)};
	Location   *loc;
	MemoryContext old;
	bool		isnull;
	Datum		d;

	*next_due = DT_NOEND;
	if (sms_execute_kept("SELECT l.package_id::text, l.site_system_id, l.source_version,"
						 "       d.root_directory::text || '/SMS_PKG' || d.share_letter::text, b.manifest,"
						 "       (v.requested_at IS NOT NULL"
						 "        OR ($2 > 0 AND coalesce(v.checked_at, l.published_at)"
						 "                       <= clock_timestamp() - make_interval(secs => $2))) AS due,"
						 "       coalesce(v.checked_at, l.published_at) + make_interval(secs => $2)"
						 "  FROM smsdist.package_locations l"
						 "  JOIN smsdist.site_systems d ON d.site_system_id = l.site_system_id"
						 "   AND d.site_code = l.site_code AND d.role = 'distribution_point' AND d.enabled"
						 "  JOIN smsdist.package_builds b ON b.package_id = l.package_id"
						 "   AND b.source_version = l.source_version AND b.state = 'ready' AND b.manifest IS NOT NULL"
						 "  LEFT JOIN smsdist.content_validations v ON v.package_id = l.package_id"
						 "   AND v.site_code = l.site_code AND v.site_system_id = l.site_system_id"
						 " WHERE l.site_code = $1"
						 "   AND (v.requested_at IS NOT NULL OR $2 > 0)"
						 " ORDER BY 6 DESC, v.requested_at NULLS LAST, 7, 1, 2 LIMIT 1",
						 2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: looking for content to validate failed");
	if (SPI_processed == 0)
		return NULL;
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull)))
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isnull);
		if (!isnull)
			*next_due = DatumGetTimestampTz(d);
		return NULL;
	}
	old = MemoryContextSwitchTo(sms_step_context);
	loc = palloc0(sizeof(Location));
	loc->package_id = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	loc->dp_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	loc->version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	loc->share = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4));
	loc->manifest_text = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5));
	loc->started = GetCurrentTimestamp();
	MemoryContextSwitchTo(old);
	return loc;
}

/*
 * Record a check on the location's row.  keep_request: it stays queued (its
 * package file is being compressed again); else a request made while it
 * was checked is kept, an older one is done.
 */
static void
record_check(Location *loc, const char *result, Findings *f, const char *detail,
			 bool repaired, bool keep_request)
{
	Oid			types[14] = {TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT4OID, INT4OID,
	INT4OID, INT4OID, TEXTARRAYOID, TEXTOID, BOOLOID, BOOLOID, TIMESTAMPTZOID};
	Datum		values[14];
	char		nulls[14];
	Datum	   *named;
	int			n = f ? list_length(f->named) : 0;
	ListCell   *lc;
	int			i = 0;

	memset(nulls, ' ', sizeof(nulls));
	named = palloc(sizeof(Datum) * Max(n, 1));
	if (f)
		foreach(lc, f->named)
			named[i++] = CStringGetTextDatum((char *) lfirst(lc));
	values[0] = CStringGetTextDatum(loc->package_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	values[2] = Int32GetDatum(loc->dp_id);
	values[3] = Int32GetDatum(loc->version);
	values[4] = CStringGetTextDatum(result);
	values[5] = Int32GetDatum(f ? f->missing : 0);
	values[6] = Int32GetDatum(f ? f->extra : 0);
	values[7] = Int32GetDatum(f ? f->changed : 0);
	values[8] = Int32GetDatum(f ? f->wrong_type : 0);
	values[9] = PointerGetDatum(construct_array(named, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[10] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	nulls[10] = detail ? ' ' : 'n';
	values[11] = BoolGetDatum(repaired);
	values[12] = BoolGetDatum(keep_request);
	values[13] = TimestampTzGetDatum(loc->started);
	if (sms_execute_kept("INSERT INTO smsdist.content_validations AS v"
						 "       (package_id, site_code, site_system_id, checked_at, source_version, result,"
						 "        missing_count, extra_count, changed_count, wrong_type_count, findings, detail,"
						 "        repaired_at)"
						 " SELECT $1, $2, $3, clock_timestamp(), $4, $5, $6, $7, $8, $9, $10, $11,"
						 "        CASE WHEN $12 THEN clock_timestamp() END"
						 "  WHERE EXISTS (SELECT 1 FROM smsdist.package_locations l"
						 "                 WHERE l.package_id = $1 AND l.site_code = $2 AND l.site_system_id = $3)"
						 " ON CONFLICT ON CONSTRAINT content_validations_pkey DO UPDATE"
						 "   SET checked_at = EXCLUDED.checked_at, source_version = $4, result = $5,"
						 "       missing_count = $6, extra_count = $7, changed_count = $8, wrong_type_count = $9,"
						 "       findings = $10, detail = $11,"
						 "       repaired_at = CASE WHEN $12 THEN clock_timestamp() ELSE v.repaired_at END,"
						 "       requested_at = CASE WHEN $13 OR v.requested_at > $14 THEN v.requested_at END,"
						 "       requested_by = CASE WHEN $13 OR v.requested_at > $14 THEN v.requested_by END",
						 14, types, values, nulls, false, 0) < 0)
		elog(ERROR, "smsdist despooler: recording a content validation failed");
}

/*
 * The location's version's package file, checked: NULL and *problem NULL
 * if it can be extracted here; else what stops the repair (and, for a
 * damaged file of this site, the package is compressed again: *rebuilding).
 */
static WorkItem *
repair_source(Location *loc, char **problem, bool *rebuilding)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(loc->package_id), Int32GetDatum(loc->version)};
	WorkItem   *w;
	bool		isnull;
	char	   *damage;

	*problem = NULL;
	*rebuilding = false;
	if (sms_execute_kept("SELECT file_path, sha256, bytes, base_version IS NOT NULL, received"
						 "  FROM smsdist.package_builds"
						 " WHERE package_id = $1 AND source_version = $2 AND state = 'ready'",
						 2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: reading the package file of a location failed");
	if (SPI_processed == 0 || SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) == NULL)
	{
		*problem = psprintf("the package file of version %d is not at this site", loc->version);
		return NULL;
	}
	w = palloc0(sizeof(WorkItem));
	w->job_id = "validation";
	w->job_type = "share_package";
	w->package_id = loc->package_id;
	w->version = loc->version;
	w->package_file = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	w->sha256 = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)))
	{
		*problem = psprintf("the package file of version %d here is a delta; distribute the package again",
							loc->version);
		return NULL;
	}
	w->received = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	damage = despool_package_file_problem(w);
	if (damage == NULL)
		return w;
	if (w->received)
	{
		*problem = psprintf("%s; it came from the parent site: distribute the package again", damage);
		return NULL;
	}
	if (sms_execute_kept("UPDATE smsdist.package_builds SET state = 'building', error = $3, stream_id = NULL,"
						 "       updated_at = clock_timestamp()"
						 " WHERE package_id = $1 AND source_version = $2 AND state = 'ready'",
						 3, (Oid[]) {TEXTOID, INT4OID, TEXTOID},
						 (Datum[]) {values[0], values[1], CStringGetTextDatum(damage)},
						 NULL, false, 0) < 0)
		elog(ERROR, "smsdist despooler: compressing the package again failed");
	(void) sms_execute_kept_noargs("SELECT smsdist.wake('scheduler')", false, 0);
	*rebuilding = true;
	*problem = psprintf("%s; compressing it again, then the tree is repaired", damage);
	return NULL;
}

/* Extract the verified package file and publish it on the location's share. */
static void
republish(Location *loc, WorkItem *w)
{
	bool		fallback;
	char	   *dir = sms_despool_dir(despool_choose_drive(&fallback));
	char	   *tmpdir;
	char		file_sha256[SMS_SHA256_HEX_LEN + 1];
	DistPoint	dp = {loc->dp_id, loc->share};

	if (MakePGDirectory(dir) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	tmpdir = MemoryContextStrdup(sms_step_context,
								 sms_despool_job_dir(dir, psprintf("validate-%d", loc->dp_id), loc->package_id));
	loc->tmpdir = tmpdir;		/* removed by the step, also after an error */
	sms_remove_tree(tmpdir);
	if (MakePGDirectory(tmpdir) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create temporary directory \"%s\": %m", tmpdir)));
	(void) sms_archive_extract(w->package_file, tmpdir, file_sha256);
	if (strcmp(file_sha256, w->sha256) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("package file \"%s\" changed while it was extracted: its SHA-256 is %s, not %s",
						w->package_file, file_sha256, w->sha256)));
	sms_publish_tree(tmpdir, loc->share, loc->package_id, true);
	despool_publish_manifest(loc->share, loc->package_id, loc->version, loc->manifest_text);
	despool_record_location(w, &dp, true);
}

static const char *
counts_text(Findings *f)
{
	return psprintf("%d missing, %d extra, %d changed, %d of the wrong type",
					f->missing, f->extra, f->changed, f->wrong_type);
}

/* Check one location; repair it if it differs. */
static void
validate_location(Location *loc)
{
	SmsManifest *m = sms_manifest_parse(loc->manifest_text, strlen(loc->manifest_text), "stored manifest");
	Findings   *f = check_location(loc, m);
	Findings   *after;
	SmsStatusRefs refs = {0};
	WorkItem   *w;
	char	   *problem;
	bool		rebuilding;

	refs.package_id = loc->package_id;
	if (findings_total(f) == 0)
	{
		record_check(loc, "intact", f, NULL, false, false);
		return;
	}
	ereport(LOG,
			(errmsg("smsdist despooler: package %s version %d on \"%s\" differs from its manifest: %s",
					loc->package_id, loc->version, loc->share, counts_text(f))));
	w = repair_source(loc, &problem, &rebuilding);
	if (w == NULL)
	{
		record_check(loc, "damaged", f, problem, false, rebuilding);
		sms_status_message(SMS_DESPOOLER, SMS_WARNING, SMS_MSG_CONTENT_DAMAGED, &refs,
						   "Package %s version %d on distribution point \"%s\" of site %s differs from its manifest (%s) and cannot be repaired now: %s.",
						   loc->package_id, loc->version, loc->share, sms_site_code, counts_text(f), problem);
		return;
	}
	republish(loc, w);
	after = check_location(loc, m);
	if (findings_total(after) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("package %s version %d on \"%s\" still differs from its manifest after it was published again: %s",
						loc->package_id, loc->version, loc->share, counts_text(after))));
	record_check(loc, "repaired", f, "published again from the package file", true, false);
	sms_status_message(SMS_DESPOOLER, SMS_WARNING, SMS_MSG_CONTENT_REPAIRED, &refs,
					   "Package %s version %d on distribution point \"%s\" of site %s differed from its manifest (%s; %s) and was published again from the package file.",
					   loc->package_id, loc->version, loc->share, sms_site_code, counts_text(f),
					   f->named ? (char *) linitial(f->named) : "");
}

/* Has validate_content() asked for a location of this site? */
static bool
validation_requested(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	bool		isnull;

	if (sms_execute_kept("SELECT EXISTS (SELECT 1 FROM smsdist.content_validations"
						 "                WHERE site_code = $1 AND requested_at IS NOT NULL)",
						 1, types, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist despooler: looking for requested validations failed");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * One due location validated (and repaired); returns when to look again:
 * at once after a validation, else when the next location falls due.
 *
 * The look for a due location reads every location of the site, and it
 * comes between items, at most steps.  When it found none due, it is not
 * made again before the time it named, unless a validation was requested
 * (an indexed look) or the interval changed: a location published since
 * is due an interval after its publication, never before that time.
 */
TimestampTz
despool_validate_step(void)
{
	static TimestampTz nothing_due_before = 0;
	static int	looked_with_interval = -1;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next_due;
	Location   *loc;

	if (looked_with_interval == sms_content_validation_interval &&
		now < nothing_due_before && !validation_requested())
		return nothing_due_before;
	loc = next_location(&next_due);
	if (loc == NULL)
	{
		nothing_due_before = next_due;
		if (sms_content_validation_interval > 0)
			nothing_due_before = Min(next_due,
									 TimestampTzPlusMilliseconds(now, sms_content_validation_interval * (int64) 1000));
		looked_with_interval = sms_content_validation_interval;
		return next_due;
	}
	looked_with_interval = -1;
	sms_step_note = "validating the content of a distribution point";
	PG_TRY();
	{
		validate_location(loc);
	}
	PG_CATCH();
	{
		ErrorData  *edata = despool_error_restart();
		SmsStatusRefs refs = {0};

		if (loc->tmpdir != NULL)
			sms_remove_tree(loc->tmpdir);

		record_check(loc, "failed", NULL, edata->message, false, false);
		refs.package_id = loc->package_id;
		sms_status_message(SMS_DESPOOLER, SMS_ERROR, SMS_MSG_CONTENT_CHECK_FAILED, &refs,
						   "Package %s version %d on distribution point \"%s\" of site %s could not be validated or repaired: %s",
						   loc->package_id, loc->version, loc->share, sms_site_code, edata->message);
	}
	PG_END_TRY();
	if (loc->tmpdir != NULL)
		sms_remove_tree(loc->tmpdir);
	return GetCurrentTimestamp();
}
