/*-------------------------------------------------------------------------
 *
 * receiver_job.c
 *	  The job a parent site hands this site with a package (receive_end):
 *	  its type here, its target sites checked, its row in smsdist.jobs.
 *
 * The parent's job is this site's too, but its part here is to distribute:
 * a share_package job stays one; a run_command job stays one when its
 * details (run) came with it, so that the Despooler writes the PCM files
 * of this site's machines, and is a share_package job otherwise (a parent
 * older than 0.3); a remove_package job stays one.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "receiver_job.h"
#include "validate.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

/*
 * The job type at this site of a job of parent_job_type; *run is cleared
 * where the details are not used.  An error for a type a parent never sends.
 */
const char *
receiver_local_job_type(const char *parent_job_type, const char *job_id, Datum *run)
{
	if (strcmp(parent_job_type, "run_command") == 0 && *run != (Datum) 0)
		return "run_command";
	if (strcmp(parent_job_type, "share_package") == 0 ||
		strcmp(parent_job_type, "run_command") == 0)
	{
		*run = (Datum) 0;
		return "share_package";
	}
	if (strcmp(parent_job_type, "remove_package") == 0)
		return "remove_package";
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid job type \"%s\" of job %s", parent_job_type, job_id),
			 errdetail("A parent site sends share_package, run_command or remove_package jobs.")));
	return NULL;				/* keep the compiler quiet */
}
/*
 * The job's target sites, checked: each a site code, and each this site or
 * a site below it.  A target elsewhere would make this site's Sender send
 * the package sideways or back up the hierarchy.  Sites unknown here are
 * left to the jobs trigger, whose message says so.
 */
Datum
receiver_check_target_sites(ArrayType *arr, const char *job_id)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	bool		isnull;
	Datum		outside;

	if (ARR_NDIM(arr) != 1 || ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job %s must target a one-dimensional, non-empty list of sites", job_id)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the target sites of job %s must not contain NULL", job_id)));
		sms_valid_site_code(TextDatumGetCString(elems[i]), true);
	}

	values[0] = CStringGetTextDatum(sms_site_code);
	values[1] = PointerGetDatum(arr);
	if (sms_execute_kept("WITH RECURSIVE below(code, depth) AS ("
						 "  SELECT $1, 0"
						 "  UNION ALL"
						 "  SELECT s.site_code::text, b.depth + 1"
						 "    FROM smsdist.sites s JOIN below b ON s.parent_site_code::text = b.code"
						 "   WHERE b.depth < 100)"
						 "SELECT string_agg(DISTINCT t, ', ')"
						 "  FROM unnest($2) t"
						 " WHERE t NOT IN (SELECT code FROM below)"
						 "   AND EXISTS (SELECT 1 FROM smsdist.sites s WHERE s.site_code::text = t)",
						 2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist receiver: checking the target sites failed");
	outside = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job %s targets site(s) %s, which are not site %s or below it",
						job_id, TextDatumGetCString(outside), sms_site_code),
				 errhint("A parent site sends a child only the targets it reaches through that child.")));
	return PointerGetDatum(arr);
}

/*
 * Record the job at this site; true if it is new.  Sending again (the
 * answer to an earlier receive_end was lost) finds it there: fine, if it
 * is the same job.
 */
static bool
insert_job(const char *job_id, const char *job_type, const char *package_id,
		   Datum targets, bool include_subsites, const char *source)
{
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, BOOLOID, TEXTOID};
	Datum		values[6] = {CStringGetTextDatum(job_id), CStringGetTextDatum(job_type),
		CStringGetTextDatum(package_id), targets, BoolGetDatum(include_subsites),
	source ? CStringGetTextDatum(source) : (Datum) 0};
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', source ? ' ' : 'n'};
	char	   *other_type;
	char	   *other_package;

	if (sms_execute_kept("INSERT INTO smsdist.jobs"
						 "       (job_id, job_type, package_id, target_type, target_sites,"
						 "        include_subsites, comment, source_site)"
						 "VALUES ($1, $2::smsdist.job_type, $3, 'sites', $4::smsdist.site_code[],"
						 "        $5, 'sent by the parent site', $6)"
						 "    ON CONFLICT (job_id) DO NOTHING",
						 6, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist receiver: recording job %s failed", job_id);
	if (SPI_processed == 1)
		return true;

	if (sms_execute_kept("SELECT job_type::text, package_id::text FROM smsdist.jobs WHERE job_id = $1",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist receiver: reading job %s failed", job_id);
	other_type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	other_package = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (strcmp(other_type, job_type) != 0 || strcmp(other_package, package_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("job %s already exists at site %s as a %s job for package %s, not a %s job for package %s",
						job_id, sms_site_code, other_type, other_package, job_type, package_id)));
	return false;
}

/*
 * Record the job at this site: a run-command job (run) with its program and
 * its machines here, any other as a row of smsdist.jobs.  SPI connected.
 */
void
receiver_record_job(const char *job_id, const char *job_type, const char *package_id,
					Datum targets, bool include_subsites, Datum run, const char *source)
{
	if (run != (Datum) 0)
	{
		Oid			types[4] = {TEXTOID, TEXTOID, JSONBOID, TEXTOID};
		Datum		values[4] = {CStringGetTextDatum(job_id), CStringGetTextDatum(package_id), run,
		source ? CStringGetTextDatum(source) : (Datum) 0};
		char		nulls[4] = {' ', ' ', ' ', source ? ' ' : 'n'};

		if (sms_execute_kept("SELECT smsdist.record_run_job($1, $2, $3, $4::smsdist.site_code)",
							 4, types, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist receiver: recording run-command job %s failed", job_id);
	}
	else
		(void) insert_job(job_id, job_type, package_id, targets, include_subsites, source);
}
