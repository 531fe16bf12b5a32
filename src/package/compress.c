/*-------------------------------------------------------------------------
 *
 * compress.c
 *	  Parallel gzip compression of a package's tar stream.
 *
 * A gzip file may consist of several gzip members one after another; gzip,
 * tar -z and libarchive read them as one stream.  So the tar stream is cut
 * into chunks of SMS_CHUNK_BYTES and each chunk is compressed, independently,
 * as one member: the work splits over as many processes as there are cores
 * (pigz does the same, with threads).
 *
 * Terms:
 *	leader		the process that writes the tar file (the package builder).
 *				It starts compressor workers, compresses chunks itself once
 *				the tar is written, and concatenates the members in order.
 *	compressor	a dynamic background worker with no database connection.  It
 *				attaches to the shared state (a DSM segment), claims the next
 *				chunk, waits until the leader has written that much of the tar
 *				file (it watches the file's size: the pipeline overlaps
 *				writing and compressing, like `tar | pigz`), compresses it to
 *				<parts>/<chunk>.gz and claims the next, until none is left.
 *	chunk state	0 free, 1 claimed, 2 done.  A compressor that dies with a
 *				chunk claimed leaves it at 1; once every compressor has
 *				stopped, the leader compresses whatever is not done itself,
 *				so a lost worker (or no free worker slot at all) costs time,
 *				never correctness.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "compress.h"
#include "file_util.h"
#include "gzip_member.h"
#include "sha256.h"
#include "smsdist.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cryptohash.h"
#include "common/file_perm.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#define SMS_MAX_CHUNKS		(1 << 16)	/* 256 GB of tar at 4 MB a chunk */

/*
 * Incompressible data.  Packages carry much that is compressed already
 * (archives, installers, media): deflate searches it for matches as hard as
 * anything else -- at level 6 three times as slowly as text -- and then
 * stores it, since nothing shrinks.  So each chunk is looked at in slices
 * of SLICE_BYTES, and a slice whose bytes are as good as random (order-0
 * entropy of at least INCOMPRESSIBLE_BITS bits a byte: Huffman coding could
 * save under 1.3 %, and such data has no repeats for LZ77 to find) is
 * stored (level 0) instead of searched; the next slice switches back
 * (deflateParams).  The output is ordinary deflate; only the work differs.
 * smsdist.store_incompressible = off compresses every slice at the level.
 */
#define SLICE_BYTES			(64 * 1024)
#define SLICE_MIN_BYTES		4096	/* below this the estimate means little */
#define INCOMPRESSIBLE_BITS	7.9

typedef struct SmsCompressShared
{
	slock_t		mutex;
	int			level;
	int			method;			/* smsdist.compression_method */
	bool		store_incompressible;	/* smsdist.store_incompressible */
	int64		chunk_bytes;
	char		tar_path[MAXPGPATH];
	char		parts_dir[MAXPGPATH];
	Latch	   *leader_latch;
	pid_t		leader_pid;
	pg_atomic_uint32 next_chunk;
	pg_atomic_uint32 tar_complete;	/* 1 once tar_bytes is final */
	pg_atomic_uint64 tar_bytes;
	pg_atomic_uint64 bytes_compressed;	/* input bytes done, for progress */
	pg_atomic_uint64 bytes_stored;	/* of those, stored as near-random */
	bool		failed;			/* protected by mutex */
	char		error[256];
	uint8		chunk_state[SMS_MAX_CHUNKS];
	int64		chunk_out[SMS_MAX_CHUNKS];	/* compressed size of each member */
} SmsCompressShared;

/* What a compressor leaves behind if it fails: its own error, for the leader. */
static void
note_failure(SmsCompressShared *sh, const char *msg)
{
	SpinLockAcquire(&sh->mutex);
	if (!sh->failed)
	{
		sh->failed = true;
		strlcpy(sh->error, msg, sizeof(sh->error));
	}
	SpinLockRelease(&sh->mutex);
}

static void
part_path(const SmsCompressShared *sh, uint32 chunk, char *buf)
{
	snprintf(buf, MAXPGPATH, "%s/%u.gz", sh->parts_dir, chunk);
}

/* Are these bytes as good as random (see INCOMPRESSIBLE_BITS)? */
static bool
looks_incompressible(const unsigned char *p, size_t n)
{
	/* four tables, so that runs of one byte do not serialise on one counter */
	uint32		count[4][256];
	double		bits = 0.0;
	size_t		i = 0;

	if (n < SLICE_MIN_BYTES)
		return false;
	memset(count, 0, sizeof(count));
	for (; i + 4 <= n; i += 4)
	{
		count[0][p[i]]++;
		count[1][p[i + 1]]++;
		count[2][p[i + 2]]++;
		count[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		count[0][p[i]]++;
	for (int b = 0; b < 256; b++)
	{
		uint32		c = count[0][b] + count[1][b] + count[2][b] + count[3][b];

		if (c > 0)
		{
			double		q = (double) c / (double) n;

			bits -= q * log2(q);
		}
	}
	return bits >= INCOMPRESSIBLE_BITS;
}

/*
 * Deflate output: write what is in outbuf to the part file once less than
 * room is left in it (room 0: write everything).
 */
static void
drain_output(z_stream *zs, int fd, const char *path, char *outbuf, size_t outcap,
			 size_t room, int64 *written)
{
	size_t		n = outcap - zs->avail_out;

	if (zs->avail_out >= room && room > 0)
		return;
	if (n > 0 && !sms_write_all(fd, outbuf, n))
	{
		int			save = errno;

		deflateEnd(zs);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write \"%s\": %m", path)));
	}
	*written += n;
	zs->next_out = (Bytef *) outbuf;
	zs->avail_out = (uInt) outcap;
}

/* deflate() failed: it only does when it is misused */
static void
pg_attribute_noreturn()
deflate_failed(z_stream *zs, int zret)
{
	const char *msg = zs->msg ? zs->msg : "";

	deflateEnd(zs);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("zlib compression failed (%d) %s", zret, msg)));
}

/*
 * How long chunk k of the tar file is, once the leader has written it all:
 * waits (interruptibly) for that; -1 when k lies beyond the end of a
 * complete tar.
 */
static int64
wait_for_chunk(SmsCompressShared *sh, uint32 k)
{
	int64		start = (int64) k * sh->chunk_bytes;

	for (;;)
	{
		struct stat st;
		bool		complete = pg_atomic_read_u32(&sh->tar_complete) != 0;

		if (complete)
		{
			int64		total = (int64) pg_atomic_read_u64(&sh->tar_bytes);

			if (start >= total)
				return -1;
			return Min(sh->chunk_bytes, total - start);
		}
		if (stat(sh->tar_path, &st) == 0 && st.st_size >= start + sh->chunk_bytes)
			return sh->chunk_bytes;
		/* a leader that exited without stopping us (FATAL, SIGTERM) writes no more */
		if (sh->leader_pid != MyProcPid && kill(sh->leader_pid, 0) != 0 && errno == ESRCH)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the package builder (PID %d) has gone", (int) sh->leader_pid)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
read_chunk(SmsCompressShared *sh, int64 start, int64 len, char *inbuf)
{
	int			in_fd;
	int64		done = 0;

	in_fd = OpenTransientFile(sh->tar_path, O_RDONLY | PG_BINARY);
	if (in_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open \"%s\": %m", sh->tar_path)));
	while (done < len)
	{
		ssize_t		r = pg_pread(in_fd, inbuf + done, len - done, start + done);

		if (r < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read \"%s\": %m", sh->tar_path)));
		if (r == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("\"%s\" ended early while being compressed", sh->tar_path)));
		done += r;
	}
	CloseTransientFile(in_fd);
}

/* Should this slice of the chunk be stored (see INCOMPRESSIBLE_BITS)? */
static bool
store_slice(SmsCompressShared *sh, const char *p, size_t n)
{
	if (!sh->store_incompressible || sh->level == 0 ||
		!looks_incompressible((const unsigned char *) p, n))
		return false;
	pg_atomic_fetch_add_u64(&sh->bytes_stored, (uint64) n);
	return true;
}

/*
 * zlib: the chunk as one member, streamed, switching to level 0 for
 * near-random slices and back (deflateParams).  Returns the bytes written.
 */
static int64
deflate_chunk_zlib(SmsCompressShared *sh, const char *inbuf, int64 len,
				   int out_fd, const char *path, char *outbuf, size_t outcap)
{
	z_stream	zs;
	int			zret;
	int			level;
	int64		written = 0;

	memset(&zs, 0, sizeof(zs));
	/* windowBits 15 + 16: a gzip member with its own header and CRC */
	if (deflateInit2(&zs, sh->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize zlib compression")));
	zs.next_out = (Bytef *) outbuf;
	zs.avail_out = (uInt) outcap;
	level = sh->level;
	for (int64 off = 0; off < len; off += SLICE_BYTES)
	{
		size_t		n = (size_t) Min(SLICE_BYTES, len - off);
		int			want = store_slice(sh, inbuf + off, n) ? 0 : sh->level;

		if (want != level)
		{
			/* the switch ends the current block: room for it first */
			drain_output(&zs, out_fd, path, outbuf, outcap, 2 * SLICE_BYTES, &written);
			zret = deflateParams(&zs, want, Z_DEFAULT_STRATEGY);
			if (zret == Z_BUF_ERROR)
			{
				/* the block did not fit after all: empty the buffer, again */
				drain_output(&zs, out_fd, path, outbuf, outcap, 0, &written);
				zret = deflateParams(&zs, want, Z_DEFAULT_STRATEGY);
			}
			if (zret != Z_OK)
				deflate_failed(&zs, zret);
			level = want;
		}
		zs.next_in = (Bytef *) inbuf + off;
		zs.avail_in = (uInt) n;
		while (zs.avail_in > 0)
		{
			drain_output(&zs, out_fd, path, outbuf, outcap, 2 * SLICE_BYTES, &written);
			zret = deflate(&zs, Z_NO_FLUSH);
			if (zret != Z_OK && zret != Z_BUF_ERROR)
				deflate_failed(&zs, zret);
		}
		CHECK_FOR_INTERRUPTS();
	}
	do
	{
		drain_output(&zs, out_fd, path, outbuf, outcap, 2 * SLICE_BYTES, &written);
		zret = deflate(&zs, Z_FINISH);
		if (zret != Z_OK && zret != Z_STREAM_END && zret != Z_BUF_ERROR)
			deflate_failed(&zs, zret);
	} while (zret != Z_STREAM_END);
	drain_output(&zs, out_fd, path, outbuf, outcap, 0, &written);
	deflateEnd(&zs);
	return written;
}

/*
 * libdeflate or ISA-L: whole buffers, so no switching level inside a
 * member.  Each run of consecutive slices of one kind (near-random, or
 * not) becomes a member of its own, stored or compressed.  Returns the
 * bytes written.
 */
static int64
deflate_chunk_runs(SmsCompressShared *sh, SmsMemberCompressor *comp, const char *inbuf,
				   int64 len, int out_fd, const char *path, char *outbuf, size_t outcap)
{
	int64		written = 0;
	int			nslices = (int) ((len + SLICE_BYTES - 1) / SLICE_BYTES);
	bool		store[SMS_CHUNK_BYTES / SLICE_BYTES + 1];
	int			first = 0;

	Assert(nslices <= lengthof(store));
	for (int i = 0; i < nslices; i++)
		store[i] = store_slice(sh, inbuf + (int64) i * SLICE_BYTES,
							   (size_t) Min(SLICE_BYTES, len - (int64) i * SLICE_BYTES));
	while (first < nslices)
	{
		int			end = first + 1;
		int64		from = (int64) first * SLICE_BYTES;
		size_t		size;

		while (end < nslices && store[end] == store[first])
			end++;
		size = sms_member_compress(comp, store[first], inbuf + from,
								   (size_t) (Min((int64) end * SLICE_BYTES, len) - from),
								   outbuf, outcap);
		if (!sms_write_all(out_fd, outbuf, size))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write \"%s\": %m", path)));
		written += size;
		first = end;
		CHECK_FOR_INTERRUPTS();
	}
	return written;
}

/*
 * Compress chunk k of the tar file into its part file (one gzip member, or
 * with libdeflate and ISA-L one per run of slices).  Returns false when k
 * lies beyond the end of a complete tar.  Waits (interruptibly) for the
 * leader to have written the chunk.
 */
static bool
compress_chunk(SmsCompressShared *sh, uint32 k, SmsMemberCompressor *comp,
			   char *inbuf, char *outbuf, size_t outcap)
{
	int64		len = wait_for_chunk(sh, k);
	int			out_fd;
	char		path[MAXPGPATH];
	int64		written;

	if (len < 0)
		return false;
	read_chunk(sh, (int64) k * sh->chunk_bytes, len, inbuf);

	part_path(sh, k, path);
	out_fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (out_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create \"%s\": %m", path)));
	if (comp == NULL)
		written = deflate_chunk_zlib(sh, inbuf, len, out_fd, path, outbuf, outcap);
	else
		written = deflate_chunk_runs(sh, comp, inbuf, len, out_fd, path, outbuf, outcap);
	CloseTransientFile(out_fd);

	if (sms_test_compress_delay_ms > 0)
	{
		/* for tests (smsdist.test_compress_delay_ms): a slow build */
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sms_test_compress_delay_ms, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}

	sh->chunk_out[k] = written;
	pg_write_barrier();
	sh->chunk_state[k] = 2;
	pg_atomic_fetch_add_u64(&sh->bytes_compressed, (uint64) len);
	if (sh->leader_latch)
		SetLatch(sh->leader_latch);
	return true;
}

/*
 * A compressor's buffers: the chunk, its output, and (libdeflate, ISA-L)
 * the library's compressor, made once per process and job.
 */
typedef struct ChunkBuffers
{
	SmsMemberCompressor *comp;	/* NULL: zlib */
	char	   *inbuf;
	char	   *outbuf;
	size_t		outcap;
} ChunkBuffers;

static void
chunk_buffers_init(SmsCompressShared *sh, ChunkBuffers *b)
{
	b->outcap = Max(deflateBound(NULL, (uLong) sh->chunk_bytes),
					sms_member_bound((size_t) sh->chunk_bytes)) + 1024;
	b->inbuf = palloc(sh->chunk_bytes);
	b->outbuf = palloc(b->outcap);
	b->comp = NULL;
	if (sh->method != SMS_COMPRESSION_ZLIB)
		b->comp = sms_member_compressor_create(sh->method, sh->level);
}

static void
chunk_buffers_free(ChunkBuffers *b)
{
	sms_member_compressor_free(b->comp);
	pfree(b->inbuf);
	pfree(b->outbuf);
}

/* Claim and compress chunks until there are none left. */
static void
compress_loop(SmsCompressShared *sh)
{
	ChunkBuffers b;

	chunk_buffers_init(sh, &b);
	for (;;)
	{
		uint32		k = pg_atomic_fetch_add_u32(&sh->next_chunk, 1);

		if (k >= SMS_MAX_CHUNKS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("package is too large: more than %d chunks of %lld bytes",
							SMS_MAX_CHUNKS, (long long) sh->chunk_bytes)));
		sh->chunk_state[k] = 1;
		if (!compress_chunk(sh, k, b.comp, b.inbuf, b.outbuf, b.outcap))
		{
			sh->chunk_state[k] = 0;
			break;
		}
		if (sh->failed)
			break;
	}
	chunk_buffers_free(&b);
}

/* Entry point of a compressor worker: bgw_main_arg is the DSM handle. */
void
smsdist_compressor_main(Datum arg)
{
	dsm_segment *seg;
	SmsCompressShared *sh;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	sms_keep_freed_memory();

	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
	{
		/* the builder finished (or failed) before we started: nothing to do */
		ereport(DEBUG1,
				(errmsg("smsdist compressor: the package builder has gone")));
		proc_exit(0);
	}
	sh = dsm_segment_address(seg);
	pgstat_report_activity(STATE_RUNNING, "compressing package chunks");

	PG_TRY();
	{
		compress_loop(sh);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		note_failure(sh, edata->message);
		if (sh->leader_latch)
			SetLatch(sh->leader_latch);
		PG_RE_THROW();
	}
	PG_END_TRY();

	dsm_detach(seg);
	proc_exit(0);
}

/* Remove the part files and their directory. */
static void
remove_parts(SmsCompressShared *sh)
{
	char		path[MAXPGPATH];
	uint32		n = Min(pg_atomic_read_u32(&sh->next_chunk), SMS_MAX_CHUNKS);

	for (uint32 k = 0; k < n; k++)
	{
		part_path(sh, k, path);
		(void) unlink(path);
	}
	(void) rmdir(sh->parts_dir);
}

/*
 * The leader's side.  sms_compress_begin() sets up the shared state and
 * starts up to nworkers compressors, which begin as soon as the tar file
 * grows; the caller then writes the tar file and calls sms_compress_finish()
 * with its final size, which compresses what is left, waits, and writes
 * out_path (via a temporary name, fsync, rename), returning its size and
 * SHA-256.
 *
 * The members are appended to tmp_path in order as they are done, so that
 * file is final up to its current size while it is written; the progress
 * callback is told each new final size (the package builder wakes a
 * Sender that sends the file as it grows).
 */
struct SmsCompressJob
{
	dsm_segment *seg;
	SmsCompressShared *sh;
	int			nworkers;
	BackgroundWorkerHandle **handles;
	int			out_fd;			/* the output, -1 when not open */
};

SmsCompressJob *
sms_compress_begin(const char *tar_path, const char *parts_dir, int level, int nworkers)
{
	SmsCompressJob *job = palloc0(sizeof(SmsCompressJob));
	SmsCompressShared *sh;

	job->out_fd = -1;

	if (MakePGDirectory(parts_dir) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", parts_dir)));

	job->seg = dsm_create(sizeof(SmsCompressShared), 0);
	sh = job->sh = dsm_segment_address(job->seg);
	memset(sh, 0, offsetof(SmsCompressShared, chunk_state));
	memset(sh->chunk_state, 0, sizeof(sh->chunk_state));
	SpinLockInit(&sh->mutex);
	sh->level = level;
	sh->method = sms_compression_method;
	sh->store_incompressible = sms_store_incompressible;
	sh->chunk_bytes = SMS_CHUNK_BYTES;
	strlcpy(sh->tar_path, tar_path, MAXPGPATH);
	strlcpy(sh->parts_dir, parts_dir, MAXPGPATH);
	sh->leader_latch = MyLatch;
	sh->leader_pid = MyProcPid;
	pg_atomic_init_u32(&sh->next_chunk, 0);
	pg_atomic_init_u32(&sh->tar_complete, 0);
	pg_atomic_init_u64(&sh->tar_bytes, 0);
	pg_atomic_init_u64(&sh->bytes_compressed, 0);
	pg_atomic_init_u64(&sh->bytes_stored, 0);

	job->handles = palloc0(sizeof(BackgroundWorkerHandle *) * Max(nworkers, 1));
	for (int i = 0; i < nworkers; i++)
	{
		if (!sms_start_helper("smsdist_compressor_main", "smsdist compressor",
							  dsm_segment_handle(job->seg), InvalidOid,
							  &job->handles[job->nworkers]))
			break;				/* no free slot: the leader does the rest */
		job->nworkers++;
	}
	return job;
}

/* Input bytes compressed so far (for progress reports). */
int64
sms_compress_progress(SmsCompressJob *job)
{
	return (int64) pg_atomic_read_u64(&job->sh->bytes_compressed);
}

static bool
workers_running(SmsCompressJob *job)
{
	for (int i = 0; i < job->nworkers; i++)
	{
		pid_t		pid;

		if (job->handles[i] != NULL &&
			GetBackgroundWorkerPid(job->handles[i], &pid) != BGWH_STOPPED)
			return true;
	}
	return false;
}

/* Stop the compressors and forget the parts (on error, or after finishing). */
void
sms_compress_abort(SmsCompressJob *job)
{
	if (job == NULL)
		return;
	if (job->out_fd >= 0)
	{
		close(job->out_fd);
		job->out_fd = -1;
	}
	if (job->sh == NULL)
		return;
	for (int i = 0; i < job->nworkers; i++)
		if (job->handles[i] != NULL)
			TerminateBackgroundWorker(job->handles[i]);
	/* the tar is "complete" so that waiting compressors leave */
	pg_atomic_write_u32(&job->sh->tar_complete, 1);
	remove_parts(job->sh);
	dsm_detach(job->seg);
	job->sh = NULL;
}

/* Append part k to the output, hashing it, and remove the part. */
static int64
append_part(SmsCompressShared *sh, uint32 k, int out_fd, const char *out_name,
			pg_cryptohash_ctx *hash, char *buf, size_t bufsize)
{
	char		path[MAXPGPATH];
	int			in_fd;
	ssize_t		r;
	int64		total = 0;

	part_path(sh, k, path);
	in_fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (in_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open \"%s\": %m", path)));
	while ((r = read(in_fd, buf, bufsize)) > 0)
	{
		if (!sms_write_all(out_fd, buf, r))
		{
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write \"%s\": %m", out_name)));
		}
		if (pg_cryptohash_update(hash, (uint8 *) buf, r) < 0)
			elog(ERROR, "could not compute SHA-256");
		total += r;
	}
	if (r < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read \"%s\": %m", path)));
	CloseTransientFile(in_fd);
	(void) unlink(path);
	return total;
}

/*
 * The leader's part once the tar is written: compress chunks alongside the
 * compressors and, as the members are done in order, append them to the
 * output (so the concatenation overlaps the compression instead of
 * following it).  Chunks a lost compressor left undone are compressed here.
 */
int64
sms_compress_finish(SmsCompressJob *job, int64 tar_bytes, const char *out_path,
					const char *tmp_path, char *sha256_hex, int64 *stored_bytes,
					SmsCompressProgress progress, void *arg)
{
	SmsCompressShared *sh = job->sh;
	uint32		nchunks;
	uint32		next_out = 0;
	int			out_fd;
	int64		total_out = 0;
	pg_cryptohash_ctx *hash;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	size_t		bufsize = 1024 * 1024;
	char	   *buf = palloc(bufsize);
	ChunkBuffers b;

	chunk_buffers_init(sh, &b);
	pg_atomic_write_u64(&sh->tar_bytes, (uint64) tar_bytes);
	pg_write_barrier();
	pg_atomic_write_u32(&sh->tar_complete, 1);
	nchunks = (uint32) ((tar_bytes + sh->chunk_bytes - 1) / sh->chunk_bytes);

	/*
	 * Not a transient file: the progress callback runs transactions, and
	 * transient files do not outlive a transaction.  sms_compress_abort()
	 * closes it on error.
	 */
	out_fd = job->out_fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | PG_BINARY,
								pg_file_create_mode);
	if (out_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create \"%s\": %m", tmp_path)));
	hash = pg_cryptohash_create(PG_SHA256);
	if (hash == NULL || pg_cryptohash_init(hash) < 0)
		elog(ERROR, "could not initialize SHA-256");

	while (next_out < nchunks)
	{
		uint32		k;

		/* whatever the leader does next, progress is recorded (about once a second) */
		if (progress)
			progress(sms_compress_progress(job), -1, arg);
		pg_read_barrier();
		if (sh->chunk_state[next_out] == 2)
		{
			int64		n = append_part(sh, next_out, out_fd, tmp_path, hash, buf, bufsize);

			/* start writing it out now, so that the fsync at the end is short */
			pg_flush_data(out_fd, total_out, n);
			total_out += n;
			next_out++;
			/* the file is final up to here: whoever follows it may send it on */
			if (progress)
				progress(sms_compress_progress(job), total_out, arg);
			continue;
		}

		k = pg_atomic_fetch_add_u32(&sh->next_chunk, 1);
		if (k < nchunks)
		{
			sh->chunk_state[k] = 1;
			(void) compress_chunk(sh, k, b.comp, b.inbuf, b.outbuf, b.outcap);
			continue;
		}

		if (!workers_running(job))
		{
			/* whatever a lost compressor claimed and left, do now */
			for (uint32 j = next_out; j < nchunks; j++)
			{
				pg_read_barrier();
				if (sh->chunk_state[j] != 2)
					(void) compress_chunk(sh, j, b.comp, b.inbuf, b.outbuf, b.outcap);
			}
			continue;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	if (progress)
		progress(sms_compress_progress(job), total_out, arg);
	pfree(buf);
	chunk_buffers_free(&b);

	if (pg_fsync(out_fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync \"%s\": %m", tmp_path)));
	if (close(out_fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close \"%s\": %m", tmp_path)));
	job->out_fd = -1;
	if (pg_cryptohash_final(hash, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256");
	pg_cryptohash_free(hash);
	sms_sha256_digest_hex(digest, sha256_hex);

	(void) durable_rename(tmp_path, out_path, ERROR);
	*stored_bytes = (int64) pg_atomic_read_u64(&sh->bytes_stored);

	/* the compressors find nothing left to claim and leave by themselves */
	remove_parts(sh);
	dsm_detach(job->seg);
	job->sh = NULL;
	return total_out;
}
