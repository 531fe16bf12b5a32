/*-------------------------------------------------------------------------
 *
 * sender_reports.c
 *	  What the Sender brings back from its child sites once they have a
 *	  job: the state of every target site behind them (distribution
 *	  report), the figures of a transfer under way there (progress report)
 *	  and where the package is published (location report).
 *
 * Terms:
 *	hop			the child site through which a site below this one is
 *				reached (smsdist.route_hop).
 *	distribute row	a smsdist.job_site_status row in phase 'distribute' for
 *				a target site behind a hop; the Sender keeps it current from
 *				the child's own rows (smsdist.distribution_report there).
 *	refusal		a report row (or a whole report) that is not taken, with a
 *				status message SMS_MSG_REPORT_REFUSED saying why.
 *
 * A child speaks for the sites behind it and for nothing else.  Each row
 * of its distribution and location reports is checked against what was
 * sent to it: a site behind it (route_hop) that the job was sent to (a
 * distribute row here), a state of the enum, the job's package at a version
 * that was sent, an absolute canonical path, valid text of bounded size.
 * A row that fails is refused alone, with the reason (said once per row
 * and reason); the other rows, and the other children's reports, are
 * taken as usual.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "sender_reports.h"
#include "despooler.h"
#include "job_state.h"
#include "site_link.h"
#include "status.h"
#include "validate.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define REPORT_MAX_ROWS			1000	/* rows of one distribution report */
#define LOCATION_MAX_ROWS		10000	/* rows of one location report */
#define REPORT_MAX_TEXT			1000	/* bytes of a reported detail or error kept */

/* the states a child may report for a site (values of smsdist.phase_state) */
static const char *const report_states[] = {"waiting", "running", "retrying", "done", "failed"};

/* the refusals said already (in TopMemoryContext): reports are polled every second */
static List *refusals_said = NIL;

/* A reported value, fit for a message. */
static const char *
shown(const char *s)
{
	char	   *c = link_clean_text(s, 100);

	return c != NULL ? c : "(not valid text)";
}

static bool
parse_int32(const char *s, int32 *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < PG_INT32_MIN || v > PG_INT32_MAX)
		return false;
	*out = (int32) v;
	return true;
}

/* Say that a row (or, row NULL, the whole report) of hop's report was refused. */
static void
refuse_report(const char *job, const char *hop, const char *report, const char *row,
			  const char *reason)
{
	char	   *key = psprintf("%s|%s|%s|%s|%s", job, hop, report, row ? row : "", reason);
	SmsStatusRefs refs = {0};
	ListCell   *lc;
	MemoryContext old;

	foreach(lc, refusals_said)
	{
		if (strcmp(lfirst(lc), key) == 0)
			return;
	}
	if (list_length(refusals_said) >= 1000)
	{
		list_free_deep(refusals_said);
		refusals_said = NIL;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	refusals_said = lappend(refusals_said, pstrdup(key));
	MemoryContextSwitchTo(old);

	refs.job_id = job;
	if (row != NULL)
		sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_REPORT_REFUSED, &refs,
						   "A row of the %s of site %s for job %s was refused: %s. The row: %s.",
						   report, hop, job, reason, row);
	else
		sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_REPORT_REFUSED, &refs,
						   "The %s of site %s for job %s was refused: %s.",
						   report, hop, job, reason);
}

/*
 * Why hop may not report on site for job, or NULL if it may: site must be
 * behind hop (route_hop) and the job must have been sent to it.
 */
static char *
report_site_problem(const char *job, const char *hop, const char *site)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char	   *route;
	bool		sent;

	if (!sms_valid_site_code(site, false))
		return psprintf("\"%s\" is not a site code", shown(site));
	if (strcmp(site, sms_site_code) == 0)
		return psprintf("site %s is this site, not a site behind %s", site, hop);
	values[0] = CStringGetTextDatum(job);
	values[1] = CStringGetTextDatum(site);
	if (sms_execute_kept("SELECT smsdist.route_hop($2::smsdist.site_code)::text,"
						 "       EXISTS (SELECT 1 FROM smsdist.job_site_status"
						 "                WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute')",
						 2, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist sender: looking up a reported site failed");
	route = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	sent = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), "t") == 0;
	if (route == NULL || strcmp(route, hop) != 0)
		return psprintf("site %s is not behind %s", site, hop);
	if (!sent)
		return psprintf("job %s was not sent to site %s", job, site);
	return NULL;
}

/*
 * A site behind a hop could not apply the delta it was sent (its base is
 * missing or damaged) or its copy of the package file is damaged: it
 * waits for the full package.  If what this site sent that way was a
 * delta, send the full package file to the hop again; if it was the full
 * file, the hop itself passes it on.  The distribute row keeps the detail,
 * so that this site's own parent sees the request too when this site only
 * has the delta.  error: NULL when the site gave none.
 */
static void
full_package_requested(const char *job, const char *site, const char *detail, const char *error)
{
	SmsStatusRefs refs = {0};

	/* a row cancelled meanwhile stays so: nothing is sent again for it */
	if (!sms_distribute_row_wants_full(job, site, detail, error))
		return;
	if (sms_send_rows_resend_full(job, site, error) > 0)
	{
		refs.job_id = job;
		sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_RESENDING_FULL, &refs,
						   "Site %s cannot use the delta it was sent for job %s (%s); sending the full package.",
						   site, job, error ? error : "no reason given");
	}
}

/* Take hop's distribution report on job (res: site, state, detail, error). */
static void
take_distribution_report(const char *job, const char *hop, PGresult *res)
{
	const char *report = "distribution report";

	if (PQnfields(res) != 4 || PQntuples(res) > REPORT_MAX_ROWS)
	{
		char	   *problem = PQnfields(res) != 4 ?
			psprintf("it has %d columns, not 4", PQnfields(res)) :
			psprintf("it has more than %d rows", REPORT_MAX_ROWS);

		refuse_report(job, hop, report, NULL, problem);
		sms_distribute_rows_refused(job, hop, NULL,
						            psprintf("the report of site %s was refused: %s", hop, problem));
		return;
	}
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *site = PQgetvalue(res, r, 0);
		const char *state = PQgetvalue(res, r, 1);
		char	   *detail = link_clean_text(PQgetvalue(res, r, 2), REPORT_MAX_TEXT);
		char	   *error = link_clean_text(PQgetvalue(res, r, 3), REPORT_MAX_TEXT);
		char	   *row = psprintf("site %s, state %s", shown(site), shown(state));
		char	   *problem;
		bool		known_state = false;

		problem = report_site_problem(job, hop, site);
		if (problem != NULL)
		{
			refuse_report(job, hop, report, row, problem);
			continue;
		}
		/* a site this child speaks for: what it says of it must make sense */
		for (int i = 0; i < (int) lengthof(report_states); i++)
			known_state |= strcmp(state, report_states[i]) == 0;
		if (!known_state)
			problem = psprintf("state \"%s\" is not one of waiting, running, retrying, done, failed",
							   shown(state));
		else if (detail == NULL || error == NULL)
			problem = pstrdup("its detail or error is not valid text");
		if (problem != NULL)
		{
			refuse_report(job, hop, report, row, problem);
			sms_distribute_rows_refused(job, hop, site,
							            psprintf("the report of site %s was refused: %s", hop, problem));
			continue;
		}

		if (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0 &&
			strstr(detail, SMS_NEEDS_FULL_PACKAGE) != NULL)
		{
			full_package_requested(job, site, detail, error[0] ? error : NULL);
			continue;
		}
		/*
		 * A detail relayed from further down already says where it comes
		 * from: it is not prefixed twice.
		 */
		sms_distribute_row_reported(job, site, state, detail, error[0] ? error : NULL);
	}
}

/* A reported non-negative count (NULL allowed if nullable). */
static bool
parse_count(PGresult *res, int r, int c, bool nullable, bool *isnull, int64 *out)
{
	const char *s = PQgetvalue(res, r, c);
	char	   *end;
	long long	v;

	*isnull = PQgetisnull(res, r, c);
	if (*isnull)
		return nullable;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return false;
	*out = (int64) v;
	return true;
}

/* A reported number of seconds, within a month either way (NULL allowed). */
static bool
parse_seconds(PGresult *res, int r, int c, bool *isnull, double *out)
{
	const char *s = PQgetvalue(res, r, c);
	char	   *end;
	double		v;

	*isnull = PQgetisnull(res, r, c);
	if (*isnull)
		return true;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || isnan(v) || v < -31 * 86400.0 || v > 31 * 86400.0)
		return false;
	*out = v;
	return true;
}

/*
 * Take hop's progress report on job (progress_report(): per site, the
 * figures of the leg under way there) into the distribute rows of the
 * sites behind it, so that a site further down shows bytes, percent, rate
 * and eta here as it goes, not only its state.  Updated when the figures
 * change, at most once a second per row (every update wakes the Sender).
 * A child that does not have progress_report() yet (before 0.9) sends
 * only its distribution report.
 */
static void
take_progress_report(PGconn *conn, const char *job, const char *hop, TimestampTz polled_at)
{
	const char *report = "progress report";
	const char *v[1] = {job};
	char	   *err = NULL;
	PGresult   *res;

	res = link_exec(conn, "SELECT to_regprocedure('smsdist.progress_report(text)') IS NOT NULL",
					0, NULL, NULL, NULL, &err);
	if (res == NULL)
		return;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		PQclear(res);
		return;
	}
	PQclear(res);
	res = link_exec(conn, psprintf("SELECT left(site_code, 16), bytes_done, bytes_total, bytes_total_estimated,"
								   "       attempt_bytes, attempt_seconds, eta_seconds"
								   "  FROM smsdist.progress_report($1) LIMIT %d", REPORT_MAX_ROWS + 1),
					1, v, NULL, NULL, &err);
	if (res == NULL)
		return;
	if (PQnfields(res) != 7 || PQntuples(res) > REPORT_MAX_ROWS)
	{
		refuse_report(job, hop, report, NULL,
					  PQnfields(res) != 7 ? psprintf("it has %d columns, not 7", PQnfields(res)) :
					  psprintf("it has more than %d rows", REPORT_MAX_ROWS));
		PQclear(res);
		return;
	}
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *site = PQgetvalue(res, r, 0);
		const char *est = PQgetvalue(res, r, 3);
		char	   *row = psprintf("site %s", shown(site));
		char	   *problem = report_site_problem(job, hop, site);
		int64		done = 0,
					total = 0,
					abytes = 0;
		double		asecs = 0,
					eta = 0;
		bool		n_done,
					n_total,
					n_abytes,
					n_asecs,
					n_eta;
		Oid			types[9] = {TEXTOID, TEXTOID, INT8OID, INT8OID, BOOLOID, INT8OID, FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID};
		Datum		values[9];
		char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		if (problem == NULL &&
			(!parse_count(res, r, 1, false, &n_done, &done) ||
			 !parse_count(res, r, 2, true, &n_total, &total) ||
			 !parse_count(res, r, 4, true, &n_abytes, &abytes)))
			problem = pstrdup("its byte counts are not non-negative integers");
		if (problem == NULL && !n_total && done > total && strcmp(est, "t") != 0)
			problem = psprintf("it has done %lld of %lld bytes", (long long) done, (long long) total);
		if (problem == NULL &&
			(!parse_seconds(res, r, 5, &n_asecs, &asecs) || asecs < 0 ||
			 !parse_seconds(res, r, 6, &n_eta, &eta)))
			problem = pstrdup("its times are not numbers of seconds within a month");
		if (problem == NULL && strcmp(est, "t") != 0 && strcmp(est, "f") != 0)
			problem = pstrdup("bytes_total_estimated is not a boolean");
		if (problem != NULL)
		{
			refuse_report(job, hop, report, row, problem);
			continue;
		}
		values[0] = CStringGetTextDatum(job);
		values[1] = CStringGetTextDatum(site);
		values[2] = Int64GetDatum(done);
		values[3] = Int64GetDatum(total);
		nulls[3] = n_total ? 'n' : ' ';
		values[4] = BoolGetDatum(strcmp(est, "t") == 0);
		values[5] = Int64GetDatum(abytes);
		nulls[5] = n_abytes ? 'n' : ' ';
		values[6] = Float8GetDatum(asecs);
		nulls[6] = n_asecs ? 'n' : ' ';
		/* a time gone by is no estimate */
		values[7] = Float8GetDatum(eta);
		nulls[7] = n_eta || eta < 0 ? 'n' : ' ';
		values[8] = TimestampTzGetDatum(polled_at);
		if (sms_execute_kept("UPDATE smsdist.job_site_status"
							 "   SET bytes_done = $3, bytes_total = $4, bytes_total_estimated = $5,"
							 "       attempt_bytes = $6,"
							 "       attempt_started_at = clock_timestamp() - make_interval(secs => $7),"
							 "       reported_eta = clock_timestamp() + make_interval(secs => $8)"
							 " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'"
							 "   AND (bytes_done, bytes_total, bytes_total_estimated, attempt_bytes)"
							 "       IS DISTINCT FROM ($3, $4, $5, $6)"
							 /* (or updated by this poll's distribution report: one wake-up) */
							 "   AND (state IN ('done', 'failed') OR updated_at < clock_timestamp() - interval '1 second'"
							 "        OR updated_at >= $9)",
							 9, types, values, nulls, false, 0) < 0)
			elog(ERROR, "smsdist sender: recording a progress report failed");
	}
	PQclear(res);
}

/*
 * In SMS: the package location is reported back to the parent site.  The
 * rows of the job's package at the target sites behind the hop are replaced
 * by what the child reports (its own, and those its children reported to
 * it); a Remove Package job thus removes them here too.  Rows that are not
 * of the job's package at a version sent, at a site behind the hop the job
 * was sent to, with an absolute canonical path, are refused.
 */
static void
record_locations(PGconn *conn, const char *job, const char *hop)
{
	const char *report = "location report";
	const char *v[1] = {job};
	char	   *err = NULL;
	PGresult   *res;
	Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID};
	Datum		values[5];
	char	   *package;
	int32		sent_version;

	/* bounded at the child (and checked again here: it may not obey) */
	res = link_exec(conn, psprintf("SELECT left(package_id::text, 16), left(site_code::text, 16),"
								   "       site_system_id::text, source_version::text, left(path, 1100)"
								   "  FROM smsdist.location_report($1) LIMIT %d", LOCATION_MAX_ROWS + 1),
					1, v, NULL, NULL, &err);
	if (res == NULL)
		return;					/* the rows' states were updated; locations next time */
	if (PQnfields(res) != 5 || PQntuples(res) > LOCATION_MAX_ROWS)
	{
		refuse_report(job, hop, report, NULL,
					  PQnfields(res) != 5 ? psprintf("it has %d columns, not 5", PQnfields(res)) :
					  psprintf("it has more than %d rows", LOCATION_MAX_ROWS));
		PQclear(res);
		return;
	}

	/*
	 * What was sent: the job's package, up to the newest version this site
	 * has of it -- a later job may have published a newer version at the
	 * child since, and the child reports where the package is now.
	 */
	values[0] = CStringGetTextDatum(job);
	if (sms_execute_kept("SELECT j.package_id::text,"
						 "       greatest(coalesce(j.source_version, p.source_version), p.source_version)"
						 "  FROM smsdist.jobs j JOIN smsdist.packages p ON p.package_id = j.package_id"
						 " WHERE j.job_id = $1",
						 1, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist sender: reading the job of a location report failed");
	package = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	sent_version = atoi(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));

	values[1] = CStringGetTextDatum(hop);
	if (sms_execute_kept("DELETE FROM smsdist.package_locations l USING smsdist.jobs j"
						 " WHERE j.job_id = $1 AND l.package_id = j.package_id"
						 "   AND l.site_code IN (SELECT s.site_code FROM smsdist.job_site_status s"
						 "                        WHERE s.job_id = $1 AND s.phase = 'distribute'"
						 "                          AND smsdist.route_hop(s.site_code) = $2)",
						 2, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist sender: replacing reported locations failed");
	for (int r = 0; r < PQntuples(res); r++)
	{
		const char *pkg = PQgetvalue(res, r, 0);
		const char *site = PQgetvalue(res, r, 1);
		const char *system = PQgetvalue(res, r, 2);
		const char *version = PQgetvalue(res, r, 3);
		const char *path = PQgetvalue(res, r, 4);
		char	   *row = psprintf("package %s, site %s, site system %s, version %s, path %s",
								   shown(pkg), shown(site), shown(system), shown(version), shown(path));
		char	   *problem = NULL;
		int32		system_id;
		int32		ver;

		if (strcmp(pkg, package) != 0)
			problem = psprintf("package %s was not sent to %s for job %s (its package is %s)",
							   shown(pkg), hop, job, package);
		if (problem == NULL)
			problem = report_site_problem(job, hop, site);
		if (problem != NULL)
		{
			/* refused below */
		}
		else if (!parse_int32(system, &system_id) || system_id < 1)
			problem = psprintf("site system \"%s\" is not a positive integer", shown(system));
		else if (!parse_int32(version, &ver) || ver < 1 || ver > sent_version)
			problem = psprintf("version \"%s\" was not sent (the newest version here is %d)",
							   shown(version), sent_version);
		else if (!pg_verifymbstr(path, strlen(path), true))
			problem = pstrdup("the path is not valid text");
		else if (!sms_valid_server_path(path, "path", false))
			problem = psprintf("the path \"%s\" is not absolute and canonical (it begins with /, has no empty, \".\" or \"..\" components, no trailing /, no control characters, and is at most 1024 bytes)",
							   shown(path));
		if (problem != NULL)
		{
			refuse_report(job, hop, report, row, problem);
			continue;
		}
		values[0] = CStringGetTextDatum(pkg);
		values[1] = CStringGetTextDatum(site);
		values[2] = Int32GetDatum(system_id);
		values[3] = Int32GetDatum(ver);
		values[4] = CStringGetTextDatum(path);
		if (sms_execute_kept("INSERT INTO smsdist.package_locations"
							 "       (package_id, site_code, site_system_id, source_version, path)"
							 " VALUES ($1, $2, $3, $4, $5)"
							 "     ON CONFLICT (package_id, site_code, site_system_id) DO UPDATE"
							 "    SET source_version = $4, path = $5, published_at = clock_timestamp()",
							 5, types, values, NULL, false, 0) < 0)
			elog(ERROR, "smsdist sender: recording a reported location failed");
	}
	PQclear(res);
}

/*
 * Record that hop answered the distribution report of job (error NULL), or
 * why it could not be asked (distribution_report_answers): explain() tells
 * an operator how current the rows of the sites behind it are.
 */
static void
report_answered(const char *job, const char *hop, const char *error)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	values[0] = CStringGetTextDatum(job);
	values[1] = CStringGetTextDatum(hop);
	if (error != NULL)
	{
		char	   *clean = link_clean_text(error, 300);

		values[2] = CStringGetTextDatum(clean != NULL ? clean : "(an error that is not valid text)");
	}
	else
		nulls[2] = 'n';
	if (sms_execute_kept(error == NULL
						 ? "INSERT INTO smsdist.distribution_report_answers (job_id, hop, reported_at)"
						 " VALUES ($1, $2, clock_timestamp())"
						 " ON CONFLICT (job_id, hop) DO UPDATE"
						 "   SET reported_at = EXCLUDED.reported_at, report_error = NULL, error_since = NULL"
						 " RETURNING $3::text"
						 : "INSERT INTO smsdist.distribution_report_answers (job_id, hop, report_error, error_since)"
						 " VALUES ($1, $2, $3, clock_timestamp())"
						 " ON CONFLICT (job_id, hop) DO UPDATE"
						 "   SET report_error = EXCLUDED.report_error,"
						 "       error_since = coalesce(distribution_report_answers.error_since, EXCLUDED.error_since)"
						 " WHERE distribution_report_answers.report_error IS DISTINCT FROM EXCLUDED.report_error"
						 " RETURNING $3::text",
						 3, types, values, nulls, false, 0) < 0)
		elog(ERROR, "smsdist sender: recording a report failed");
}

/*
 * Bring the children's distribution status back: for each active job (or
 * run-command job completed by its targets) with 'distribute' rows of
 * sites below us that are not done, ask the hop.
 * Returns true if some rows are still open (the step polls again soon).
 */
bool
sender_follow_reports(const char *during_job)
{
	int			ret;
	SPITupleTable *tuptable;
	uint64		n;
	bool		open = false;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {during_job ? ' ' : 'n'};

	values[0] = during_job ? CStringGetTextDatum(during_job) : (Datum) 0;
	ret = sms_execute_kept("SELECT s.job_id::text, smsdist.route_hop(s.site_code)::text,"
						   "       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
						   "         WHERE a.target_site_code = smsdist.route_hop(s.site_code) AND a.enabled"
						   "         ORDER BY a.priority LIMIT 1)"
						   "  FROM smsdist.job_site_status s JOIN smsdist.jobs j ON j.job_id = s.job_id"
						   " WHERE s.phase = 'distribute' AND s.state IN ('waiting', 'running', 'retrying')"
						   /*
							* A run-command job completes when its last target has
							* finished, which a child's status forwarder may tell
							* before this Sender has taken the child's distribution
							* report: its rows are still followed, or they would wait
							* (and its locations stay unknown) for ever.
							*/
						   "   AND (j.state = 'active' OR (j.state = 'completed' AND j.job_type = 'run_command'))"
						   "   AND s.site_code <> current_setting('smsdist.site_code')"
						   /* not before a retry reached the hop: its report would be of the old attempt */
						   "   AND NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes c"
						   "                    WHERE c.job_id = s.job_id AND c.hop = smsdist.route_hop(s.site_code))"
						   /* during a transfer: not its own job (its rows are the transfer's) */
						   "   AND s.job_id IS DISTINCT FROM $1"
						   " GROUP BY 1, 2, 3",
						   1, types, values, nulls, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for reports failed");
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		char	   *job = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 1);
		char	   *hop = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 2);
		char	   *conninfo = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 3);
		char	   *err = NULL;
		PGconn	   *conn;
		PGresult   *res;
		const char *v[1] = {job};
		TimestampTz polled_at = GetCurrentTimestamp();

		open = true;
		if (conninfo == NULL)
			continue;
		/* during a transfer, only a link already open: no waiting on a site down */
		conn = during_job ? link_open_kept(conninfo) : link_open(conninfo, &err);
		if (conn == NULL && err == NULL)
			continue;			/* during a transfer: not asked, so no answer either way */
		if (conn == NULL)
		{
			/* unreachable for now: the rows keep their state, and say why */
			report_answered(job, hop, err);
			continue;
		}
		/* bounded at the child (and checked again here: it may not obey) */
		res = link_exec(conn, psprintf("SELECT left(site_code::text, 16), left(state::text, 16),"
									   "       left(coalesce(detail, ''), %d), left(coalesce(last_error, ''), %d)"
									   "  FROM smsdist.distribution_report($1) LIMIT %d",
									   REPORT_MAX_TEXT, REPORT_MAX_TEXT, REPORT_MAX_ROWS + 1),
						1, v, NULL, NULL, &err);
		if (res != NULL)
		{
			take_distribution_report(job, hop, res);
			PQclear(res);
			take_progress_report(conn, job, hop, polled_at);
			record_locations(conn, job, hop);
			report_answered(job, hop, NULL);
		}
		else if (strncmp(err, "the site refused", 16) == 0)
		{
			/* it answers, with an error: it counts as a refused report, not as a site down */
			char	   *why = link_clean_text(err, 300);

			sms_distribute_rows_refused(job, hop, NULL,
							            psprintf("the report of site %s could not be read: %s", hop,
										why ? why : "(an error that is not valid text)"));
		}
		link_close(conn, res != NULL);
	}
	if (during_job != NULL)
		return open;			/* jobs are completed between transfers */

	/* a job whose every site is done is complete; one that failed somewhere fails */
	sms_jobs_fail_where_a_site_failed();
	sms_jobs_complete_distributed(NULL);
	return open;
}
