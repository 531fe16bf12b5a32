/*-------------------------------------------------------------------------
 *
 * sender.c
 *	  The SMS Sender: sends packages to child sites over libpq, and brings
 *	  their distribution status back.
 *
 * In SMS, phase 1 of a job: "the SMS Sender copies the package to the child site
 * or sites."  Here a site is a PostgreSQL server and the copy is made with
 * SQL calls on the child (receiver.c), over a libpq connection described by
 * a row of smsdist.sender_addresses.
 *
 * Terms:
 *	send row	a smsdist.job_site_status row in phase 'send' for a site below
 *				this one (the Scheduler makes one per target site).
 *	hop			the child of this site on the way to a target site: a
 *				grandchild is reached through its parent, whose own Sender
 *				sends it on.  One transfer per (job, hop) carries all of the
 *				job's targets behind that hop.
 *	chunk		a piece of the package file sent in one call, with its
 *				SHA-256; the child writes it durably and answers with the
 *				offset it has, so a broken transfer resumes from the last
 *				acknowledged byte (the child's, after a restart of either
 *				side), never from zero.
 *	report		once a hop has the package, the send rows become 'done' and
 *				the job gets a 'distribute' row per target site, which the
 *				Sender keeps current from the child's own rows
 *				(smsdist.distribution_report on the child).
 *
 * libpq is used without blocking: every wait is a WaitLatchOrSocket, so
 * SIGTERM, postmaster death and throttling delays are honoured at once.
 * Failures (an unreachable site, a refused chunk) put the rows in
 * 'retrying' with the reason and a status message; they are tried again
 * after 2^attempts seconds (at most 60).
 *
 * Throttling, per sender address: 'pulse' sends blocks of pulse_block_kb and
 * waits pulse_delay_ms after each; 'rate_limited' uses the hour's
 * percentage p of hourly_rate_pct (after a chunk that took t it waits
 * t * (100 - p) / p; at 0 % it waits for the next hour).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_archive.h"
#include "package_store.h"
#include "site_link.h"
#include "job_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "pgtime.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define CHUNK_BYTES			(8 * 1024 * 1024)
#define PIPELINE_DEPTH		2	/* chunks in flight when not throttled */

/* ----------------------------------------------------------------
 * Throttling
 * ---------------------------------------------------------------- */

typedef struct Throttle
{
	char		mode[16];
	int			block_kb;
	int			delay_ms;
	int			pct[24];
} Throttle;

/* Sleep on the latch for ms milliseconds, interruptibly. */
static void
throttle_sleep(long ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		if (left <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Wait until the latch is set (a builder's member, a commit that concerns
 * us) or ms milliseconds pass, whichever is first.
 */
static void
latch_wait(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * The hours of hourly_rate_pct are those of the server's time zone (the
 * timezone setting), as explain() and the docs read them, not of the
 * process's TZ environment.
 */
static int
current_hour_pct(const Throttle *t)
{
	pg_time_t	now = (pg_time_t) time(NULL);
	struct pg_tm *tm = pg_localtime(&now, session_timezone);

	return t->pct[tm != NULL ? tm->tm_hour : 0];
}

/*
 * After a chunk of chunk_ms: wait as the address's throttling says.  Returns
 * false when this hour's share is 0 %: the transfer stops (and resumes from
 * the child's offset later) rather than hold the Sender, which serves every
 * site, until the hour is over.
 */
static bool
throttle_after(const Throttle *t, long chunk_ms)
{
	if (strcmp(t->mode, "pulse") == 0)
		throttle_sleep(t->delay_ms);
	else if (strcmp(t->mode, "rate_limited") == 0)
	{
		int			p = current_hour_pct(t);

		if (p == 0)
			return false;
		if (p < 100)
			throttle_sleep(Max(chunk_ms, 1) * (100 - p) / p);
	}
	return true;
}

static bool
throttle_allows(const Throttle *t)
{
	return strcmp(t->mode, "rate_limited") != 0 || current_hour_pct(t) > 0;
}

/* ----------------------------------------------------------------
 * The step
 * ---------------------------------------------------------------- */

typedef struct Transfer
{
	char	   *job_id;
	char	   *job_type;
	char	   *package_id;
	int			version;
	char	   *package_name;
	char	   *source_directory;
	char	   *file;
	int64		bytes;
	char	   *sha256;
	char	   *hop;
	char	   *targets;		/* text[] literal of the target sites behind hop */
	char	   *conninfo;
	Throttle	throttle;
	int			fd;				/* the package file while it is sent, or -1 */
	int			base_version;	/* file is a delta from this version; 0: full */
	int			build_base;		/* this site's build is itself a delta from it */
	bool		full_required;	/* a site behind the hop asked for the full file */
	char	   *manifest;		/* of this version, if known */
	char	   *run;			/* run_job_details() for a run-command job */
	char	   *stream_id;		/* the build's stream ID (a full file of a local build) */
	bool		streaming;		/* the build is still being written: size and hash unknown */
	int64		sent;			/* bytes the site took in this attempt (all streams) */
	int64		sent_at_claim;	/* of which before this claim (a stream stepped out of) */
	/* the link's throughput, measured: bytes taken and time on the wire */
	int64		link_bytes;
	int64		link_us;		/* chunks sent and answered, not throttling pauses */
} Transfer;

/* set by claim_transfer when it failed rows that cannot be routed */
static bool unroutable_found = false;

/*
 * A Sender that follows a build (sending it while it is compressed) waits
 * for the builder most of the time.  So that other sites' transfers, the
 * reports and the advertisements do not wait for the whole build, it steps
 * out when it has waited a while (send_file: SEND_YIELD); the next step
 * then claims no build in progress (skip_streams_once) and does the rest
 * of its work, and a later step takes the stream up again from the child's
 * offset.
 */
static bool transfer_yielded = false;
static bool skip_streams_once = false;

/*
 * Bytes sent before stepping out, per "job/hop", so that the status
 * message of the transfer counts them all (in TopMemoryContext; a restarted
 * Sender counts from its own start).
 */
static List *sent_before_yield = NIL;

typedef struct SentSoFar
{
	char	   *key;
	int64		sent;
} SentSoFar;

static int64
take_sent_so_far(Transfer *t)
{
	char	   *key = psprintf("%s/%s", t->job_id, t->hop);
	ListCell   *lc;

	foreach(lc, sent_before_yield)
	{
		SentSoFar  *e = lfirst(lc);

		if (strcmp(e->key, key) == 0)
		{
			int64		sent = e->sent;

			sent_before_yield = foreach_delete_current(sent_before_yield, lc);
			pfree(e->key);
			pfree(e);
			return sent;
		}
	}
	return 0;
}

static void
keep_sent_so_far(Transfer *t)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	SentSoFar  *e = palloc(sizeof(SentSoFar));

	e->key = psprintf("%s/%s", t->job_id, t->hop);
	e->sent = t->sent;
	sent_before_yield = lappend(sent_before_yield, e);
	MemoryContextSwitchTo(old);
}

static char *
val(int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(sms_step_context, v) : NULL;
}

/*
 * Claim the send rows of one (job, hop) and mark them running.  Returns NULL
 * when there is nothing to send now.
 */
static Transfer *
claim_transfer(void)
{
	Oid			bool_type[1] = {BOOLOID};
	Datum		values[1];
	Transfer   *t;
	int			ret;

	values[0] = BoolGetDatum(sms_send_while_compressing && !skip_streams_once);
	ret = SPI_execute_with_args("SELECT s.job_id::text, smsdist.route_hop(s.site_code)::text"
					  "  FROM smsdist.job_site_status s"
					  "  JOIN smsdist.jobs j ON j.job_id = s.job_id"
					  "  LEFT JOIN smsdist.package_builds b"
					  "    ON b.package_id = j.package_id AND b.source_version = j.source_version"
					  " WHERE s.phase = 'send' AND s.state IN ('waiting', 'retrying', 'running')"
					  "   AND j.state = 'active'"
					  "   AND (j.job_type = 'remove_package' OR b.state = 'ready'"
					  /*
					   * still being compressed: sent as it is written, if the
					   * hop has a sender address and no site behind it has a
					   * version a delta could be made from (see send_file)
					   */
					  "        OR ($1 AND b.state = 'building' AND b.stream_id IS NOT NULL"
					  "            AND EXISTS (SELECT 1 FROM smsdist.sender_addresses a"
					  "                         WHERE a.target_site_code = smsdist.route_hop(s.site_code) AND a.enabled)"
					  "            AND NOT EXISTS ("
					  "            SELECT 1 FROM smsdist.job_site_status s2"
					  "              JOIN smsdist.package_locations l"
					  "                ON l.package_id = j.package_id AND l.site_code = s2.site_code"
					  "             WHERE s2.job_id = s.job_id AND s2.phase = 'send'"
					  "               AND smsdist.route_hop(s2.site_code) = smsdist.route_hop(s.site_code))))"
					  /* the full package is needed and this site has only a delta: wait for it */
					  "   AND NOT (s.full_package_required AND b.base_version IS NOT NULL)"
					  /* a retry reaches the hop first (job_control.c): its old failure goes */
					  "   AND NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes c"
					  "                    WHERE c.job_id = s.job_id AND c.hop = smsdist.route_hop(s.site_code))"
					  "   AND (s.state <> 'retrying' OR s.updated_at + make_interval(secs => least(60, power(2, least(s.attempts, 6))))"
					  "        <= clock_timestamp())"
					  " ORDER BY j.priority, coalesce(b.state = 'building', false), s.updated_at"
					  " LIMIT 1 FOR UPDATE OF s SKIP LOCKED",
					  1, bool_type, values, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for work failed: SPI code %d", ret);
	if (SPI_processed == 0)
		return NULL;

	t = MemoryContextAllocZero(sms_step_context, sizeof(Transfer));
	t->fd = -1;
	t->job_id = val(1);
	t->hop = val(2);
	if (t->hop == NULL)
	{
		/* not below this site: nothing can ever reach it from here */
		unroutable_found = true;
		sms_send_rows_fail_unroutable(t->job_id);
		return NULL;
	}

	{
		Oid			t2[4] = {TEXTOID, TEXTOID, TEXTOID, BOOLOID};
		Datum		v2[4] = {CStringGetTextDatum(t->job_id), CStringGetTextDatum(t->hop)};
		char		n2[4] = {' ', ' ', ' ', ' '};
		char	   *sites;
		bool		full_required;

		sms_send_rows_claim(t->job_id, t->hop, &sites, &full_required);
		v2[2] = sites ? CStringGetTextDatum(sites) : (Datum) 0;
		n2[2] = sites ? ' ' : 'n';
		v2[3] = BoolGetDatum(full_required);
		ret = SPI_execute_with_args("SELECT j.job_type::text, j.package_id::text, coalesce(j.source_version, 0),"
									"       p.name::text, p.source_directory::text, b.file_path, b.bytes, b.sha256,"
									"       $3,"
									"       a.conninfo::text, a.throttle::text, coalesce(a.pulse_block_kb, 0),"
									"       coalesce(a.pulse_delay_ms, 0), coalesce(a.hourly_rate_pct::text, ''),"
									"       coalesce(b.base_version, 0),"
									"       $4,"
									"       b.manifest, b.state::text, b.stream_id"
									"  FROM smsdist.jobs j JOIN smsdist.packages p ON p.package_id = j.package_id"
									"  LEFT JOIN smsdist.package_builds b"
									"    ON b.package_id = j.package_id AND b.source_version = j.source_version"
									"  LEFT JOIN LATERAL (SELECT * FROM smsdist.sender_addresses a"
									"                      WHERE a.target_site_code = $2 AND a.enabled"
									"                      ORDER BY a.priority LIMIT 1) a ON true"
									" WHERE j.job_id = $1",
									4, t2, v2, n2, false, 0);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "smsdist sender: claiming a transfer failed: SPI code %d", ret);
	}
	t->job_type = val(1);
	t->package_id = val(2);
	t->version = atoi(val(3));
	t->package_name = val(4);
	t->source_directory = val(5);
	t->file = val(6);
	t->bytes = val(7) ? strtoll(val(7), NULL, 10) : 0;
	t->sha256 = val(8);
	t->targets = val(9);
	t->conninfo = val(10);
	if (val(11))
		strlcpy(t->throttle.mode, val(11), sizeof(t->throttle.mode));
	t->throttle.block_kb = atoi(val(12));
	t->throttle.delay_ms = atoi(val(13));
	if (val(14) && val(14)[0] == '{')
	{
		char	   *p = val(14) + 1;

		for (int h = 0; h < 24 && *p; h++)
		{
			t->throttle.pct[h] = (int) strtol(p, &p, 10);
			if (*p == ',' || *p == '}')
				p++;
		}
	}
	if (strcmp(t->job_type, "run_command") == 0)
	{
		Oid			t3[2] = {TEXTOID, TEXTOID};
		Datum		v3[2] = {CStringGetTextDatum(t->job_id), CStringGetTextDatum(t->hop)};
		char	   *b = val(15),
				   *f = val(16),
				   *m = val(17),
				   *bs = val(18),
				   *sid = val(19);

		if (SPI_execute_with_args("SELECT smsdist.run_job_details($1, $2)::text",
								  2, t3, v3, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "smsdist sender: reading the run-command job failed");
		t->run = val(1);
		t->build_base = atoi(b);
		t->full_required = strcmp(f, "t") == 0;
		t->manifest = m;
		t->streaming = bs != NULL && strcmp(bs, "building") == 0;
		t->stream_id = sid;
		return t;
	}
	t->build_base = atoi(val(15));
	t->full_required = strcmp(val(16), "t") == 0;
	t->manifest = val(17);
	t->streaming = val(18) != NULL && strcmp(val(18), "building") == 0;
	t->stream_id = val(19);
	return t;
}

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
	if (SPI_execute_with_args("WITH held AS ("
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
static void
choose_file(Transfer *t)
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
	if (SPI_execute_with_args("SELECT file_path, bytes, sha256 FROM smsdist.package_deltas"
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

		if (SPI_execute_with_args("SELECT manifest FROM smsdist.package_builds"
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
		if (SPI_execute_with_args("INSERT INTO smsdist.package_deltas"
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

/* Put the transfer's rows back to retrying, with the reason. */
static void
transfer_failed(Transfer *t, const char *reason)
{
	SmsStatusRefs refs = {0};
	bool		gave_up = false;

	if (!sms_send_rows_failed(t->job_id, t->hop, reason, &gave_up))
		return;					/* not ours any more (the build failed, the job was cancelled) */
	refs.job_id = t->job_id;
	refs.package_id = t->package_id;
	refs.site_code = NULL;
	if (gave_up)
		sms_status_message(SMS_SENDER, SMS_ERROR, SMS_MSG_SEND_FAILED, &refs,
						   "Sending package %s version %d to site %s failed: %s; gave up after %d s.",
						   t->package_id, t->version, t->hop, reason, sms_send_give_up_after);
	else
		sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_SEND_FAILED, &refs,
						   "Sending package %s version %d to site %s failed: %s; trying again.",
						   t->package_id, t->version, t->hop, reason);
}

/*
 * The Sender stepped out of a transfer it sends while the package is
 * compressed (see transfer_yielded): its rows wait again, with what has been
 * sent; the child keeps the bytes, and the next claim resumes from them.
 */
static void
transfer_yield(Transfer *t)
{
	sms_send_rows_yield(t->job_id, t->hop,
						psprintf("sending to %s while the package is compressed: waiting for the build",
								 t->hop));
}

static bool follow_reports(const char *during_job);

/*
 * When the Sender last took its children's reports during a transfer: a
 * long transfer to one site must not freeze what this site shows of the
 * others (and of the sites below them), so their reports are taken about
 * every REPORTS_DURING_TRANSFER_MS between chunks.
 */
#define REPORTS_DURING_TRANSFER_MS 2000
static TimestampTz reports_taken_at = 0;

/* Progress of the transfer, visible at once. */
static void
transfer_progress(Transfer *t, int64 done, const char *detail)
{
	Oid			types[8] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, INT8OID, INT4OID, INT8OID, INT8OID};
	Datum		values[8];
	int64		written = 0;
	struct stat st;

	/* while streaming: what the builder has written of the file so far */
	if (t->streaming && t->fd >= 0 && fstat(t->fd, &st) == 0)
		written = st.st_size;
	values[0] = CStringGetTextDatum(t->job_id);
	values[1] = CStringGetTextDatum(t->hop);
	values[2] = Int64GetDatum(done);
	values[3] = CStringGetTextDatum(detail);
	values[4] = Int64GetDatum(t->streaming ? 0 : t->bytes);
	values[5] = Int32GetDatum(t->base_version);
	values[6] = Int64GetDatum(Max(t->sent - t->sent_at_claim, 0));
	values[7] = Int64GetDatum(written);
	/*
	 * Progress is for the operator: the child's offset is the truth a
	 * transfer resumes from.  So its commit need not wait for the WAL to
	 * reach the disk (one flush per chunk, competing with the builder's
	 * writes).
	 */
	if (SPI_execute("SET LOCAL synchronous_commit = off", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "smsdist sender: SET LOCAL failed");
	/*
	 * While streaming, the size is not known yet: it is estimated from the
	 * source's size and the ratio the build has reached so far (the file
	 * written over the input bytes compressed), or the source's size before
	 * there is a ratio, never below what was sent; bytes_total_estimated
	 * says so.  The true size replaces it once the build is ready.
	 */
	if (SPI_execute_with_args("WITH e AS ("
							  "  SELECT CASE WHEN $5 > 0 THEN $5"
							  "              ELSE greatest((SELECT CASE WHEN b.bytes_done > 0 AND $8 > 0"
							  "                                         THEN round(b.source_bytes::numeric * $8 / b.bytes_done)"
							  "                                         ELSE b.source_bytes END::bigint"
							  "                               FROM smsdist.jobs j JOIN smsdist.package_builds b"
							  "                                 ON b.package_id = j.package_id AND b.source_version = j.source_version"
							  "                              WHERE j.job_id = $1 AND b.source_bytes > 0),"
							  "                             $8, $3) END AS total)"
							  "UPDATE smsdist.job_site_status"
							  "   SET bytes_done = $3, bytes_total = nullif(e.total, 0),"
							  "       bytes_total_estimated = $5 = 0 AND e.total > 0, detail = $4,"
							  "       delta_base = nullif($6, 0), attempt_bytes = $7"
							  "  FROM e"
							  " WHERE job_id = $1 AND phase = 'send' AND state = 'running'"
							  "   AND smsdist.route_hop(site_code) = $2",
							  8, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist sender: recording progress failed");
	sms_step_commit();
	if (TimestampDifferenceExceeds(reports_taken_at, GetCurrentTimestamp(), REPORTS_DURING_TRANSFER_MS))
	{
		(void) follow_reports(t->job_id);
		reports_taken_at = GetCurrentTimestamp();
		sms_step_commit();
	}
}

/* The send rows are done; each target gets a distribute row to follow. */
static void
transfer_done(Transfer *t, int64 sent)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	SmsStatusRefs refs = {0};

	values[0] = CStringGetTextDatum(t->job_id);
	values[1] = CStringGetTextDatum(t->hop);
	sms_send_rows_done(t->job_id, t->hop,
					   t->base_version > 0 ?
					   psprintf("sent to %s: the delta from version %d (%lld bytes this time)",
								t->hop, t->base_version, (long long) sent) :
					   psprintf("sent to %s (%lld bytes this time)", t->hop, (long long) sent),
					   t->base_version, t->bytes, Max(sent - t->sent_at_claim, 0));
	if (t->run != NULL)
	{
		/* what the hop now knows of the job's machines (push_targets) */
		if (SPI_execute_with_args("INSERT INTO smsdist.job_target_pushes (job_id, hop, machines_md5)"
								  "SELECT $1, $2, md5((smsdist.run_job_details($1, $2)->'machines')::text)"
								  "    ON CONFLICT (job_id, hop) DO UPDATE"
								  "   SET machines_md5 = EXCLUDED.machines_md5, pushed_at = clock_timestamp()",
								  2, types, values, NULL, false, 0) < 0)
			elog(ERROR, "smsdist sender: recording the machines sent failed");
	}
	if (strcmp(t->job_type, "remove_package") == 0)
	{
		/* the child runs the removal; a missing package there is nothing to do */
		sms_distribute_rows_handed_over(t->job_id, t->hop);
	}
	refs.job_id = t->job_id;
	refs.package_id = t->package_id;
	if (t->base_version > 0)
		sms_status_message(SMS_SENDER, SMS_INFO, SMS_MSG_SENT, &refs,
						   "Package %s version %d sent to site %s for %s as a delta from version %d (%lld bytes sent).",
						   t->package_id, t->version, t->hop, t->targets, t->base_version, (long long) sent);
	else
		sms_status_message(SMS_SENDER, SMS_INFO, SMS_MSG_SENT, &refs,
						   "Package %s version %d sent to site %s for %s (%lld bytes sent).",
						   t->package_id, t->version, t->hop, t->targets, (long long) sent);
}

/*
 * Sending while the package is compressed.  The builder appends the
 * compressed members to <stem>.tar.gz.<stream ID>.tmp in order, so that
 * file is final up to its current size, and renames it to the package file
 * when it is done (the same file: an open descriptor reads on).  The Sender
 * sends whole chunks of it as it grows; once the build is ready it tells
 * the site the size and hash (receive_total) and sends the rest.  Only a
 * full file is streamed: a delta needs the finished file, so a hop whose
 * sites hold a version of the package waits for the build (claim_transfer).
 *
 * What the build's row says, looked at while streaming.
 */
typedef enum BuildNews
{
	BUILD_GROWING,				/* same stream, still being written */
	BUILD_READY,				/* done: t->file, bytes, sha256 set */
	BUILD_RESTARTED,			/* another stream (the builder started over) */
	BUILD_FAILED				/* failed or gone: *err says why */
} BuildNews;

#define SEND_RESTART	(-2)	/* send_file: the build changed; look again */
#define SEND_YIELD		(-3)	/* send_file: waited long enough for the build; step out */
#define YIELD_IDLE_MS	1000	/* step out after waiting this long for a chunk ... */
#define YIELD_EVERY_MS	10000	/* ... if other work waits, or this long after the last time */

/* Is another transfer waiting for the Sender (not of this job)? */
static bool
other_sends_waiting(Transfer *t)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(t->job_id)};
	bool		isnull;

	if (SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM smsdist.job_site_status s"
							  "  JOIN smsdist.jobs j ON j.job_id = s.job_id"
							  "  LEFT JOIN smsdist.package_builds b"
							  "    ON b.package_id = j.package_id AND b.source_version = j.source_version"
							  " WHERE s.phase = 'send' AND s.state IN ('waiting', 'retrying')"
							  "   AND j.state = 'active' AND s.job_id <> $1"
							  "   AND (j.job_type = 'remove_package' OR b.state = 'ready')"
							  "   AND NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes c"
							  "                    WHERE c.job_id = s.job_id AND c.hop = smsdist.route_hop(s.site_code))"
							  "   AND (s.state <> 'retrying' OR s.updated_at + make_interval(secs => least(60, power(2, least(s.attempts, 6))))"
							  "        <= clock_timestamp()))",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for other work failed");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static BuildNews
follow_build(Transfer *t, char **err)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	char	   *state;
	char	   *stream;

	/* a fresh transaction: the wait may be long, and must not hold a snapshot */
	sms_step_commit();
	values[0] = CStringGetTextDatum(t->package_id);
	values[1] = Int32GetDatum(t->version);
	if (SPI_execute_with_args("SELECT b.state::text, b.stream_id, b.file_path, b.bytes, b.sha256,"
							  "       coalesce(b.error, ''), b.manifest"
							  "  FROM smsdist.package_builds b"
							  " WHERE b.package_id = $1 AND b.source_version = $2",
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: reading the package build failed");
	if (SPI_processed != 1)
	{
		*err = psprintf("the build of package %s version %d is gone", t->package_id, t->version);
		return BUILD_FAILED;
	}
	state = val(1);
	stream = val(2);
	if (strcmp(state, "ready") == 0)
	{
		t->file = val(3);
		t->bytes = strtoll(val(4), NULL, 10);
		t->sha256 = val(5);
		t->manifest = val(7);
		t->stream_id = stream;
		return BUILD_READY;
	}
	if (strcmp(state, "building") != 0)
	{
		*err = psprintf("package %s version %d could not be compressed: %s",
						t->package_id, t->version, val(6));
		return BUILD_FAILED;
	}
	if (stream == NULL || t->stream_id == NULL || strcmp(stream, t->stream_id) != 0)
	{
		t->stream_id = stream;
		return BUILD_RESTARTED;
	}
	return BUILD_GROWING;
}

/*
 * Does the site take streams (0.6)?  One catalog lookup per transfer of a
 * local build; a site not updated yet gets the finished file as before.
 */
static bool
site_takes_streams(PGconn *conn, char **err)
{
	PGresult   *res = link_exec(conn,
								"SELECT to_regprocedure('smsdist.receive_total(text,integer,text,bigint,text)') IS NOT NULL",
								0, NULL, NULL, NULL, err);
	bool		yes;

	if (res == NULL)
		return false;
	yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return yes;
}

/* Wait (on the latch: the builder sets it) until the build is no longer being written. */
static BuildNews
wait_for_build(Transfer *t, char **err)
{
	for (;;)
	{
		BuildNews	news = follow_build(t, err);

		if (news == BUILD_READY || news == BUILD_FAILED)
			return news;
		latch_wait(1000);
	}
}

/* Is the open stream the finished package file (renamed, not rewritten)? */
static bool
same_file(int fd, const char *path, int64 bytes)
{
	struct stat a;
	struct stat b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		a.st_dev == b.st_dev && a.st_ino == b.st_ino && b.st_size == bytes;
}

/*
 * A child whose answers to the chunks never bring the transfer forward
 * (it keeps answering an offset behind the chunk just sent) would keep the
 * Sender resending the same bytes for ever, serving no other site.  A
 * well-behaved child resynchronises a transfer once in a while (its part
 * file was damaged, a session ended); more than this many times in one
 * attempt, and the attempt fails with the reason.  The transfer is then
 * retried after the usual delay, and fails for good after
 * smsdist.send_give_up_after.
 */
#define MAX_RESYNCS_PER_ATTEMPT	4

/*
 * The offset a child answered to call (receive_begin, receive_chunk,
 * receive_total) about t: one number, lo <= offset <= hi (hi < 0: no upper
 * bound known yet).  Anything else fails the attempt with the reason.
 * res is cleared.
 */
static bool
answer_offset(PGresult *res, Transfer *t, const char *call, int64 lo, int64 hi,
			  int64 *offset, char **err)
{
	char	   *why = NULL;
	bool		ok = link_answer_int8(res, offset, &why);

	PQclear(res);
	if (!ok)
	{
		*err = psprintf("site %s answered %s for package %s version %d with %s",
						t->hop, call, t->package_id, t->version, why);
		return false;
	}
	if (*offset < lo || (hi >= 0 && *offset > hi))
	{
		if (hi >= 0)
			*err = psprintf("site %s answered %s for package %s version %d with offset %lld: "
							"it must lie between %lld and %lld",
							t->hop, call, t->package_id, t->version, (long long) *offset,
							(long long) lo, (long long) hi);
		else
			*err = psprintf("site %s answered %s for package %s version %d with offset %lld: "
							"it must not be below %lld",
							t->hop, call, t->package_id, t->version, (long long) *offset,
							(long long) lo);
		return false;
	}
	return true;
}

/*
 * Send the package file from the child's offset on; returns bytes sent, -1
 * with *err set on failure, or SEND_RESTART when a stream must be given up
 * (the builder started over): the caller looks at the build again.
 *
 * The child's offsets are checked: within the file (what this site has of
 * it, while streaming), never beyond the end of the chunk just sent, and
 * moving forward (MAX_RESYNCS_PER_ATTEMPT).
 */
static int64
send_file(PGconn *conn, Transfer *t, char **err)
{
	char		version[16];
	char		total[32];
	char		base[16];
	const char *bv[8];
	PGresult   *res;
	int64		offset;
	int64		sent = 0;
	int			fd;
	char	   *buf;
	size_t		chunk = CHUNK_BYTES;
	int			depth;
	int			inflight = 0;
	int			first = 0;
	int64		next;
	int64		ends[PIPELINE_DEPTH];
	int64		avail;
	TimestampTz idle_since = 0;	/* since when no chunk could be sent (streaming) */
	TimestampTz followed_since = GetCurrentTimestamp();
	int			resyncs = 0;

	/* a site that does not take streams gets the finished file, as before 0.6 */
	if (t->stream_id != NULL && !site_takes_streams(conn, err))
	{
		if (*err != NULL)
			return -1;
		if (t->streaming)
		{
			pgstat_report_activity(STATE_RUNNING,
								   psprintf("waiting for package %s to be compressed", t->package_id));
			if (wait_for_build(t, err) == BUILD_FAILED)
				return -1;
			t->streaming = false;
		}
		t->stream_id = NULL;
	}

	snprintf(version, sizeof(version), "%d", t->version);
	snprintf(total, sizeof(total), "%lld", (long long) t->bytes);
	bv[0] = t->package_id;
	bv[1] = version;
	bv[2] = t->streaming ? NULL : total;
	bv[3] = t->streaming ? NULL : t->sha256;
	bv[4] = t->package_name;
	bv[5] = t->source_directory;
	snprintf(base, sizeof(base), "%d", t->base_version);
	bv[6] = base;
	bv[7] = t->stream_id;
	/* a full file is sent as before 0.3, so a child not updated yet takes it */
	if (t->stream_id != NULL)
		res = link_exec(conn, "SELECT smsdist.receive_begin($1, $2::int, $3::bigint, $4, $5, $6, nullif($7::int, 0), $8)",
						8, bv, NULL, NULL, err);
	else if (t->base_version > 0)
		res = link_exec(conn, "SELECT smsdist.receive_begin($1, $2::int, $3::bigint, $4, $5, $6, $7::int)",
						7, bv, NULL, NULL, err);
	else
		res = link_exec(conn, "SELECT smsdist.receive_begin($1, $2::int, $3::bigint, $4, $5, $6)",
						6, bv, NULL, NULL, err);
	if (res == NULL)
		return -1;
	/* (while streaming, checked against the file's size once it is open) */
	if (!answer_offset(res, t, "receive_begin", 0, t->streaming ? -1 : t->bytes, &offset, err))
		return -1;
	if (!t->streaming && offset >= t->bytes)
		return 0;				/* the site has it already */
	if (!throttle_allows(&t->throttle))
	{
		*err = pstrdup("paused: the rate limit of this hour is 0 %");
		return -1;
	}

	if (strcmp(t->throttle.mode, "pulse") == 0 && t->throttle.block_kb > 0)
		chunk = Min((size_t) t->throttle.block_kb * 1024, chunk);

	/*
	 * Not a transient file: progress is committed after every chunk, and
	 * transient files do not outlive a transaction.  send_transfer closes it.
	 */
	if (t->streaming)
	{
		char	   *path = sms_stream_path(sms_package_store(), t->package_id, t->version, t->stream_id);

		fd = t->fd = open(path, O_RDONLY | O_CLOEXEC | PG_BINARY);
		if (fd < 0 && errno == ENOENT)
			return SEND_RESTART;	/* renamed (ready) or removed (started over) */
		if (fd < 0)
		{
			*err = psprintf("could not open package file \"%s\": %m", path);
			return -1;
		}
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("sending package %s to %s while it is compressed",
										t->package_id, t->hop));

		/*
		 * The file only grows while it has this name: the child cannot
		 * have more of it than there is.
		 */
		{
			struct stat st;

			if (fstat(fd, &st) != 0)
			{
				*err = psprintf("could not stat package file \"%s\": %m", path);
				return -1;
			}
			if (offset > st.st_size)
			{
				*err = psprintf("site %s answered receive_begin for package %s version %d with offset %lld: "
								"it must lie between 0 and %lld (the bytes written so far)",
								t->hop, t->package_id, t->version, (long long) offset,
								(long long) st.st_size);
				return -1;
			}
		}
	}
	else
	{
		fd = t->fd = open(t->file, O_RDONLY | O_CLOEXEC | PG_BINARY);
		if (fd < 0)
		{
			*err = psprintf("could not open package file \"%s\": %m", t->file);
			return -1;
		}
	}
	/* not in SPI memory: each chunk's progress commit frees that */
	buf = MemoryContextAlloc(sms_step_context, chunk);

	/*
	 * Unthrottled, the next chunk is sent while the site is still writing
	 * the one before (PIPELINE_DEPTH requests in flight): the site's fsync
	 * and our reading and hashing overlap.  Throttled, one at a time, so
	 * the pauses fall between chunks as configured.
	 */
	depth = strcmp(t->throttle.mode, "unlimited") == 0 || t->throttle.mode[0] == '\0' ? PIPELINE_DEPTH : 1;
	if (!link_pipeline_enter(conn, err))
		return -1;
	next = offset;
	for (;;)
	{
		int64		acked;
		int64		expected;
		TimestampTz t0 = GetCurrentTimestamp();

		if (t->streaming)
		{
			struct stat st;

			if (fstat(fd, &st) != 0)
			{
				*err = psprintf("could not stat package file of package %s: %m", t->package_id);
				(void) link_pipeline_exit(conn, inflight);
				return -1;
			}
			avail = st.st_size;
		}
		else
		{
			avail = t->bytes;
			if (offset >= t->bytes)
				break;
		}

		/* keep depth chunks in flight (while streaming, whole chunks only) */
		while (inflight < depth && next < avail &&
			   (!t->streaming || avail - next >= (int64) chunk))
		{
			size_t		len = Min((int64) chunk, avail - next);
			ssize_t		r = pg_pread(fd, buf, len, next);
			char		hex[SMS_SHA256_HEX_LEN + 1];
			char		off[32];
			const char *cv[5];
			int			cl[5] = {0, 0, 0, (int) len, 0};
			int			cf[5] = {0, 0, 0, 1, 0};

			if (r != (ssize_t) len)
			{
				*err = psprintf("could not read package file \"%s\": %m", t->file ? t->file : t->package_id);
				(void) link_pipeline_exit(conn, inflight);
				return -1;
			}
			sms_sha256_buffer(buf, len, hex);
			if (sms_test_corrupt_chunk)
			{
				/* fault injection for tests: flip one byte of one chunk */
				buf[len / 2] ^= 0xff;
				sms_test_corrupt_chunk = false;
			}
			snprintf(off, sizeof(off), "%lld", (long long) next);
			cv[0] = t->package_id;
			cv[1] = version;
			cv[2] = off;
			cv[3] = buf;
			cv[4] = hex;
			/* libpq copies the chunk into its own buffer: buf is free again */
			if (!link_pipeline_send(conn, "SELECT smsdist.receive_chunk($1, $2::int, $3::bigint, $4::bytea, $5)",
									5, cv, cl, cf, err))
				return -1;		/* the connection is no good: not kept */
			ends[(first + inflight) % PIPELINE_DEPTH] = next + len;
			inflight++;
			next += len;
			idle_since = 0;
		}

		if (inflight == 0)
		{
			BuildNews	news;

			if (!t->streaming)
			{
				/* cannot happen: the site's offset is behind and nothing is in flight */
				*err = psprintf("lost track of the transfer at byte %lld of %lld",
								(long long) offset, (long long) t->bytes);
				(void) link_pipeline_exit(conn, 0);
				return -1;
			}
			/* streaming, and less than a chunk written since: what of the build? */
			news = follow_build(t, err);
			if (news == BUILD_GROWING)
			{
				struct stat st;
				TimestampTz now = GetCurrentTimestamp();

				if (idle_since == 0)
					idle_since = now;
				else if (TimestampDifferenceExceeds(idle_since, now, YIELD_IDLE_MS) &&
						 (TimestampDifferenceExceeds(followed_since, now, YIELD_EVERY_MS) ||
						  other_sends_waiting(t)))
				{
					/* let the other work through; we come back (see transfer_yielded) */
					(void) link_pipeline_exit(conn, 0);
					return SEND_YIELD;
				}
				/* wait for the builder's next member (it sets our latch) */
				if (fstat(fd, &st) == 0 && st.st_size == avail)
					latch_wait(1000);
				else
					CHECK_FOR_INTERRUPTS();
				continue;
			}
			if (news == BUILD_READY && same_file(fd, t->file, t->bytes))
			{
				/* the size and hash are known now: the site takes the rest as any file */
				const char *tv[5];

				snprintf(total, sizeof(total), "%lld", (long long) t->bytes);
				tv[0] = t->package_id;
				tv[1] = version;
				tv[2] = t->stream_id;
				tv[3] = total;
				tv[4] = t->sha256;
				if (!link_pipeline_send(conn, "SELECT smsdist.receive_total($1, $2::int, $3, $4::bigint, $5)",
										5, tv, NULL, NULL, err))
					return -1;
				res = link_pipeline_result(conn, err);
				if (res == NULL)
				{
					(void) link_pipeline_exit(conn, 0);
					return -1;
				}
				/* it cannot have more than was sent */
				if (!answer_offset(res, t, "receive_total", 0, Min(t->bytes, next), &offset, err))
				{
					(void) link_pipeline_exit(conn, 0);
					return -1;
				}
				next = offset;
				t->streaming = false;
				continue;
			}
			(void) link_pipeline_exit(conn, 0);
			if (news == BUILD_FAILED)
				return -1;
			if (news == BUILD_READY)
				t->stream_id = NULL;	/* not the file streamed: send it afresh */
			return SEND_RESTART;
		}

		/* the answer to the oldest: the site's offset after it */
		res = link_pipeline_result(conn, err);
		expected = ends[first];
		first = (first + 1) % PIPELINE_DEPTH;
		inflight--;
		if (res == NULL)
		{
			(void) link_pipeline_exit(conn, inflight);
			return -1;
		}
		/* never beyond the end of the chunk it answers */
		if (!answer_offset(res, t, "receive_chunk", 0, expected, &acked, err))
		{
			(void) link_pipeline_exit(conn, inflight);
			return -1;
		}
		if (acked > offset)
		{
			sent += acked - offset;
			t->sent += acked - offset;
			t->link_bytes += acked - offset;
		}
		offset = acked;			/* the site's offset: resynchronise on it */
		if (acked != expected && ++resyncs > MAX_RESYNCS_PER_ATTEMPT)
		{
			*err = psprintf("site %s answered offset %lld to the chunk ending at byte %lld of package %s version %d: "
							"the transfer made no progress after %d resynchronisations",
							t->hop, (long long) acked, (long long) expected, t->package_id, t->version,
							MAX_RESYNCS_PER_ATTEMPT);
			(void) link_pipeline_exit(conn, inflight);
			return -1;
		}
		if (acked != expected)
		{
			/*
			 * Not where we thought: the chunks still in flight start at the
			 * wrong offset, so the site refuses them too.  Drop their
			 * answers and go on from the site's offset.
			 */
			if (!link_pipeline_exit(conn, inflight))
			{
				*err = link_error(conn, "could not resynchronise with the site");
				return -1;
			}
			if (!link_pipeline_enter(conn, err))
				return -1;
			inflight = 0;
			first = 0;
			next = offset;
		}
		if (t->streaming)
			transfer_progress(t, offset, psprintf("sending to %s while the package is compressed: %lld bytes so far",
												  t->hop, (long long) offset));
		else
			transfer_progress(t, offset, psprintf("sending to %s: %lld of %lld bytes",
												  t->hop, (long long) offset, (long long) t->bytes));
		/* the time of this round (throttle_after's pause is not in it) */
		t->link_us += GetCurrentTimestamp() - t0;
		if ((t->streaming || offset < t->bytes) && depth == 1 &&
			!throttle_after(&t->throttle, TimestampDifferenceMilliseconds(t0, GetCurrentTimestamp())))
		{
			*err = pstrdup("paused: the rate limit of this hour is 0 %");
			(void) link_pipeline_exit(conn, inflight);
			return -1;
		}
	}
	if (!link_pipeline_exit(conn, inflight))
	{
		*err = link_error(conn, "could not leave pipeline mode");
		return -1;
	}
	return sent;
}

/*
 * Keep what this transfer measured of the link (smsdist.link_measurements,
 * the ten newest per sender address), for preview()'s time estimates: the
 * bytes the site took and the time of the rounds that carried them, without
 * throttling pauses and without waiting for a build that is still written.
 */
static void
record_throughput(Transfer *t)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, INT8OID, FLOAT8OID};
	Datum		values[5];

	if (t->link_bytes <= 0 || t->link_us <= 0 || t->conninfo == NULL)
		return;
	values[0] = CStringGetTextDatum(t->hop);
	values[1] = CStringGetTextDatum(t->conninfo);
	values[2] = CStringGetTextDatum(t->job_id);
	values[3] = Int64GetDatum(t->link_bytes);
	values[4] = Float8GetDatum((double) t->link_us / 1000000.0);
	if (SPI_execute_with_args("WITH a AS ("
							  "  SELECT address_id FROM smsdist.sender_addresses"
							  "   WHERE target_site_code = $1 AND conninfo::text = $2 AND enabled"
							  "   ORDER BY priority LIMIT 1),"
							  " ins AS ("
							  "  INSERT INTO smsdist.link_measurements (address_id, job_id, bytes, seconds)"
							  "  SELECT address_id, $3, $4, $5 FROM a"
							  "      ON CONFLICT DO NOTHING RETURNING address_id)"
							  "DELETE FROM smsdist.link_measurements m USING a"
							  " WHERE m.address_id = a.address_id"
							  "   AND m.measured_at < (SELECT measured_at FROM smsdist.link_measurements k"
							  "                         WHERE k.address_id = a.address_id"
							  "                         ORDER BY measured_at DESC OFFSET 8 LIMIT 1)",
							  5, types, values, NULL, false, 0) < 0)
		elog(ERROR, "smsdist sender: recording the link's throughput failed");
}

static bool
send_transfer(Transfer *t, char **err)
{
	PGconn	   *conn;
	volatile int64 sent = 0;
	char		version[16];
	const char *ev[7];
	PGresult   *res;

	if (t->conninfo == NULL)
	{
		*err = psprintf("no enabled sender address for site %s", t->hop);
		return false;
	}
	conn = link_open(t->conninfo, err);
	if (conn == NULL)
		return false;

	PG_TRY();
	{
		/* builders wake us after every member only while we follow one */
		pg_atomic_write_u32(&sms_shared->sender_follows_build, t->streaming ? 1 : 0);
		while (strcmp(t->job_type, "remove_package") != 0)
		{
			BuildNews	news;

			if (!t->streaming || t->stream_id != NULL)
			{
				sent = send_file(conn, t, err);
				if (sent == SEND_YIELD)
				{
					transfer_yielded = true;
					break;
				}
				if (sent != SEND_RESTART)
					break;
				/* the stream was given up: send what the build has become */
				if (t->fd >= 0)
				{
					close(t->fd);
					t->fd = -1;
				}
			}
			news = follow_build(t, err);
			if (news == BUILD_FAILED)
			{
				sent = -1;
				break;
			}
			t->streaming = news != BUILD_READY;
			if (news == BUILD_GROWING || (t->streaming && t->stream_id == NULL))
				latch_wait(100);	/* between two builders, or a rename not committed yet */
		}
		if (sent >= 0)
		{
			snprintf(version, sizeof(version), "%d", t->version);
			ev[0] = t->package_id;
			ev[1] = version;
			ev[2] = t->job_id;
			ev[3] = t->job_type;
			ev[4] = t->targets;
			ev[5] = "false";
			ev[6] = t->run;
			if (t->run != NULL)
				res = link_exec(conn, "SELECT smsdist.receive_end($1, $2::int, $3, $4, $5::text[], $6::boolean, $7::jsonb)",
								7, ev, NULL, NULL, err);
			else
				res = link_exec(conn, "SELECT smsdist.receive_end($1, $2::int, $3, $4, $5::text[], $6::boolean)",
								6, ev, NULL, NULL, err);
			if (res == NULL)
				sent = -1;
			else
				PQclear(res);
		}
	}
	PG_FINALLY();
	{
		pg_atomic_write_u32(&sms_shared->sender_follows_build, 0);
		link_close(conn, sent >= 0 || transfer_yielded);
		if (t->fd >= 0)
		{
			close(t->fd);
			t->fd = -1;
		}
	}
	PG_END_TRY();

	if (sent < 0)
		return false;
	record_throughput(t);
	transfer_done(t, t->sent);
	return true;
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

	sms_distribute_row_wants_full(job, site, detail, error);
	if (sms_send_rows_resend_full(job, site, error) > 0)
	{
		refs.job_id = job;
		sms_status_message(SMS_SENDER, SMS_WARNING, SMS_MSG_RESENDING_FULL, &refs,
						   "Site %s cannot use the delta it was sent for job %s (%s); sending the full package.",
						   site, job, error ? error : "no reason given");
	}
}

/* ----------------------------------------------------------------
 * What a child reports
 *
 * A child speaks for the sites behind it and for nothing else.  Each row
 * of its distribution and location reports is checked against what was
 * sent to it: a site behind it (route_hop) that the job was sent to (a
 * distribute row here), a state of the enum, the job's package at a version
 * that was sent, an absolute canonical path, valid text of bounded size.
 * A row that fails is refused alone, with the reason (status message
 * SMS_MSG_REPORT_REFUSED, said once per row and reason); the other rows,
 * and the other children's reports, are taken as usual.
 * ---------------------------------------------------------------- */

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
	if (SPI_execute_with_args("SELECT smsdist.route_hop($2::smsdist.site_code)::text,"
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
		if (SPI_execute_with_args("UPDATE smsdist.job_site_status"
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
	if (SPI_execute_with_args("SELECT j.package_id::text,"
							  "       greatest(coalesce(j.source_version, p.source_version), p.source_version)"
							  "  FROM smsdist.jobs j JOIN smsdist.packages p ON p.package_id = j.package_id"
							  " WHERE j.job_id = $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist sender: reading the job of a location report failed");
	package = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	sent_version = atoi(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));

	values[1] = CStringGetTextDatum(hop);
	if (SPI_execute_with_args("DELETE FROM smsdist.package_locations l USING smsdist.jobs j"
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
		if (SPI_execute_with_args("INSERT INTO smsdist.package_locations"
								  "       (package_id, site_code, site_system_id, source_version, path)"
								  " VALUES ($1, $2, $3, $4, $5)"
								  "     ON CONFLICT (package_id, site_code, site_system_id) DO UPDATE"
								  "    SET source_version = $4, path = $5, published_at = clock_timestamp()",
								  5, types, values, NULL, false, 0) < 0)
			elog(ERROR, "smsdist sender: recording a reported location failed");
	}
	PQclear(res);
}

static void report_answered(const char *job, const char *hop, const char *error);

/*
 * Bring the children's distribution status back: for each job with
 * 'distribute' rows of sites below us that are not done, ask the hop.
 * Returns true if some rows are still open (the step polls again soon).
 */
static bool
follow_reports(const char *during_job)
{
	int			ret;
	SPITupleTable *tuptable;
	uint64		n;
	bool		open = false;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {during_job ? ' ' : 'n'};

	values[0] = during_job ? CStringGetTextDatum(during_job) : (Datum) 0;
	ret = SPI_execute_with_args("SELECT s.job_id::text, smsdist.route_hop(s.site_code)::text,"
					  "       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
					  "         WHERE a.target_site_code = smsdist.route_hop(s.site_code) AND a.enabled"
					  "         ORDER BY a.priority LIMIT 1)"
					  "  FROM smsdist.job_site_status s JOIN smsdist.jobs j ON j.job_id = s.job_id"
					  " WHERE s.phase = 'distribute' AND s.state IN ('waiting', 'running', 'retrying')"
					  "   AND j.state = 'active' AND s.site_code <> current_setting('smsdist.site_code')"
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
	if (SPI_execute_with_args(error == NULL
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
 * A run-command job's machines changed (its collection's membership): tell
 * each hop that has the job the machines it now has behind it.  The hop
 * passes it on the same way.  Returns true if a push failed (try again).
 */
static bool
push_targets(void)
{
	SPITupleTable *tuptable;
	uint64		n;
	bool		failed = false;

	if (SPI_execute("SELECT j.job_id::text, h.hop::text,"
					"       (smsdist.run_job_details(j.job_id, h.hop)->'machines')::text AS machines,"
					"       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
					"         WHERE a.target_site_code = h.hop AND a.enabled ORDER BY a.priority LIMIT 1)"
					"  FROM smsdist.jobs j"
					"  JOIN smsdist.job_target_pushes p ON p.job_id = j.job_id"
					"  CROSS JOIN LATERAL (SELECT p.hop) h"
					" WHERE j.state = 'active' AND j.job_type = 'run_command'"
					"   AND p.machines_md5 IS DISTINCT FROM md5((smsdist.run_job_details(j.job_id, h.hop)->'machines')::text)",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist sender: looking for changed machines failed");
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		char	   *job = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 1);
		char	   *hop = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 2);
		char	   *machines = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 3);
		char	   *conninfo = SPI_getvalue(tuptable->vals[i], tuptable->tupdesc, 4);
		const char *v[2] = {job, machines};
		char	   *err = NULL;
		PGconn	   *conn;
		PGresult   *res;
		Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		values[3];

		if (conninfo == NULL || (conn = link_open(conninfo, &err)) == NULL)
		{
			failed = true;
			continue;
		}
		res = link_exec(conn, "SELECT smsdist.receive_job_targets($1, $2::jsonb)", 2, v, NULL, NULL, &err);
		link_close(conn, res != NULL);
		if (res == NULL)
		{
			ereport(LOG,
					(errmsg("smsdist sender: telling site %s the machines of job %s failed: %s", hop, job, err)));
			failed = true;
			continue;
		}
		PQclear(res);
		values[0] = CStringGetTextDatum(job);
		values[1] = CStringGetTextDatum(hop);
		values[2] = CStringGetTextDatum(machines);
		if (SPI_execute_with_args("UPDATE smsdist.job_target_pushes"
								  "   SET machines_md5 = md5($3), pushed_at = clock_timestamp()"
								  " WHERE job_id = $1 AND hop = $2",
								  3, types, values, NULL, false, 0) < 0)
			elog(ERROR, "smsdist sender: recording the machines sent failed");
	}
	return failed;
}

TimestampTz
sms_sender_step(void)
{
	Transfer   *t;
	char	   *err = NULL;
	bool		reports_open;
	bool		streams_skipped;
	TimestampTz adverts_due;
	TimestampTz control_due;

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}

	sms_link_forget_lost(5 * 60 * 1000);	/* kept connections: see site_link.c */
	pg_atomic_write_u32(&sms_shared->sender_follows_build, 0);	/* (after a FATAL exit) */
	unroutable_found = false;

	/*
	 * Cancellations, expiries and retries first: they are small, a cancel
	 * should not wait for a transfer, and a retry lets the job be sent.
	 */
	control_due = sms_push_job_control();
	sms_step_commit();

	streams_skipped = skip_streams_once;
	t = claim_transfer();
	skip_streams_once = false;
	if (unroutable_found)
		return GetCurrentTimestamp();
	if (t != NULL)
	{
		sms_step_commit();		/* 'running' is visible */
		choose_file(t);
		t->sent = take_sent_so_far(t);
		t->sent_at_claim = t->sent;
		transfer_yielded = false;
		if (!send_transfer(t, &err))
		{
			if (transfer_yielded)
			{
				keep_sent_so_far(t);
				transfer_yield(t);
				skip_streams_once = true;	/* the next step does the other work */
			}
			else
				transfer_failed(t, err);
		}
		return GetCurrentTimestamp();	/* more work may wait */
	}

	reports_open = follow_reports(NULL);
	if (push_targets())
		reports_open = true;	/* a hop was unreachable: try again soon */
	adverts_due = Min(sms_replicate_advertisements(), control_due);
	if (streams_skipped)
		return GetCurrentTimestamp();	/* back to the build we stepped out of */
	if (reports_open)
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);

	/* retrying rows come due at their backoff time */
	if (SPI_execute("SELECT min(updated_at + make_interval(secs => least(60, power(2, least(attempts, 6)))))"
					"  FROM smsdist.job_site_status WHERE phase = 'send' AND state = 'retrying'",
					false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			return Min(adverts_due,
					   Max(DatumGetTimestampTz(d), TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 200)));
	}
	return adverts_due;
}
