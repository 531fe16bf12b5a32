/*-------------------------------------------------------------------------
 *
 * receiver_transfer.c
 *	  The durable state of a package file on its way to this site, for the
 *	  receiving SQL functions (receiver.c): the transfer row, the part file
 *	  and the receiving session of this backend.
 *
 * Terms (see also receiver_transfer.h):
 *	durable		the bytes the row's bytes_received counts: fsync'd in the
 *				part file before the row was updated, so the part file is
 *				never behind the row.
 *	written		the bytes this backend wrote beyond durable, acknowledged to
 *				the sender but not yet fsync'd.  They are trusted only while
 *				the row still says durable: a new session (after a
 *				disconnect or a restart of either side) resumes from the
 *				row, and what was written after it is written again.
 *	file hash	the SHA-256 of the part file's bytes [0, hashed), when this
 *				backend wrote all of them in order: receive_end then need
 *				not read the file again (about 80 ms for 100 MB).
 *
 * A chunk is made durable only every SYNC_EVERY bytes or SYNC_EVERY_MS, and
 * at the end, so a fast transfer pays a few fsyncs rather than one per
 * chunk, and a slow (throttled) one never has more than half a second of
 * it to send again.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "receiver_transfer.h"
#include "package_store.h"
#include "file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

/* ---------------------------------------------------------------------
 * Rows
 * ---------------------------------------------------------------------
 */

/*
 * Run sql with $1 the package ID and $2 the version; an error saying what
 * failed unless SPI answers expected.  Most statements here are of that
 * one form.
 */
void
receiver_execute_for_version(const char *sql, const char *package_id, int32 version,
							 int expected, const char *failed)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(package_id), Int32GetDatum(version)};

	if (sms_execute_kept(sql, 2, types, values, NULL, false, 0) != expected)
		elog(ERROR, "smsdist receiver: %s failed", failed);
}

/*
 * Serialize the calls of one (package, version), so two senders (say, a
 * retry while the first connection is still alive) cannot interleave their
 * writes.
 */
void
receiver_lock_transfer(const char *package_id, int32 version)
{
	receiver_execute_for_version("SELECT pg_catalog.pg_advisory_xact_lock("
								 " pg_catalog.hashtextextended('smsdist receive ' || $1 || '.' || $2, 0))",
								 package_id, version, SPI_OK_SELECT, "locking the transfer");
}

TransferRow
receiver_fetch_transfer(const char *package_id, int32 version)
{
	TransferRow row = {0};
	bool		isnull;

	receiver_execute_for_version("SELECT coalesce(total_bytes, -1), bytes_received,"
								 "       coalesce(sha256, ''), coalesce(stream_id, '')"
								 "  FROM smsdist.package_transfers"
								 " WHERE package_id = $1 AND source_version = $2 FOR UPDATE",
								 package_id, version, SPI_OK_SELECT, "reading the transfer");
	if (SPI_processed == 0)
		return row;
	row.found = true;
	row.total_bytes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	row.bytes_received = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	strlcpy(row.sha256, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), sizeof(row.sha256));
	strlcpy(row.stream_id, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4), sizeof(row.stream_id));
	return row;
}

void
receiver_set_bytes_received(const char *package_id, int32 version, int64 bytes)
{
	Oid			types[3] = {TEXTOID, INT4OID, INT8OID};
	Datum		values[3] = {CStringGetTextDatum(package_id), Int32GetDatum(version),
	Int64GetDatum(bytes)};

	if (sms_execute_kept("UPDATE smsdist.package_transfers"
						 "   SET bytes_received = $3, updated_at = clock_timestamp()"
						 " WHERE package_id = $1 AND source_version = $2",
						 3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist receiver: updating the transfer failed");
}

/* A streamed file's final size and SHA-256. */
void
receiver_set_stream_total(const char *package_id, int32 version, int64 total_bytes,
						  const char *sha256)
{
	Oid			types[4] = {TEXTOID, INT4OID, INT8OID, TEXTOID};
	Datum		values[4] = {CStringGetTextDatum(package_id), Int32GetDatum(version),
	Int64GetDatum(total_bytes), CStringGetTextDatum(sha256)};

	if (sms_execute_kept("UPDATE smsdist.package_transfers"
						 "   SET total_bytes = $3, sha256 = $4, updated_at = clock_timestamp()"
						 " WHERE package_id = $1 AND source_version = $2",
						 4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "smsdist receiver: recording the size of the transfer failed");
}

/*
 * Delete the transfer row, if any; SPI_processed says whether there was one.
 * what ("an abandoned", "the finished") names it in the error.
 */
void
receiver_delete_transfer(const char *package_id, int32 version, const char *what)
{
	receiver_execute_for_version("DELETE FROM smsdist.package_transfers"
								 " WHERE package_id = $1 AND source_version = $2",
								 package_id, version, SPI_OK_DELETE,
								 psprintf("removing %s transfer", what));
}

/*
 * The part file is shorter than the row says: the file was damaged or
 * removed (or a failed receive_end reset it).  Start the transfer again.
 */
void
receiver_reset_transfer(int fd, const char *path, const char *package_id, int32 version,
						int64 had, off_t file_size)
{
	ereport(LOG,
			(errmsg("transfer of package %s version %d starts again from byte 0: its part file \"%s\" has %lld bytes, not the %lld received",
					package_id, version, path, (long long) file_size, (long long) had)));
	receiver_truncate_part_file(fd, path, 0);
	receiver_set_bytes_received(package_id, version, 0);
}

ReadyBuild
receiver_fetch_ready_build(const char *package_id, int32 version)
{
	ReadyBuild	b = {0};
	bool		isnull;
	struct stat st;
	char	   *sha;

	receiver_execute_for_version("SELECT file_path, bytes, sha256 FROM smsdist.package_builds"
								 " WHERE package_id = $1 AND source_version = $2 AND state = 'ready'"
								 "   AND file_path IS NOT NULL AND bytes IS NOT NULL AND sha256 IS NOT NULL",
								 package_id, version, SPI_OK_SELECT, "reading the package build");
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
 * The part file
 * ---------------------------------------------------------------------
 */

/* SHA-256 of a whole open file (sha256.c), or an error naming it. */
void
receiver_sha256_of_part_file(int fd, const char *path, char *hex, int64 *size)
{
	if (!sms_sha256_fd(fd, hex, size))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read received package file \"%s\": %m", path)));
}

void
receiver_fsync_part_file(int fd, const char *path)
{
	if (pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", path)));
}

/*
 * Open the part file for reading and writing, creating it (and the
 * incoming directory) if needed.  A new file's directory entry is made
 * durable at once, so that after a crash a row never outlives its file
 * unnoticed (if it did, the file would be shorter than the row: reset).
 */
int
receiver_open_part_file(const char *store, const char *path, off_t *size)
{
	char	   *dir = sms_incoming_dir(store);
	int			fd;
	bool		created = false;
	bool		new_dir = false;
	struct stat st;

	fd = OpenTransientFile(path, O_RDWR | PG_BINARY);
	if (fd < 0 && errno == ENOENT)
	{
		new_dir = stat(dir, &st) != 0;
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
		receiver_fsync_part_file(fd, path);
		(void) fsync_fname_ext(dir, true, false, ERROR);
		/* the store holds the incoming directory's entry: new only once */
		if (new_dir)
			(void) fsync_fname_ext(store, true, false, ERROR);
	}
	*size = st.st_size;
	return fd;
}

void
receiver_truncate_part_file(int fd, const char *path, off_t length)
{
	if (ftruncate(fd, length) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not truncate part file \"%s\" to %lld bytes: %m",
						path, (long long) length)));
	receiver_fsync_part_file(fd, path);
}

/*
 * A plain pwrite per chunk: chunks are large (8 MB from this Sender), calls
 * few.  A full disk removes the part file -- no half-written file stays to
 * hold the room the site needs -- and answers the parent with the store,
 * what is free there and what the package needs (total_bytes, -1 while it
 * is unknown); its Sender tries again with back-off, and the next
 * receive_begin finds no file and starts the transfer over.
 */
void
receiver_write_part_file(int fd, const char *store, const char *path, const char *bytes,
						 int64 offset, int64 len, int64 total_bytes)
{
	for (int64 written = 0; written < len;)
	{
		ssize_t		w;

		errno = 0;
		w = pg_pwrite(fd, bytes + written, len - written, offset + written);
		if (w <= 0)
		{
			int			save_errno = errno ? errno : ENOSPC;	/* a short write with no error: a full disk */
			char	   *error;

			errno = save_errno;
			error = psprintf("could not write %lld bytes at offset %lld of part file \"%s\": %m",
							 (long long) (len - written), (long long) (offset + written), path);
			if (save_errno != ENOSPC && save_errno != EDQUOT)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("%s", error)));
			receiver_forget_session();
			if (unlink(path) != 0 && errno != ENOENT)
				ereport(WARNING,
						(errcode_for_file_access(),
						 errmsg("could not remove part file \"%s\": %m", path)));
			ereport(ERROR,
					(errcode(ERRCODE_DISK_FULL),
					 errmsg("%s", sms_disk_full_reason(psprintf("package store of site %s",
																 sms_site_code ? sms_site_code : "?"),
													   store, total_bytes, error)),
					 errdetail("The part file was removed; the transfer starts over once there is room.")));
		}
		written += w;
	}
}

/* ---------------------------------------------------------------------
 * The receiving session
 * ---------------------------------------------------------------------
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

	/* the file hash outlives transactions: a resource owner of its own */
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

void
receiver_forget_session(void)
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
bool
receiver_session_file_hash(const char *package_id, int32 version, int64 total, int fd, char *hex)
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
int64
receiver_session_offset(const char *package_id, int32 version, int64 durable)
{
	if (strcmp(session.package_id, package_id) == 0 && session.version == version &&
		session.durable == durable)
		return session.written;
	receiver_forget_session();
	return durable;
}

/*
 * A chunk [offset, offset + len) was written to the part file whose row
 * says durable: the session (begun by the first chunk from durable on)
 * now reaches offset + len.
 */
void
receiver_session_wrote(const char *package_id, int32 version, int64 durable,
					   const char *bytes, int64 offset, int64 len)
{
	if (offset == durable && session.package_id[0] == '\0')
	{
		/* the first chunk of a session */
		strlcpy(session.package_id, package_id, sizeof(session.package_id));
		session.version = version;
		session.durable = durable;
		session.durable_at = GetCurrentTimestamp();
	}
	session.written = offset + len;
	hash_written(bytes, offset, len);
}

/* Whether the bytes up to done are to be made durable now. */
bool
receiver_session_sync_due(int64 done, int64 total_bytes)
{
	return done == total_bytes || done - session.durable >= SYNC_EVERY ||
		TimestampDifferenceExceeds(session.durable_at, GetCurrentTimestamp(), SYNC_EVERY_MS);
}

/*
 * The part file was fsync'd and the row updated up to done.  If this
 * transaction does not commit, the row and the session differ, and the
 * session is forgotten at the next call.
 */
void
receiver_session_made_durable(int64 done)
{
	session.durable = done;
	session.durable_at = GetCurrentTimestamp();
}
