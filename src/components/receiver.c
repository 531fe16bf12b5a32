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
 * and a new session resumes from the row).  So when a call
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
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "status.h"
#include "validate.h"
#include "wakeup.h"
#include "sha256.h"
#include "package_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

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
	if (SPI_execute("SELECT smsdist.calling_site('parent')::text", true, 1) != SPI_OK_SELECT ||
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

	if (SPI_execute_with_args("SELECT smsdist.require_sent_by($1, $2, $3::smsdist.site_code)",
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
 * Files
 * ---------------------------------------------------------------------
 */


/* SHA-256 of a whole open file (sha256.c), or an error naming it. */
static void
sha256_of_file(int fd, const char *path, char *hex, int64 *size)
{
	if (!sms_sha256_fd(fd, hex, size))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read received package file \"%s\": %m", path)));
}

static void
fsync_or_error(int fd, const char *path)
{
	if (pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", path)));
}

/*
 * The transfer this backend is receiving.  A chunk is acknowledged once it
 * is written; the bytes are made durable (fsync, then the row) only every
 * SYNC_EVERY bytes or SYNC_EVERY_MS, and at the end, so a fast transfer
 * pays a few fsyncs rather than one per chunk, and a slow (throttled) one
 * never has more than half a second of it to send again.  The row stays
 * the durable offset: a new session (after a disconnect or a restart of
 * either side) resumes from it, and what was written after it but not
 * fsync'd is written again.  written is trusted only while the row still
 * says durable.
 */
#define SYNC_EVERY	((int64) 32 * 1024 * 1024)
#define SYNC_EVERY_MS	500

static struct
{
	char		package_id[16];
	int32		version;
	int64		durable;		/* the row's bytes_received */
	int64		written;		/* written by this backend, from durable on */
	TimestampTz durable_at;		/* when this backend last made it durable */

	/*
	 * The SHA-256 of the file's bytes [0, hashed), when this backend wrote
	 * all of them in order: receive_end then need not read the file again
	 * (about 80 ms for 100 MB).  It outlives transactions, so it belongs to
	 * a resource owner of its own.
	 */
	pg_cryptohash_ctx *file_hash;
	int64		hashed;
}			session;

static ResourceOwner session_owner = NULL;

static void
forget_file_hash(void)
{
	if (session.file_hash != NULL)
		pg_cryptohash_free(session.file_hash);
	session.file_hash = NULL;
	session.hashed = 0;
}

static void
forget_session(void)
{
	session.package_id[0] = '\0';
	forget_file_hash();
}

/* Bytes [offset, offset + len) were written: hash them on, if in order from 0. */
static void
hash_written(const char *bytes, int64 offset, int64 len)
{
	if (offset == 0)
	{
		ResourceOwner save = CurrentResourceOwner;

		forget_file_hash();
		if (session_owner == NULL)
			session_owner = ResourceOwnerCreate(NULL, "smsdist receiver");
		CurrentResourceOwner = session_owner;
		session.file_hash = pg_cryptohash_create(PG_SHA256);
		CurrentResourceOwner = save;
		if (session.file_hash == NULL || pg_cryptohash_init(session.file_hash) < 0)
			elog(ERROR, "could not initialize SHA-256");
	}
	else if (session.file_hash == NULL || session.hashed != offset)
	{
		forget_file_hash();		/* not in order: receive_end reads the file */
		return;
	}
	if (pg_cryptohash_update(session.file_hash, (const uint8 *) bytes, len) < 0)
	{
		forget_file_hash();
		elog(ERROR, "could not compute SHA-256");
	}
	session.hashed = offset + len;
}

/*
 * The SHA-256 of the whole part file, from what this backend hashed while
 * writing it, if it wrote all of it; false otherwise.
 */
static bool
session_file_hash(const char *package_id, int32 version, int64 total, int fd, char *hex)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	struct stat st;
	bool		ok;

	if (strcmp(session.package_id, package_id) != 0 || session.version != version ||
		session.file_hash == NULL || session.hashed != total || session.written != total ||
		fstat(fd, &st) != 0 || st.st_size != total)
		return false;
	ok = pg_cryptohash_final(session.file_hash, digest, sizeof(digest)) == 0;
	forget_file_hash();
	if (ok)
		sms_sha256_digest_hex(digest, hex);
	return ok;
}

/* Where the next chunk must start: written, if this session is current. */
static int64
session_offset(const char *package_id, int32 version, int64 durable)
{
	if (strcmp(session.package_id, package_id) == 0 && session.version == version &&
		session.durable == durable)
		return session.written;
	forget_session();
	return durable;
}

/*
 * Open the part file for reading and writing, creating it (and the
 * incoming directory) if needed.  A new file's directory entry is made
 * durable at once, so that after a crash a row never outlives its file
 * unnoticed (if it did, the file would be shorter than the row: reset).
 */
static int
open_part_file(const char *store, const char *path, off_t *size)
{
	char	   *dir = sms_incoming_dir(store);
	int			fd;
	bool		created = false;
	struct stat st;

	fd = OpenTransientFile(path, O_RDWR | PG_BINARY);
	if (fd < 0 && errno == ENOENT)
	{
		if (pg_mkdir_p(pstrdup(dir), pg_dir_create_mode) != 0 && errno != EEXIST)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", dir)));
		fd = OpenTransientFile(path, O_RDWR | O_CREAT | PG_BINARY);
		created = true;
	}
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open part file \"%s\": %m", path)));
	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat part file \"%s\": %m", path)));
	if (created)
	{
		fsync_or_error(fd, path);
		(void) fsync_fname_ext(dir, true, false, ERROR);
		(void) fsync_fname_ext(store, true, false, ERROR);
	}
	*size = st.st_size;
	return fd;
}

static void
truncate_part_file(int fd, const char *path, off_t length)
{
	if (ftruncate(fd, length) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not truncate part file \"%s\" to %lld bytes: %m",
						path, (long long) length)));
	fsync_or_error(fd, path);
}

/* ---------------------------------------------------------------------
 * Rows
 * ---------------------------------------------------------------------
 */

/* Serialize the three calls of one (package, version); see the header. */
static void
lock_transfer(const char *package_id, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};

	if (SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock("
							  " pg_catalog.hashtextextended('smsdist receive ' || $1 || '.' || $2, 0))",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist receiver: locking the transfer failed");
}

/* total_bytes -1 and sha256 "": a streamed file whose size is not known yet */
typedef struct TransferRow
{
	bool		found;
	int64		total_bytes;
	int64		bytes_received;
	char		sha256[SMS_SHA256_HEX_LEN + 1];
	char		stream_id[SMS_STREAM_ID_LEN + 1];	/* "" when not streamed */
} TransferRow;

static TransferRow
fetch_transfer(const char *package_id, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};
	TransferRow row = {0};
	bool		isnull;

	if (SPI_execute_with_args("SELECT coalesce(total_bytes, -1), bytes_received,"
							  "       coalesce(sha256, ''), coalesce(stream_id, '')"
							  "  FROM smsdist.package_transfers"
							  " WHERE package_id = $1 AND source_version = $2 FOR UPDATE",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist receiver: reading the transfer failed");
	if (SPI_processed == 0)
		return row;
	row.found = true;
	row.total_bytes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	row.bytes_received = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	strlcpy(row.sha256, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), sizeof(row.sha256));
	strlcpy(row.stream_id, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4), sizeof(row.stream_id));
	return row;
}

static void
set_bytes_received(const char *package_id, int32 version, int64 bytes)
{
	Oid			types[3] = {TEXTOID, INT4OID, INT8OID};
	Datum		values[3] = {CStringGetTextDatum(package_id), Int32GetDatum(version),
	Int64GetDatum(bytes)};

	if (SPI_execute_with_args("UPDATE smsdist.package_transfers"
							  "   SET bytes_received = $3, updated_at = clock_timestamp()"
							  " WHERE package_id = $1 AND source_version = $2",
							  3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist receiver: updating the transfer failed");
}

/* A streamed file's final size and SHA-256. */
static void
set_stream_total(const char *package_id, int32 version, int64 total_bytes, const char *sha256)
{
	Oid			types[4] = {TEXTOID, INT4OID, INT8OID, TEXTOID};
	Datum		values[4] = {CStringGetTextDatum(package_id), Int32GetDatum(version),
	Int64GetDatum(total_bytes), CStringGetTextDatum(sha256)};

	if (SPI_execute_with_args("UPDATE smsdist.package_transfers"
							  "   SET total_bytes = $3, sha256 = $4, updated_at = clock_timestamp()"
							  " WHERE package_id = $1 AND source_version = $2",
							  4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist receiver: recording the size of the transfer failed");
}

/*
 * The part file is shorter than the row says: the file was damaged or
 * removed (or a failed receive_end reset it).  Start the transfer again.
 */
static void
reset_transfer(int fd, const char *path, const char *package_id, int32 version,
			   int64 had, off_t file_size)
{
	ereport(LOG,
			(errmsg("transfer of package %s version %d starts again from byte 0: its part file \"%s\" has %lld bytes, not the %lld received",
					package_id, version, path, (long long) file_size, (long long) had)));
	truncate_part_file(fd, path, 0);
	set_bytes_received(package_id, version, 0);
}

/* The ready build of a version, if its file is there and is the one meant. */
typedef struct ReadyBuild
{
	bool		found;
	char	   *file_path;
	int64		bytes;
	char		sha256[SMS_SHA256_HEX_LEN + 1];
} ReadyBuild;

static ReadyBuild
fetch_ready_build(const char *package_id, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};
	ReadyBuild	b = {0};
	bool		isnull;
	struct stat st;
	char	   *sha;

	if (SPI_execute_with_args("SELECT file_path, bytes, sha256 FROM smsdist.package_builds"
							  " WHERE package_id = $1 AND source_version = $2 AND state = 'ready'"
							  "   AND file_path IS NOT NULL AND bytes IS NOT NULL AND sha256 IS NOT NULL",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist receiver: reading the package build failed");
	if (SPI_processed == 0)
		return b;
	b.file_path = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	b.bytes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	sha = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	strlcpy(b.sha256, sha, sizeof(b.sha256));
	/* a row whose file is gone (removed by hand, a restored backup) does not count */
	b.found = stat(b.file_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == b.bytes;
	return b;
}

/* ---------------------------------------------------------------------
 * receive_begin
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(smsdist_receive_begin);
Datum
smsdist_receive_begin(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"package_id", "source_version", "total_bytes",
	"sha256", "package_name", "source_directory"};
	char	   *package_id;
	int32		version;
	int64		total_bytes = -1;
	char	   *sha256 = NULL;
	char	   *package_name;
	char	   *source_directory;
	char	   *stream_id = NULL;
	char	   *store;
	char	   *part;
	TransferRow row;
	int64		received;
	int			fd;
	off_t		file_size;
	int32		base_version;
	bool		resume;
	char	   *source;

	source = calling_parent_site();
	/* a file sent while the parent writes it (0.6): no size or hash yet */
	if (PG_NARGS() > 7 && !PG_ARGISNULL(7))
		stream_id = text_to_cstring(PG_GETARG_TEXT_PP(7));
	if (stream_id == NULL || !PG_ARGISNULL(2) || !PG_ARGISNULL(3))
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
	sms_keep_freed_memory();	/* the chunks of this connection come next */
	forget_session();			/* a new attempt starts from the durable offset */
	/* a delta from this version (0: the full file); absent before 0.3 */
	base_version = (PG_NARGS() > 6 && !PG_ARGISNULL(6)) ? PG_GETARG_INT32(6) : 0;
	package_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	version = PG_GETARG_INT32(1);
	if (!PG_ARGISNULL(2))
		total_bytes = PG_GETARG_INT64(2);
	if (!PG_ARGISNULL(3))
		sha256 = text_to_cstring(PG_GETARG_TEXT_PP(3));
	package_name = text_to_cstring(PG_GETARG_TEXT_PP(4));
	source_directory = text_to_cstring(PG_GETARG_TEXT_PP(5));

	sms_valid_sms_id(package_id, true);
	check_version_arg(version);
	if (stream_id != NULL)
	{
		check_stream_id_arg(stream_id, package_id, version);
		if (base_version != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a delta of package %s version %d cannot be streamed", package_id, version),
					 errdetail("A delta is made from a finished package file.")));
	}
	if (sha256 != NULL)
	{
		check_size_arg(total_bytes, package_id, version);
		check_sha256_arg(sha256, "package file");
	}
	if (base_version != 0 && (base_version < 1 || base_version >= version))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid base version %d of a delta to package %s version %d",
						base_version, package_id, version),
				 errdetail("A delta is made from an earlier version.")));
	sms_valid_object_name(package_name, "package name", true);
	sms_valid_server_path(source_directory, "package source directory", true);
	require_site_code();

	SPI_connect();
	require_sent_by("package", package_id, source);
	lock_transfer(package_id, version);

	/*
	 * The package row: jobs and builds refer to it.  Its source_version is
	 * raised by receive_end, together with the ready build, and not here:
	 * a job activated at this site meanwhile would otherwise take the new
	 * version, find no build for it, and have the Scheduler start a
	 * builder -- on a source directory that is the parent's, not ours.
	 */
	{
		Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID};
		Datum		values[5] = {CStringGetTextDatum(package_id), CStringGetTextDatum(package_name),
			CStringGetTextDatum(source_directory), Int32GetDatum(version),
		source ? CStringGetTextDatum(source) : (Datum) 0};
		char		nulls[5] = {' ', ' ', ' ', ' ', source ? ' ' : 'n'};

		if (SPI_execute_with_args("INSERT INTO smsdist.packages"
								  "       (package_id, name, source_directory, source_version, source_site)"
								  "VALUES ($1, $2, $3, $4, $5)"
								  "    ON CONFLICT (package_id) DO UPDATE"
								  "   SET name = EXCLUDED.name, source_directory = EXCLUDED.source_directory"
								  " WHERE (packages.name, packages.source_directory)"
								  "       IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.source_directory)",
								  5, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "smsdist receiver: recording package %s failed", package_id);
	}

	store = sms_package_store();
	part = sms_part_path(store, package_id, version);

	/*
	 * Already here (sent before, for another job): nothing to send.  A
	 * stream cannot be recognised (its hash is not known yet): it is
	 * received, and replaces the build at receive_end as any other file
	 * of this version would.
	 */
	if (sha256 != NULL)
	{
		ReadyBuild	ready = fetch_ready_build(package_id, version);

		if (ready.found && strcmp(ready.sha256, sha256) == 0 && ready.bytes == total_bytes)
		{
			Oid			types[2] = {TEXTOID, INT4OID};
			Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};

			/* a transfer of another file of this version, abandoned: forget it */
			if (SPI_execute_with_args("DELETE FROM smsdist.package_transfers"
									  " WHERE package_id = $1 AND source_version = $2",
									  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "smsdist receiver: removing an abandoned transfer failed");
			if (SPI_processed > 0 && unlink(part) != 0 && errno != ENOENT)
				ereport(WARNING,
						(errcode_for_file_access(),
						 errmsg("could not remove part file \"%s\": %m", part)));
			SPI_finish();
			PG_RETURN_INT64(total_bytes);
		}
	}

	/*
	 * What we have counts only if it is of the same file: the same size and
	 * hash, or the same stream (a file the parent is still writing, or
	 * wrote; its size and hash, once known, must match too).
	 */
	row = fetch_transfer(package_id, version);
	if (!row.found)
		resume = false;
	else if (stream_id != NULL && strcmp(row.stream_id, stream_id) == 0)
		resume = sha256 == NULL || row.sha256[0] == '\0' ||
			(row.total_bytes == total_bytes && strcmp(row.sha256, sha256) == 0);
	else
		resume = sha256 != NULL && row.total_bytes == total_bytes &&
			strcmp(row.sha256, sha256) == 0;
	if (resume && sha256 != NULL && row.sha256[0] == '\0')
	{
		/* the stream's size and hash, learnt now (a lost receive_total) */
		if (row.bytes_received > total_bytes)
			resume = false;
		else
			set_stream_total(package_id, version, total_bytes, sha256);
	}

	if (!row.found || !resume)
	{
		/*
		 * A new transfer; or the parent now sends another file under this
		 * version (it rebuilt the package, or its builder started over):
		 * what we have belongs to the old one.
		 */
		Oid			types[6] = {TEXTOID, INT4OID, INT8OID, TEXTOID, INT4OID, TEXTOID};
		Datum		values[6] = {CStringGetTextDatum(package_id), Int32GetDatum(version),
			Int64GetDatum(total_bytes), sha256 ? CStringGetTextDatum(sha256) : (Datum) 0,
		Int32GetDatum(base_version), stream_id ? CStringGetTextDatum(stream_id) : (Datum) 0};
		char		nulls[6] = {' ', ' ', total_bytes < 0 ? 'n' : ' ', sha256 ? ' ' : 'n', ' ',
		stream_id ? ' ' : 'n'};

		if (SPI_execute_with_args("INSERT INTO smsdist.package_transfers"
								  "       (package_id, source_version, total_bytes, sha256, base_version, stream_id)"
								  "VALUES ($1, $2, $3, $4, nullif($5, 0), $6)"
								  "    ON CONFLICT (package_id, source_version) DO UPDATE"
								  "   SET total_bytes = EXCLUDED.total_bytes, sha256 = EXCLUDED.sha256,"
								  "       bytes_received = 0, base_version = EXCLUDED.base_version,"
								  "       stream_id = EXCLUDED.stream_id,"
								  "       started_at = clock_timestamp(), updated_at = clock_timestamp()",
								  6, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "smsdist receiver: recording the transfer failed");
		received = 0;
	}
	else
		received = row.bytes_received;

	fd = open_part_file(store, part, &file_size);
	if (file_size < received)
	{
		reset_transfer(fd, part, package_id, version, received, file_size);
		received = 0;
	}
	else if (file_size > received)
	{
		/* bytes of a chunk whose transaction did not commit, or of an old file */
		truncate_part_file(fd, part, received);
	}
	CloseTransientFile(fd);

	/* the Despooler may extract a stream as it arrives (early_extract.c) */
	if (stream_id != NULL)
		sms_wake_at_commit(SMS_DESPOOLER);

	SPI_finish();
	PG_RETURN_INT64(received);
}

/* ---------------------------------------------------------------------
 * receive_chunk
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(smsdist_receive_chunk);
Datum
smsdist_receive_chunk(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"package_id", "source_version", "offset",
	"data", "chunk_sha256"};
	char	   *package_id;
	int32		version;
	int64		offset;
	bytea	   *data;
	char	   *chunk_sha256;
	const char *bytes;
	int64		len;
	char		actual[SMS_SHA256_HEX_LEN + 1];
	TransferRow row;
	char	   *store;
	char	   *part;
	int			fd;
	off_t		file_size;
	int64		done;
	int64		expected;

	(void) calling_parent_site();	/* only the parent sends here */
	require_args(fcinfo, "receive_chunk", names, lengthof(names));
	sms_keep_freed_memory();
	package_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	version = PG_GETARG_INT32(1);
	offset = PG_GETARG_INT64(2);
	data = PG_GETARG_BYTEA_PP(3);
	chunk_sha256 = text_to_cstring(PG_GETARG_TEXT_PP(4));
	bytes = VARDATA_ANY(data);
	len = VARSIZE_ANY_EXHDR(data);

	sms_valid_sms_id(package_id, true);
	check_version_arg(version);
	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid offset %lld of a chunk of package %s version %d",
						(long long) offset, package_id, version)));
	check_sha256_arg(chunk_sha256, "chunk");

	/* checked before anything is locked or written: a bad chunk changes nothing */
	sms_sha256_buffer((const uint8 *) bytes, len, actual);
	if (strcmp(actual, chunk_sha256) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("chunk at offset %lld of package %s version %d is corrupt: its SHA-256 is %s, not %s",
						(long long) offset, package_id, version, actual, chunk_sha256),
				 errhint("Send the chunk again.")));

	SPI_connect();

	/*
	 * The commit of a chunk need not wait for the WAL flush: the row is
	 * only ever behind the part file (see the header), so a row update lost
	 * in a crash means bytes sent again, never bytes lost.
	 */
	if (SPI_execute("SET LOCAL synchronous_commit = off", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "smsdist receiver: SET LOCAL failed");
	lock_transfer(package_id, version);
	row = fetch_transfer(package_id, version);
	if (!row.found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no transfer of package %s version %d is in progress at site %s",
						package_id, version, sms_site_code ? sms_site_code : "?"),
				 errhint("Call smsdist.receive_begin() first.")));

	/* not where we are: the sender resynchronises on our offset */
	expected = session_offset(package_id, version, row.bytes_received);
	if (offset != expected)
	{
		SPI_finish();
		PG_RETURN_INT64(expected);
	}
	if (row.total_bytes >= 0 && len > row.total_bytes - offset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk of %lld bytes at offset %lld goes beyond the end of package %s version %d (%lld bytes)",
						(long long) len, (long long) offset, package_id, version,
						(long long) row.total_bytes)));

	store = sms_package_store();
	part = sms_part_path(store, package_id, version);
	fd = open_part_file(store, part, &file_size);
	if (file_size < row.bytes_received)
	{
		forget_session();
		reset_transfer(fd, part, package_id, version, row.bytes_received, file_size);
		CloseTransientFile(fd);
		SPI_finish();
		PG_RETURN_INT64(0);
	}

	/* a plain pwrite per chunk: chunks are large (8 MB from this Sender), calls few */
	for (int64 written = 0; written < len;)
	{
		ssize_t		w;

		errno = 0;
		w = pg_pwrite(fd, bytes + written, len - written, offset + written);
		if (w <= 0)
		{
			if (errno == 0)
				errno = ENOSPC;	/* a short write with no error: a full disk */
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write %lld bytes at offset %lld of part file \"%s\": %m",
							(long long) (len - written), (long long) (offset + written), part)));
		}
		written += w;
	}
	done = offset + len;
	if (offset == row.bytes_received && session.package_id[0] == '\0')
	{
		/* the first chunk of a session */
		strlcpy(session.package_id, package_id, sizeof(session.package_id));
		session.version = version;
		session.durable = row.bytes_received;
		session.durable_at = GetCurrentTimestamp();
	}
	session.written = done;
	hash_written(bytes, offset, len);
	if (done == row.total_bytes || done - session.durable >= SYNC_EVERY ||
		TimestampDifferenceExceeds(session.durable_at, GetCurrentTimestamp(), SYNC_EVERY_MS))
	{
		/* durable before the row says so: the file is never behind the row */
		fsync_or_error(fd, part);
		set_bytes_received(package_id, version, done);
		/* if this transaction does not commit, the row and session differ: forgotten */
		session.durable = done;
		session.durable_at = GetCurrentTimestamp();
	}
	else
	{
		/* start writing it out now, so that the fsync to come is short */
		pg_flush_data(fd, offset, len);
	}
	CloseTransientFile(fd);
	SPI_finish();
	PG_RETURN_INT64(done);
}

/* ---------------------------------------------------------------------
 * receive_total
 * ---------------------------------------------------------------------
 */

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
	lock_transfer(package_id, version);
	row = fetch_transfer(package_id, version);
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

	offset = session_offset(package_id, version, row.bytes_received);
	if (offset > total_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream %s of package %s version %d is %lld bytes long, but %lld bytes of it have been received",
						stream_id, package_id, version, (long long) total_bytes, (long long) offset),
				 errhint("Call smsdist.receive_begin() again to send it from the start.")));
	if (row.sha256[0] == '\0')
		set_stream_total(package_id, version, total_bytes, sha256);

	if (offset == total_bytes && row.bytes_received < total_bytes)
	{
		/* everything was written by this session: make it durable, as the last chunk would */
		char	   *store = sms_package_store();
		char	   *part = sms_part_path(store, package_id, version);
		off_t		file_size;
		int			fd = open_part_file(store, part, &file_size);

		fsync_or_error(fd, part);
		CloseTransientFile(fd);
		set_bytes_received(package_id, version, total_bytes);
		session.durable = total_bytes;
		session.durable_at = GetCurrentTimestamp();
	}
	SPI_finish();
	PG_RETURN_INT64(offset);
}

/* ---------------------------------------------------------------------
 * receive_end
 * ---------------------------------------------------------------------
 */

/*
 * The job's target sites, checked: each a site code, and each this site or
 * a site below it.  A target elsewhere would make this site's Sender send
 * the package sideways or back up the hierarchy.  Sites unknown here are
 * left to the jobs trigger, whose message says so.
 */
static Datum
check_target_sites(ArrayType *arr, const char *job_id)
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
	if (SPI_execute_with_args("WITH RECURSIVE below(code, depth) AS ("
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

	if (SPI_execute_with_args("INSERT INTO smsdist.jobs"
							  "       (job_id, job_type, package_id, target_type, target_sites,"
							  "        include_subsites, comment, source_site)"
							  "VALUES ($1, $2::smsdist.job_type, $3, 'sites', $4::smsdist.site_code[],"
							  "        $5, 'sent by the parent site', $6)"
							  "    ON CONFLICT (job_id) DO NOTHING",
							  6, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist receiver: recording job %s failed", job_id);
	if (SPI_processed == 1)
		return true;

	if (SPI_execute_with_args("SELECT job_type::text, package_id::text FROM smsdist.jobs WHERE job_id = $1",
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

PG_FUNCTION_INFO_V1(smsdist_receive_end);
Datum
smsdist_receive_end(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"package_id", "source_version", "job_id",
	"job_type", "target_sites", "include_subsites"};
	char	   *package_id;
	int32		version;
	char	   *job_id;
	char	   *parent_job_type;
	const char *job_type;
	bool		include_subsites;
	Datum		targets;
	SmsStatusRefs refs = {0};
	char	   *store;
	char	   *part = NULL;
	char	   *final_path;
	TransferRow row;
	int64		bytes;
	Datum		run;
	char	   *source;

	source = calling_parent_site();
	require_args(fcinfo, "receive_end", names, lengthof(names));
	/* the run-command job's details (0.3); NULL: distribute only */
	run = (PG_NARGS() > 6 && !PG_ARGISNULL(6)) ? PG_GETARG_DATUM(6) : (Datum) 0;
	package_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	version = PG_GETARG_INT32(1);
	job_id = text_to_cstring(PG_GETARG_TEXT_PP(2));
	parent_job_type = text_to_cstring(PG_GETARG_TEXT_PP(3));
	include_subsites = PG_GETARG_BOOL(5);

	sms_valid_sms_id(package_id, true);
	sms_valid_sms_id(job_id, true);
	require_site_code();

	/*
	 * A run-command job comes with its details (run): here too it is a
	 * run-command job, and the Despooler writes the PCM files of this
	 * site's machines.  Without them (a parent older than 0.3) it only
	 * distributes, as a share job.
	 */
	if (strcmp(parent_job_type, "run_command") == 0 && run != (Datum) 0)
		job_type = "run_command";
	else if (strcmp(parent_job_type, "share_package") == 0 ||
			 strcmp(parent_job_type, "run_command") == 0)
	{
		job_type = "share_package";
		run = (Datum) 0;
	}
	else if (strcmp(parent_job_type, "remove_package") == 0)
		job_type = "remove_package";
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid job type \"%s\" of job %s", parent_job_type, job_id),
				 errdetail("A parent site sends share_package, run_command or remove_package jobs.")));

	SPI_connect();
	require_sent_by("package", package_id, source);
	require_sent_by("job", job_id, source);
	targets = check_target_sites(PG_GETARG_ARRAYTYPE_P(4), job_id);
	refs.job_id = job_id;
	refs.package_id = package_id;

	if (strcmp(job_type, "remove_package") == 0)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(package_id)};

		/* the version means nothing to a removal: whatever is published goes */
		if (SPI_execute_with_args("SELECT 1 FROM smsdist.packages WHERE package_id = $1",
								  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist receiver: reading package %s failed", package_id);
		if (SPI_processed == 0)
		{
			/* never sent here (or deleted): nothing is published to remove */
			SPI_finish();
			PG_RETURN_VOID();
		}
		/* the job's own messages (activated, removed) follow from here */
		(void) insert_job(job_id, job_type, package_id, targets, include_subsites, source);
		SPI_finish();
		PG_RETURN_VOID();
	}

	check_version_arg(version);
	lock_transfer(package_id, version);
	store = sms_package_store();
	final_path = sms_package_file_path(store, package_id, version);
	row = fetch_transfer(package_id, version);

	if (row.found)
	{
		char		actual[SMS_SHA256_HEX_LEN + 1];
		int64		size;
		int			fd;
		off_t		file_size;
		Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, INT8OID, TEXTOID};
		Datum		values[5];

		if (row.total_bytes < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("package %s version %d is not complete at site %s: %lld bytes received, and its size is not known yet",
							package_id, version, sms_site_code, (long long) row.bytes_received),
					 errhint("smsdist.receive_total() gives the size of a streamed file.")));
		/* not corruption: the sender stopped early; it resumes from begin */
		if (row.bytes_received < row.total_bytes)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("package %s version %d is not complete at site %s: %lld of %lld bytes received",
							package_id, version, sms_site_code,
							(long long) row.bytes_received, (long long) row.total_bytes),
					 errhint("smsdist.receive_begin() returns the offset to resume from.")));

		/* (a part file that has gone is created empty: it fails the check) */
		part = sms_part_path(store, package_id, version);
		fd = open_part_file(store, part, &file_size);
		if (session_file_hash(package_id, version, row.total_bytes, fd, actual))
			size = row.total_bytes;
		else
			sha256_of_file(fd, part, actual, &size);
		if (size != row.total_bytes || strcmp(actual, row.sha256) != 0)
		{
			/*
			 * Start again.  The ERROR below rolls the row back, but not the
			 * truncation: the next call finds the file behind the row and
			 * resets the row too.
			 */
			truncate_part_file(fd, part, 0);
			CloseTransientFile(fd);
			set_bytes_received(package_id, version, 0);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("received package %s version %d is corrupt: %lld bytes with SHA-256 %s, not %lld bytes with SHA-256 %s",
							package_id, version, (long long) size, actual,
							(long long) row.total_bytes, row.sha256),
					 errdetail("The transfer was reset; the package must be sent again from the start.")));
		}
		CloseTransientFile(fd);
		bytes = row.total_bytes;

		/* the package file, as a build of this version that is ready */
		values[0] = CStringGetTextDatum(package_id);
		values[1] = Int32GetDatum(version);
		values[2] = CStringGetTextDatum(final_path);
		values[3] = Int64GetDatum(bytes);
		values[4] = CStringGetTextDatum(row.sha256);
		if (SPI_execute_with_args("INSERT INTO smsdist.package_builds"
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
		if (SPI_execute_with_args("DELETE FROM smsdist.package_transfers"
								  " WHERE package_id = $1 AND source_version = $2",
								  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "smsdist receiver: removing the finished transfer failed");
	}
	else
	{
		/*
		 * No transfer: receive_begin found this version here already, or
		 * this is a repeat of a receive_end whose answer was lost.
		 */
		ReadyBuild	ready = fetch_ready_build(package_id, version);

		if (!ready.found)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("package %s version %d has not been received at site %s",
							package_id, version, sms_site_code),
					 errhint("Send it first: smsdist.receive_begin(), then smsdist.receive_chunk().")));
		bytes = ready.bytes;
	}

	/*
	 * Now the package's current version may be this one: its build is
	 * ready (in this transaction), so a job activated from now on finds it.
	 */
	{
		Oid			types[2] = {TEXTOID, INT4OID};
		Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};

		if (SPI_execute_with_args("UPDATE smsdist.packages SET source_version = $2"
								  " WHERE package_id = $1 AND source_version < $2",
								  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "smsdist receiver: updating package %s failed", package_id);
	}

	if (run != (Datum) 0)
	{
		/* a run-command job: the program, its machines here, the job */
		Oid			types[4] = {TEXTOID, TEXTOID, JSONBOID, TEXTOID};
		Datum		values[4] = {CStringGetTextDatum(job_id), CStringGetTextDatum(package_id), run,
		source ? CStringGetTextDatum(source) : (Datum) 0};
		char		nulls[4] = {' ', ' ', ' ', source ? ' ' : 'n'};

		if (SPI_execute_with_args("SELECT smsdist.record_run_job($1, $2, $3, $4::smsdist.site_code)",
								  4, types, values, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "smsdist receiver: recording run-command job %s failed", job_id);
	}
	else
		(void) insert_job(job_id, job_type, package_id, targets, include_subsites, source);

	/* only when bytes came: a job for a package already here says nothing new */
	if (part != NULL)
		sms_status_message(SMS_DESPOOLER, SMS_INFO, SMS_MSG_PACKAGE_RECEIVED, &refs,
						   "Package %s version %d received from the parent site (%lld bytes, SHA-256 verified).",
						   package_id, version, (long long) bytes);

	/*
	 * Last, so that every failure above leaves the part file where a new
	 * receive_end finds it.  The rename is durable before we return; the
	 * rows commit right after.
	 */
	if (part != NULL)
		(void) durable_rename(part, final_path, ERROR);

	SPI_finish();
	PG_RETURN_VOID();
}
