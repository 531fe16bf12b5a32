/*-------------------------------------------------------------------------
 *
 * job_state.c
 *	  The state moves of jobs and of their per-site rows, each written once.
 *
 * Terms and the table of legal moves are in job_state.h.  Each function is
 * one statement whose WHERE clause names the states it moves from, so a
 * row that something else moved meanwhile (a cancelled job, a failed
 * build) is left alone rather than moved back: the callers need not check
 * first.  The retry clock of a site row (retrying_since, next_attempt_at)
 * and the wake-ups of the components that follow are kept by triggers on
 * the tables, so every path here keeps them the same way.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "job_state.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* The messages of failed statements name what was being done. */
#define CHECK(ret, ok, what) \
	do { if ((ret) != (ok)) elog(ERROR, "smsdist: %s failed: SPI code %d", (what), (ret)); } while (0)
#define CHECK_RAN(ret, what) \
	do { if ((ret) < 0) elog(ERROR, "smsdist: %s failed: SPI code %d", (what), (ret)); } while (0)

static Datum
text_datum(const char *s)
{
	return CStringGetTextDatum(s);
}

/* ----------------------------------------------------------------
 * Jobs
 * ----------------------------------------------------------------
 */

/*
 * pending -> active: claim up to SMS_ACTIVATE_BATCH jobs whose Start After
 * has come, in priority order, and fix the package version each one sends.  A job whose
 * expiry time has passed is left for sms_jobs_expire_due().  Returns how
 * many; *job_ids is their IDs (text[]) when there are any.
 */
uint64
sms_jobs_activate_due(Datum *job_ids)
{
	bool		isnull;
	uint64		n;
	int			ret;

	/*
	 * The plan kept, the batch a constant of the text: with LIMIT $1 the
	 * generic plan is made for an unknown number of due jobs, and it
	 * activated a burst of 1,000 at half the rate; with the constant it is
	 * the plan for the batch, and no activation pays for planning (0.2 ms
	 * a call; docs/benchmarks.md).
	 */
	ret = sms_execute_kept_noargs("WITH due AS ("
								"  SELECT job_id FROM smsdist.jobs"
								"   WHERE state = 'pending' AND start_after <= clock_timestamp()"
								"     AND (expires_at IS NULL OR expires_at > clock_timestamp())"
								"   ORDER BY priority, start_after, job_id"
								"   LIMIT " CppAsString2(SMS_ACTIVATE_BATCH)
								"   FOR UPDATE SKIP LOCKED),"
								" act AS ("
								"  UPDATE smsdist.jobs j"
								"     SET state = 'active', state_reason = 'Start After time reached',"
								"         source_version = p.source_version"
								"    FROM due, smsdist.packages p"
								"   WHERE j.job_id = due.job_id AND p.package_id = j.package_id"
								"  RETURNING j.job_id)"
								"SELECT count(*), array_agg(job_id::text) FROM act",
								false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist: activating jobs failed: SPI code %d", ret);
	n = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (n > 0)
		*job_ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	return n;
}

/*
 * pending|active -> expired: every job whose expiry time has passed.  The
 * rows returned (job, package, expiry time, as text) are the caller's
 * until its next SPI call.
 */
SPITupleTable *
sms_jobs_expire_due(uint64 *n)
{
	int			ret;

	ret = sms_execute_kept_noargs("UPDATE smsdist.jobs j"
								  "   SET state = 'expired',"
								  "       state_reason = 'expiry time ' || j.expires_at || ' passed'"
								  "  FROM (SELECT job_id FROM smsdist.jobs"
								  "         WHERE state IN ('pending', 'active')"
								  "           AND expires_at <= clock_timestamp()"
								  "         FOR UPDATE SKIP LOCKED) due"
								  " WHERE j.job_id = due.job_id"
								  " RETURNING j.job_id::text, j.package_id::text, j.expires_at::text",
								  false, 0);
	CHECK(ret, SPI_OK_UPDATE_RETURNING, "expiring jobs");
	*n = SPI_processed;
	return SPI_tuptable;
}

/*
 * active -> failed: the jobs among job_ids (text[]) that resolved to no
 * site, with what their targets resolve to.  Rows: job, package, reason.
 */
SPITupleTable *
sms_jobs_fail_without_sites(Datum job_ids, uint64 njobs, uint64 *n)
{
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1] = {job_ids};
	int			ret;

	ret = sms_execute_for_items(njobs, "UPDATE smsdist.jobs j"
						   "   SET state = 'failed',"
						   "       state_reason = 'no target site: ' || smsdist.describe_targets(j.job_id)"
						   " WHERE j.job_id = ANY ($1)"
						   "   AND NOT EXISTS (SELECT 1 FROM smsdist.job_site_status s WHERE s.job_id = j.job_id)"
						   " RETURNING j.job_id::text, j.package_id::text, j.state_reason",
						   1, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE_RETURNING, "failing jobs without target sites");
	*n = SPI_processed;
	return SPI_tuptable;
}

/*
 * The build of package version failed: the open site rows of every active
 * job that sends it fail (a Sender may be sending it while it is
 * compressed), and the jobs that needed the file fail with the reason.
 */
void
sms_jobs_fail_build(const char *package_id, int32 version, const char *error)
{
	Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		values[3] = {text_datum(package_id), Int32GetDatum(version), text_datum(error)};
	int			ret;

	ret = sms_execute_kept("WITH s AS ("
						   "  UPDATE smsdist.job_site_status s"
						   "     SET state = 'failed', last_error = 'package compression failed: ' || $3,"
						   "         finished_at = clock_timestamp()"
						   "    FROM smsdist.jobs j"
						   "   WHERE s.job_id = j.job_id AND j.package_id = $1 AND j.source_version = $2"
						   "     AND j.state = 'active' AND s.state IN ('waiting', 'retrying', 'running')"
						   "   RETURNING 1)"
						   "UPDATE smsdist.jobs j"
						   "   SET state = 'failed', state_reason = 'package ' || $1 || ' version ' || $2"
						   "                                        || ' could not be compressed: ' || $3"
						   " WHERE j.package_id = $1 AND j.source_version = $2 AND j.state = 'active'"
						   "   AND j.job_type IN ('run_command', 'share_package')",
						   3, types, values, NULL, false, 0);
	CHECK_RAN(ret, "failing the jobs of a failed build");
}

/* active -> failed, with the reason; whether the job moved. */
bool
sms_job_fail(const char *job_id, const char *reason)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {text_datum(job_id), text_datum(reason)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.jobs SET state = 'failed', state_reason = $2"
						   " WHERE job_id = $1 AND state = 'active'",
						   2, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE, "failing a job");
	return SPI_processed > 0;
}

/* active -> failed: every job with a failed site row, naming the first site. */
void
sms_jobs_fail_where_a_site_failed(void)
{
	int			ret;

	ret = sms_execute_kept_noargs("UPDATE smsdist.jobs j SET state = 'failed',"
								  "       state_reason = 'distribution failed at site ' || f.site_code || ': '"
								  "                      || coalesce(f.last_error, 'unknown')"
								  "  FROM (SELECT DISTINCT ON (job_id) job_id, site_code, last_error FROM smsdist.job_site_status"
								  "         WHERE state = 'failed' ORDER BY job_id, site_code) f"
								  " WHERE j.job_id = f.job_id AND j.state = 'active'",
								  false, 0);
	CHECK(ret, SPI_OK_UPDATE, "failing jobs whose distribution failed");
}

/*
 * active -> completed: a share or remove job ends with the Distribute phase
 * done at every site it has a row for.  job_id NULL: every such job.
 */
void
sms_jobs_complete_distributed(const char *job_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {job_id ? ' ' : 'n'};
	int			ret;

	values[0] = job_id ? text_datum(job_id) : (Datum) 0;
	ret = sms_execute_kept("UPDATE smsdist.jobs j SET state = 'completed',"
						   "       state_reason = CASE j.job_type WHEN 'remove_package' THEN 'removed from every target site'"
						   "                      ELSE 'distributed to every target site' END"
						   " WHERE j.state = 'active' AND j.job_type IN ('share_package', 'remove_package')"
						   "   AND ($1 IS NULL OR j.job_id = $1)"
						   "   AND EXISTS (SELECT 1 FROM smsdist.job_site_status s WHERE s.job_id = j.job_id)"
						   "   AND NOT EXISTS (SELECT 1 FROM smsdist.job_site_status s"
						   "                    WHERE s.job_id = j.job_id AND s.state <> 'done')",
						   1, types, values, nulls, false, 0);
	CHECK(ret, SPI_OK_UPDATE, "completing distributed jobs");
}

/* ----------------------------------------------------------------
 * Site rows
 * ----------------------------------------------------------------
 */

/*
 * (none) -> waiting: one row per (job, target site) of the jobs job_ids
 * (text[]): the Send phase for a child site, Distribute at this site.
 */
void
sms_site_rows_create(Datum job_ids, uint64 njobs)
{
	Oid			types[2] = {TEXTARRAYOID, TEXTOID};
	Datum		values[2] = {job_ids, text_datum(sms_site_code)};
	int			ret;

	ret = sms_execute_for_items(njobs, "INSERT INTO smsdist.job_site_status"
								   "       (job_id, site_code, phase, state, detail)"
								   "SELECT j, t.site_code,"
								   "       CASE WHEN t.site_code = $2 THEN 'distribute' ELSE 'send' END::smsdist.job_phase,"
								   "       'waiting',"
								   "       CASE WHEN t.site_code = $2 THEN 'waiting for the Despooler of this site'"
								   "            ELSE 'waiting for the Sender' END"
								   "  FROM unnest($1) j CROSS JOIN LATERAL smsdist.job_target_sites(j) t"
								   "    ON CONFLICT DO NOTHING",
								   2, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_INSERT, "recording target sites");
}

/*
 * -> running: the Sender takes the send rows of job that go through hop
 * (a new attempt).  *sites is their site codes as a text array literal
 * (NULL when none was open), *full_package_required whether any of them
 * needs the full package.
 */
void
sms_send_rows_claim(const char *job_id, const char *hop, char **sites,
					bool *full_package_required)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {text_datum(job_id), text_datum(hop)};
	bool		isnull;
	int			ret;

	ret = sms_execute_kept("WITH rows AS ("
						   "  UPDATE smsdist.job_site_status s"
						   "     SET state = 'running', attempts = s.attempts + 1,"
						   "         started_at = coalesce(s.started_at, clock_timestamp()),"
						   /* the rate is of this attempt's bytes over its time */
						   "         attempt_started_at = clock_timestamp(), attempt_bytes = 0,"
						   "         detail = 'sending to ' || $2"
						   "   WHERE s.job_id = $1 AND s.phase = 'send'"
						   "     AND s.state IN ('waiting', 'retrying', 'running')"
						   "     AND smsdist.route_hop(s.site_code) = $2"
						   "  RETURNING s.site_code, s.full_package_required)"
						   "SELECT (SELECT array_agg(site_code::text ORDER BY site_code) FROM rows)::text,"
						   "       coalesce((SELECT bool_or(full_package_required) FROM rows), false)",
						   2, types, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist: claiming send rows failed: SPI code %d", ret);
	*sites = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*full_package_required = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 2, &isnull));
}

/* open -> failed: the send rows of job for sites not below this site. */
void
sms_send_rows_fail_unroutable(const char *job_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {text_datum(job_id)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.job_site_status SET state = 'failed',"
						   "       last_error = 'the site is not below this site', finished_at = clock_timestamp()"
						   " WHERE job_id = $1 AND phase = 'send' AND smsdist.route_hop(site_code) IS NULL",
						   1, types, values, NULL, false, 0);
	CHECK_RAN(ret, "failing unroutable send rows");
}

/*
 * running -> retrying, or failed: a transfer to hop failed with reason.
 * Nothing waits forever: rows that have failed for longer than
 * smsdist.send_give_up_after -- since their current run of failures began
 * (retrying_since: bytes that move end a run) -- fail, and their job with
 * them.  An hour at 0 % of a rate-limited address ("paused: ...") is a
 * pause the operator chose, not a failure: it never gives up.  Returns
 * whether any row was still the transfer's; *gave_up whether they failed.
 */
bool
sms_send_rows_failed(const char *job_id, const char *hop, const char *reason, bool *gave_up)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4] = {text_datum(job_id), text_datum(hop), text_datum(reason),
	Int32GetDatum(sms_send_give_up_after)};
	bool		isnull;
	int			ret;

	ret = sms_execute_kept("WITH x AS ("
						   "  SELECT $3 NOT LIKE 'paused:%' AND clock_timestamp() - coalesce(s.retrying_since, clock_timestamp())"
						   "         > make_interval(secs => $4) AS give_up, s.job_id, s.site_code"
						   "    FROM smsdist.job_site_status s"
						   "   WHERE s.job_id = $1 AND s.phase = 'send' AND s.state = 'running'"
						   "     AND smsdist.route_hop(s.site_code) = $2)"
						   "UPDATE smsdist.job_site_status s"
						   "   SET state = CASE WHEN x.give_up THEN 'failed' ELSE 'retrying' END::smsdist.phase_state,"
						   "       last_error = $3,"
						   "       detail = CASE WHEN x.give_up THEN 'gave up after ' || $4 || ' s: ' || $3"
						   "                     ELSE 'will try again: ' || $3 END,"
						   "       finished_at = CASE WHEN x.give_up THEN clock_timestamp() END"
						   "  FROM x WHERE s.job_id = x.job_id AND s.site_code = x.site_code AND s.phase = 'send'"
						   " RETURNING s.state = 'failed'",
						   4, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE_RETURNING, "recording a failed transfer");
	if (SPI_processed == 0)
		return false;
	*gave_up = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (*gave_up)
		(void) sms_job_fail(job_id, psprintf("gave up sending to site %s after %d s: %s",
											 hop, sms_send_give_up_after, reason));
	return true;
}

/*
 * waiting|retrying -> retrying, or failed: hop could not be reached at all
 * (no connection, no sender address), so no other transfer to it would
 * fare better now.  Every open send row of the other active jobs behind
 * hop takes the failed attempt as its own: its back-off starts (the retry
 * clock, from attempts), and it gives up, as sms_send_rows_failed does,
 * once its run of failures is older than smsdist.send_give_up_after.
 * Rows another transfer has claimed (running, or locked right now) and
 * rows paused for the hour keep their own state.  Without this a site
 * that is down had every job queued for it claimed, tried and reported on
 * its own: a thousand jobs, a thousand connection attempts and warnings a
 * minute.  Rows: one per job moved -- job, package, version, and whether
 * it gave up (its rows failed; the caller fails the job).
 */
SPITupleTable *
sms_send_rows_hop_unreachable(const char *job_id, const char *hop, const char *reason,
							  uint64 *n)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4] = {text_datum(job_id), text_datum(hop), text_datum(reason),
	Int32GetDatum(sms_send_give_up_after)};
	int			ret;

	ret = sms_execute_kept("WITH hop_sites AS MATERIALIZED ("
						   /* route_hop() once per site, not once per row */
						   "  SELECT x.site_code FROM (SELECT DISTINCT site_code FROM smsdist.job_site_status"
						   "                            WHERE phase = 'send' AND state IN ('waiting', 'retrying')) x"
						   "   WHERE smsdist.route_hop(x.site_code) = $2),"
						   " x AS ("
						   "  SELECT s.job_id, s.site_code,"
						   "         clock_timestamp() - coalesce(s.retrying_since, clock_timestamp())"
						   "         > make_interval(secs => $4) AS give_up"
						   "    FROM smsdist.job_site_status s"
						   "    JOIN hop_sites h ON h.site_code = s.site_code"
						   "    JOIN smsdist.jobs j ON j.job_id = s.job_id AND j.state = 'active'"
						   "   WHERE s.phase = 'send' AND s.state IN ('waiting', 'retrying') AND s.job_id <> $1"
						   "     AND coalesce(s.last_error, '') NOT LIKE 'paused:%'"
						   "   FOR UPDATE OF s SKIP LOCKED),"
						   " u AS ("
						   "  UPDATE smsdist.job_site_status s"
						   "     SET state = CASE WHEN x.give_up THEN 'failed' ELSE 'retrying' END::smsdist.phase_state,"
						   "         attempts = s.attempts + 1, last_error = $3,"
						   "         detail = CASE WHEN x.give_up THEN 'gave up after ' || $4 || ' s: ' || $3"
						   "                       ELSE 'will try again: ' || $3 END,"
						   "         finished_at = CASE WHEN x.give_up THEN clock_timestamp() END"
						   "    FROM x WHERE s.job_id = x.job_id AND s.site_code = x.site_code AND s.phase = 'send'"
						   "  RETURNING s.job_id, x.give_up)"
						   "SELECT u.job_id::text, j.package_id::text, coalesce(j.source_version, 0), bool_or(u.give_up)"
						   "  FROM u JOIN smsdist.jobs j ON j.job_id = u.job_id"
						   " GROUP BY 1, 2, 3 ORDER BY 1",
						   4, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_SELECT, "recording a site that cannot be reached");
	*n = SPI_processed;
	return SPI_tuptable;
}

/*
 * retrying -> waiting: hop answered a transfer (of job_id), so the run of
 * connection failures that sms_send_rows_hop_unreachable gave every job
 * behind it ends: those rows may be sent at once, and their give-up clock
 * (retrying_since) stops, as the transfer's own rows' does.  Without this,
 * a job queued behind a site that was down a moment kept that moment as
 * the start of its failures, and gave up with the next one however long
 * the site had worked in between.  Rows locked by another transfer are
 * left alone.  Returns the number of rows changed.
 */
uint64
sms_send_rows_hop_answers(const char *job_id, const char *hop)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {text_datum(job_id), text_datum(hop)};
	int			ret;

	ret = sms_execute_kept("WITH x AS ("
						   "  SELECT s.job_id, s.site_code FROM smsdist.job_site_status s"
						   "   WHERE s.phase = 'send' AND s.retrying_since IS NOT NULL"
						   "     AND (s.state = 'retrying' OR (s.state = 'running' AND s.job_id = $1))"
						   "     AND (s.last_error LIKE 'could not connect%'"
						   "          OR s.last_error LIKE 'no enabled sender address%')"
						   "     AND smsdist.route_hop(s.site_code) = $2"
						   "   FOR UPDATE OF s SKIP LOCKED)"
						   "UPDATE smsdist.job_site_status s"
						   "   SET state = CASE WHEN s.state = 'retrying' THEN 'waiting' ELSE s.state END::smsdist.phase_state,"
						   "       detail = CASE WHEN s.state = 'retrying' THEN 'site ' || $2 || ' answers again'"
						   "                     ELSE s.detail END,"
						   "       retrying_since = NULL"
						   "  FROM x WHERE s.job_id = x.job_id AND s.site_code = x.site_code AND s.phase = 'send'",
						   2, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE, "recording a site that answers again");
	return SPI_processed;
}

/*
 * running -> waiting: the Sender stepped out of a transfer to hop (it sends
 * while the package is compressed, and the build is behind); the attempt
 * does not count.
 */
void
sms_send_rows_yield(const char *job_id, const char *hop, const char *detail)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {text_datum(job_id), text_datum(hop), text_datum(detail)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = 'waiting', detail = $3, attempts = greatest(attempts - 1, 0)"
						   " WHERE job_id = $1 AND phase = 'send' AND state = 'running'"
						   "   AND smsdist.route_hop(site_code) = $2",
						   3, types, values, NULL, false, 0);
	CHECK_RAN(ret, "recording a paused transfer");
}

/*
 * running -> done: the transfer to hop arrived (bytes the file's size, 0
 * when unknown; delta_base 0 for the full package).  Each site sent to
 * gets a distribute row, waiting for its report; a resend of the full
 * package (a site could not apply the delta) starts those rows over.
 */
void
sms_send_rows_done(const char *job_id, const char *hop, const char *detail,
				   int32 delta_base, int64 bytes, int64 attempt_bytes)
{
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID};
	Datum		values[6] = {text_datum(job_id), text_datum(hop), text_datum(detail),
		Int32GetDatum(delta_base), Int64GetDatum(bytes), Int64GetDatum(attempt_bytes)};
	int			ret;

	ret = sms_execute_kept("WITH done AS ("
						   "  UPDATE smsdist.job_site_status"
						   "     SET state = 'done', detail = $3, bytes_total = CASE WHEN $5 > 0 THEN $5 END,"
						   "         bytes_done = CASE WHEN $5 > 0 THEN $5 ELSE bytes_done END,"
						   "         bytes_total_estimated = false, attempt_bytes = $6,"
						   "         delta_base = nullif($4, 0), full_package_required = false,"
						   "         last_error = NULL, finished_at = clock_timestamp()"
						   "   WHERE job_id = $1 AND phase = 'send' AND state = 'running'"
						   "     AND smsdist.route_hop(site_code) = $2 RETURNING site_code)"
						   "INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state, detail)"
						   "SELECT $1, site_code, 'distribute', 'waiting', 'waiting for the site''s report'"
						   "  FROM done"
						   "    ON CONFLICT (job_id, site_code, phase) DO UPDATE"
						   "   SET state = 'waiting', detail = EXCLUDED.detail, last_error = NULL,"
						   "       full_package_required = false, finished_at = NULL"
						   " WHERE job_site_status.state NOT IN ('done', 'failed')",
						   6, types, values, NULL, false, 0);
	CHECK_RAN(ret, "recording a finished transfer");
}

/*
 * done -> waiting: site cannot use the delta it was sent through its hop;
 * the hop's send rows that carried a delta are sent again, the full
 * package this time.  Returns how many rows will be sent again.
 */
uint64
sms_send_rows_resend_full(const char *job_id, const char *site, const char *error)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {text_datum(job_id), text_datum(site), (Datum) 0};
	char		nulls[3] = {' ', ' ', error ? ' ' : 'n'};
	int			ret;

	if (error)
		values[2] = text_datum(error);
	ret = sms_execute_kept("UPDATE smsdist.job_site_status s"
						   "   SET state = 'waiting', full_package_required = true, started_at = NULL,"
						   "       finished_at = NULL, attempts = 0, bytes_done = 0,"
						   "       detail = 'site ' || $2 || ' needs the full package: it will be sent',"
						   "       last_error = $3"
						   " WHERE s.job_id = $1 AND s.phase = 'send' AND s.state = 'done'"
						   "   AND s.delta_base IS NOT NULL"
						   "   AND smsdist.route_hop(s.site_code) = smsdist.route_hop($2)",
						   3, types, values, nulls, false, 0);
	CHECK(ret, SPI_OK_UPDATE, "planning to send the full package");
	return SPI_processed;
}

/*
 * -> running: the Despooler of site takes its next distribute row (at most
 * one), of an active job whose package file is ready (or a removal), in
 * priority order.  The row returned (job, type, package, version, file,
 * source bytes, SHA-256, delta base, received, has manifest) is the
 * caller's until its next SPI call; NULL when there is none.
 */
SPITupleTable *
sms_distribute_row_claim(const char *site)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {text_datum(site)};
	int			ret;

	/*
	 * The open rows first, by their partial index, then their jobs: left
	 * to the planner, a plan kept from when the tables were small read
	 * every active job (1.2 ms a claim after 200 jobs at a child).
	 */
	ret = sms_execute_kept("WITH open AS MATERIALIZED ("
						   "  SELECT o.job_id FROM smsdist.job_site_status o"
						   "   WHERE o.state IN ('waiting', 'retrying', 'running') AND o.phase = 'distribute'"
						   "     AND o.site_code = $1),"
						   "item AS ("
						   "  SELECT s.job_id FROM open"
						   "    JOIN smsdist.job_site_status s"
						   "      ON s.job_id = open.job_id AND s.site_code = $1 AND s.phase = 'distribute'"
						   "    JOIN smsdist.jobs j ON j.job_id = s.job_id"
						   "    LEFT JOIN smsdist.package_builds b"
						   "      ON b.package_id = j.package_id AND b.source_version = j.source_version"
						   "   WHERE s.state IN ('waiting', 'retrying', 'running')"
						   /* a full disk: not before its back-off has passed */
						   "     AND (s.state <> 'retrying' OR s.next_attempt_at IS NULL"
						   "          OR s.next_attempt_at <= clock_timestamp())"
						   "     AND j.state = 'active'"
						   "     AND (j.job_type = 'remove_package' OR b.state = 'ready')"
						   /* waiting for the full package: not while the file is a delta */
						   "     AND NOT (s.full_package_required AND b.base_version IS NOT NULL)"
						   "   ORDER BY j.priority, s.updated_at"
						   "   LIMIT 1 FOR UPDATE OF s SKIP LOCKED)"
						   "UPDATE smsdist.job_site_status s"
						   "   SET state = 'running', attempts = s.attempts + 1,"
						   "       started_at = coalesce(s.started_at, clock_timestamp()),"
						   "       detail = 'extracting the package', last_error = NULL,"
						   "       full_package_required = false"
						   "  FROM item, smsdist.jobs j"
						   "  LEFT JOIN smsdist.package_builds b"
						   "    ON b.package_id = j.package_id AND b.source_version = j.source_version"
						   " WHERE s.job_id = item.job_id AND s.site_code = $1 AND s.phase = 'distribute'"
						   "   AND j.job_id = item.job_id"
						   " RETURNING s.job_id::text, j.job_type::text, j.package_id::text,"
						   "          coalesce(j.source_version, 0), b.file_path, b.source_bytes, b.sha256,"
						   "          coalesce(b.base_version, 0), coalesce(b.received, false),"
						   "          b.manifest IS NOT NULL",
						   1, types, values, NULL, false, 1);
	CHECK(ret, SPI_OK_UPDATE_RETURNING, "claiming a distribute row");
	return SPI_processed == 0 ? NULL : SPI_tuptable;
}

/* running -> done: the distribute row of job at site, with what was done. */
void
sms_distribute_row_done(const char *job_id, const char *site, const char *detail)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {text_datum(job_id), text_datum(site), text_datum(detail)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = 'done', detail = $3, bytes_done = coalesce(bytes_total, bytes_done),"
						   "       finished_at = clock_timestamp()"
						   " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'",
						   3, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE, "finishing a distribute row");
}

/* -> failed: the distribute row of job at site, and the job with it. */
void
sms_distribute_row_fail(const char *job_id, const char *site, const char *reason)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {text_datum(job_id), text_datum(site), text_datum(reason)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = 'failed', last_error = $3, detail = 'failed',"
						   "       finished_at = clock_timestamp()"
						   " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'",
						   3, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE, "failing a distribute row");
	(void) sms_job_fail(job_id, psprintf("distribution at site %s failed: %s", site, reason));
}

/*
 * running -> retrying: the package file of job was corrupt at site and is
 * being compressed again; the Despooler takes the row again when it is
 * ready.
 */
void
sms_distribute_row_repairing(const char *job_id, const char *site, const char *error)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {text_datum(job_id), text_datum(site), text_datum(error)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = 'retrying', last_error = $3,"
						   "       detail = 'the package file was corrupt: it is being compressed again'"
						   " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'",
						   3, types, values, NULL, false, 0);
	CHECK_RAN(ret, "recording a repair");
}

/*
 * running -> retrying, or failed: a disk that the distribution of job at
 * site writes to is full (reason says which, and what is free on it).  The
 * Despooler takes the row again at next_attempt_at: 1 s after the first
 * failure, doubling with each attempt up to smsdist.poll_interval, so that
 * the item goes on by itself once room is made.  A row whose disk has been
 * full for longer than smsdist.disk_full_give_up_after (counted from
 * retrying_since, the first failure of the run) fails, and its job with
 * it.  Returns whether it gave up; *next is the next attempt otherwise,
 * *first whether this failure began the run.
 */
bool
sms_distribute_row_disk_full(const char *job_id, const char *site, const char *reason,
							 TimestampTz *next, bool *first)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID};
	Datum		values[5] = {text_datum(job_id), text_datum(site), text_datum(reason),
		Int32GetDatum(sms_disk_full_give_up_after), Int32GetDatum(Max(sms_poll_interval, 1))};
	bool		isnull;
	bool		gave_up;
	int			ret;

	ret = sms_execute_kept("WITH x AS ("
						   "  SELECT s.job_id, s.site_code, s.retrying_since IS NULL AS first,"
						   "         coalesce(clock_timestamp() - s.retrying_since > make_interval(secs => $4), false)"
						   "           AS give_up,"
						   "         clock_timestamp() + make_interval(secs => least($5,"
						   "           power(2, least(greatest(s.attempts - 1, 0), 20)))) AS next_at"
						   "    FROM smsdist.job_site_status s"
						   "   WHERE s.job_id = $1 AND s.site_code = $2 AND s.phase = 'distribute'"
						   "     AND s.state = 'running')"
						   "UPDATE smsdist.job_site_status s"
						   "   SET state = CASE WHEN x.give_up THEN 'failed' ELSE 'retrying' END::smsdist.phase_state,"
						   "       last_error = $3,"
						   "       detail = CASE WHEN x.give_up THEN 'gave up after ' || $4 || ' s: ' || $3"
						   "                     ELSE 'waiting for room on a full disk' END,"
						   "       next_attempt_at = CASE WHEN NOT x.give_up THEN x.next_at END,"
						   "       finished_at = CASE WHEN x.give_up THEN clock_timestamp() END"
						   "  FROM x WHERE s.job_id = x.job_id AND s.site_code = x.site_code AND s.phase = 'distribute'"
						   " RETURNING s.state = 'failed', s.next_attempt_at, x.first",
						   5, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE_RETURNING, "recording a full disk");
	if (SPI_processed == 0)
		return false;			/* not running any more: cancelled meanwhile */
	gave_up = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*next = gave_up ? 0 : DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	*first = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (gave_up)
		(void) sms_job_fail(job_id, psprintf("distribution at site %s gave up after %d s: %s",
											 site, sms_disk_full_give_up_after, reason));
	return gave_up;
}

/*
 * running -> retrying: the distribution was rolled back by a transient
 * error (a deadlock, a serialization failure); the Despooler takes the
 * row again, and distributing again gives the same result.
 */
void
sms_distribute_row_retry(const char *job_id, const char *site, const char *error)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {text_datum(job_id), text_datum(site), text_datum(error)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = 'retrying', last_error = $3,"
						   "       detail = 'a transient error rolled the distribution back: it is done again'"
						   " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'",
						   3, types, values, NULL, false, 0);
	CHECK_RAN(ret, "recording a retry");
}

/*
 * running -> waiting: the file received from the parent site cannot be
 * used at site (a delta without its base, a damaged file); the row waits
 * for the full package, and its detail, which begins with detail_prefix,
 * is what the parent's Sender reads in the distribution report.
 */
void
sms_distribute_row_needs_full(const char *job_id, const char *site, const char *error,
							  const char *detail_prefix)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4] = {text_datum(job_id), text_datum(site), text_datum(error),
	text_datum(detail_prefix)};
	int			ret;

	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = 'waiting', full_package_required = true, last_error = $3,"
						   "       detail = $4 || $3"
						   " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'",
						   4, types, values, NULL, false, 0);
	CHECK(ret, SPI_OK_UPDATE, "asking for the full package");
}

/*
 * waiting -> done: a removal was handed to hop, which runs it for the
 * sites behind it (a missing package there is nothing to do); this site
 * no longer counts the package at those sites.
 */
void
sms_distribute_rows_handed_over(const char *job_id, const char *hop)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {text_datum(job_id), text_datum(hop)};
	int			ret;

	ret = sms_execute_kept("WITH done AS ("
						   "  UPDATE smsdist.job_site_status SET state = 'done',"
						   "         detail = 'removal handed to ' || $2, finished_at = clock_timestamp()"
						   "   WHERE job_id = $1 AND phase = 'distribute' AND state = 'waiting'"
						   "     AND smsdist.route_hop(site_code) = $2 RETURNING site_code)"
						   "DELETE FROM smsdist.package_locations l USING smsdist.jobs j"
						   " WHERE j.job_id = $1 AND l.package_id = j.package_id"
						   "   AND l.site_code IN (SELECT site_code FROM done)",
						   2, types, values, NULL, false, 0);
	CHECK_RAN(ret, "recording a removal handed over");
}

/*
 * What a child site reports of the distribute row of job at site: its
 * state, detail (prefixed "at the site: " once) and error (NULL for none).
 * Written only when it changes something: the state or the error at once
 * (so a report taken again clears a refusal's), a new detail alone at most
 * once a second (every update wakes the Sender, which polls again).
 */
void
sms_distribute_row_reported(const char *job_id, const char *site, const char *state,
							const char *detail, const char *error)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5] = {text_datum(job_id), text_datum(site), text_datum(state),
	text_datum(detail), (Datum) 0};
	char		nulls[5] = {' ', ' ', ' ', ' ', error ? ' ' : 'n'};
	int			ret;

	if (error)
		values[4] = text_datum(error);
	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = $3::smsdist.phase_state,"
						   "       detail = CASE WHEN $4 LIKE 'at the site: %' THEN $4 ELSE 'at the site: ' || $4 END,"
						   "       last_error = $5,"
						   "       finished_at = CASE WHEN $3 IN ('done', 'failed') THEN clock_timestamp() END"
						   " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'"
						   /*
							* a row cancelled here stays so: a report the
							* child made before the cancellation reached it
							* would open it again, and nothing would end it
							*/
						   "   AND state <> 'cancelled'"
						   "   AND (state::text IS DISTINCT FROM $3 OR last_error IS DISTINCT FROM $5"
						   "        OR (detail IS DISTINCT FROM CASE WHEN $4 LIKE 'at the site: %' THEN $4 ELSE 'at the site: ' || $4 END"
						   "            AND updated_at < clock_timestamp() - interval '1 second'))",
						   5, types, values, nulls, false, 0);
	CHECK_RAN(ret, "recording a report");
}

/*
 * -> waiting: a child reports that site needs the full package (see
 * sms_distribute_row_needs_full); its row here waits for it, with the
 * child's detail, once.  Only an open row: one cancelled (or ended) while
 * the report was on its way stays so, or it would wait for ever for a
 * package nobody sends.  True if the row now waits for the full package.
 */
bool
sms_distribute_row_wants_full(const char *job_id, const char *site, const char *detail,
							  const char *error)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4] = {text_datum(job_id), text_datum(site), text_datum(detail), (Datum) 0};
	char		nulls[4] = {' ', ' ', ' ', error ? ' ' : 'n'};
	int			ret;

	if (error)
		values[3] = text_datum(error);
	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET state = 'waiting', full_package_required = true,"
						   "       detail = CASE WHEN $3 LIKE 'at the site: %' THEN $3 ELSE 'at the site: ' || $3 END,"
						   "       last_error = $4, finished_at = NULL"
						   " WHERE job_id = $1 AND site_code = $2 AND phase = 'distribute'"
						   "   AND state IN ('waiting', 'running', 'retrying')"
						   "   AND NOT full_package_required",
						   4, types, values, nulls, false, 0);
	CHECK_RAN(ret, "recording a request for the full package");
	return SPI_processed > 0;
}

/*
 * What hop reported on a site the job was sent to (site NULL: on every such
 * site behind hop) was refused: the site's open distribute row says why,
 * and fails once its reports have been refused for longer than
 * smsdist.send_give_up_after, so nothing waits for ever on a child that
 * never reports properly.  The row is updated only when the reason changes
 * (or to fail it), so its updated_at is when the refusals began.
 */
void
sms_distribute_rows_refused(const char *job_id, const char *hop, const char *site,
							const char *reason)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[5] = {text_datum(job_id), (Datum) 0, text_datum(reason),
	Int32GetDatum(sms_send_give_up_after), text_datum(hop)};
	char		nulls[5] = {' ', site ? ' ' : 'n', ' ', ' ', ' '};
	int			ret;

	if (site)
		values[1] = text_datum(site);
	ret = sms_execute_kept("UPDATE smsdist.job_site_status"
						   "   SET last_error = $3,"
						   "       state = CASE WHEN last_error = $3 THEN 'failed' ELSE state END,"
						   "       detail = CASE WHEN last_error = $3"
						   "                     THEN 'gave up after ' || $4 || ' s of refused reports'"
						   "                     ELSE detail END,"
						   "       finished_at = CASE WHEN last_error = $3 THEN clock_timestamp() END"
						   " WHERE job_id = $1 AND phase = 'distribute'"
						   "   AND coalesce(site_code = $2, true) AND smsdist.route_hop(site_code) = $5"
						   "   AND state IN ('waiting', 'running', 'retrying')"
						   "   AND (last_error IS DISTINCT FROM $3"
						   "        OR updated_at + make_interval(secs => $4) < clock_timestamp())",
						   5, types, values, nulls, false, 0);
	CHECK_RAN(ret, "recording a refused report");
}
