/*-------------------------------------------------------------------------
 *
 * early_extract.c
 *	  Extracting a package file while it is still being received.
 *
 * A parent site may send its package file while its builder is still
 * compressing it (receiver.c, "streaming"); the file then arrives over the
 * whole build.  Waiting for the last byte before extracting would put the
 * whole extraction after the build.  Instead, as soon as a stream begins
 * here, the Despooler starts an early extractor that extracts the part
 * file as it grows, so that when the job arrives the tree is (nearly)
 * ready and the Despooler only publishes it.
 *
 * Terms:
 *	early extractor	a dynamic background worker connected to the site
 *				database (so that it reads names in the database's
 *				encoding and locale, as the Despooler does), started by the
 *				Despooler for one stream: (package, version, stream ID).
 *				It extracts <package store>/incoming/<package>.<version>.part
 *				with sms_archive_extract_growing, checking every entry
 *				against the manifest as any extraction does, and hashes
 *				every byte it reads.
 *	stage		<drive>/smsdist-despool/<package>.<version>.<stream>.early,
 *				holding tree/ (the extracted package) and manifest (its
 *				manifest, as text).  The drive is the one the Despooler
 *				would choose at the start (most free space).
 *	taking		the Despooler, distributing that package version, waits for
 *				the early extractor to stop and uses the stage instead of
 *				extracting -- only if the extractor finished and the SHA-256
 *				of every byte it read equals that of the package file as
 *				received (receive_end checked it against the parent's).
 *				So what is published is exactly what the parent built, as
 *				with any extraction.
 *
 * When is the file whole?  The receiver writes the part file in place and,
 * once the whole file is verified, renames it into the package store
 * (receive_end).  So the early extractor, finding no more bytes, waits
 * (polling every FOLLOW_POLL_MS) until the file grows, or until the part
 * file's name has gone -- the file is then whole at its current size.  A
 * part file cut back or replaced means the transfer started again (a new
 * stream): the early extraction stops, and the Despooler may start one for
 * the new stream.  It also stops after SMS_EARLY_STALL_MS without a byte,
 * or when the Despooler has gone.  Any stop is only a lost head start: the
 * Despooler extracts the package file as usual.
 *
 * The Despooler keeps one early extractor at a time, in its own process
 * memory: a Despooler that restarts removes every stage (despooler.c,
 * clean_despool_dirs), and its old early extractor stops on its own.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "early_extract.h"
#include "file_util.h"
#include "package_extract.h"
#include "package_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "catalog/pg_type.h"
#include "storage/dsm.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define FOLLOW_POLL_MS		10	/* how often a waiting extractor looks for bytes */
#define STAGE_KEEP_SECS		600 /* a finished stage nobody took is removed then */
#define TRIED_KEYS			8	/* streams not started again */

typedef enum EarlyState
{
	EARLY_RUNNING,
	EARLY_DONE,
	EARLY_FAILED
} EarlyState;

typedef struct EarlyShared
{
	slock_t		mutex;
	pid_t		despooler_pid;
	int			version;
	char		package_id[NAMEDATALEN];
	char		part_path[MAXPGPATH];
	char		stage_dir[MAXPGPATH];
	/* written by the early extractor */
	EarlyState	state;
	int64		bytes_read;
	char		file_sha256[SMS_SHA256_HEX_LEN + 1];
	char		error[256];
} EarlyShared;

/* ----------------------------------------------------------------
 * The early extractor
 * ---------------------------------------------------------------- */

typedef struct Follow
{
	EarlyShared *sh;
	int64		last_offset;
	TimestampTz last_growth;
} Follow;

/*
 * The open part file against the offset read so far: SMS_FOLLOW_MORE if it
 * grew, SMS_FOLLOW_ABANDON if it was cut back (or cannot be looked at),
 * SMS_FOLLOW_END if it has just as many bytes.
 */
static SmsFollowResult
compare_size(int fd, int64 offset, struct stat *st, char **why)
{
	if (fstat(fd, st) != 0)
	{
		*why = psprintf("could not stat the part file: %m");
		return SMS_FOLLOW_ABANDON;
	}
	if (st->st_size > offset)
		return SMS_FOLLOW_MORE;
	if (st->st_size < offset)
	{
		*why = pstrdup("the part file was cut back: the transfer started again");
		return SMS_FOLLOW_ABANDON;
	}
	return SMS_FOLLOW_END;
}

/*
 * sms_archive_extract_growing's follow callback: more bytes may come, the
 * file is whole, or we stop.  No ERROR here (libarchive's callback).
 */
static SmsFollowResult
follow_part_file(void *arg, int fd, int64 offset, char **why)
{
	Follow	   *f = arg;
	EarlyShared *sh = f->sh;
	struct stat fst;
	struct stat pst;
	TimestampTz now;
	SmsFollowResult r;

	if ((r = compare_size(fd, offset, &fst, why)) != SMS_FOLLOW_END)
		return r;
	if (stat(sh->part_path, &pst) != 0)
	{
		if (errno != ENOENT)
		{
			*why = psprintf("could not stat \"%s\": %m", sh->part_path);
			return SMS_FOLLOW_ABANDON;
		}

		/*
		 * Renamed into the package store: whole.  Its last bytes were
		 * written before the rename, perhaps after our fstat: look again.
		 */
		return compare_size(fd, offset, &fst, why);
	}
	if (pst.st_ino != fst.st_ino || pst.st_dev != fst.st_dev)
	{
		*why = pstrdup("the part file was replaced: the transfer started again");
		return SMS_FOLLOW_ABANDON;
	}

	/* nothing new yet */
	now = GetCurrentTimestamp();
	if (offset != f->last_offset || f->last_growth == 0)
	{
		f->last_offset = offset;
		f->last_growth = now;
		SpinLockAcquire(&sh->mutex);
		sh->bytes_read = offset;
		SpinLockRelease(&sh->mutex);
	}
	else if (TimestampDifferenceExceeds(f->last_growth, now, SMS_EARLY_STALL_MS))
	{
		*why = psprintf("no bytes arrived for %d s", SMS_EARLY_STALL_MS / 1000);
		return SMS_FOLLOW_ABANDON;
	}
	if (kill(sh->despooler_pid, 0) != 0 && errno == ESRCH)
	{
		*why = pstrdup("the Despooler has gone");
		return SMS_FOLLOW_ABANDON;
	}
	if (InterruptPending)
	{
		*why = pstrdup("interrupted");
		return SMS_FOLLOW_ABANDON;
	}
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 FOLLOW_POLL_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	return SMS_FOLLOW_MORE;
}

/* Write a whole file (the stage's manifest; a stage does not outlive a crash). */
static void
write_whole_file(const char *path, const char *text, size_t len)
{
	int			fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY);

	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create \"%s\": %m", path)));
	while (len > 0)
	{
		ssize_t		n = write(fd, text, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write \"%s\": %m", path)));
		text += n;
		len -= n;
	}
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close \"%s\": %m", path)));
}

/* Entry point: bgw_main_arg is the DSM handle, bgw_extra the database OID. */
void
smsdist_early_extractor_main(Datum arg)
{
	Oid			dboid;
	dsm_segment *seg;
	EarlyShared *sh;
	Follow		f = {0};
	char		sha[SMS_SHA256_HEX_LEN + 1];

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	sms_set_safe_search_path();
	sms_keep_freed_memory();
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "smsdist early extractor");

	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		proc_exit(0);			/* the Despooler gave up before we started */
	sh = dsm_segment_address(seg);
	f.sh = sh;
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("extracting package %s version %d while it is received",
									sh->package_id, sh->version));

	PG_TRY();
	{
		char	   *tree = sms_early_stage_tree(sh->stage_dir);
		SmsManifest *m;
		char	   *text;

		if (MakePGDirectory(sh->stage_dir) != 0 || MakePGDirectory(tree) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", tree)));
		m = sms_archive_extract_growing(sh->part_path, tree, follow_part_file, &f, sha);
		text = sms_manifest_to_text(m);
		write_whole_file(sms_early_stage_manifest(sh->stage_dir), text, strlen(text));
		SpinLockAcquire(&sh->mutex);
		strlcpy(sh->file_sha256, sha, sizeof(sh->file_sha256));
		sh->bytes_read = f.last_offset;
		sh->state = EARLY_DONE;
		SpinLockRelease(&sh->mutex);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		SpinLockAcquire(&sh->mutex);
		strlcpy(sh->error, edata->message, sizeof(sh->error));
		sh->state = EARLY_FAILED;
		SpinLockRelease(&sh->mutex);
		/* not an error of the site: the Despooler extracts the whole file later */
		ereport(LOG,
				(errmsg("early extraction of package %s version %d stopped: %s",
						sh->package_id, sh->version, edata->message)));
		sms_remove_tree(sh->stage_dir);
	}
	PG_END_TRY();

	dsm_detach(seg);
	proc_exit(0);
}

/* ----------------------------------------------------------------
 * The Despooler's side
 * ---------------------------------------------------------------- */

typedef struct EarlyExtraction
{
	dsm_segment *seg;
	EarlyShared *sh;
	BackgroundWorkerHandle *handle;
	char	   *package_id;
	int			version;
	char	   *stage_dir;
	bool		stopped;
	EarlyState	state;			/* once stopped */
	TimestampTz stopped_at;
} EarlyExtraction;

static EarlyExtraction *early = NULL;	/* in TopMemoryContext */
static char *tried[TRIED_KEYS];
static int	next_tried = 0;

static char *
stream_key(const char *package_id, int version, const char *stream_id)
{
	return psprintf("%s.%d.%s", package_id, version, stream_id);
}

/* Was an early extraction of this stream started already (by this Despooler)? */
bool
sms_early_tried(const char *package_id, int version, const char *stream_id)
{
	char	   *key = stream_key(package_id, version, stream_id);

	for (int i = 0; i < TRIED_KEYS; i++)
		if (tried[i] != NULL && strcmp(tried[i], key) == 0)
			return true;
	return false;
}

bool
sms_early_busy(void)
{
	return early != NULL;
}

bool
sms_early_is_for(const char *package_id, int version)
{
	return early != NULL && early->version == version &&
		strcmp(early->package_id, package_id) == 0;
}

/*
 * Start an early extractor for a stream being received; false if none
 * could be started (no free worker slot).  drive: where the stage goes.
 */
bool
sms_early_start(const char *package_id, int version, const char *stream_id,
				const char *part_path, const char *drive)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	char	   *key = stream_key(package_id, version, stream_id);
	char	   *despool = sms_despool_dir(drive);
	char	   *stage = sms_early_stage_dir(despool, package_id, version, stream_id);
	dsm_segment *seg;
	EarlyShared *sh;
	BackgroundWorkerHandle *handle;

	Assert(early == NULL);
	if (tried[next_tried] != NULL)
		pfree(tried[next_tried]);
	tried[next_tried] = key;	/* not again, whatever happens */
	next_tried = (next_tried + 1) % TRIED_KEYS;

	if (strlen(part_path) >= MAXPGPATH || strlen(stage) >= MAXPGPATH ||
		strlen(package_id) >= NAMEDATALEN)
	{
		MemoryContextSwitchTo(old);
		return false;
	}
	if (MakePGDirectory(despool) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", despool)));
	sms_remove_tree(stage);

	seg = dsm_create(sizeof(EarlyShared), DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		MemoryContextSwitchTo(old);
		return false;
	}
	dsm_pin_mapping(seg);		/* it outlives this step's transaction */
	sh = dsm_segment_address(seg);
	memset(sh, 0, sizeof(EarlyShared));
	SpinLockInit(&sh->mutex);
	sh->despooler_pid = MyProcPid;
	sh->version = version;
	strlcpy(sh->package_id, package_id, sizeof(sh->package_id));
	strlcpy(sh->part_path, part_path, sizeof(sh->part_path));
	strlcpy(sh->stage_dir, stage, sizeof(sh->stage_dir));
	sh->state = EARLY_RUNNING;

	/* connected to our database: names in its encoding and locale */
	if (!sms_start_helper("smsdist_early_extractor_main", "smsdist early extractor",
						  dsm_segment_handle(seg), MyDatabaseId, &handle))
	{
		dsm_detach(seg);
		MemoryContextSwitchTo(old);
		return false;
	}

	early = palloc0(sizeof(EarlyExtraction));
	early->seg = seg;
	early->sh = sh;
	early->handle = handle;
	early->package_id = pstrdup(package_id);
	early->version = version;
	early->stage_dir = stage;
	pfree(despool);
	MemoryContextSwitchTo(old);
	ereport(LOG,
			(errmsg("early extraction of package %s version %d started into \"%s\"",
					package_id, version, stage)));
	return true;
}

/* Has the early extractor stopped?  Then note how. */
static bool
early_stopped(void)
{
	pid_t		pid;

	if (early->stopped)
		return true;
	if (GetBackgroundWorkerPid(early->handle, &pid) != BGWH_STOPPED)
		return false;
	early->stopped = true;
	early->stopped_at = GetCurrentTimestamp();
	SpinLockAcquire(&early->sh->mutex);
	early->state = early->sh->state;
	SpinLockRelease(&early->sh->mutex);
	/* stopped without a word: killed (SIGTERM is FATAL, no PG_CATCH) */
	if (early->state == EARLY_RUNNING)
		early->state = EARLY_FAILED;
	return true;
}

/* Forget the early extraction; its stage too unless keep_stage. */
static void
early_forget(bool keep_stage)
{
	if (!keep_stage)
		sms_remove_tree(early->stage_dir);
	dsm_detach(early->seg);
	pfree(early->handle);
	pfree(early->package_id);
	pfree(early->stage_dir);
	pfree(early);
	early = NULL;
}

/*
 * Every Despooler step: an early extraction that failed is forgotten, and
 * so is a finished one that no job of this site will take (the transfer is
 * over and no pending or active job distributes the package), or that
 * nobody took for STAGE_KEEP_SECS.
 */
void
sms_early_poll(void)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	bool		isnull;
	bool		wanted;

	if (early == NULL || !early_stopped())
		return;
	if (early->state != EARLY_DONE)
	{
		early_forget(false);
		return;
	}
	if (TimestampDifferenceExceeds(early->stopped_at, GetCurrentTimestamp(), STAGE_KEEP_SECS * 1000))
	{
		early_forget(false);
		return;
	}
	values[0] = CStringGetTextDatum(early->package_id);
	values[1] = Int32GetDatum(early->version);
	if (SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM smsdist.package_transfers"
							  "                WHERE package_id = $1 AND source_version = $2)"
							  "    OR EXISTS (SELECT 1 FROM smsdist.jobs"
							  "                WHERE package_id = $1 AND state IN ('pending', 'active')"
							  "                  AND job_type <> 'remove_package'"
							  "                  AND coalesce(source_version, $2) = $2)",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist despooler: looking for the early extraction's job failed");
	wanted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!wanted)
		early_forget(false);
}

/* Read a whole file into memory (the stage's manifest). */
static char *
read_whole_file(const char *path, size_t *len)
{
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	struct stat st;
	char	   *buf;
	size_t		done = 0;

	if (fd < 0 || fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open \"%s\": %m", path)));
	/* written by an early extractor from a manifest within the limit */
	if (st.st_size > SMS_MAX_MANIFEST_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("\"%s\" is larger than %d kB (smsdist.max_manifest_size)",
						path, sms_max_manifest_size_kb)));
	buf = palloc_extended(st.st_size + 1, MCXT_ALLOC_HUGE);
	while (done < (size_t) st.st_size)
	{
		ssize_t		n = read(fd, buf + done, st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read \"%s\": %m", path)));
		done += n;
	}
	CloseTransientFile(fd);
	buf[done] = '\0';
	*len = done;
	return buf;
}

/*
 * The Despooler distributes this package version: if an early extraction
 * of it runs, wait for it to stop.  Returns its stage (tree/ is the
 * extracted package; the caller removes the stage when done with it) and
 * the manifest, if it finished and read exactly the package file whose
 * SHA-256 is sha256; else NULL (the stage is gone).
 */
char *
sms_early_take(const char *package_id, int version, const char *sha256,
			   SmsManifest **manifest)
{
	char	   *stage;
	char	   *text;
	size_t		len;

	if (!sms_early_is_for(package_id, version))
		return NULL;
	while (!early_stopped())
	{
		/* it is reading the last bytes: the file is whole, since a job is here */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	if (early->state != EARLY_DONE)
	{
		early_forget(false);
		return NULL;
	}
	if (sha256 == NULL || strcmp(early->sh->file_sha256, sha256) != 0)
	{
		ereport(LOG,
				(errmsg("early extraction of package %s version %d not used: it read a file with SHA-256 %s, not %s",
						package_id, version, early->sh->file_sha256, sha256 ? sha256 : "(unknown)")));
		early_forget(false);
		return NULL;
	}
	stage = pstrdup(early->stage_dir);
	early_forget(true);
	PG_TRY();
	{
		text = read_whole_file(sms_early_stage_manifest(stage), &len);
		*manifest = sms_manifest_parse(text, len, psprintf("the manifest of \"%s\"", stage));
	}
	PG_CATCH();
	{
		sms_remove_tree(stage);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return stage;
}
