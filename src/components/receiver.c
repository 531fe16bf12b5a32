/*-------------------------------------------------------------------------
 *
 * receiver.c
 *	  The child site's side of the Send phase: the SQL functions a parent
 *	  site's Sender calls, over libpq, to hand this site a package file and
 *	  the job that distributes it.
 *
 * In SMS, phase 1 of a job: "the SMS Sender copies the package to the child site
 * or sites", and at the target sites the Despooler takes over.  Here the
 * copy arrives as SQL calls; once it is complete this site has what its own
 * Scheduler would have made for a local job -- a 'ready' row of
 * smsdist.package_builds naming the package file -- plus a pending job, so
 * its Scheduler activates the job (reusing the ready build: no builder
 * starts) and its Despooler publishes the package.
 *
 * Terms:
 *	transfer	one package version on its way here: a row of
 *				smsdist.package_transfers (total size, SHA-256 of the whole
 *				file, bytes received so far) and its part file.
 *	part file	<package store>/incoming/<package id>.<version>.part, the
 *				bytes received so far.  They are written with pwrite and
 *				fsync, never stored in a table, so a transfer costs no WAL
 *				beyond one small row update per chunk.
 *	chunk		a piece of the file sent in one receive_chunk() call with
 *				its own SHA-256, so a corrupted chunk is refused at once and
 *				not found only when the whole file is checked.
 *	offset		where the next chunk must start: bytes_received.  Every call
 *				answers with it, so a sender that lost track (a broken
 *				connection, a restart of either side) resynchronises on it
 *				and resumes rather than starting again.
 *
 * The calls:
 *	receive_begin	records the package and the transfer; answers the offset
 *					to resume from (total_bytes if this version is already
 *					here and nothing needs sending).
 *	receive_chunk	writes one chunk at the offset; answers the new offset.
 *	receive_total	for a streamed file (below): its final size and SHA-256.
 *	receive_end		checks the whole file against its SHA-256, moves it into
 *					the package store as the package file and records it as
 *					a ready build; records the job (a share_package job for
 *					a share or run-command job at the parent: this site's part
 *					is to distribute; or a remove_package job).
 *
 * Streaming: a parent may send its package file while its builder
 * is still writing it (appending compressed members in order, so the file
 * is final up to its current size).  receive_begin then has a stream ID
 * (the builder's name for that file) instead of a size and hash; chunks
 * arrive as the file grows, receive_total gives the size and hash once the
 * parent knows them, the last chunks follow, and receive_end checks the
 * whole file as always.  A builder that started over wrote another file
 * under another stream ID, so a receive_begin with a new ID starts from
 * zero, and one with the same ID resumes (also once the size is known).
 *
 * Invariant: the part file is never shorter than bytes_received, because
 * the row is updated only after the bytes are fsync'd (every 32 MB or
 * 0.5 s, and at the end; a chunk in between is acknowledged once written,
 * and a new session resumes from the row: receiver_transfer.c).  So when a call
 * finds the file longer, the extra bytes are from a chunk whose transaction
 * did not commit, and are cut off; when it finds the file shorter, the file
 * was damaged or reset, and the transfer starts again from zero.  (That is
 * also how a reset survives the ERROR that follows it: the truncation of
 * the file is not rolled back, and the next call sees the row ahead of the
 * file.)
 *
 * The three functions of one (package, version) serialize on a transaction
 * advisory lock, so two senders (say, a retry while the first connection
 * is still alive) cannot interleave their writes.
 *
 * The functions are SECURITY DEFINER, executable by the role
 * smsdist_parent_site, and each call first asks smsdist.calling_site()
 * which site the login speaks for (smsdist.site_logins): it must be this
 * site's parent.  The parent may hand over files and jobs but not touch
 * this site's tables otherwise, and only packages and jobs that came from
 * it (packages.source_site, jobs.source_site): what this site made itself
 * is never changed from outside.  Everything it sends is validated again
 * here, because a package ID becomes a file name.
 *
 * This file holds the SQL functions and their steps; the transfer row, the
 * part file and the receiving session are in receiver_transfer.c, and the
 * job that comes with the package in receiver_job.c.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "receiver_job.h"
#include "receiver_transfer.h"
#include "status.h"
#include "validate.h"
#include "wakeup.h"
#include "sha256.h"
#include "package_store.h"

#include <unistd.h>
#include <utime.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* Status message ID of the receiving side (docs/status-messages.md) */
#define SMS_MSG_PACKAGE_RECEIVED	3300



/* ---------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------
 */

/* The parent must say everything: a NULL is its bug, not "no value". */
static void
require_args(FunctionCallInfo fcinfo, const char *func, const char *const *names, int n)
{
	for (int i = 0; i < Min(n, PG_NARGS()); i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" of %s must not be null", names[i], func)));
}

static bool
is_sha256_hex(const char *s)
{
	if (strlen(s) != SMS_SHA256_HEX_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void
check_stream_id_arg(const char *stream_id, const char *package_id, int32 version)
{
	if (!sms_valid_stream_id(stream_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid stream ID \"%s\" of package %s version %d", stream_id, package_id, version),
				 errdetail("A stream ID is %d lower-case hexadecimal digits.", SMS_STREAM_ID_LEN)));
}

static void
check_size_arg(int64 total_bytes, const char *package_id, int32 version)
{
	if (total_bytes <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid size %lld of package %s version %d: a package file is never empty",
						(long long) total_bytes, package_id, version)));
}

static void
check_sha256_arg(const char *s, const char *what)
{
	if (!is_sha256_hex(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid SHA-256 of the %s: \"%s\"", what, s),
				 errdetail("A SHA-256 is given as 64 lower-case hexadecimal digits.")));
}

static void
check_version_arg(int32 version)
{
	if (version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid package source version %d: versions start at 1", version)));
}

/*
 * The site the caller speaks for, which must be this site's parent
 * (smsdist.calling_site raises otherwise).  Asked first, before anything
 * else is looked at: every call names the package and job it touches, and
 * only objects that came from that site may be changed.  NULL: a superuser
 * at a site without a parent.  The result is in the caller's context.
 */
static char *
calling_parent_site(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *site = NULL;
	bool		isnull;
	Datum		d;

	SPI_connect();
	if (sms_execute_kept_noargs("SELECT smsdist.calling_site('parent')::text", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "smsdist receiver: checking the calling site failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		site = MemoryContextStrdup(cxt, TextDatumGetCString(d));
	SPI_finish();
	return site;
}

/* An error unless the package or job is new here or came from `source`. */
static void
require_sent_by(const char *kind, const char *object_id, const char *source)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(kind), CStringGetTextDatum(object_id),
		source ? CStringGetTextDatum(source) : (Datum) 0};
	char		nulls[3] = {' ', ' ', source ? ' ' : 'n'};

	if (sms_execute_kept("SELECT smsdist.require_sent_by($1, $2, $3::smsdist.site_code)",
						 3, types, values, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist receiver: checking the source of %s %s failed", kind, object_id);
}

/* The receiving end needs to know which site it is (status, targets). */
static void
require_site_code(void)
{
	if (sms_site_code == NULL || sms_site_code[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server cannot receive packages: smsdist.site_code is not set"),
				 errhint("Set smsdist.site_code in postgresql.conf and reload.")));
}


/* ---------------------------------------------------------------------
 * receive_begin
 * ---------------------------------------------------------------------
 */

/* The arguments of receive_begin, checked. */
typedef struct BeginArgs
{
	char	   *package_id;
	int32		version;
	int64		total_bytes;	/* -1 for a stream: not known yet */
	char	   *sha256;			/* NULL for a stream: not known yet */
	char	   *package_name;
	char	   *source_directory;
	char	   *stream_id;		/* NULL: a finished file */
	int32		base_version;	/* a delta from this version; 0: the full file */
} BeginArgs;

/*
 * The arguments that must not be NULL: all, or for a stream (stream_id,
 * the eighth) all but the size and hash, which then come both or neither.
 */
static void
require_begin_args(FunctionCallInfo fcinfo, BeginArgs *a)
{
	static const char *const names[] = {"package_id", "source_version", "total_bytes",
	"sha256", "package_name", "source_directory"};

	memset(a, 0, sizeof(*a));
	a->total_bytes = -1;
	/* a file sent while the parent writes it (0.6): no size or hash yet */
	if (PG_NARGS() > 7 && !PG_ARGISNULL(7))
		a->stream_id = text_to_cstring(PG_GETARG_TEXT_PP(7));
	if (a->stream_id == NULL || !PG_ARGISNULL(2) || !PG_ARGISNULL(3))
		require_args(fcinfo, "receive_begin", names, lengthof(names));	/* (with stream_id: both or neither) */
	else
	{
		static const char *const stream_names[] = {"package_id", "source_version", "package_name",
		"source_directory"};
		static const int stream_args[] = {0, 1, 4, 5};

		for (int i = 0; i < (int) lengthof(stream_args); i++)
			if (PG_ARGISNULL(stream_args[i]))
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("argument \"%s\" of receive_begin must not be null", stream_names[i])));
	}
}

/* The rest of the arguments of receive_begin, read and checked. */
static void
read_begin_args(FunctionCallInfo fcinfo, BeginArgs *a)
{
	/* a delta from this version (0: the full file); absent before 0.3 */
	a->base_version = (PG_NARGS() > 6 && !PG_ARGISNULL(6)) ? PG_GETARG_INT32(6) : 0;
	a->package_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	a->version = PG_GETARG_INT32(1);
	if (!PG_ARGISNULL(2))
		a->total_bytes = PG_GETARG_INT64(2);
	if (!PG_ARGISNULL(3))
		a->sha256 = text_to_cstring(PG_GETARG_TEXT_PP(3));
	a->package_name = text_to_cstring(PG_GETARG_TEXT_PP(4));
	a->source_directory = text_to_cstring(PG_GETARG_TEXT_PP(5));

	sms_valid_sms_id(a->package_id, true);
	check_version_arg(a->version);
	if (a->stream_id != NULL)
	{
		check_stream_id_arg(a->stream_id, a->package_id, a->version);
		if (a->base_version != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a delta of package %s version %d cannot be streamed", a->package_id, a->version),
					 errdetail("A delta is made from a finished package file.")));
	}
	if (a->sha256 != NULL)
	{
		check_size_arg(a->total_bytes, a->package_id, a->version);
		check_sha256_arg(a->sha256, "package file");
	}
	if (a->base_version != 0 && (a->base_version < 1 || a->base_version >= a->version))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid base version %d of a delta to package %s version %d",
						a->base_version, a->package_id, a->version),
				 errdetail("A delta is made from an earlier version.")));
	sms_valid_object_name(a->package_name, "package name", true);
	sms_valid_server_path(a->source_directory, "package source directory", true);
	require_site_code();
}

/*
 * The package row: jobs and builds refer to it.  Its source_version is
 * raised by receive_end, together with the ready build, and not here:
 * a job activated at this site meanwhile would otherwise take the new
 * version, find no build for it, and have the Scheduler start a
 * builder -- on a source directory that is the parent's, not ours.
 */
static void
record_package(const BeginArgs *a, const char *source)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[5] = {CStringGetTextDatum(a->package_id), CStringGetTextDatum(a->package_name),
		CStringGetTextDatum(a->source_directory), Int32GetDatum(a->version),
	source ? CStringGetTextDatum(source) : (Datum) 0};
	char		nulls[5] = {' ', ' ', ' ', ' ', source ? ' ' : 'n'};

	if (sms_execute_kept("INSERT INTO smsdist.packages"
						 "       (package_id, name, source_directory, source_version, source_site)"
						 "VALUES ($1, $2, $3, $4, $5)"
						 "    ON CONFLICT (package_id) DO UPDATE"
						 "   SET name = EXCLUDED.name, source_directory = EXCLUDED.source_directory"
						 " WHERE (packages.name, packages.source_directory)"
						 "       IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.source_directory)",
						 5, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist receiver: recording package %s failed", a->package_id);
}

/*
 * Whether this very file is here already (sent before, for another job):
 * then nothing is to be sent, and a transfer of another file of this
 * version, abandoned, is forgotten.  A stream cannot be recognised (its
 * hash is not known yet): it is received, and replaces the build at
 * receive_end as any other file of this version would.
 */
static bool
already_received(const BeginArgs *a, const char *part)
{
	ReadyBuild	ready;

	if (a->sha256 == NULL)
		return false;
	ready = receiver_fetch_ready_build(a->package_id, a->version);
	if (!ready.found || strcmp(ready.sha256, a->sha256) != 0 || ready.bytes != a->total_bytes)
		return false;
	receiver_delete_transfer(a->package_id, a->version, "an abandoned");
	if (SPI_processed > 0 && unlink(part) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove part file \"%s\": %m", part)));
	return true;
}

/*
 * Whether the transfer row is of the same file: the same size and hash,
 * or the same stream (a file the parent is still writing, or wrote; its
 * size and hash, once known, must match too).  A stream whose size and
 * hash are learnt now (a lost receive_total) has them recorded.
 */
static bool
may_resume(const BeginArgs *a, const TransferRow *row)
{
	bool		resume;

	if (!row->found)
		return false;
	if (a->stream_id != NULL && strcmp(row->stream_id, a->stream_id) == 0)
		resume = a->sha256 == NULL || row->sha256[0] == '\0' ||
			(row->total_bytes == a->total_bytes && strcmp(row->sha256, a->sha256) == 0);
	else
		resume = a->sha256 != NULL && row->total_bytes == a->total_bytes &&
			strcmp(row->sha256, a->sha256) == 0;
	if (resume && a->sha256 != NULL && row->sha256[0] == '\0')
	{
		if (row->bytes_received > a->total_bytes)
			resume = false;
		else
			receiver_set_stream_total(a->package_id, a->version, a->total_bytes, a->sha256);
	}
	return resume;
}

/*
 * The transfer row of this file, new or resumed; answers the bytes it
 * says are received.  A new row also replaces a transfer of another file
 * under this version (the parent rebuilt the package, or its builder
 * started over): what we have belongs to the old one.
 */
static int64
start_or_resume_transfer(const BeginArgs *a)
{
	TransferRow row = receiver_fetch_transfer(a->package_id, a->version);
	Oid			types[6] = {TEXTOID, INT4OID, INT8OID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', a->total_bytes < 0 ? 'n' : ' ', a->sha256 ? ' ' : 'n', ' ',
	a->stream_id ? ' ' : 'n'};

	if (may_resume(a, &row))
		return row.bytes_received;

	values[0] = CStringGetTextDatum(a->package_id);
	values[1] = Int32GetDatum(a->version);
	values[2] = Int64GetDatum(a->total_bytes);
	values[3] = a->sha256 ? CStringGetTextDatum(a->sha256) : (Datum) 0;
	values[4] = Int32GetDatum(a->base_version);
	values[5] = a->stream_id ? CStringGetTextDatum(a->stream_id) : (Datum) 0;
	if (sms_execute_kept("INSERT INTO smsdist.package_transfers"
						 "       (package_id, source_version, total_bytes, sha256, base_version, stream_id)"
						 "VALUES ($1, $2, $3, $4, nullif($5, 0), $6)"
						 "    ON CONFLICT (package_id, source_version) DO UPDATE"
						 "   SET total_bytes = EXCLUDED.total_bytes, sha256 = EXCLUDED.sha256,"
						 "       bytes_received = 0, base_version = EXCLUDED.base_version,"
						 "       stream_id = EXCLUDED.stream_id,"
						 "       started_at = clock_timestamp(), updated_at = clock_timestamp()",
						 6, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist receiver: recording the transfer failed");
	return 0;
}

/*
 * Make the part file as long as the row says (see the header's invariant);
 * answers the offset to resume from.
 */
static int64
align_part_file(const char *store, const char *part, const char *package_id, int32 version,
				int64 received)
{
	off_t		file_size;
	int			fd = receiver_open_part_file(store, part, &file_size);

	if (file_size < received)
	{
		receiver_reset_transfer(fd, part, package_id, version, received, file_size);
		received = 0;
	}
	else if (file_size > received)
	{
		/* bytes of a chunk whose transaction did not commit, or of an old file */
		receiver_truncate_part_file(fd, part, received);
	}
	CloseTransientFile(fd);
	return received;
}

PG_FUNCTION_INFO_V1(smsdist_receive_begin);
Datum
smsdist_receive_begin(PG_FUNCTION_ARGS)
{
	BeginArgs	a;
	char	   *store;
	char	   *part;
	int64		received;
	char	   *source;

	source = calling_parent_site();
	require_begin_args(fcinfo, &a);
	sms_keep_freed_memory();	/* the chunks of this connection come next */
	receiver_forget_session();	/* a new attempt starts from the durable offset */
	read_begin_args(fcinfo, &a);

	SPI_connect();
	require_sent_by("package", a.package_id, source);
	receiver_lock_transfer(a.package_id, a.version);
	record_package(&a, source);

	store = sms_package_store();
	part = sms_part_path(store, a.package_id, a.version);
	if (already_received(&a, part))
	{
		SPI_finish();
		PG_RETURN_INT64(a.total_bytes);
	}
	received = start_or_resume_transfer(&a);
	received = align_part_file(store, part, a.package_id, a.version, received);

	/* the Despooler may extract a stream as it arrives (early_extract.c) */
	if (a.stream_id != NULL)
		sms_wake_at_commit(SMS_DESPOOLER);

	SPI_finish();
	PG_RETURN_INT64(received);
}

/* ---------------------------------------------------------------------
 * receive_chunk
 * ---------------------------------------------------------------------
 */

/* The arguments of receive_chunk, checked. */
typedef struct ChunkArgs
{
	char	   *package_id;
	int32		version;
	int64		offset;
	const char *bytes;
	int64		len;
} ChunkArgs;

/*
 * Read and check the arguments, the chunk's SHA-256 too: before anything
 * is locked or written, so a bad chunk changes nothing.
 */
static void
read_chunk_args(FunctionCallInfo fcinfo, ChunkArgs *c)
{
	static const char *const names[] = {"package_id", "source_version", "offset",
	"data", "chunk_sha256"};
	bytea	   *data;
	char	   *chunk_sha256;
	char		actual[SMS_SHA256_HEX_LEN + 1];

	require_args(fcinfo, "receive_chunk", names, lengthof(names));
	sms_keep_freed_memory();
	c->package_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	c->version = PG_GETARG_INT32(1);
	c->offset = PG_GETARG_INT64(2);
	data = PG_GETARG_BYTEA_PP(3);
	chunk_sha256 = text_to_cstring(PG_GETARG_TEXT_PP(4));
	c->bytes = VARDATA_ANY(data);
	c->len = VARSIZE_ANY_EXHDR(data);

	sms_valid_sms_id(c->package_id, true);
	check_version_arg(c->version);
	if (c->offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid offset %lld of a chunk of package %s version %d",
						(long long) c->offset, c->package_id, c->version)));
	check_sha256_arg(chunk_sha256, "chunk");

	sms_sha256_buffer((const uint8 *) c->bytes, c->len, actual);
	if (strcmp(actual, chunk_sha256) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("chunk at offset %lld of package %s version %d is corrupt: its SHA-256 is %s, not %s",
						(long long) c->offset, c->package_id, c->version, actual, chunk_sha256),
				 errhint("Send the chunk again.")));
}

/*
 * Write the chunk where the transfer stands, and make it durable when
 * that is due; answers the new offset (0: the part file was found behind
 * the row, and the transfer starts again).
 */
static int64
write_chunk(const ChunkArgs *c, const TransferRow *row)
{
	char	   *store = sms_package_store();
	char	   *part = sms_part_path(store, c->package_id, c->version);
	off_t		file_size;
	int			fd = receiver_open_part_file(store, part, &file_size);
	int64		done;

	if (file_size < row->bytes_received)
	{
		receiver_forget_session();
		receiver_reset_transfer(fd, part, c->package_id, c->version, row->bytes_received, file_size);
		CloseTransientFile(fd);
		return 0;
	}

	receiver_write_part_file(fd, store, part, c->bytes, c->offset, c->len, row->total_bytes);
	done = c->offset + c->len;
	receiver_session_wrote(c->package_id, c->version, row->bytes_received,
						   c->bytes, c->offset, c->len);
	if (receiver_session_sync_due(done, row->total_bytes))
	{
		/* durable before the row says so: the file is never behind the row */
		receiver_fsync_part_file(fd, part);
		receiver_set_bytes_received(c->package_id, c->version, done);
		receiver_session_made_durable(done);
	}
	else
	{
		/* start writing it out now, so that the fsync to come is short */
		pg_flush_data(fd, c->offset, c->len);
	}
	CloseTransientFile(fd);
	return done;
}

PG_FUNCTION_INFO_V1(smsdist_receive_chunk);
Datum
smsdist_receive_chunk(PG_FUNCTION_ARGS)
{
	ChunkArgs	c;
	TransferRow row;
	int64		done;
	int64		expected;

	(void) calling_parent_site();	/* only the parent sends here */
	read_chunk_args(fcinfo, &c);

	SPI_connect();

	/*
	 * The commit of a chunk need not wait for the WAL flush: the row is
	 * only ever behind the part file (see the header), so a row update lost
	 * in a crash means bytes sent again, never bytes lost.
	 */
	if (SPI_execute("SET LOCAL synchronous_commit = off", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "smsdist receiver: SET LOCAL failed");
	receiver_lock_transfer(c.package_id, c.version);
	row = receiver_fetch_transfer(c.package_id, c.version);
	if (!row.found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no transfer of package %s version %d is in progress at site %s",
						c.package_id, c.version, sms_site_code ? sms_site_code : "?"),
				 errhint("Call smsdist.receive_begin() first.")));

	/* not where we are: the sender resynchronises on our offset */
	expected = receiver_session_offset(c.package_id, c.version, row.bytes_received);
	if (c.offset != expected)
	{
		SPI_finish();
		PG_RETURN_INT64(expected);
	}
	if (row.total_bytes >= 0 && c.len > row.total_bytes - c.offset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk of %lld bytes at offset %lld goes beyond the end of package %s version %d (%lld bytes)",
						(long long) c.len, (long long) c.offset, c.package_id, c.version,
						(long long) row.total_bytes)));

	done = write_chunk(&c, &row);
	SPI_finish();
	PG_RETURN_INT64(done);
}

/* ---------------------------------------------------------------------
 * receive_total
 * ---------------------------------------------------------------------
 */

/*
 * Every byte of the stream was written by this session: make them durable
 * now, as the last chunk would have.
 */
static void
make_stream_durable(const char *package_id, int32 version, int64 total_bytes)
{
	char	   *store = sms_package_store();
	char	   *part = sms_part_path(store, package_id, version);
	off_t		file_size;
	int			fd = receiver_open_part_file(store, part, &file_size);

	receiver_fsync_part_file(fd, part);
	CloseTransientFile(fd);
	receiver_set_bytes_received(package_id, version, total_bytes);
	receiver_session_made_durable(total_bytes);
}

/*
 * The parent has finished writing a file it streamed: here are its size and
 * SHA-256.  Answers the offset to go on from, as receive_chunk does; the
 * bytes received so far stay (the whole file is checked at receive_end).
 * If they are all there, they are made durable now: no chunk follows.
 */
PG_FUNCTION_INFO_V1(smsdist_receive_total);
Datum
smsdist_receive_total(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"package_id", "source_version", "stream_id",
	"total_bytes", "sha256"};
	char	   *package_id;
	int32		version;
	char	   *stream_id;
	int64		total_bytes;
	char	   *sha256;
	TransferRow row;
	int64		offset;

	(void) calling_parent_site();	/* only the parent sends here */
	require_args(fcinfo, "receive_total", names, lengthof(names));
	package_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	version = PG_GETARG_INT32(1);
	stream_id = text_to_cstring(PG_GETARG_TEXT_PP(2));
	total_bytes = PG_GETARG_INT64(3);
	sha256 = text_to_cstring(PG_GETARG_TEXT_PP(4));

	sms_valid_sms_id(package_id, true);
	check_version_arg(version);
	check_stream_id_arg(stream_id, package_id, version);
	check_size_arg(total_bytes, package_id, version);
	check_sha256_arg(sha256, "package file");

	SPI_connect();
	receiver_lock_transfer(package_id, version);
	row = receiver_fetch_transfer(package_id, version);
	if (!row.found || strcmp(row.stream_id, stream_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no transfer of stream %s of package %s version %d is in progress at site %s",
						stream_id, package_id, version, sms_site_code ? sms_site_code : "?"),
				 errhint("Call smsdist.receive_begin() with the stream ID first.")));
	if (row.sha256[0] != '\0' &&
		(row.total_bytes != total_bytes || strcmp(row.sha256, sha256) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream %s of package %s version %d was said to be %lld bytes with SHA-256 %s",
						stream_id, package_id, version, (long long) row.total_bytes, row.sha256),
				 errhint("Call smsdist.receive_begin() again to send another file.")));

	offset = receiver_session_offset(package_id, version, row.bytes_received);
	if (offset > total_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream %s of package %s version %d is %lld bytes long, but %lld bytes of it have been received",
						stream_id, package_id, version, (long long) total_bytes, (long long) offset),
				 errhint("Call smsdist.receive_begin() again to send it from the start.")));
	if (row.sha256[0] == '\0')
		receiver_set_stream_total(package_id, version, total_bytes, sha256);

	if (offset == total_bytes && row.bytes_received < total_bytes)
		make_stream_durable(package_id, version, total_bytes);
	SPI_finish();
	PG_RETURN_INT64(offset);
}

/* ---------------------------------------------------------------------
 * receive_end
 * ---------------------------------------------------------------------
 */

/* The arguments of receive_end, checked. */
typedef struct EndArgs
{
	char	   *package_id;
	int32		version;
	char	   *job_id;
	const char *job_type;		/* at this site (receiver_job.c) */
	bool		include_subsites;
	Datum		run;			/* a run-command job's details, or (Datum) 0 */
} EndArgs;

static void
read_end_args(FunctionCallInfo fcinfo, EndArgs *e)
{
	static const char *const names[] = {"package_id", "source_version", "job_id",
	"job_type", "target_sites", "include_subsites"};
	char	   *parent_job_type;

	require_args(fcinfo, "receive_end", names, lengthof(names));
	/* the run-command job's details (0.3); NULL: distribute only */
	e->run = (PG_NARGS() > 6 && !PG_ARGISNULL(6)) ? PG_GETARG_DATUM(6) : (Datum) 0;
	e->package_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	e->version = PG_GETARG_INT32(1);
	e->job_id = text_to_cstring(PG_GETARG_TEXT_PP(2));
	parent_job_type = text_to_cstring(PG_GETARG_TEXT_PP(3));
	e->include_subsites = PG_GETARG_BOOL(5);

	sms_valid_sms_id(e->package_id, true);
	sms_valid_sms_id(e->job_id, true);
	require_site_code();
	e->job_type = receiver_local_job_type(parent_job_type, e->job_id, &e->run);
}

/*
 * A removal job: recorded if the package is here.  The version means
 * nothing to a removal: whatever is published goes.
 */
static void
record_removal_job(const EndArgs *e, Datum targets, const char *source)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(e->package_id)};

	if (sms_execute_kept("SELECT 1 FROM smsdist.packages WHERE package_id = $1",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist receiver: reading package %s failed", e->package_id);
	/* never sent here (or deleted): nothing is published to remove */
	if (SPI_processed == 0)
		return;
	/* the job's own messages (activated, removed) follow from here */
	receiver_record_job(e->job_id, e->job_type, e->package_id, targets, e->include_subsites,
						(Datum) 0, source);
}

/*
 * The transfer is complete and its part file is the file meant: else an
 * error, and a corrupt file is reset to be sent again from the start.
 * Answers the part file's path.
 */
static char *
verify_received_file(const char *store, const char *package_id, int32 version,
					 const TransferRow *row)
{
	char		actual[SMS_SHA256_HEX_LEN + 1];
	int64		size;
	int			fd;
	off_t		file_size;
	char	   *part;

	if (row->total_bytes < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("package %s version %d is not complete at site %s: %lld bytes received, and its size is not known yet",
						package_id, version, sms_site_code, (long long) row->bytes_received),
				 errhint("smsdist.receive_total() gives the size of a streamed file.")));
	/* not corruption: the sender stopped early; it resumes from begin */
	if (row->bytes_received < row->total_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("package %s version %d is not complete at site %s: %lld of %lld bytes received",
						package_id, version, sms_site_code,
						(long long) row->bytes_received, (long long) row->total_bytes),
				 errhint("smsdist.receive_begin() returns the offset to resume from.")));

	/* (a part file that has gone is created empty: it fails the check) */
	part = sms_part_path(store, package_id, version);
	fd = receiver_open_part_file(store, part, &file_size);
	if (receiver_session_file_hash(package_id, version, row->total_bytes, fd, actual))
		size = row->total_bytes;
	else
		receiver_sha256_of_part_file(fd, part, actual, &size);
	if (size != row->total_bytes || strcmp(actual, row->sha256) != 0)
	{
		/*
		 * Start again.  The ERROR below rolls the row back, but not the
		 * truncation: the next call finds the file behind the row and
		 * resets the row too.
		 */
		receiver_truncate_part_file(fd, part, 0);
		CloseTransientFile(fd);
		receiver_set_bytes_received(package_id, version, 0);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("received package %s version %d is corrupt: %lld bytes with SHA-256 %s, not %lld bytes with SHA-256 %s",
						package_id, version, (long long) size, actual,
						(long long) row->total_bytes, row->sha256),
				 errdetail("The transfer was reset; the package must be sent again from the start.")));
	}
	CloseTransientFile(fd);
	return part;
}

/* The package file, as a build of this version that is ready; the transfer is over. */
static void
record_received_build(const char *package_id, int32 version, const char *final_path,
					  const TransferRow *row)
{
	Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[5];

	values[0] = CStringGetTextDatum(package_id);
	values[1] = Int32GetDatum(version);
	values[2] = CStringGetTextDatum(final_path);
	values[3] = Int64GetDatum(row->total_bytes);
	values[4] = CStringGetTextDatum(row->sha256);
	if (sms_execute_kept("INSERT INTO smsdist.package_builds"
						 "       (package_id, source_version, state, file_path, bytes, sha256,"
						 "        started_at, finished_at, received, base_version)"
						 "SELECT $1, $2, 'ready', $3, $4, $5, t.started_at, clock_timestamp(),"
						 "       true, t.base_version"
						 "  FROM smsdist.package_transfers t"
						 " WHERE t.package_id = $1 AND t.source_version = $2"
						 "    ON CONFLICT (package_id, source_version) DO UPDATE"
						 "   SET state = 'ready', file_path = EXCLUDED.file_path,"
						 "       bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256,"
						 "       received = true, base_version = EXCLUDED.base_version,"
						 "       error = NULL, builder_pid = NULL, stream_id = NULL,"
						 "       manifest = NULL, source_bytes = NULL, file_count = NULL,"
						 "       started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,"
						 "       updated_at = clock_timestamp()",
						 5, types, values, NULL, false, 0) != SPI_OK_INSERT || SPI_processed != 1)
		elog(ERROR, "smsdist receiver: recording the package build failed");
	receiver_delete_transfer(package_id, version, "the finished");
}

/*
 * No transfer: receive_begin found this version here already, or this is
 * a repeat of a receive_end whose answer was lost.  Answers its size.
 */
static int64
ready_build_bytes(const char *package_id, int32 version)
{
	ReadyBuild	ready = receiver_fetch_ready_build(package_id, version);

	if (!ready.found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("package %s version %d has not been received at site %s",
						package_id, version, sms_site_code),
				 errhint("Send it first: smsdist.receive_begin(), then smsdist.receive_chunk().")));
	return ready.bytes;
}

/*
 * Now the package's current version may be this one: its build is ready
 * (in this transaction), so a job activated from now on finds it.
 */
static void
raise_package_version(const char *package_id, int32 version)
{
	receiver_execute_for_version("UPDATE smsdist.packages SET source_version = $2"
								 " WHERE package_id = $1 AND source_version < $2",
								 package_id, version, SPI_OK_UPDATE,
								 psprintf("updating package %s", package_id));
}

PG_FUNCTION_INFO_V1(smsdist_receive_end);
Datum
smsdist_receive_end(PG_FUNCTION_ARGS)
{
	EndArgs		e;
	Datum		targets;
	SmsStatusRefs refs = {0};
	char	   *store;
	char	   *part = NULL;
	char	   *final_path;
	TransferRow row;
	int64		bytes;
	char	   *source;

	source = calling_parent_site();
	read_end_args(fcinfo, &e);

	SPI_connect();
	require_sent_by("package", e.package_id, source);
	require_sent_by("job", e.job_id, source);
	targets = receiver_check_target_sites(PG_GETARG_ARRAYTYPE_P(4), e.job_id);
	refs.job_id = e.job_id;
	refs.package_id = e.package_id;

	if (strcmp(e.job_type, "remove_package") == 0)
	{
		record_removal_job(&e, targets, source);
		SPI_finish();
		PG_RETURN_VOID();
	}

	check_version_arg(e.version);
	receiver_lock_transfer(e.package_id, e.version);
	store = sms_package_store();
	final_path = sms_package_file_path(store, e.package_id, e.version);
	row = receiver_fetch_transfer(e.package_id, e.version);
	if (row.found)
	{
		part = verify_received_file(store, e.package_id, e.version, &row);
		record_received_build(e.package_id, e.version, final_path, &row);
		bytes = row.total_bytes;
	}
	else
		bytes = ready_build_bytes(e.package_id, e.version);

	raise_package_version(e.package_id, e.version);
	receiver_record_job(e.job_id, e.job_type, e.package_id, targets, e.include_subsites,
						e.run, source);

	/* only when bytes came: a job for a package already here says nothing new */
	if (part != NULL)
		sms_status_message(SMS_DESPOOLER, SMS_INFO, SMS_MSG_PACKAGE_RECEIVED, &refs,
						   "Package %s version %d received from the parent site (%lld bytes, SHA-256 verified).",
						   e.package_id, e.version, (long long) bytes);

	/*
	 * Last, so that every failure above leaves the part file where a new
	 * receive_end finds it.  The rename is durable before we return; the
	 * rows commit right after.  The file's bytes are durable already (the
	 * row counts only fsync'd bytes, and all of them were counted), so only
	 * the new name needs flushing: durable_rename() would fsync the file
	 * twice more.
	 */
	if (part != NULL)
	{
		/*
		 * Its time is now: the Scheduler's purge spares a file no row names
		 * for five minutes after it was last written, and the last chunk
		 * may be much older (receive_end retried, a resumed transfer).
		 */
		if (utime(part, NULL) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not set the time of file \"%s\": %m", part)));
		if (rename(part, final_path) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not rename file \"%s\" to \"%s\": %m", part, final_path)));
		(void) fsync_fname_ext(store, true, false, ERROR);
	}

	SPI_finish();
	PG_RETURN_VOID();
}
