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
#include "compress.h"
#include "gzip_member.h"
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

/*
 * The window of the package file that whole members are inflated from:
 * room for two members of SMS_CHUNK_BYTES stored, refilled (the rest moved
 * to the front) whenever less than one such member is left in it.
 */
typedef struct InflateInput
{
	int			fd;
	const char *path;
	char	   *buf;
	size_t		pos;			/* next byte not consumed */
	size_t		len;			/* bytes in buf */
	bool		eof;
	bool		any;			/* the file is not empty */
	pg_cryptohash_ctx *hash;	/* of every byte read */
} InflateInput;

#define WINDOW_BYTES	((size_t) (2 * SMS_CHUNK_BYTES + 1024 * 1024))
#define REFILL_BELOW	((size_t) (SMS_CHUNK_BYTES + 512 * 1024))

static void
fill_window(InflateInput *in)
{
	if (in->pos > 0)
	{
		memmove(in->buf, in->buf + in->pos, in->len - in->pos);
		in->len -= in->pos;
		in->pos = 0;
	}
	while (in->len < WINDOW_BYTES && !in->eof)
	{
		ssize_t		r = read(in->fd, in->buf + in->len, Min(WINDOW_BYTES - in->len, READ_BYTES * 8));

		if (r < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read package file \"%s\": %m", in->path)));
		if (r == 0)
		{
			in->eof = true;
			break;
		}
		if (pg_cryptohash_update(in->hash, (uint8 *) in->buf + in->len, r) < 0)
			elog(ERROR, "could not compute SHA-256");
		in->len += r;
		in->any = true;
	}
}

/* Send n inflated bytes as 'D' messages. */
static void
send_data(shm_mq_handle *mqh, const char *data, size_t n)
{
	for (size_t off = 0; off < n; off += MESSAGE_BYTES)
	{
		shm_mq_iovec iov[2];

		iov[0].data = "D";
		iov[0].len = 1;
		iov[1].data = data + off;
		iov[1].len = Min(MESSAGE_BYTES, n - off);
		if (shm_mq_sendv(mqh, iov, 2, false, true) != SHM_MQ_SUCCESS)
			proc_exit(0);		/* the extractor has gone */
	}
}

/*
 * Stream the member at the window's position with zlib (which checks its
 * CRC and length), reading on as far as it goes; the rest stays in the
 * window.
 */
static void
inflate_member_zlib(InflateInput *in, z_stream *zs, shm_mq_handle *mqh, char *out)
{
	int			zret;

	if (inflateReset(zs) != Z_OK)
		elog(ERROR, "zlib inflateReset failed");
	zs->next_out = (Bytef *) out;
	zs->avail_out = MESSAGE_BYTES;
	for (;;)
	{
		if (in->pos == in->len)
		{
			fill_window(in);
			if (in->pos == in->len)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("package file \"%s\" ends in the middle of a gzip member",
								in->path)));
		}
		zs->next_in = (Bytef *) in->buf + in->pos;
		zs->avail_in = (uInt) (in->len - in->pos);
		zret = inflate(zs, Z_NO_FLUSH);
		in->pos = in->len - zs->avail_in;
		if (zret != Z_OK && zret != Z_STREAM_END && zret != Z_BUF_ERROR)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("package file \"%s\" is not a valid gzip stream: %s",
							in->path, zs->msg ? zs->msg : "zlib error")));
		if (zs->avail_out == 0 || zret == Z_STREAM_END)
		{
			send_data(mqh, out, MESSAGE_BYTES - zs->avail_out);
			zs->next_out = (Bytef *) out;
			zs->avail_out = MESSAGE_BYTES;
		}
		if (zret == Z_STREAM_END)
			return;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Inflate the package file member by member: whole members with libdeflate
 * (gzip_member.c) when one lies whole in the window and fits the output
 * buffer, anything else streamed by zlib, so that errors read as they
 * always have.
 */
static void
inflate_file(InflaterShared *sh, shm_mq_handle *mqh)
{
	InflateInput in;
	z_stream	zs;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	SmsMemberInflater *dec = sms_member_inflater_create();
	char	   *out = palloc(SMS_CHUNK_BYTES);

	memset(&in, 0, sizeof(in));
	in.path = sh->path;
	in.buf = palloc(WINDOW_BYTES);
	in.fd = OpenTransientFile(sh->path, O_RDONLY | PG_BINARY);
	if (in.fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open package file \"%s\": %m", sh->path)));
	memset(&zs, 0, sizeof(zs));
	/* windowBits 15 + 16: gzip members only */
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize zlib decompression")));
	/* the whole file's hash on the way: the extractor checks it (no second read) */
	in.hash = pg_cryptohash_create(PG_SHA256);
	if (in.hash == NULL || pg_cryptohash_init(in.hash) < 0)
		elog(ERROR, "could not initialize SHA-256");

	for (;;)
	{
		size_t		used;
		size_t		n;

		if (in.len - in.pos < REFILL_BELOW)
			fill_window(&in);
		if (in.pos == in.len)
			break;
		if (sms_member_inflate(dec, in.buf + in.pos, in.len - in.pos, out, SMS_CHUNK_BYTES,
							   &used, &n) == SMS_MEMBER_OK)
		{
			in.pos += used;
			send_data(mqh, out, n);
		}
		else
			inflate_member_zlib(&in, &zs, mqh, out);
		CHECK_FOR_INTERRUPTS();
	}
	if (!in.any)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("package file \"%s\" ends in the middle of a gzip member", sh->path)));
	inflateEnd(&zs);
	sms_member_inflater_free(dec);
	CloseTransientFile(in.fd);
	if (pg_cryptohash_final(in.hash, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256");
	pg_cryptohash_free(in.hash);
	SpinLockAcquire(&sh->mutex);
	sms_sha256_digest_hex(digest, sh->file_sha256);
	SpinLockRelease(&sh->mutex);

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
