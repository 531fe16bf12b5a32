/*-------------------------------------------------------------------------
 *
 * inflate.c
 *	  Decompressing a package file in a second process while the first
 *	  extracts it.
 *
 * Extracting a package does two kinds of work: inflating the gzip stream
 * (zlib, about 60 % of the time for 100 MB) and everything after it
 * (reading the tar stream, hashing and writing every file).  They are done
 * one after the other by one process, on a site server with cores to
 * spare at that moment.  So, as `pigz -d` does with threads, the inflating
 * is handed to an inflater, and the two run side by side.
 *
 * Terms:
 *	extractor	the process that extracts (the Despooler): it starts the
 *				inflater and reads the inflated stream from it
 *				(sms_inflater_read), as libarchive's read callback.
 *	inflater	a dynamic background worker with no database connection.
 *				It reads the package file, inflates its gzip members one
 *				after the other (zlib checks each member's CRC and length),
 *				and sends the bytes through a shared-memory queue (shm_mq,
 *				as parallel query does): messages of a type byte, 'D' and
 *				data, or 'E' once the whole file has been inflated cleanly.
 *				It hashes the file as it reads it, so the extractor learns
 *				the package file's SHA-256 without reading it again.
 *				On an error it leaves its message in the shared area and
 *				detaches: the extractor reports that message.
 *
 * If no worker can be started (no free slot), the caller inflates in its
 * own process, as before; a worker that dies makes the extraction fail
 * with the reason, and the Despooler's retry extracts again.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "inflate.h"
#include "sha256.h"
#include "smsdist.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cryptohash.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"

#define QUEUE_BYTES		((Size) 4 * 1024 * 1024)
#define MESSAGE_BYTES	(256 * 1024)	/* inflated bytes per message */
#define READ_BYTES		(256 * 1024)	/* compressed bytes per read */

typedef struct InflaterShared
{
	slock_t		mutex;
	bool		failed;
	char		error[256];
	char		path[MAXPGPATH];
	char		file_sha256[SMS_SHA256_HEX_LEN + 1];	/* of the whole file, before 'E' */
	/* the queue follows */
} InflaterShared;

#define QUEUE_OFFSET	MAXALIGN(sizeof(InflaterShared))

struct SmsInflater
{
	dsm_segment *seg;
	InflaterShared *sh;
	shm_mq_handle *mqh;
	BackgroundWorkerHandle *handle;
	bool		done;			/* the 'E' message came */
};

/* ----------------------------------------------------------------
 * The inflater
 * ---------------------------------------------------------------- */

static void
inflate_file(InflaterShared *sh, shm_mq_handle *mqh)
{
	int			fd;
	z_stream	zs;
	pg_cryptohash_ctx *hash;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *in = palloc(READ_BYTES);
	char	   *out = palloc(MESSAGE_BYTES + 1);
	bool		member_done = false;
	bool		any = false;
	int			zret;

	fd = OpenTransientFile(sh->path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open package file \"%s\": %m", sh->path)));
	memset(&zs, 0, sizeof(zs));
	/* windowBits 15 + 16: gzip members only */
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize zlib decompression")));
	out[0] = 'D';
	zs.next_out = (Bytef *) out + 1;
	zs.avail_out = MESSAGE_BYTES;
	/* the whole file's hash on the way: the extractor checks it (no second read) */
	hash = pg_cryptohash_create(PG_SHA256);
	if (hash == NULL || pg_cryptohash_init(hash) < 0)
		elog(ERROR, "could not initialize SHA-256");

	for (;;)
	{
		if (zs.avail_in == 0)
		{
			ssize_t		r = read(fd, in, READ_BYTES);

			if (r < 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read package file \"%s\": %m", sh->path)));
			if (r == 0)
				break;
			if (pg_cryptohash_update(hash, (uint8 *) in, r) < 0)
				elog(ERROR, "could not compute SHA-256");
			zs.next_in = (Bytef *) in;
			zs.avail_in = (uInt) r;
			any = true;
		}
		if (member_done)
		{
			/* more after a member: the next member */
			if (inflateReset(&zs) != Z_OK)
				elog(ERROR, "zlib inflateReset failed");
			member_done = false;
		}
		zret = inflate(&zs, Z_NO_FLUSH);
		if (zret == Z_STREAM_END)
			member_done = true;
		else if (zret != Z_OK && zret != Z_BUF_ERROR)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("package file \"%s\" is not a valid gzip stream: %s",
							sh->path, zs.msg ? zs.msg : "zlib error")));
		if (zs.avail_out == 0)
		{
			if (shm_mq_send(mqh, MESSAGE_BYTES + 1, out, false, true) != SHM_MQ_SUCCESS)
				proc_exit(0);	/* the extractor has gone */
			zs.next_out = (Bytef *) out + 1;
			zs.avail_out = MESSAGE_BYTES;
		}
		CHECK_FOR_INTERRUPTS();
	}
	if (!any || !member_done)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("package file \"%s\" ends in the middle of a gzip member", sh->path)));
	inflateEnd(&zs);
	CloseTransientFile(fd);
	if (pg_cryptohash_final(hash, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256");
	pg_cryptohash_free(hash);
	SpinLockAcquire(&sh->mutex);
	sms_sha256_digest_hex(digest, sh->file_sha256);
	SpinLockRelease(&sh->mutex);

	if (zs.avail_out < MESSAGE_BYTES &&
		shm_mq_send(mqh, MESSAGE_BYTES - zs.avail_out + 1, out, false, true) != SHM_MQ_SUCCESS)
		proc_exit(0);
	if (shm_mq_send(mqh, 1, "E", false, true) != SHM_MQ_SUCCESS)
		proc_exit(0);
}

/* Entry point of an inflater: bgw_main_arg is the DSM handle. */
void
smsdist_inflater_main(Datum arg)
{
	dsm_segment *seg;
	InflaterShared *sh;
	shm_mq	   *mq;
	shm_mq_handle *mqh;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	sms_keep_freed_memory();
	/* DSM and transient files need a resource owner */
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "smsdist inflater");

	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		proc_exit(0);			/* the extractor gave up before we started */
	sh = dsm_segment_address(seg);
	mq = (shm_mq *) ((char *) sh + QUEUE_OFFSET);
	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);
	pgstat_report_activity(STATE_RUNNING, "inflating a package file");

	PG_TRY();
	{
		inflate_file(sh, mqh);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		SpinLockAcquire(&sh->mutex);
		sh->failed = true;
		strlcpy(sh->error, edata->message, sizeof(sh->error));
		SpinLockRelease(&sh->mutex);
		/* the extractor sees the queue detached, and reads the error */
		shm_mq_detach(mqh);
		PG_RE_THROW();
	}
	PG_END_TRY();

	shm_mq_detach(mqh);
	dsm_detach(seg);
	proc_exit(0);
}

/* ----------------------------------------------------------------
 * The extractor's side
 * ---------------------------------------------------------------- */

SmsInflater *
sms_inflater_start(const char *path)
{
	SmsInflater *inf;
	shm_mq	   *mq;

	if (strlen(path) >= MAXPGPATH)
		return NULL;
	inf = palloc0(sizeof(SmsInflater));
	inf->seg = dsm_create(QUEUE_OFFSET + QUEUE_BYTES, 0);
	inf->sh = dsm_segment_address(inf->seg);
	SpinLockInit(&inf->sh->mutex);
	inf->sh->failed = false;
	inf->sh->error[0] = '\0';
	inf->sh->file_sha256[0] = '\0';
	strlcpy(inf->sh->path, path, MAXPGPATH);
	mq = shm_mq_create((char *) inf->sh + QUEUE_OFFSET, QUEUE_BYTES);
	shm_mq_set_receiver(mq, MyProc);

	if (!sms_start_helper("smsdist_inflater_main", "smsdist inflater",
						  dsm_segment_handle(inf->seg), InvalidOid, &inf->handle))
	{
		/* no free slot: the caller inflates itself */
		dsm_detach(inf->seg);
		pfree(inf);
		return NULL;
	}
	inf->mqh = shm_mq_attach(mq, inf->seg, inf->handle);
	return inf;
}

/* The inflater's error, or why it stopped without one. */
static char *
inflater_error(SmsInflater *inf)
{
	char		msg[256];

	SpinLockAcquire(&inf->sh->mutex);
	strlcpy(msg, inf->sh->failed ? inf->sh->error : "", sizeof(msg));
	SpinLockRelease(&inf->sh->mutex);
	if (msg[0] == '\0')
		return pstrdup("the inflater process stopped before the end of the package file");
	return pstrdup(msg);
}

/*
 * The next piece of the inflated stream: its length, with *data pointing
 * at it until the next call; 0 at the end.  Never raises an ERROR (it runs
 * as libarchive's read callback): -1 with *err set when the inflater
 * failed, or when an interrupt is pending (the caller's
 * CHECK_FOR_INTERRUPTS acts on it).
 */
ssize_t
sms_inflater_read(SmsInflater *inf, const void **data, char **err)
{
	for (;;)
	{
		Size		n;
		void	   *p;
		shm_mq_result r;

		if (inf->done)
			return 0;
		r = shm_mq_receive(inf->mqh, &n, &p, true);
		if (r == SHM_MQ_SUCCESS)
		{
			const char *msg = p;

			if (n >= 1 && msg[0] == 'E')
			{
				inf->done = true;
				return 0;
			}
			if (n < 2 || msg[0] != 'D')
			{
				*err = pstrdup("the inflater sent a malformed message");
				return -1;
			}
			*data = msg + 1;
			return (ssize_t) (n - 1);
		}
		if (r == SHM_MQ_DETACHED)
		{
			*err = inflater_error(inf);
			return -1;
		}
		if (InterruptPending)
		{
			*err = pstrdup("interrupted");
			return -1;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * After the tar stream's end: the rest of the inflated stream (the tar's
 * padding) must be there too, and the whole file inflate cleanly.  Gives
 * the SHA-256 of the whole package file, as the inflater read it.
 */
void
sms_inflater_finish(SmsInflater *inf, const char *path, char *file_sha256)
{
	for (;;)
	{
		const void *data;
		char	   *err = NULL;
		ssize_t		n = sms_inflater_read(inf, &data, &err);

		CHECK_FOR_INTERRUPTS();
		if (n == 0)
			break;
		if (n < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not read package file \"%s\": %s", path, err)));
	}
	SpinLockAcquire(&inf->sh->mutex);
	strlcpy(file_sha256, inf->sh->file_sha256, SMS_SHA256_HEX_LEN + 1);
	SpinLockRelease(&inf->sh->mutex);
	sms_inflater_stop(inf);
}

/* Stop the inflater (if it still runs) and forget it. */
void
sms_inflater_stop(SmsInflater *inf)
{
	if (inf == NULL || inf->seg == NULL)
		return;
	if (!inf->done)
		TerminateBackgroundWorker(inf->handle);
	dsm_detach(inf->seg);
	inf->seg = NULL;
	inf->mqh = NULL;
}
