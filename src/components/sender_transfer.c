/*-------------------------------------------------------------------------
 *
 * sender_transfer.c
 *	  One transfer of the Sender, as a state machine: from the link to the
 *	  hop, through receive_begin and the chunks, to receive_end on the
 *	  child site (receiver.c).
 *
 * Terms (see also sender_transfer.h):
 *	chunk		a piece of the file sent in one receive_chunk call, with its
 *				SHA-256; the child writes it and answers the offset it has,
 *				so a broken transfer resumes from the child's offset, never
 *				from zero.
 *	pipeline	libpq pipeline mode: unthrottled, PIPELINE_DEPTH chunks are
 *				in flight, so the site's fsync and our reading and hashing
 *				overlap.
 *	site version	the child's smsdist extension version, read before the
 *				first transfer on a connection: a site before 0.9 cannot
 *				read this version's package files and is sent none.
 *	small file	a finished file of at most 1 MB, sent with receive_begin
 *				and receive_end in one round trip (sender_small.c).
 *	resync		the child answered an offset other than the end of the
 *				chunk: the chunks in flight are dropped, and sending goes on
 *				from the child's offset.
 *	yield		a transfer that follows a build waits for the builder most
 *				of the time; after a while it steps out (TRANSFER_YIELDED) so
 *				that other work is done, and a later step takes the stream
 *				up again from the child's offset.
 *
 * Each state has a function that does one piece of work and answers the
 * next state, in the manner of pg_cron's task states; sender_run_transfer
 * runs them until a final state.  libpq is used without blocking
 * (site_link.c): every wait is on the latch, so SIGTERM, postmaster death
 * and throttling delays are honoured at once.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "sender_transfer.h"
#include "sender_reports.h"
#include "sender_small.h"
#include "worker.h"
#include "file_util.h"
#include "job_state.h"
#include "sha256.h"
#include "package_store.h"
#include "site_link.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define CHUNK_BYTES			(8 * 1024 * 1024)
#define PIPELINE_DEPTH		2	/* chunks in flight when not throttled */

/*
 * A column of the first row of the last SPI result, in the step's memory
 * (it outlives the commits of a transfer); NULL for a NULL.
 */
char *
sender_result_value(int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(sms_step_context, v) : NULL;
}

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
	if (sms_execute_kept("WITH e AS ("
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
	/* a send helper leaves the reports to the Sender, which is free for them */
	if (!t->in_helper &&
		TimestampDifferenceExceeds(reports_taken_at, GetCurrentTimestamp(), REPORTS_DURING_TRANSFER_MS))
	{
		(void) sender_follow_reports(t->job_id);
		reports_taken_at = GetCurrentTimestamp();
		sms_step_commit();
	}
}

/*
 * Sending while the package is compressed.  The builder appends the
 * compressed members to <stem>.tar.gz.<stream ID>.tmp in order, so that
 * file is final up to its current size, and renames it to the package file
 * when it is done (the same file: an open descriptor reads on).  The Sender
 * sends whole chunks of it as it grows; once the build is ready it tells
 * the site the size and hash (receive_total) and sends the rest.  Only a
 * full file is streamed: a delta needs the finished file, so a hop whose
 * sites hold a version of the package waits for the build (find_send_rows
 * in sender.c).
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

#define YIELD_IDLE_MS	1000	/* step out after waiting this long for a chunk ... */
#define YIELD_EVERY_MS	10000	/* ... if other work waits, or this long after the last time */

/* Is another transfer waiting for the Sender (not of this job)? */
static bool
other_sends_waiting(Transfer *t)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(t->job_id)};
	bool		isnull;

	if (sms_execute_kept("SELECT EXISTS (SELECT 1 FROM smsdist.job_site_status s"
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
	if (sms_execute_kept("SELECT b.state::text, b.stream_id, b.file_path, b.bytes, b.sha256,"
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
	state = sender_result_value(1);
	stream = sender_result_value(2);
	if (strcmp(state, "ready") == 0)
	{
		t->file = sender_result_value(3);
		t->bytes = strtoll(sender_result_value(4), NULL, 10);
		t->sha256 = sender_result_value(5);
		t->manifest = sender_result_value(7);
		t->stream_id = stream;
		return BUILD_READY;
	}
	if (strcmp(state, "building") != 0)
	{
		*err = psprintf("package %s version %d could not be compressed: %s",
						t->package_id, t->version, sender_result_value(6));
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
 * Can the site read this site's package files?  Their manifests are of
 * version 2 since 0.9 (each file's modification time), which an earlier
 * site cannot parse: it would take the whole file and then fail to
 * extract it.  So the transfer does not begin: its rows wait (retrying,
 * with this reason) until the site is updated, and then go on by
 * themselves.  One catalog lookup per connection.
 */
#define PACKAGE_READERS_SINCE_MINOR 9	/* 0.9 */

/*
 * The kept connections whose site was found to read them: a site is not
 * downgraded under an open session, so a yes holds for the connection's
 * life (a no is asked again: the site may be updated meanwhile).  A
 * connection is known by its PGconn and the site's backend PID, so a new
 * connection at a freed PGconn's address is asked again.
 */
#define READERS_KNOWN	32
static struct
{
	PGconn	   *conn;
	int			pid;
}			readers_known[READERS_KNOWN];
static int	readers_next = 0;

static bool
site_reads_package_files(PGconn *conn, const char *hop, char **err)
{
	PGresult   *res;
	int			major = 0;
	int			minor = 0;
	const char *v;

	for (int i = 0; i < READERS_KNOWN; i++)
		if (readers_known[i].conn == conn && readers_known[i].pid == PQbackendPID(conn))
			return true;
	res = link_exec(conn, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'smsdist'",
					0, NULL, NULL, NULL, err);
	if (res == NULL)
		return false;
	v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "(none)";
	if (sscanf(v, "%d.%d", &major, &minor) == 2 &&
		(major > 0 || minor >= PACKAGE_READERS_SINCE_MINOR))
	{
		PQclear(res);
		readers_known[readers_next].conn = conn;
		readers_known[readers_next].pid = PQbackendPID(conn);
		readers_next = (readers_next + 1) % READERS_KNOWN;
		return true;
	}
	*err = psprintf("site %s runs smsdist %s, which cannot read the package files of this site's "
					"smsdist %s: update site %s to %s or later first",
					hop, v, SMSDIST_VERSION, hop, "0." CppAsString2(PACKAGE_READERS_SINCE_MINOR));
	PQclear(res);
	return false;
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

/* ----------------------------------------------------------------
 * The states
 * ---------------------------------------------------------------- */

/* What the states of one transfer share. */
typedef struct TransferRun
{
	Transfer   *t;
	char	  **err;
	PGconn	   *conn;
	char		version[16];	/* t->version, as the calls take it */
	int64		offset;			/* what the site has: its last answer */
	int64		next;			/* where the next chunk starts */
	int64		avail;			/* the bytes there are to send (a stream grows) */
	size_t		chunk;			/* bytes of a chunk */
	int			depth;			/* chunks in flight at most */
	int			inflight;		/* chunks sent and not answered yet */
	int			first;			/* ends[first] is the end of the oldest */
	int64		ends[PIPELINE_DEPTH];
	char	   *buf;
	TimestampTz round_start;	/* the round of chunks under way began */
	TimestampTz idle_since;		/* since when no chunk could be sent (streaming) */
	TimestampTz followed_since; /* when this attempt began following the build */
	int			resyncs;
	/* whether the link may be kept if an ERROR ends the transfer */
	volatile bool keep_link;
} TransferRun;

/*
 * TRANSFER_CONNECTING: the link to the hop; answers the first state of the
 * work on it (a removal sends no file).
 */
static TransferState
transfer_connecting(TransferRun *run)
{
	Transfer   *t = run->t;

	if (t->conninfo == NULL)
	{
		*run->err = psprintf("no enabled sender address for site %s", t->hop);
		return TRANSFER_UNREACHABLE;
	}
	/* (the send rows keep their own back-off) */
	run->conn = link_open_now(t->conninfo, run->err);
	if (run->conn == NULL)
		return TRANSFER_UNREACHABLE;
	/* the hop answers: the rows a failure to reach it held back go on */
	if (sms_send_rows_hop_answers(t->job_id, t->hop) > 0)
		sms_step_commit();
	if (strcmp(t->job_type, "remove_package") == 0)
		return TRANSFER_ENDING;
	if (!t->streaming || t->stream_id != NULL)
		return TRANSFER_CHECKING_SITE;
	return TRANSFER_FOLLOWING_BUILD;
}

/*
 * TRANSFER_FOLLOWING_BUILD: the stream was given up (the builder started
 * over, or the file is not the one streamed): send what the build has
 * become, once there is a stream or a file to send.
 */
static TransferState
transfer_following_build(TransferRun *run)
{
	Transfer   *t = run->t;
	BuildNews	news;

	if (t->fd >= 0)
	{
		close(t->fd);
		t->fd = -1;
	}
	news = follow_build(t, run->err);
	if (news == BUILD_FAILED)
		return TRANSFER_FAILED;
	t->streaming = news != BUILD_READY;
	if (news == BUILD_GROWING || (t->streaming && t->stream_id == NULL))
		sender_latch_wait(100);	/* between two builders, or a rename not committed yet */
	if (!t->streaming || t->stream_id != NULL)
		return TRANSFER_CHECKING_SITE;
	return TRANSFER_FOLLOWING_BUILD;
}

/*
 * TRANSFER_CHECKING_SITE: an attempt to send the file begins.  A site that
 * cannot read it (before 0.9) is sent nothing.  One that can takes streams
 * too (since 0.6): that is not asked again.
 */
static TransferState
transfer_checking_site(TransferRun *run)
{
	Transfer   *t = run->t;

	run->chunk = CHUNK_BYTES;
	run->inflight = 0;
	run->first = 0;
	run->idle_since = 0;
	run->followed_since = GetCurrentTimestamp();
	run->resyncs = 0;
	if (!site_reads_package_files(run->conn, t->hop, run->err))
		return TRANSFER_FAILED;
	if (sender_is_small(t))
		return TRANSFER_SENDING_SMALL;
	return TRANSFER_BEGINNING;
}

/*
 * TRANSFER_SENDING_SMALL: receive_begin, the file and receive_end in one
 * round trip (sender_small.c); if the site had part of the file already,
 * the rest is sent as by any transfer.  The chunk it did not take counts
 * as a resynchronisation: a child that never takes one is given no more
 * chunks an attempt than the usual path gives it.
 */
static TransferState
transfer_sending_small(TransferRun *run)
{
	switch (sender_send_small(run->conn, run->t, run->version, &run->offset, run->err))
	{
		case SMALL_DONE:
			return TRANSFER_DONE;
		case SMALL_RESUME:
			run->resyncs++;
			return TRANSFER_OPENING;
		default:
			return TRANSFER_FAILED;
	}
}

/*
 * TRANSFER_BEGINNING: receive_begin tells the offset the site has (while
 * streaming, checked against the file's size once it is open).
 */
static TransferState
transfer_beginning(TransferRun *run)
{
	Transfer   *t = run->t;
	SiteRequest r;
	PGresult   *res;

	sender_begin_request(t, run->version, &r);
	res = link_exec(run->conn, r.sql, r.n, r.values, NULL, NULL, run->err);
	if (res == NULL)
		return TRANSFER_FAILED;
	if (!sender_answer_offset(res, t, "receive_begin", 0, t->streaming ? -1 : t->bytes, &run->offset, run->err))
		return TRANSFER_FAILED;
	if (!t->streaming && run->offset >= t->bytes)
		return TRANSFER_ENDING;	/* the site has it already */
	if (!sender_throttle_allows(&t->throttle))
	{
		*run->err = pstrdup("paused: the rate limit of this hour is 0 %");
		return TRANSFER_PAUSED;
	}
	return TRANSFER_OPENING;
}

/*
 * Open the stream the builder is writing.  The file only grows while it
 * has this name: the child cannot have more of it than there is.
 */
static TransferState
open_stream(TransferRun *run)
{
	Transfer   *t = run->t;
	char	   *path = sms_stream_path(sms_package_store(), t->package_id, t->version, t->stream_id);
	struct stat st;

	t->fd = open(path, O_RDONLY | O_CLOEXEC | PG_BINARY);
	if (t->fd < 0 && errno == ENOENT)
	{
		/* renamed (ready) or removed (started over) */
		run->keep_link = false;
		return TRANSFER_FOLLOWING_BUILD;
	}
	if (t->fd < 0)
	{
		*run->err = psprintf("could not open package file \"%s\": %m", path);
		return TRANSFER_FAILED;
	}
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("sending package %s to %s while it is compressed",
									t->package_id, t->hop));
	if (fstat(t->fd, &st) != 0)
	{
		*run->err = psprintf("could not stat package file \"%s\": %m", path);
		return TRANSFER_FAILED;
	}
	if (run->offset > st.st_size)
	{
		*run->err = psprintf("site %s answered receive_begin for package %s version %d with offset %lld: "
							 "it must lie between 0 and %lld (the bytes written so far)",
							 t->hop, t->package_id, t->version, (long long) run->offset,
							 (long long) st.st_size);
		return TRANSFER_FAILED;
	}
	return TRANSFER_OPENING;
}

/*
 * TRANSFER_OPENING: open the file to send and enter pipeline mode.  Not a
 * transient file: progress is committed after every chunk, and transient
 * files do not outlive a transaction.  sender_run_transfer closes it.
 */
static TransferState
transfer_opening(TransferRun *run)
{
	Transfer   *t = run->t;

	run->chunk = sender_throttle_chunk_bytes(&t->throttle, run->chunk);
	if (t->streaming)
	{
		TransferState next = open_stream(run);

		if (next != TRANSFER_OPENING)
			return next;
	}
	else
	{
		t->fd = open(t->file, O_RDONLY | O_CLOEXEC | PG_BINARY);
		if (t->fd < 0)
		{
			*run->err = psprintf("could not open package file \"%s\": %m", t->file);
			return TRANSFER_FAILED;
		}
	}
	/* not in SPI memory: each chunk's progress commit frees that */
	run->buf = MemoryContextAlloc(sms_step_context, run->chunk);
	run->depth = sender_throttle_pipeline_depth(&t->throttle, PIPELINE_DEPTH);
	if (!link_pipeline_enter(run->conn, run->err))
		return TRANSFER_FAILED;
	run->next = run->offset;
	return TRANSFER_SENDING_CHUNKS;
}

/*
 * Send the chunk of len bytes at run->next (it is in flight then); false
 * with *err set if it could not be read or sent.
 */
static bool
send_chunk(TransferRun *run, size_t len)
{
	Transfer   *t = run->t;
	ssize_t		r = pg_pread(t->fd, run->buf, len, run->next);
	char		hex[SMS_SHA256_HEX_LEN + 1];
	char		off[32];
	const char *cv[5];
	int			cl[5] = {0, 0, 0, (int) len, 0};
	int			cf[5] = {0, 0, 0, 1, 0};

	if (r != (ssize_t) len)
	{
		*run->err = psprintf("could not read package file \"%s\": %m", t->file ? t->file : t->package_id);
		(void) link_pipeline_exit(run->conn, run->inflight);
		return false;
	}
	sms_sha256_buffer(run->buf, len, hex);
	if (sms_test_corrupt_chunk)
	{
		/* fault injection for tests: flip one byte of one chunk */
		run->buf[len / 2] ^= 0xff;
		sms_test_corrupt_chunk = false;
	}
	snprintf(off, sizeof(off), "%lld", (long long) run->next);
	cv[0] = t->package_id;
	cv[1] = run->version;
	cv[2] = off;
	cv[3] = run->buf;
	cv[4] = hex;
	/* libpq copies the chunk into its own buffer: buf is free again */
	if (!link_pipeline_send(run->conn, "SELECT smsdist.receive_chunk($1, $2::int, $3::bigint, $4::bytea, $5)",
							5, cv, cl, cf, run->err))
		return false;			/* the connection is no good: not kept */
	run->ends[(run->first + run->inflight) % PIPELINE_DEPTH] = run->next + len;
	run->inflight++;
	run->next += len;
	run->idle_since = 0;
	return true;
}

/*
 * TRANSFER_SENDING_CHUNKS: a round begins; keep depth chunks in flight
 * (while streaming, whole chunks only).
 */
static TransferState
transfer_sending_chunks(TransferRun *run)
{
	Transfer   *t = run->t;

	run->round_start = GetCurrentTimestamp();
	if (t->streaming)
	{
		struct stat st;

		if (fstat(t->fd, &st) != 0)
		{
			*run->err = psprintf("could not stat package file of package %s: %m", t->package_id);
			(void) link_pipeline_exit(run->conn, run->inflight);
			return TRANSFER_FAILED;
		}
		run->avail = st.st_size;
	}
	else
	{
		run->avail = t->bytes;
		if (run->offset >= t->bytes)
			return TRANSFER_LEAVING_PIPELINE;
	}

	while (run->inflight < run->depth && run->next < run->avail &&
		   (!t->streaming || run->avail - run->next >= (int64) run->chunk))
	{
		if (!send_chunk(run, Min((int64) run->chunk, run->avail - run->next)))
			return TRANSFER_FAILED;
	}

	if (run->inflight > 0)
		return TRANSFER_ACKNOWLEDGING;
	if (t->streaming)
		return TRANSFER_WAITING_FOR_BUILD;
	/* cannot happen: the site's offset is behind and nothing is in flight */
	*run->err = psprintf("lost track of the transfer at byte %lld of %lld",
						 (long long) run->offset, (long long) t->bytes);
	(void) link_pipeline_exit(run->conn, 0);
	return TRANSFER_FAILED;
}

/*
 * TRANSFER_WAITING_FOR_BUILD: streaming, and less than a chunk written
 * since the last one: what of the build?
 */
static TransferState
transfer_waiting_for_build(TransferRun *run)
{
	Transfer   *t = run->t;
	BuildNews	news = follow_build(t, run->err);

	if (news == BUILD_GROWING)
	{
		struct stat st;
		TimestampTz now = GetCurrentTimestamp();

		if (run->idle_since == 0)
			run->idle_since = now;
		else if (TimestampDifferenceExceeds(run->idle_since, now, YIELD_IDLE_MS) &&
				 (TimestampDifferenceExceeds(run->followed_since, now, YIELD_EVERY_MS) ||
				  other_sends_waiting(t)))
		{
			/* let the other work through; a later step comes back */
			(void) link_pipeline_exit(run->conn, 0);
			return TRANSFER_YIELDED;
		}
		/* wait for the builder's next member (it sets our latch) */
		if (fstat(t->fd, &st) == 0 && st.st_size == run->avail)
			sender_latch_wait(1000);
		else
			CHECK_FOR_INTERRUPTS();
		return TRANSFER_SENDING_CHUNKS;
	}
	if (news == BUILD_READY && same_file(t->fd, t->file, t->bytes))
		return TRANSFER_TOTALLING;
	(void) link_pipeline_exit(run->conn, 0);
	if (news == BUILD_FAILED)
		return TRANSFER_FAILED;
	if (news == BUILD_READY)
		t->stream_id = NULL;	/* not the file streamed: send it afresh */
	run->keep_link = false;
	return TRANSFER_FOLLOWING_BUILD;
}

/*
 * TRANSFER_TOTALLING: the stream is the finished package file; its size
 * and hash are known now, and the site takes the rest as any file.
 */
static TransferState
transfer_totalling(TransferRun *run)
{
	Transfer   *t = run->t;
	char		total[32];
	const char *tv[5];
	PGresult   *res;

	snprintf(total, sizeof(total), "%lld", (long long) t->bytes);
	tv[0] = t->package_id;
	tv[1] = run->version;
	tv[2] = t->stream_id;
	tv[3] = total;
	tv[4] = t->sha256;
	if (!link_pipeline_send(run->conn, "SELECT smsdist.receive_total($1, $2::int, $3, $4::bigint, $5)",
							5, tv, NULL, NULL, run->err))
		return TRANSFER_FAILED;
	res = link_pipeline_result(run->conn, run->err);
	if (res == NULL)
	{
		(void) link_pipeline_exit(run->conn, 0);
		return TRANSFER_FAILED;
	}
	/* it cannot have more than was sent */
	if (!sender_answer_offset(res, t, "receive_total", 0, Min(t->bytes, run->next), &run->offset, run->err))
	{
		(void) link_pipeline_exit(run->conn, 0);
		return TRANSFER_FAILED;
	}
	run->next = run->offset;
	t->streaming = false;
	return TRANSFER_SENDING_CHUNKS;
}

/*
 * The site answered acked, not the end of the chunk: the chunks still in
 * flight start at the wrong offset, so the site refuses them too.  Drop
 * their answers and go on from the site's offset; fails the attempt once
 * the transfer makes no progress (MAX_RESYNCS_PER_ATTEMPT).
 */
static bool
resynchronise(TransferRun *run, int64 acked, int64 expected)
{
	Transfer   *t = run->t;

	if (++run->resyncs > MAX_RESYNCS_PER_ATTEMPT)
	{
		*run->err = psprintf("site %s answered offset %lld to the chunk ending at byte %lld of package %s version %d: "
							 "the transfer made no progress after %d resynchronisations",
							 t->hop, (long long) acked, (long long) expected, t->package_id, t->version,
							 MAX_RESYNCS_PER_ATTEMPT);
		(void) link_pipeline_exit(run->conn, run->inflight);
		return false;
	}
	if (!link_pipeline_exit(run->conn, run->inflight))
	{
		*run->err = link_error(run->conn, "could not resynchronise with the site");
		return false;
	}
	if (!link_pipeline_enter(run->conn, run->err))
		return false;
	run->inflight = 0;
	run->first = 0;
	run->next = run->offset;
	return true;
}

/*
 * TRANSFER_ACKNOWLEDGING: the answer to the oldest chunk in flight, the
 * site's offset after it (never beyond the chunk's end); then the
 * progress, and the throttle's pause.
 */
static TransferState
transfer_acknowledging(TransferRun *run)
{
	Transfer   *t = run->t;
	PGresult   *res = link_pipeline_result(run->conn, run->err);
	int64		expected = run->ends[run->first];
	int64		acked;

	run->first = (run->first + 1) % PIPELINE_DEPTH;
	run->inflight--;
	if (res == NULL ||
		!sender_answer_offset(res, t, "receive_chunk", 0, expected, &acked, run->err))
	{
		(void) link_pipeline_exit(run->conn, run->inflight);
		return TRANSFER_FAILED;
	}
	if (acked > run->offset)
	{
		t->sent += acked - run->offset;
		t->link_bytes += acked - run->offset;
	}
	run->offset = acked;		/* the site's offset: resynchronise on it */
	if (acked != expected && !resynchronise(run, acked, expected))
		return TRANSFER_FAILED;
	if (t->streaming)
		transfer_progress(t, run->offset, psprintf("sending to %s while the package is compressed: %lld bytes so far",
												   t->hop, (long long) run->offset));
	else
		transfer_progress(t, run->offset, psprintf("sending to %s: %lld of %lld bytes",
												   t->hop, (long long) run->offset, (long long) t->bytes));
	/* the time of this round (the throttle's pause is not in it) */
	t->link_us += GetCurrentTimestamp() - run->round_start;
	if ((t->streaming || run->offset < t->bytes) && run->depth == 1 &&
		!sender_throttle_after(&t->throttle,
							   TimestampDifferenceMilliseconds(run->round_start, GetCurrentTimestamp())))
	{
		*run->err = pstrdup("paused: the rate limit of this hour is 0 %");
		(void) link_pipeline_exit(run->conn, run->inflight);
		return TRANSFER_PAUSED;
	}
	return TRANSFER_SENDING_CHUNKS;
}

/* TRANSFER_LEAVING_PIPELINE: the site has every byte. */
static TransferState
transfer_leaving_pipeline(TransferRun *run)
{
	if (!link_pipeline_exit(run->conn, run->inflight))
	{
		*run->err = link_error(run->conn, "could not leave pipeline mode");
		return TRANSFER_FAILED;
	}
	return TRANSFER_ENDING;
}

/*
 * TRANSFER_ENDING: receive_end; the site checks the whole file, publishes
 * it as a ready build and records the job.
 */
static TransferState
transfer_ending(TransferRun *run)
{
	Transfer   *t = run->t;
	SiteRequest r;
	PGresult   *res;

	sender_end_request(t, run->version, &r);
	res = link_exec(run->conn, r.sql, r.n, r.values, NULL, NULL, run->err);
	if (res == NULL)
		return TRANSFER_FAILED;
	PQclear(res);
	return TRANSFER_DONE;
}

static TransferState
run_state(TransferRun *run, TransferState state)
{
	switch (state)
	{
		case TRANSFER_FOLLOWING_BUILD:
			return transfer_following_build(run);
		case TRANSFER_CHECKING_SITE:
			return transfer_checking_site(run);
		case TRANSFER_SENDING_SMALL:
			return transfer_sending_small(run);
		case TRANSFER_BEGINNING:
			return transfer_beginning(run);
		case TRANSFER_OPENING:
			return transfer_opening(run);
		case TRANSFER_SENDING_CHUNKS:
			return transfer_sending_chunks(run);
		case TRANSFER_ACKNOWLEDGING:
			return transfer_acknowledging(run);
		case TRANSFER_WAITING_FOR_BUILD:
			return transfer_waiting_for_build(run);
		case TRANSFER_TOTALLING:
			return transfer_totalling(run);
		case TRANSFER_LEAVING_PIPELINE:
			return transfer_leaving_pipeline(run);
		case TRANSFER_ENDING:
			return transfer_ending(run);
		default:
			elog(ERROR, "smsdist sender: no transfer state %d to run", (int) state);
	}
	return TRANSFER_FAILED;		/* keep the compiler quiet */
}

static bool
is_final(TransferState state)
{
	return state == TRANSFER_DONE || state == TRANSFER_FAILED ||
		state == TRANSFER_UNREACHABLE || state == TRANSFER_PAUSED ||
		state == TRANSFER_YIELDED;
}

/*
 * Send t to its hop; answers the final state (*err set for FAILED,
 * UNREACHABLE and PAUSED).  The link is kept for the next transfer when the transfer
 * ends well or steps out; if an ERROR ends it, only while no failure or
 * given-up stream came before (see keep_link), and site_link.c keeps only
 * an idle connection.
 */
TransferState
sender_run_transfer(Transfer *t, char **err)
{
	TransferRun run = {0};
	volatile TransferState state;

	run.t = t;
	run.err = err;
	snprintf(run.version, sizeof(run.version), "%d", t->version);
	state = transfer_connecting(&run);
	if (state == TRANSFER_UNREACHABLE)
		return state;
	run.keep_link = true;

	PG_TRY();
	{
		/*
		 * builders wake the Sender after every member only while it follows
		 * one (a send helper never streams: the flag is the Sender's)
		 */
		if (!t->in_helper)
			pg_atomic_write_u32(&sms_shared->sender_follows_build, t->streaming ? 1 : 0);
		while (!is_final(state))
		{
			state = run_state(&run, state);
			if (state == TRANSFER_FAILED || state == TRANSFER_PAUSED)
				run.keep_link = false;
			else if (state == TRANSFER_ENDING || is_final(state))
				run.keep_link = true;
		}
	}
	PG_FINALLY();
	{
		if (!t->in_helper)
			pg_atomic_write_u32(&sms_shared->sender_follows_build, 0);
		link_close(run.conn, run.keep_link);
		if (t->fd >= 0)
		{
			close(t->fd);
			t->fd = -1;
		}
	}
	PG_END_TRY();
	return state;
}
