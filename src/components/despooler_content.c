/*-------------------------------------------------------------------------
 *
 * despooler_content.c
 *	  What the distribution points of this site hold: their list, the
 *	  locations recorded in smsdist.package_locations, the manifest beside
 *	  each published tree, the check that a published version is whole, and
 *	  the live run-command jobs that follow the version the site holds.
 *	  Also what both the distribution (despooler.c) and the validation of
 *	  content (despooler_validate.c) need: the despool drive, the check of
 *	  a package file against its SHA-256, and the way back from an error
 *	  caught in a step.
 *
 *	site version	the version of a package that every enabled distribution
 *				point of the site holds (package_locations); 0 when they
 *				differ or one holds none
 *	published manifest	<share>/<package>.<version>.manifest:
 *				the build's manifest, byte for byte, beside the tree, so a
 *				client and a later Despooler can check the tree against it
 *
 * Part of the Despooler (despooler.c runs the steps); the terms work item,
 * drive and share are defined there.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "despooler_content.h"
#include "despooler.h"
#include "pcm_writer.h"
#include "status.h"
#include "validate.h"
#include "worker.h"
#include "package_store.h"
#include "publish.h"
#include "file_util.h"
#include "package_manifest.h"
#include "sha256.h"
#include "formats/sms_formats.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "storage/fd.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Set the item's detail (and bytes done), visible at once. */
void
despool_set_detail(WorkItem *w, const char *detail, int64 bytes_done)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(w->job_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	values[2] = CStringGetTextDatum(detail);
	values[3] = Int64GetDatum(bytes_done);
	if (sms_execute_kept("UPDATE smsdist.job_site_status SET detail = $3, bytes_done = $4,"
						 "       bytes_total = coalesce(bytes_total, 0)"
						 " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'",
						 4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist despooler: progress update failed");
	sms_step_commit();
}

List *
despool_distribution_points(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	List	   *volatile dps = NIL;
	MemoryContext old;

	if (sms_execute_kept("SELECT site_system_id, root_directory::text || '/SMS_PKG' || share_letter::text"
						 "  FROM smsdist.site_systems"
						 " WHERE site_code = $1 AND role = 'distribution_point' AND enabled"
						 " ORDER BY site_system_id",
						 1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: listing distribution points failed");
	old = MemoryContextSwitchTo(sms_step_context);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DistPoint  *dp = palloc(sizeof(DistPoint));
		bool		isnull;

		dp->id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		dp->share = pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
		dps = lappend((List *) dps, dp);
	}
	MemoryContextSwitchTo(old);
	return (List *) dps;
}

void
despool_record_location(WorkItem *w, DistPoint *dp, bool present)
{
	Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID};
	Datum		values[5];
	int			ret;

	values[0] = CStringGetTextDatum(w->package_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	values[2] = Int32GetDatum(dp->id);
	values[3] = Int32GetDatum(w->version);
	values[4] = CStringGetTextDatum(sms_published_tree_path(dp->share, w->package_id));
	if (present)
		ret = sms_execute_kept("INSERT INTO smsdist.package_locations"
							   "       (package_id, site_code, site_system_id, source_version, path)"
							   "VALUES ($1, $2, $3, $4, $5)"
							   "    ON CONFLICT (package_id, site_code, site_system_id) DO UPDATE"
							   "   SET source_version = $4, path = $5, published_at = clock_timestamp()",
							   5, types, values, NULL, false, 0);
	else
		ret = sms_execute_kept("DELETE FROM smsdist.package_locations"
							   " WHERE package_id = $1 AND site_code = $2 AND site_system_id = $3",
							   3, types, values, NULL, false, 0);
	if (ret < 0)
		elog(ERROR, "smsdist despooler: recording the location failed");
}

/* The version of the package published on a distribution point, or 0. */
int
despool_published_version(WorkItem *w, DistPoint *dp)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum		values[3];
	bool		isnull;

	values[0] = CStringGetTextDatum(w->package_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	values[2] = Int32GetDatum(dp->id);
	if (sms_execute_kept("SELECT source_version FROM smsdist.package_locations"
						 " WHERE package_id = $1 AND site_code = $2 AND site_system_id = $3",
						 3, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: reading the location failed");
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The manifest of a version as package_builds holds it, or NULL: the exact
 * text whose SHA-256 the PCM and .PKG files give as the package hash.
 */
char *
despool_manifest_of(const char *package_id, int version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};

	if (sms_execute_kept("SELECT manifest FROM smsdist.package_builds"
						 " WHERE package_id = $1 AND source_version = $2",
						 2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: reading the manifest failed");
	if (SPI_processed != 1)
		return NULL;
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		return v ? MemoryContextStrdup(sms_step_context, v) : NULL;
	}
}

/*
 * Whether name is ".<package>.<digits>.manifest.tmp.<pid>", the temporary
 * name sms_fmt_write_file gives a manifest of the package, of a writer that
 * is gone.  Called after the manifest being written was renamed, so a file
 * with this process's ID is a leftover too (of a process that had the ID).
 */
static bool
is_manifest_leftover(const char *name, const char *package_id, size_t plen)
{
	const char *p;
	const char *digits;

	if (name[0] != '.' || strncmp(name + 1, package_id, plen) != 0 || name[1 + plen] != '.')
		return false;
	for (p = digits = name + 2 + plen; isdigit((unsigned char) *p); p++)
		;
	return p != digits && strncmp(p, ".manifest.tmp.", 14) == 0 &&
		sms_fmt_stale_temporary(name, true);
}

/*
 * Beside the published tree: <share>/<package>.<version>.manifest, the
 * manifest whose SHA-256 is the package hash that PCM and .PKG files give,
 * so that a client can check what it downloads file by file.  Written whole
 * (temporary name, fsync, rename) right after the tree is swapped in; the
 * manifests of other versions of the package are removed then (and all of
 * them when the package is removed: text NULL), and so are the temporary
 * files of the package's manifests that a killed Despooler left.
 */
void
despool_publish_manifest(const char *share, const char *package_id, int version, const char *text)
{
	char		name[64];
	char		err[512];
	DIR		   *d;
	struct dirent *de;
	size_t		plen = strlen(package_id);

	if (text != NULL)
	{
		snprintf(name, sizeof(name), "%s.%d.manifest", package_id, version);
		if (!sms_fmt_write_file(share, name, text, strlen(text), err, sizeof(err)))
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not write the manifest of package %s version %d to \"%s\": %s",
							package_id, version, share, err)));
	}
	d = AllocateDir(share);
	if (d == NULL)
		return;					/* no share: nothing published there */
	while ((de = ReadDirExtended(d, share, LOG)) != NULL)
	{
		const char *rest = de->d_name + plen;
		char	   *end;
		long		v;

		/* <package>.<digits>.manifest, other than this one, or a leftover */
		if (!is_manifest_leftover(de->d_name, package_id, plen))
		{
			if (strncmp(de->d_name, package_id, plen) != 0 || rest[0] != '.')
				continue;
			v = strtol(rest + 1, &end, 10);
			if (end == rest + 1 || strcmp(end, ".manifest") != 0 || (text != NULL && v == version))
				continue;
		}
		{
			char	   *path = psprintf("%s/%s", share, de->d_name);

			if (unlink(path) != 0 && errno != ENOENT)
				ereport(WARNING,
						(errcode_for_file_access(),
						 errmsg("could not remove old manifest \"%s\": %m", path)));
			pfree(path);
		}
	}
	FreeDir(d);
}

/*
 * The version of the package that every enabled distribution point of this
 * site holds, as package_locations records it; 0 when they differ, when
 * one holds none, or when the site has no distribution point.
 */
static int
site_version(const char *package_id)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(package_id), CStringGetTextDatum(sms_site_code)};
	bool		isnull;

	if (sms_execute_kept("SELECT CASE WHEN count(*) > 0 AND count(l.source_version) = count(*)"
						 "             AND min(l.source_version) = max(l.source_version)"
						 "            THEN max(l.source_version) ELSE 0 END"
						 "  FROM smsdist.site_systems d"
						 "  LEFT JOIN smsdist.package_locations l"
						 "    ON l.package_id = $1 AND l.site_code = d.site_code"
						 "   AND l.site_system_id = d.site_system_id"
						 " WHERE d.site_code = $2 AND d.role = 'distribution_point' AND d.enabled",
						 2, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist despooler: reading the locations failed");
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Does the distribution point hold this version of the package, whole and
 * intact?  The manifest beside the tree must be the build's, byte for byte,
 * and every entry of it must be in the tree: a directory a directory, a
 * file a regular file (not a link) with the manifest's size, mode and
 * SHA-256 -- what an extraction checks, and what a client checks after
 * downloading.  NULL if so, else what is not.
 */
static char *
dp_problem(DistPoint *dp, const char *package_id, int version, const char *manifest_text,
		   SmsManifest *m)
{
	char		name[64];
	char		err[512];
	char	   *text = NULL;
	size_t		len;
	char	   *tree = sms_published_tree_path(dp->share, package_id);
	struct stat st;

	snprintf(name, sizeof(name), "%s.%d.manifest", package_id, version);
	if (!sms_fmt_read_file(dp->share, name, &text, &len, err, sizeof(err)))
		return psprintf("the manifest of version %d at \"%s\" cannot be read: %s", version, dp->share, err);
	if (len != strlen(manifest_text) || memcmp(text, manifest_text, len) != 0)
	{
		free(text);
		return psprintf("the manifest \"%s/%s\" is not the one of version %d", dp->share, name, version);
	}
	free(text);
	if (lstat(tree, &st) != 0 || !S_ISDIR(st.st_mode))
		return psprintf("\"%s\" is not a directory", tree);
	for (int i = 0; i < m->nentries; i++)
	{
		SmsManifestEntry *e = &m->entries[i];
		char	   *path = psprintf("%s/%s", tree, e->path);
		char		want[SMS_SHA256_HEX_LEN + 1];
		char		got[SMS_SHA256_HEX_LEN + 1];
		int64		size;
		int			fd;

		CHECK_FOR_INTERRUPTS();
		if (e->is_dir)
		{
			/* without the trailing '/', which would follow a link */
			path[strlen(path) - 1] = '\0';
			if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
				return psprintf("\"%s\" is not a directory", path);
			pfree(path);
			continue;
		}
		if (e->is_link)
		{
			char		target[SMS_PATH_LENGTH_CEILING + 1];
			ssize_t		n;

			if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) ||
				(n = readlink(path, target, sizeof(target))) < 0 ||
				(size_t) n != strlen(e->target) || memcmp(target, e->target, n) != 0)
				return psprintf("\"%s\" is not a symbolic link to \"%s\"", path, e->target);
			pfree(path);
			continue;
		}
		fd = OpenTransientFile(path, O_RDONLY | O_NOFOLLOW | PG_BINARY);
		if (fd < 0)
			return psprintf("\"%s\" cannot be opened: %m", path);
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != e->size ||
			(int) (st.st_mode & 07777) != e->mode)
		{
			CloseTransientFile(fd);
			return psprintf("\"%s\" is not a regular file of %lld bytes and mode %04o",
							path, (long long) e->size, e->mode);
		}
		sms_sha256_digest_hex(e->sha256, want);
		if (!sms_sha256_fd(fd, got, &size))
		{
			char	   *msg = psprintf("\"%s\" cannot be read: %m", path);

			CloseTransientFile(fd);
			return msg;
		}
		CloseTransientFile(fd);
		if (size != e->size || strcmp(got, want) != 0)
			return psprintf("\"%s\" does not match the manifest", path);
		pfree(path);
	}
	pfree(tree);
	return NULL;
}

/*
 * A version already published: if every enabled distribution point of this
 * site holds this version of the package, or a newer one (a run-command
 * job follows what the distribution points hold: despool_follow_site_version), and
 * each copy checks out (dp_problem), the item can be done without
 * extracting and publishing the package again: true, with w->already the
 * version found.  A copy that does not check out is published again, as
 * before.
 */
bool
despool_already_published(WorkItem *w, List *dps)
{
	int			v = site_version(w->package_id);
	char	   *text;
	SmsManifest *m;
	ListCell   *lc;

	if (v == 0 || v < w->version)
		return false;
	text = despool_manifest_of(w->package_id, v);
	if (text == NULL)
		return false;
	despool_set_detail(w, psprintf("checking version %d, published on %d distribution point%s",
								   v, list_length(dps), list_length(dps) == 1 ? "" : "s"), 0);
	m = sms_manifest_parse(text, strlen(text), "stored manifest");
	foreach(lc, dps)
	{
		DistPoint  *dp = lfirst(lc);
		char	   *problem = dp_problem(dp, w->package_id, v, text, m);

		if (problem != NULL)
		{
			ereport(LOG,
					(errmsg("smsdist despooler: package %s version %d is published again at site %s: %s",
							w->package_id, v, sms_site_code, problem)));
			despool_set_detail(w, "extracting the package", 0);
			return false;
		}
	}
	w->already = v;
	return true;
}

/*
 * Live run-command jobs follow the version that the distribution points of
 * this site hold: when every one holds version V (just published, or found
 * there), each active run-command job of the package that is distributed
 * at this site and names an older version now names V (jobs.source_version
 * here), and the PCM files of its machines at this site are rewritten (the
 * policies follow: the Offer Manager is woken).  Its distribute row says
 * so, with a status message (3205).  A job never goes back to an older
 * version.
 */
void
despool_follow_site_version(WorkItem *w)
{
	int			v = site_version(w->package_id);
	Oid			types[4] = {TEXTOID, INT4OID, TEXTOID, TEXTOID};
	Datum		values[4];
	SPITupleTable *t;
	uint64		n;

	if (v == 0)
		return;
	values[0] = CStringGetTextDatum(w->package_id);
	values[1] = Int32GetDatum(v);
	values[2] = CStringGetTextDatum(sms_site_code);
	if (sms_execute_kept("WITH old AS ("
						 "  SELECT j.job_id, j.source_version FROM smsdist.jobs j"
						 "   WHERE j.package_id = $1 AND j.job_type = 'run_command' AND j.state = 'active'"
						 "     AND j.source_version < $2"
						 "     AND EXISTS (SELECT 1 FROM smsdist.job_site_status s"
						 "                  WHERE s.job_id = j.job_id AND s.site_code = $3"
						 "                    AND s.phase = 'distribute')"
						 "     AND EXISTS (SELECT 1 FROM smsdist.package_builds b"
						 "                  WHERE b.package_id = $1 AND b.source_version = $2"
						 "                    AND b.manifest IS NOT NULL)"
						 "   ORDER BY j.job_id FOR UPDATE OF j), "
						 "moved AS ("
						 "  UPDATE smsdist.jobs j SET source_version = $2 FROM old"
						 "   WHERE j.job_id = old.job_id"
						 "  RETURNING j.job_id, old.source_version AS was), "
						 "detail AS ("
						 "  UPDATE smsdist.job_site_status s"
						 "     SET detail = format('runs version %s, which the distribution points of this site"
						 " hold (it named version %s)', $2, moved.was)"
						 "    FROM moved"
						 "   WHERE s.job_id = moved.job_id AND s.site_code = $3 AND s.phase = 'distribute'"
						 "     AND s.state = 'done') "
						 "SELECT moved.job_id::text, moved.was,"
						 "       (SELECT count(*) FROM smsdist.job_target_status t"
						 "          JOIN smsdist.system_resources r ON r.sms_id = t.sms_id AND r.site_code = $3"
						 "         WHERE t.job_id = moved.job_id)"
						 "  FROM moved ORDER BY moved.job_id",
						 3, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: moving live jobs to version %d failed", v);
	t = SPI_tuptable;
	n = SPI_processed;

	/*
	 * The files of every live job of the package at this site are written
	 * again: the moved ones name the new version, and those whose package
	 * was removed and is now published again (content_gone) are offered
	 * again.  A machine already queued has its row updated, which locks
	 * it: a PCM writer in another transaction (a helper) could otherwise
	 * take it with a snapshot from before this commit and write its file
	 * as it was.  (A job being activated no longer queues its machines, so
	 * the rows updated here are the few queued for another reason.)  The
	 * job whose distribution this is was queued by the caller, in this
	 * transaction: looking again at each of its machines cost as much (0.9
	 * s for 100,000).
	 */
	values[3] = CStringGetTextDatum(w->job_id);
	if (sms_execute_kept("WITH live AS ("
						 "  SELECT j.job_id FROM smsdist.jobs j"
						 "   WHERE j.package_id = $1 AND j.job_type = 'run_command' AND j.state = 'active'"
						 "     AND j.source_version = $2"
						 "     AND EXISTS (SELECT 1 FROM smsdist.job_site_status s"
						 "                  WHERE s.job_id = j.job_id AND s.site_code = $3"
						 "                    AND s.phase = 'distribute' AND s.state = 'done')), "
						 "again AS ("
						 "  UPDATE smsdist.job_site_status s"
						 "     SET detail = format('published again on the distribution points of this site: runs version %s', $2)"
						 "    FROM live"
						 "   WHERE s.job_id = live.job_id AND s.site_code = $3 AND s.phase = 'distribute'"
						 "     AND s.detail LIKE 'job % removed package % from the distribution points of this site:%') "
						 "INSERT INTO smsdist.pcm_queue (sms_id)"
						 "SELECT DISTINCT t.sms_id FROM live"
						 "  JOIN smsdist.job_target_status t ON t.job_id = live.job_id"
						 "  JOIN smsdist.system_resources r ON r.sms_id = t.sms_id AND r.site_code = $3"
						 " WHERE live.job_id <> $4"
						 "    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at",
						 4, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist despooler: queueing the PCM files of live jobs failed");

	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *job_id = SPI_getvalue(t->vals[i], t->tupdesc, 1);
		int			was = DatumGetInt32(SPI_getbinval(t->vals[i], t->tupdesc, 2, &isnull));
		int64		machines = DatumGetInt64(SPI_getbinval(t->vals[i], t->tupdesc, 3, &isnull));
		SmsStatusRefs refs = {0};

		refs.job_id = job_id;
		refs.package_id = w->package_id;
		sms_status_message(SMS_DESPOOLER, SMS_INFO, SMS_MSG_JOB_FOLLOWS_VERSION, &refs,
						   "Job %s now runs package %s version %d at site %s instead of version %d: version %d is what its distribution points hold%s%s. The PCM files of its %lld machine%s here are rewritten.",
						   job_id, w->package_id, v, sms_site_code, was, v,
						   strcmp(job_id, w->job_id) == 0 ? "" : " (published by job ",
						   strcmp(job_id, w->job_id) == 0 ? "" : psprintf("%s)", w->job_id),
						   (long long) machines, machines == 1 ? "" : "s");
	}
	if (n > 0)
		(void) sms_execute_kept_noargs("SELECT smsdist.wake('offer_manager')", false, 0);
}

/*
 * The package was removed from this site's distribution points: a live
 * run-command job of it has nothing left to run here.  Its machines' PCM
 * files are rewritten without it (a PCM file names only locations that hold
 * the job's version); its distribute row and the detail of each of its
 * machines here that has not finished say why, with a status message
 * (3206).  The job keeps its state: an operator publishes the package again
 * (a share_package job; the job then follows it) or cancels the job.
 */
void
despool_content_gone(WorkItem *w)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	SPITupleTable *t;
	uint64		n;

	values[0] = CStringGetTextDatum(w->package_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	values[2] = CStringGetTextDatum(w->job_id);
	if (sms_execute_kept("WITH live AS ("
						 "  SELECT j.job_id, j.source_version FROM smsdist.jobs j"
						 "   WHERE j.package_id = $1 AND j.job_type = 'run_command' AND j.state = 'active'"
						 "     AND EXISTS (SELECT 1 FROM smsdist.job_site_status s"
						 "                  WHERE s.job_id = j.job_id AND s.site_code = $2"
						 "                    AND s.phase = 'distribute' AND s.state = 'done')), "
						 "detail AS ("
						 "  UPDATE smsdist.job_site_status s"
						 "     SET detail = format('job %s removed package %s from the distribution points of this site:"
						 " version %s cannot run here', $3, $1, live.source_version)"
						 "    FROM live"
						 "   WHERE s.job_id = live.job_id AND s.site_code = $2 AND s.phase = 'distribute'), "
						 "targets AS ("
						 "  UPDATE smsdist.job_target_status t"
						 "     SET detail = format('package %s version %s was removed from the distribution points of site %s by job %s',"
						 "                         $1, live.source_version, $2, $3)"
						 "    FROM live, smsdist.system_resources r"
						 "   WHERE t.job_id = live.job_id AND r.sms_id = t.sms_id AND r.site_code = $2"
						 "     AND t.state::text NOT IN ('succeeded', 'failed', 'not_applicable', 'cancelled', 'expired')"
						 "  RETURNING t.job_id, t.sms_id), "
						 "queued AS ("
						 "  INSERT INTO smsdist.pcm_queue (sms_id)"
						 "  SELECT DISTINCT t.sms_id FROM live"
						 "    JOIN smsdist.job_target_status t ON t.job_id = live.job_id"
						 "    JOIN smsdist.system_resources r ON r.sms_id = t.sms_id AND r.site_code = $2"
						 /* locked if already queued: see despool_follow_site_version() */
						 "      ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at) "
						 "SELECT live.job_id::text, live.source_version,"
						 "       (SELECT count(*) FROM targets WHERE targets.job_id = live.job_id)"
						 "  FROM live ORDER BY live.job_id",
						 3, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: reporting the live jobs of a removed package failed");
	t = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *job_id = SPI_getvalue(t->vals[i], t->tupdesc, 1);
		int			version = DatumGetInt32(SPI_getbinval(t->vals[i], t->tupdesc, 2, &isnull));
		int64		waiting = DatumGetInt64(SPI_getbinval(t->vals[i], t->tupdesc, 3, &isnull));
		SmsStatusRefs refs = {0};

		refs.job_id = job_id;
		refs.package_id = w->package_id;
		sms_status_message(SMS_DESPOOLER, SMS_WARNING, SMS_MSG_JOB_CONTENT_GONE, &refs,
						   "Job %s cannot run package %s version %d at site %s: job %s removed the package from the distribution points of the site. Its PCM files here no longer offer it; %lld of its machines here had not finished. Publish the package again (the job follows it) or cancel the job.",
						   job_id, w->package_id, version, sms_site_code, w->job_id,
						   (long long) waiting);
	}
	if (n > 0)
		(void) sms_execute_kept_noargs("SELECT smsdist.wake('offer_manager')", false, 0);
}


/* ------------------------------------------------------------------------
 * The despool drive, the package file, and recovering from an error
 * ------------------------------------------------------------------------
 */

/* The drive with the most free space, or the package store. */
char *
despool_choose_drive(bool *fallback)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	char	   *best = NULL;
	uint64		best_free = 0;

	if (sms_execute_kept("SELECT root_directory::text FROM smsdist.site_systems"
						 " WHERE site_code = $1 AND role = 'site_server_drive' AND enabled"
						 " ORDER BY site_system_id",
						 1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: listing site-server drives failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *root = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		struct statvfs sv;

		if (!sms_valid_server_path(root, "site-server drive", false))
			continue;
		if (statvfs(root, &sv) != 0)
		{
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("site-server drive \"%s\" is not usable: %m", root)));
			continue;
		}
		if (best == NULL || (uint64) sv.f_bavail * sv.f_frsize > best_free)
		{
			best = MemoryContextStrdup(sms_step_context, root);
			best_free = (uint64) sv.f_bavail * sv.f_frsize;
		}
	}
	*fallback = (best == NULL);
	if (best == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(sms_step_context);

		best = sms_package_store();
		MemoryContextSwitchTo(old);
	}
	return best;
}

/*
 * Check the package file against the SHA-256 its builder recorded, so that
 * a file damaged on disk (or, later, in transit) is recognised as such --
 * and rebuilt -- rather than reported as a bad package.  Returns NULL if it
 * is intact, else what is wrong.  Used when an extraction failed: a
 * successful one checks the hash of what it read (distribute).
 */
char *
despool_package_file_problem(WorkItem *w)
{
	int			fd;
	char		hex[SMS_SHA256_HEX_LEN + 1];
	int64		size;
	bool		ok;

	if (w->sha256 == NULL)
		return NULL;
	fd = OpenTransientFile(w->package_file, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return psprintf("package file \"%s\" cannot be read: %m", w->package_file);
	ok = sms_sha256_fd(fd, hex, &size);
	if (!ok)
	{
		char	   *msg = psprintf("package file \"%s\" cannot be read: %m", w->package_file);

		CloseTransientFile(fd);
		return msg;
	}
	CloseTransientFile(fd);
	if (strcmp(hex, w->sha256) != 0)
		return psprintf("package file \"%s\" is corrupt: its SHA-256 is %s, not %s",
						w->package_file, hex, w->sha256);
	return NULL;
}

/*
 * In a PG_CATCH of a step: the error, copied, and the transaction aborted
 * and started again -- the state the worker loop expects (a transaction,
 * SPI).  The caller stays in the context SPI_connect() left it in: the one
 * it was in before was the aborted transaction's, and is gone.
 */
ErrorData *
despool_error_restart(void)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(sms_step_context);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	return edata;
}
