/*-------------------------------------------------------------------------
 *
 * sender_small.c
 *	  The requests of a transfer to the child site, the check of the
 *	  offsets it answers, and the transfer of a small file in one round
 *	  trip.
 *
 * Terms (see also sender_small.h and sender_transfer.c):
 *	round trip	a request sent and its answer read.  A 1 KB package took
 *				three (receive_begin, receive_chunk, receive_end), each
 *				waiting for the site's commit before the next was sent.
 *	small path	the three requests are sent at once, in libpq pipeline
 *				mode, each its own transaction at the site (a Sync after
 *				each, as for any chunk), and their answers read together.
 *				The chunk is sent at offset 0 before the site has said
 *				which offset it has: if it had some of the file already,
 *				it refuses the chunk (answering its offset) and the end
 *				(the file is not complete), which changes nothing there,
 *				and the transfer goes on from that offset as always.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "sender_small.h"
#include "file_util.h"
#include "sha256.h"
#include "site_link.h"

#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "utils/timestamp.h"

/*
 * A file this small is sent whole: one chunk, with its request in the
 * same pipeline as receive_begin and receive_end.  It is also the size
 * below which the Sender sends a file itself (sender.c).
 */
#define SMALL_FILE_BYTES	((int64) 1024 * 1024)

/*
 * receive_begin for t: a full file is sent as before 0.3, so a child not
 * updated yet takes it; a delta names its base, a stream its ID (and has
 * no size or hash yet).
 */
void
sender_begin_request(const Transfer *t, const char *version, SiteRequest *r)
{
	snprintf(r->total, sizeof(r->total), "%lld", (long long) t->bytes);
	snprintf(r->base, sizeof(r->base), "%d", t->base_version);
	r->values[0] = t->package_id;
	r->values[1] = version;
	r->values[2] = t->streaming ? NULL : r->total;
	r->values[3] = t->streaming ? NULL : t->sha256;
	r->values[4] = t->package_name;
	r->values[5] = t->source_directory;
	r->values[6] = r->base;
	r->values[7] = t->stream_id;
	if (t->stream_id != NULL)
	{
		r->sql = "SELECT smsdist.receive_begin($1, $2::int, $3::bigint, $4, $5, $6, nullif($7::int, 0), $8)";
		r->n = 8;
	}
	else if (t->base_version > 0)
	{
		r->sql = "SELECT smsdist.receive_begin($1, $2::int, $3::bigint, $4, $5, $6, $7::int)";
		r->n = 7;
	}
	else
	{
		r->sql = "SELECT smsdist.receive_begin($1, $2::int, $3::bigint, $4, $5, $6)";
		r->n = 6;
	}
}

/* receive_end for t: the site checks the whole file and records the job. */
void
sender_end_request(const Transfer *t, const char *version, SiteRequest *r)
{
	r->values[0] = t->package_id;
	r->values[1] = version;
	r->values[2] = t->job_id;
	r->values[3] = t->job_type;
	r->values[4] = t->targets;
	r->values[5] = "false";
	r->values[6] = t->run;
	if (t->run != NULL)
	{
		r->sql = "SELECT smsdist.receive_end($1, $2::int, $3, $4, $5::text[], $6::boolean, $7::jsonb)";
		r->n = 7;
	}
	else
	{
		r->sql = "SELECT smsdist.receive_end($1, $2::int, $3, $4, $5::text[], $6::boolean)";
		r->n = 6;
	}
}

/*
 * The offset a child answered to call (receive_begin, receive_chunk,
 * receive_total) about t: one number, lo <= offset <= hi (hi < 0: no upper
 * bound known yet).  Anything else fails the attempt with the reason.
 * res is cleared.
 */
bool
sender_answer_offset(PGresult *res, const Transfer *t, const char *call, int64 lo, int64 hi,
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
 * May t take the small path?  A finished file (a stream's size is not
 * known before its end; a local build's finished file keeps its stream
 * ID, which receive_begin takes as any) of at most SMALL_FILE_BYTES, on a
 * link that is neither throttled (its pauses fall between chunks) nor
 * paused.
 */
bool
sender_is_small(const Transfer *t)
{
	return !t->streaming && t->file != NULL &&
		t->bytes > 0 && t->bytes <= SMALL_FILE_BYTES &&
		sender_throttle_pipeline_depth(&t->throttle, 2) == 2 &&
		sender_throttle_allows(&t->throttle);
}

/* The whole file t, read and hashed as one chunk; NULL with *err set. */
static char *
read_small_file(Transfer *t, char *hex, char **err)
{
	char	   *buf = palloc(t->bytes);
	int			fd = open(t->file, O_RDONLY | O_CLOEXEC | PG_BINARY);
	ssize_t		r;

	if (fd < 0)
	{
		*err = psprintf("could not open package file \"%s\": %m", t->file);
		return NULL;
	}
	r = pg_pread(fd, buf, t->bytes, 0);
	if (r != (ssize_t) t->bytes)
	{
		*err = psprintf("could not read package file \"%s\": %m", t->file);
		close(fd);
		return NULL;
	}
	close(fd);
	sms_sha256_buffer(buf, t->bytes, hex);
	if (sms_test_corrupt_chunk)
	{
		/* fault injection for tests: flip one byte of one chunk */
		buf[t->bytes / 2] ^= 0xff;
		sms_test_corrupt_chunk = false;
	}
	return buf;
}

/* Send receive_begin, the one chunk and receive_end; false with *err set. */
static bool
send_all(PGconn *conn, Transfer *t, const char *version, const char *buf,
		 const char *hex, char **err)
{
	SiteRequest begin;
	SiteRequest end;
	const char *cv[5] = {t->package_id, version, "0", buf, hex};
	int			cl[5] = {0, 0, 0, (int) t->bytes, 0};
	int			cf[5] = {0, 0, 0, 1, 0};

	sender_begin_request(t, version, &begin);
	sender_end_request(t, version, &end);
	if (!link_pipeline_enter(conn, err))
		return false;
	return link_pipeline_send(conn, begin.sql, begin.n, begin.values, NULL, NULL, err) &&
		link_pipeline_send(conn, "SELECT smsdist.receive_chunk($1, $2::int, $3::bigint, $4::bytea, $5)",
						   5, cv, cl, cf, err) &&
		link_pipeline_send(conn, end.sql, end.n, end.values, NULL, NULL, err);
}

/*
 * Send the small file t to the site on conn (not in pipeline mode) in one
 * round trip.  SMALL_RESUME when the site already had part of it, or
 * answered the chunk with another offset: *offset is where the usual
 * transfer goes on.  The link is left out of pipeline mode unless the
 * answer is SMALL_FAILED.
 */
SmallOutcome
sender_send_small(PGconn *conn, Transfer *t, const char *version, int64 *offset, char **err)
{
	char		hex[SMS_SHA256_HEX_LEN + 1];
	char	   *buf = read_small_file(t, hex, err);
	TimestampTz start = GetCurrentTimestamp();
	PGresult   *res;
	char	   *chunk_err = NULL;
	char	   *end_err = NULL;
	int64		begun = -1;
	int64		acked = -1;
	bool		ended;

	if (buf == NULL)
		return SMALL_FAILED;
	if (!send_all(conn, t, version, buf, hex, err))
		return SMALL_FAILED;	/* the connection is no good: not kept */
	pfree(buf);

	/* every answer is read, so that the link leaves pipeline mode clean */
	res = link_pipeline_result(conn, err);
	if (res != NULL && !sender_answer_offset(res, t, "receive_begin", 0, t->bytes, &begun, err))
		begun = -1;
	res = link_pipeline_result(conn, &chunk_err);
	if (res != NULL && !sender_answer_offset(res, t, "receive_chunk", 0, t->bytes, &acked, &chunk_err))
		acked = -1;
	res = link_pipeline_result(conn, &end_err);
	ended = res != NULL;
	if (res)
		PQclear(res);
	if (!link_pipeline_exit(conn, 0))
	{
		*err = link_error(conn, "could not leave pipeline mode");
		return SMALL_FAILED;
	}
	if (begun < 0)
		return SMALL_FAILED;	/* *err: what receive_begin said */
	if (begun == 0)
	{
		if (acked < 0)
		{
			*err = chunk_err;
			return SMALL_FAILED;
		}
		t->sent += acked;
		t->link_bytes += acked;
	}
	t->link_us += GetCurrentTimestamp() - start;
	if (ended)
		return SMALL_DONE;
	/* the site has the whole file, and still refused it: as receive_end would */
	if (begun == t->bytes || acked == t->bytes)
	{
		*err = end_err;
		return SMALL_FAILED;
	}
	*offset = begun > 0 ? begun : acked;
	return SMALL_RESUME;
}
