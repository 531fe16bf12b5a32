/*-------------------------------------------------------------------------
 *
 * despooler.c
 *	  The SMS Despooler: the Distribute phase at this site.
 *
 * In SMS: "At the target sites, the Despooler decompresses the package
 * into a temporary directory on the Site Server disk drive with the largest
 * amount of free space", then "copies the package from the temporary
 * directory ... to the Distribute Server or servers SMS_PKGx share" and
 * stores the locations "to enable a subsequent Remove Package job".
 *
 * Terms:
 *	work item	a smsdist.job_site_status row of this site in phase
 *				'distribute' (waiting, retrying, or running -- a 'running'
 *				row found by a step was left by a Despooler that died, since
 *				there is one Despooler per site) whose job is active and whose
 *				package file is ready.
 *	drive		a site system of role 'site_server_drive'; the one with the
 *				most free space (statvfs) holds the temporary directory
 *				<drive>/smsdist-despool/<job>.<package>.  A Despooler that
 *				starts removes whatever an earlier one left there.  With no drive
 *				configured the package store is used, and the detail says so.
 *	share		<distribution point root>/SMS_PKG<letter>, letter from
 *				site_systems.share_letter (C by default).
 *
 * A step takes one work item, commits 'running' (so operators see it), then
 * extracts the package file with every entry checked against its manifest
 * (package_extract.c), publishes the tree on every enabled distribution
 * point of the site with an atomic swap (publish.c), records each location
 * in smsdist.package_locations, and marks the item done.  A share_package
 * job whose every site is done is completed.  A failure (a package that
 * does not match its manifest) fails the item and its job with the reason,
 * leaves the previously published version in place, and removes the
 * temporary directory.  A full disk (the despool drive, a distribution
 * point) does the same but fails nothing: the item waits in 'retrying'
 * with the disk and its free bytes, and is tried again with back-off until
 * there is room (or smsdist.disk_full_give_up_after has passed).  A Remove
 * Package job removes the package from every distribution point of the
 * site and its locations.
 * Between items, a step validates one published tree against its manifest
 * and repairs it (despooler_validate.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "despooler.h"
#include "despooler_content.h"
#include "pcm_copies.h"
#include "pcm_writer.h"
#include "status.h"
#include "validate.h"
#include "worker.h"
#include "file_util.h"
#include "package_extract.h"
#include "publish.h"
#include "package_store.h"
#include "job_state.h"
#include "early_extract.h"
#include "formats/sms_formats.h"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

static char *
copy_value(SPITupleTable *t, int row, int col)
{
	char	   *v = SPI_getvalue(t->vals[row], t->tupdesc, col);

	return v ? MemoryContextStrdup(sms_step_context, v) : NULL;
}

/* Claim one work item and mark it running; NULL if there is none. */
static WorkItem *
claim_item(void)
{
	WorkItem   *w;
	bool		isnull;

	if (sms_distribute_row_claim(sms_site_code) == NULL)
		return NULL;

	w = MemoryContextAllocZero(sms_step_context, sizeof(WorkItem));
	w->job_id = copy_value(SPI_tuptable, 0, 1);
	w->job_type = copy_value(SPI_tuptable, 0, 2);
	w->package_id = copy_value(SPI_tuptable, 0, 3);
	w->version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	w->package_file = copy_value(SPI_tuptable, 0, 5);
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull);

		w->bytes_total = isnull ? 0 : DatumGetInt64(d);
	}
	w->sha256 = copy_value(SPI_tuptable, 0, 7);
	w->base_version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8, &isnull));
	w->received = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9, &isnull));
	w->has_manifest = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 10, &isnull));
	return w;
}

/* The item is done: the row, the job if all its sites are, a status message. */
static void
finish_item(WorkItem *w, int ndps)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char	   *detail;
	SmsStatusRefs refs = {0};
	bool		removing = strcmp(w->job_type, "remove_package") == 0;

	values[0] = CStringGetTextDatum(w->job_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	if (w->already == w->version && w->already > 0)
		detail = psprintf("already published on %d distribution point%s",
						  ndps, ndps == 1 ? "" : "s");
	else if (w->already > 0)
		detail = psprintf("version %d, newer, is already published on %d distribution point%s",
						  w->already, ndps, ndps == 1 ? "" : "s");
	else
		detail = psprintf("%s %d distribution point%s%s",
						  removing ? "removed from" : "published on",
						  ndps, ndps == 1 ? "" : "s",
						  w->early_stage ? " (extracted while it was received)" : "");
	sms_distribute_row_done(w->job_id, sms_site_code, detail);

	/* share and remove jobs end with the Distribute phase everywhere */
	sms_jobs_complete_distributed(w->job_id);

	/*
	 * the Run phase: this site's target machines get their PCM files.  A
	 * machine already queued gets its row updated, not left alone: the
	 * update locks it, so a PCM writer (a helper, in its own transaction)
	 * cannot take it with a snapshot that does not see this distribution
	 * yet and write its file without the job.
	 */
	if (strcmp(w->job_type, "run_command") == 0 &&
		sms_execute_kept("INSERT INTO smsdist.pcm_queue (sms_id)"
						 "SELECT t.sms_id FROM smsdist.job_target_status t"
						 "  JOIN smsdist.system_resources r ON r.sms_id = t.sms_id AND r.site_code = $2"
						 " WHERE t.job_id = $1"
						 "    ON CONFLICT (sms_id) DO UPDATE SET queued_at = EXCLUDED.queued_at",
						 2, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist despooler: queueing PCM files failed");

	refs.job_id = w->job_id;
	refs.package_id = w->package_id;
	if (removing)
		sms_status_message(SMS_DESPOOLER, SMS_INFO, SMS_MSG_DISTRIBUTED, &refs,
						   "Package %s removed from %d distribution point%s of site %s.",
						   w->package_id, ndps, ndps == 1 ? "" : "s", sms_site_code);
	else if (w->already > 0)
		sms_status_message(SMS_DESPOOLER, SMS_INFO, SMS_MSG_ALREADY_PUBLISHED, &refs,
						   "Package %s version %d is already published on %d distribution point%s of site %s, every file verified: not extracted again.",
						   w->package_id, w->already, ndps, ndps == 1 ? "" : "s", sms_site_code);
	else
		sms_status_message(SMS_DESPOOLER, SMS_INFO, SMS_MSG_DISTRIBUTED, &refs,
						   "Package %s version %d published on %d distribution point%s of site %s.",
						   w->package_id, w->version, ndps, ndps == 1 ? "" : "s", sms_site_code);

	/* live run-command jobs follow what the distribution points now hold */
	if (removing)
		despool_content_gone(w);
	else
		despool_follow_site_version(w);
}

/* The item failed: the row and its job fail, with the reason. */
static void
fail_item(WorkItem *w, const char *reason)
{
	SmsStatusRefs refs = {0};

	sms_distribute_row_fail(w->job_id, sms_site_code, reason);
	refs.job_id = w->job_id;
	refs.package_id = w->package_id;
	sms_status_message(SMS_DESPOOLER, SMS_ERROR, SMS_MSG_DISTRIBUTE_FAILED, &refs,
					   "Distribution of package %s at site %s failed: %s",
					   w->package_id, sms_site_code, reason);
}

/*
 * An error that is a disk running out of room, said with the disk (the
 * despool drive, or the distribution point whose share the error names),
 * what is free on it and what the package needs (its source bytes: the
 * extracted tree, or the copy a distribution point gets beside the version
 * it serves); NULL for any other error.  The operator frees room there, or
 * adds a drive; the item waits meanwhile (wait_for_room).
 */
static char *
full_disk_problem(ErrorData *edata, const char *drive, List *dps, WorkItem *w)
{
	ListCell   *lc;
	int64		needed = w->bytes_total > 0 ? w->bytes_total : -1;

	if (!sms_error_is_disk_full(edata))
		return NULL;
	foreach(lc, dps)
	{
		DistPoint  *dp = lfirst(lc);

		if (edata->message != NULL && strstr(edata->message, dp->share) != NULL)
			return sms_disk_full_reason("distribution point", dp->share, needed, edata->message);
	}
	if (edata->message != NULL && strstr(edata->message, drive) != NULL)
		return sms_disk_full_reason("despool drive", drive, needed, edata->message);
	return psprintf("a disk is full: %s", edata->message ? edata->message : "no message");
}

/*
 * A disk the item writes to is full: the item waits in 'retrying' with the
 * reason and is tried again after a back-off, by itself (job_state.c); what
 * the distribution points served before stays.  Said once per run of
 * failures (status message 3211), and again if it gives up (3201).
 */
static void
wait_for_room(WorkItem *w, const char *reason)
{
	SmsStatusRefs refs = {0};
	TimestampTz next = 0;
	bool		first = false;

	refs.job_id = w->job_id;
	refs.package_id = w->package_id;
	if (sms_distribute_row_disk_full(w->job_id, sms_site_code, reason, &next, &first))
		sms_status_message(SMS_DESPOOLER, SMS_ERROR, SMS_MSG_DISTRIBUTE_FAILED, &refs,
						   "Distribution of package %s at site %s failed: a disk stayed full for %d s (smsdist.disk_full_give_up_after): %s",
						   w->package_id, sms_site_code, sms_disk_full_give_up_after, reason);
	else if (first && next != 0)
		sms_status_message(SMS_DESPOOLER, SMS_WARNING, SMS_MSG_DISK_FULL_WAITING, &refs,
						   "Distribution of package %s version %d at site %s waits for room: %s; it is tried again by itself, first at %s.",
						   w->package_id, w->version, sms_site_code, reason,
						   timestamptz_to_str(next));
}

/*
 * The package file is corrupt: compress the package again and put the item
 * back to waiting; the Scheduler starts a builder, and the Despooler takes
 * the item again once the build is ready.
 */
static void
repair_item(WorkItem *w, const char *reason)
{
	Oid			types[4] = {TEXTOID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[4];
	SmsStatusRefs refs = {0};

	values[0] = CStringGetTextDatum(w->job_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	values[2] = Int32GetDatum(w->version);
	values[3] = CStringGetTextDatum(reason);
	if (sms_execute_kept("UPDATE smsdist.package_builds SET state = 'building', error = $4, stream_id = NULL,"
						 "         updated_at = clock_timestamp()"
						 "   WHERE package_id = (SELECT package_id FROM smsdist.jobs WHERE job_id = $1)"
						 "     AND source_version = $3 AND state = 'ready'",
						 4, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist despooler: compressing the package again failed");
	sms_distribute_row_repairing(w->job_id, sms_site_code, reason);
	(void) sms_execute_kept_noargs("SELECT smsdist.wake('scheduler')", false, 0);
	refs.job_id = w->job_id;
	refs.package_id = w->package_id;
	sms_status_message(SMS_DESPOOLER, SMS_WARNING, SMS_MSG_PACKAGE_CORRUPT, &refs,
					   "Package %s version %d: %s; compressing it again.",
					   w->package_id, w->version, reason);
}

/*
 * The package file came from the parent site and cannot be used here: a
 * delta whose base is not here (or not intact), or a damaged file.  The
 * item waits for the full package; the parent's Sender sees the detail in
 * distribution_report and sends it (sender.c).  Nothing is published.
 */
static void
needs_full_package(WorkItem *w, const char *reason)
{
	SmsStatusRefs refs = {0};

	sms_distribute_row_needs_full(w->job_id, sms_site_code, reason,
								  SMS_NEEDS_FULL_PACKAGE " from the parent site: ");
	refs.job_id = w->job_id;
	refs.package_id = w->package_id;
	sms_status_message(SMS_DESPOOLER, SMS_WARNING, SMS_MSG_NEEDS_FULL_PACKAGE, &refs,
					   "Package %s version %d cannot be distributed at site %s from the file received: %s; waiting for the full package from the parent site.",
					   w->package_id, w->version, sms_site_code, reason);
}

/* The package file is damaged: a file from the parent cannot be compressed again here. */
static void
file_problem(WorkItem *w, const char *problem)
{
	if (w->received)
		needs_full_package(w, problem);
	else
		repair_item(w, problem);
}

/* The published tree of the delta's base version at this site, or NULL. */
static char *
base_tree(WorkItem *w)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(w->package_id);
	values[1] = CStringGetTextDatum(sms_site_code);
	values[2] = Int32GetDatum(w->base_version);
	if (sms_execute_kept("SELECT path FROM smsdist.package_locations"
						 " WHERE package_id = $1 AND site_code = $2 AND source_version = $3"
						 " ORDER BY site_system_id LIMIT 1",
						 3, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: reading the locations failed");
	if (SPI_processed == 0)
		return NULL;
	return MemoryContextStrdup(sms_step_context,
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

/* Keep the manifest of a received build: this site can then make deltas. */
static void
remember_manifest(WorkItem *w, SmsManifest *m)
{
	Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, INT4OID, INT8OID};
	Datum		values[5];
	int			files = 0;

	if (w->has_manifest)
		return;
	for (int i = 0; i < m->nentries; i++)
		files += (m->entries[i].is_dir || m->entries[i].is_link) ? 0 : 1;
	values[0] = CStringGetTextDatum(w->package_id);
	values[1] = Int32GetDatum(w->version);
	values[2] = CStringGetTextDatum(sms_manifest_to_text(m));
	values[3] = Int32GetDatum(files);
	values[4] = Int64GetDatum(m->total_bytes);
	if (sms_execute_kept("UPDATE smsdist.package_builds"
						 "   SET manifest = $3, file_count = $4, source_bytes = $5"
						 " WHERE package_id = $1 AND source_version = $2 AND manifest IS NULL",
						 5, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist despooler: recording the manifest failed");
}

/*
 * Order the distribution points so that the last one is on the file system
 * of the temporary directory, if one is: that one gets the extracted tree by
 * a rename instead of a copy (sms_publish_tree's may_move).  The share may
 * not exist yet; its distribution point's root does.
 */
static List *
move_target_last(List *dps, const char *tmpdir)
{
	struct stat tmp_st;
	DistPoint  *same = NULL;
	ListCell   *lc;

	if (stat(tmpdir, &tmp_st) != 0)
		return dps;
	foreach(lc, dps)
	{
		DistPoint  *dp = lfirst(lc);
		char	   *root = pstrdup(dp->share);
		char	   *slash = strrchr(root, '/');
		struct stat st;

		if (slash != NULL && slash != root)
			*slash = '\0';		/* <root>/SMS_PKGx -> <root> */
		if (stat(dp->share, &st) == 0 || stat(root, &st) == 0)
		{
			if (st.st_dev == tmp_st.st_dev)
				same = dp;
		}
		pfree(root);
	}
	if (same == NULL)
		return dps;
	dps = list_delete_ptr(dps, same);
	return lappend(dps, same);
}

static void publish_extracted(WorkItem *w, List *dps, const char *tmpdir);

static void
distribute(WorkItem *w, List *dps, const char *tmpdir)
{
	ListCell   *lc;
	int			n = 0;
	char		file_sha256[SMS_SHA256_HEX_LEN + 1];

	if (strcmp(w->job_type, "remove_package") == 0)
	{
		foreach(lc, dps)
		{
			DistPoint  *dp = lfirst(lc);

			sms_unpublish(dp->share, w->package_id);
			despool_publish_manifest(dp->share, w->package_id, 0, NULL);
			despool_record_location(w, dp, false);
			n++;
		}
		finish_item(w, n);
		return;
	}

	/* already on every distribution point, intact: nothing to extract */
	if (despool_already_published(w, dps))
	{
		finish_item(w, list_length(dps));
		return;
	}

	/*
	 * A package that was received as its parent compressed it may have
	 * been extracted as it arrived (early_extract.c): the tree is ready, or
	 * nearly, and was read from exactly this package file.
	 */
	if (w->base_version == 0 && sms_early_is_for(w->package_id, w->version))
	{
		SmsManifest *m = NULL;
		char	   *stage;

		despool_set_detail(w, "finishing the extraction begun while the package was received", 0);
		stage = sms_early_take(w->package_id, w->version, w->sha256, &m);
		if (stage != NULL)
		{
			w->early_stage = MemoryContextStrdup(sms_step_context, stage);
			remember_manifest(w, m);
			publish_extracted(w, dps, sms_early_stage_tree(w->early_stage));
			sms_remove_tree(w->early_stage);
			return;
		}
		despool_set_detail(w, "extracting the package", 0);
	}

	if (MakePGDirectory(tmpdir) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create temporary directory \"%s\": %m", tmpdir)));
	if (w->base_version > 0)
	{
		char	   *base = base_tree(w);
		bool		was_delta;
		SmsManifest *m;

		if (base == NULL)
		{
			needs_full_package(w, psprintf("the package file is a delta from version %d, which is not published at this site",
										   w->base_version));
			sms_remove_tree(tmpdir);
			return;
		}
		despool_set_detail(w, psprintf("applying the delta from version %d", w->base_version), 0);
		m = sms_archive_extract_delta(w->package_file, tmpdir, base, w->base_version, &was_delta,
									  file_sha256);
		remember_manifest(w, m);
	}
	else
		remember_manifest(w, sms_archive_extract(w->package_file, tmpdir, file_sha256));

	/*
	 * The package file against the SHA-256 its builder recorded (or the
	 * parent sent), as the extraction read it: a file damaged on disk is
	 * compressed again (or asked for again), not published.  (A damage
	 * that makes the extraction fail is found in sms_despooler_step.)
	 */
	if (w->sha256 != NULL && strcmp(file_sha256, w->sha256) != 0)
	{
		sms_remove_tree(tmpdir);
		file_problem(w, psprintf("package file \"%s\" is corrupt: its SHA-256 is %s, not %s",
								 w->package_file, file_sha256, w->sha256));
		return;
	}
	publish_extracted(w, dps, tmpdir);
}

/* Publish the extracted tree on every distribution point; it is gone after. */
static void
publish_extracted(WorkItem *w, List *dps, const char *tmpdir)
{
	ListCell   *lc;
	int			n = 0;
	char	   *manifest_text;

	tmpdir = MemoryContextStrdup(sms_step_context, tmpdir);	/* across commits */
	manifest_text = despool_manifest_of(w->package_id, w->version);
	despool_set_detail(w, psprintf("extracted; publishing on %d distribution point%s",
						   list_length(dps), list_length(dps) == 1 ? "" : "s"), 0);
	dps = move_target_last(dps, tmpdir);
	foreach(lc, dps)
	{
		DistPoint  *dp = lfirst(lc);
		bool		last = (lnext(dps, lc) == NULL);

		/*
		 * A job of an older version that ran late must not take a newer
		 * version off a distribution point.
		 */
		if (despool_published_version(w, dp) > w->version)
		{
			n++;
			continue;
		}
		/* the last one may take the extracted tree itself: no copy */
		sms_publish_tree(tmpdir, dp->share, w->package_id, last);
		if (manifest_text != NULL)
			despool_publish_manifest(dp->share, w->package_id, w->version, manifest_text);
		despool_record_location(w, dp, true);
		n++;
		despool_set_detail(w, psprintf("published on %d of %d distribution points", n, list_length(dps)),
				   w->bytes_total * n / Max(list_length(dps), 1));
	}
	sms_remove_tree(tmpdir);
	finish_item(w, n);
}

/*
 * Remove what a Despooler that died left in the despool directories: there
 * is one Despooler per site, so whatever is there when one starts is a
 * leftover.  Done once per process.
 */
static void
clean_despool_dirs(void)
{
	static bool done = false;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	List	   *dirs = NIL;
	ListCell   *lc;

	if (done)
		return;
	if (sms_execute_kept("SELECT root_directory::text FROM smsdist.site_systems"
						 " WHERE site_code = $1 AND role = 'site_server_drive'",
						 1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: listing site-server drives failed");
	for (uint64 i = 0; i < SPI_processed; i++)
		dirs = lappend(dirs, sms_despool_dir(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	dirs = lappend(dirs, sms_despool_dir(sms_package_store()));

	foreach(lc, dirs)
	{
		char	   *dir = lfirst(lc);
		DIR		   *d;
		struct dirent *de;

		if (!sms_valid_server_path(dir, "despool directory", false))
			continue;
		d = AllocateDir(dir);
		if (d == NULL)
			continue;			/* not there yet: nothing to clean */
		while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
		{
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			/*
			 * A leftover that cannot be removed is logged, not fatal: a
			 * Despooler that failed here at every step would serve nothing.
			 * Each job's own directory is removed again before it is used.
			 */
			(void) sms_remove_tree_or_warn(psprintf("%s/%s", dir, de->d_name));
		}
		FreeDir(d);
	}
	done = true;
}

/*
 * A package being sent while its parent compresses it (a stream) is
 * extracted as it arrives, by an early extractor (early_extract.c): one at a
 * time, each stream once.  receive_begin wakes us when a stream begins.
 * A finished file of at most 1 MB (its size known) arrives in one round
 * trip: an extractor process would cost more than it saves.
 */
static void
start_early_extraction(void)
{
	if (!sms_extract_while_receiving || sms_early_busy())
		return;
	if (sms_execute_kept_noargs("SELECT package_id::text, source_version, stream_id"
								"  FROM smsdist.package_transfers"
								" WHERE stream_id IS NOT NULL AND base_version IS NULL"
								"   AND (total_bytes IS NULL OR total_bytes > 1024 * 1024)"
								" ORDER BY started_at LIMIT 8", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: listing the transfers failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		SPITupleTable *t = SPI_tuptable;
		char	   *package_id = SPI_getvalue(t->vals[i], t->tupdesc, 1);
		int			version = atoi(SPI_getvalue(t->vals[i], t->tupdesc, 2));
		char	   *stream_id = SPI_getvalue(t->vals[i], t->tupdesc, 3);
		bool		fallback;

		if (sms_early_tried(package_id, version, stream_id))
			continue;
		(void) sms_early_start(package_id, version, stream_id,
							   sms_part_path(sms_package_store(), package_id, version),
							   despool_choose_drive(&fallback));
		return;
	}
}

/* The earliest back-off of this site's items that wait for room, or DT_NOEND. */
static TimestampTz
next_retry(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	bool		isnull;
	Datum		d;

	if (sms_execute_kept("SELECT min(next_attempt_at) FROM smsdist.job_site_status"
						 " WHERE site_code = $1 AND phase = 'distribute' AND state = 'retrying'"
						 "   AND next_attempt_at > clock_timestamp()",
						 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: reading the next retry failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

TimestampTz
sms_despooler_step(void)
{
	WorkItem   *w;
	List	   *dps;
	char	   *drive;
	char	   *tmpdir;
	bool		fallback;
	volatile bool distributed = false;

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}

	clean_despool_dirs();
	sms_early_poll();
	start_early_extraction();
	w = claim_item();
	if (w == NULL)
	{
		/* the Run phase: PCM files of this site's machines */
		TimestampTz retry = sms_pcm_retry_failing_servers();
		TimestampTz room = next_retry();

		if (room < retry)
			retry = room;
		if (sms_pcm_write_queued())
			return GetCurrentTimestamp();

		/*
		 * Woken during this step: most often a job's activation at this
		 * site, which commits just after the package it brings (whose
		 * commit began this step).  Its item is claimed now, not after a
		 * validation.  The latch is reset here, but the wake-up count still
		 * makes the worker look again after the step.
		 */
		if (MyLatch->is_set)
		{
			ResetLatch(MyLatch);
			w = claim_item();
		}
		if (w == NULL)
		{
			/* between items: one location's content validated (and repaired) */
			TimestampTz next = despool_validate_step();

			return next < retry ? next : retry;
		}
	}
	sms_step_commit();			/* 'running' is visible */

	/*
	 * Read the site systems in the new transaction: its snapshot is newer
	 * than the claim's.  The step's first snapshot may predate the item,
	 * and with it a distribution point added just before the job.
	 */
	dps = despool_distribution_points();
	drive = despool_choose_drive(&fallback);
	tmpdir = MemoryContextStrdup(sms_step_context,
								 sms_despool_dir(drive));
	if (MakePGDirectory(tmpdir) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", tmpdir)));
	tmpdir = MemoryContextStrdup(sms_step_context,
								 sms_despool_job_dir(tmpdir, w->job_id, w->package_id));

	if (dps == NIL && strcmp(w->job_type, "remove_package") != 0)
	{
		fail_item(w, "site has no enabled distribution point");
		return GetCurrentTimestamp();
	}

	PG_TRY();
	{
		sms_remove_tree(tmpdir);	/* a crashed earlier attempt's */
		distribute(w, dps, tmpdir);
		distributed = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		edata = despool_error_restart();
		sms_remove_tree(tmpdir);
		if (w->early_stage != NULL)
			sms_remove_tree(w->early_stage);
		if (edata->sqlerrcode == SMS_ERRCODE_DELTA_BASE && w->received)
			needs_full_package(w, edata->message);
		else if (edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
				 edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE)
		{
			/*
			 * Another worker's transaction, not the package or the
			 * distribution points: done again, never the job failed
			 */
			sms_distribute_row_retry(w->job_id, sms_site_code, edata->message);
		}
		else
		{
			/* was it the package file?  Then it is repaired, not the job failed */
			char	   *problem = strcmp(w->job_type, "remove_package") != 0 ?
				despool_package_file_problem(w) : NULL;
			char	   *full = NULL;

			if (problem != NULL)
				file_problem(w, problem);
			else if (edata->sqlerrcode == ERRCODE_DATA_CORRUPTED && edata->detail != NULL)
				/* a package that does not match itself: the detail says where */
				fail_item(w, psprintf("%s: %s", edata->message, edata->detail));
			else if ((full = full_disk_problem(edata, drive, dps, w)) != NULL)
				wait_for_room(w, full);
			else
				fail_item(w, edata->message);
		}
	}
	PG_END_TRY();

	/*
	 * The distribution queued the PCM files of the job's machines: they
	 * are the end of the job's way here, so they are written now, after
	 * the distribution commits, not after another step's look for work.
	 */
	if (distributed)
	{
		sms_step_commit();
		(void) sms_pcm_write_queued();
	}
	return GetCurrentTimestamp();	/* look for more work at once */
}
