/*-------------------------------------------------------------------------
 *
 * sender_delta.c
 *	  Delta updates: what the Sender sends to a hop whose sites hold an
 *	  older version of the package -- the full package file, or a delta
 *	  from that version.
 *
 * Terms:
 *	base version	the version every target site behind the hop has
 *				published, when it is one and the same (and older).
 *	delta		a package file of the files that changed since the base
 *				version (package_delta.c), made once per (package, base,
 *				version) and kept in <package store>/deltas/ with a row of
 *				smsdist.package_deltas.
 *
 * A delta is sent only if it is smaller than the full file.  A site that
 * cannot apply it asks for the full package (sender_reports.c), and is
 * sent it.  This site's own build may itself be a delta (it received one):
 * then it can only pass that on.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "sender_delta.h"
#include "worker.h"
#include "package_delta.h"
#include "package_manifest.h"
#include "package_store.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/*
 * Delta updates.  The version every target site behind the hop has
 * published, if it is one and the same older version whose manifest this
 * site knows (so a delta can be made from it); else 0.  The locations are
 * the ones the sites reported (record_locations): if one is stale, the site
 * finds out while applying the delta and asks for the full package.
 */
static int
common_base_version(Transfer *t)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4];
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(t->job_id);
	values[1] = CStringGetTextDatum(t->hop);
	values[2] = CStringGetTextDatum(t->package_id);
	values[3] = Int32GetDatum(t->version);
	if (sms_execute_kept("WITH held AS ("
						 "  SELECT s.site_code, min(l.source_version) AS lo, max(l.source_version) AS hi"
						 "    FROM smsdist.job_site_status s"
						 "    LEFT JOIN smsdist.package_locations l"
						 "      ON l.package_id = $3 AND l.site_code = s.site_code"
						 "   WHERE s.job_id = $1 AND s.phase = 'send'"
						 "     AND smsdist.route_hop(s.site_code) = $2"
						 "   GROUP BY s.site_code)"
						 "SELECT min(h.lo) FROM held h"
						 "  JOIN smsdist.package_builds b ON b.package_id = $3 AND b.source_version = h.lo"
						 " WHERE b.manifest IS NOT NULL "
						 "HAVING count(*) = (SELECT count(*) FROM held)"
						 "   AND bool_and(h.lo = h.hi) AND min(h.lo) = max(h.lo) AND min(h.lo) < $4",
						 4, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for a delta base failed");
	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt32(d);
}

/*
 * Make a delta file; a failure (a damaged package file, a full disk) is
 * logged and the full package file is sent instead, rather than leaving
 * the transfer to fail in the same way at every try.
 */
static bool
build_delta_safely(Transfer *t, const char *base_manifest, int base, const char *path,
				   SmsDeltaResult *res)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		sms_delta_build(t->file, base_manifest, t->manifest, base, path,
						sms_compression_level, res);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(WARNING,
				(errmsg("could not make the delta of package %s from version %d to %d, sending the full package: %s",
						t->package_id, base, t->version, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return ok;
}

/*
 * Decide what to send: the full package file, or a delta from the version
 * the sites behind the hop hold.  A delta is made once per (package, base,
 * version) and kept in <package store>/deltas/ with a package_deltas row.
 * A delta is sent only if it is smaller than the full file.
 */
void
sender_choose_file(Transfer *t)
{
	int			base;
	Oid			types[3] = {TEXTOID, INT4OID, INT4OID};
	Datum		values[3];
	char	   *path = NULL;
	int64		bytes = 0;
	char	   *sha = NULL;
	struct stat st;

	t->base_version = 0;
	if (strcmp(t->job_type, "remove_package") == 0 || t->streaming)
		return;
	if (t->build_base > 0)
	{
		/* this site received a delta: it can only pass it on */
		t->base_version = t->build_base;
		t->stream_id = NULL;
		return;
	}
	if (t->full_required || t->manifest == NULL)
		return;
	base = common_base_version(t);
	if (base == 0)
		return;

	values[0] = CStringGetTextDatum(t->package_id);
	values[1] = Int32GetDatum(t->version);
	values[2] = Int32GetDatum(base);
	if (sms_execute_kept("SELECT file_path, bytes, sha256 FROM smsdist.package_deltas"
						 " WHERE package_id = $1 AND source_version = $2 AND base_version = $3",
						 3, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: reading package deltas failed");
	if (SPI_processed == 1)
	{
		path = MemoryContextStrdup(sms_step_context,
								   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		bytes = strtoll(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), NULL, 10);
		sha = MemoryContextStrdup(sms_step_context,
								  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
		if (stat(path, &st) != 0 || st.st_size != bytes)
			path = NULL;		/* gone or damaged: make it again */
	}
	if (path == NULL)
	{
		char	   *base_manifest;
		char	   *dir = sms_delta_dir(sms_package_store());
		SmsDeltaResult res;
		Oid			types2[10] = {TEXTOID, INT4OID, INT4OID, TEXTOID, INT8OID, TEXTOID,
		INT4OID, INT4OID, INT4OID, INT8OID};
		Datum		values2[10];

		if (sms_execute_kept("SELECT manifest FROM smsdist.package_builds"
							 " WHERE package_id = $1 AND source_version = $3",
							 3, types, values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "smsdist sender: reading the base manifest failed");
		base_manifest = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		if (MakePGDirectory(dir) != 0 && errno != EEXIST)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", dir)));
		path = MemoryContextStrdup(sms_step_context,
								   sms_delta_file_path(sms_package_store(), t->package_id, t->version, base));
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("making the delta of package %s from version %d to %d",
										t->package_id, base, t->version));
		if (!build_delta_safely(t, base_manifest, base, path, &res))
			return;				/* reported; the full file is sent */
		bytes = res.bytes;
		sha = MemoryContextStrdup(sms_step_context, res.sha256);
		values2[0] = values[0];
		values2[1] = values[1];
		values2[2] = values[2];
		values2[3] = CStringGetTextDatum(path);
		values2[4] = Int64GetDatum(res.bytes);
		values2[5] = CStringGetTextDatum(res.sha256);
		values2[6] = Int32GetDatum(res.files_sent);
		values2[7] = Int32GetDatum(res.files_deleted);
		values2[8] = Int32GetDatum(res.files_kept);
		values2[9] = Int64GetDatum(t->bytes);
		if (sms_execute_kept("INSERT INTO smsdist.package_deltas"
							 "       (package_id, source_version, base_version, file_path, bytes, sha256,"
							 "        files_sent, files_deleted, files_kept, full_bytes)"
							 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
							 "    ON CONFLICT (package_id, source_version, base_version) DO UPDATE"
							 "   SET file_path = EXCLUDED.file_path, bytes = EXCLUDED.bytes,"
							 "       sha256 = EXCLUDED.sha256, files_sent = EXCLUDED.files_sent,"
							 "       files_deleted = EXCLUDED.files_deleted, files_kept = EXCLUDED.files_kept,"
							 "       full_bytes = EXCLUDED.full_bytes, created_at = clock_timestamp()",
							 10, types2, values2, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "smsdist sender: recording the delta failed");
	}
	if (bytes >= t->bytes)
		return;					/* no smaller than the whole: send the whole */
	t->base_version = base;
	t->stream_id = NULL;		/* a delta is not the build's file */
	t->file = path;
	t->bytes = bytes;
	t->sha256 = sha;
}
