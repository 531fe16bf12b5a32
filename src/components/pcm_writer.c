/*-------------------------------------------------------------------------
 *
 * pcm_writer.c
 *	  The Run phase: Package Command Manager instruction files, written by
 *	  the Despooler.
 *
 * In SMS, phase 3 of a job: "the SMS Despooler creates Package Command Manager
 * (PCM) definition files in the site.srv\mancfg.box\pcmdom.box\
 * domain_name.000 directories on the site server.  SMS creates one PCM file
 * for each target workstation and uses the SMS ID of the target
 * workstation to name it.  SMS copies these PCM files to the
 * site.srv\pcins.box directories on all SMS Logon Servers within the SMS
 * site."
 *
 * Terms:
 *	PCM file	the instruction file of one workstation (format "pcm",
 *				src/formats/sms_formats.h, docs/formats.md), named by its
 *				SMS ID: every live run-command job of the machine.
 *	live job	a run-command job that is active, not past its expiry,
 *				targets the machine (job_target_status, not cancelled,
 *				expired or not applicable there) and whose package is
 *				distributed at the machine's site (its 'distribute' row
 *				there is done), with at least one distribution point
 *				location: smsdist.live_run_jobs(), which the management
 *				point's policies use too.
 *	policy		each machine whose file is written or removed gets its
 *				policy (machine_policies) computed again in the same
 *				transaction: an advanced agent is offered the same jobs.
 *	site server copy	<first site-server drive>/mancfg.box/pcmdom.box/
 *				<DOMAIN>.000/<SMS ID> (the package store if the site has no
 *				drive configured).
 *	logon server copy	<logon server root>/pcins.box/<SMS ID>, on every
 *				enabled logon server of this site.
 *	failing logon server	one whose copy could not be written (its disk
 *				full, say): it is left out of the batches, the others
 *				are served, and after a back-off (1 s, doubling up to
 *				smsdist.poll_interval) every file of the site is queued
 *				again so that it gets them all once it can take them.
 *	queue		smsdist.pcm_queue: machines whose file is due, filled by
 *				triggers (a job gained or lost a machine, a job changed
 *				state) and by the Despooler when a job's package is
 *				distributed here.
 *
 * Every file is signed with the site's key (site_key.c), which agents
 * verify; pcm_files.key_id records the key, and a file signed with a key
 * that is no longer the site's is written again.
 *
 * Only machines of this site get files here; a child site writes its own.
 * A machine with no live job has no file (it is removed).  Each file is
 * written under a temporary name, fsynced and renamed, so a workstation
 * reads a whole file or the previous one; a batch's queue rows are removed
 * in the transaction that records the files, so after a crash the files
 * are simply written again.  The temporary names carry the writer's
 * process ID, and a Despooler that starts removes those a crash left
 * (remove_stale_copies), whether or not their machine has a batch to come.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "pcm_writer.h"
#include "status.h"
#include "site_key.h"
#include "worker.h"
#include "file_util.h"
#include "sha256.h"
#include "package_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "common/file_perm.h"
#include "formats/sms_formats.h"
#include "formats/sms_signature.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define PCM_BATCH	2000

/* Split s at sep into a malloc'd array (freed by free_pcm). */
static char **
split_malloc(const char *s, char sep, size_t *n)
{
	char	  **out;

	if (!sms_fmt_split(s, sep, &out, n))
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return out;
}

static char *
strdup_or_error(const char *s)
{
	char	   *d = strdup(s ? s : "");

	if (d == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return d;
}

/* Free what split_malloc and strdup_or_error made for one file. */
static void
free_pcm(SmsPcmFile *f)
{
	for (size_t i = 0; i < f->njobs; i++)
	{
		SmsPcmJob  *j = &f->jobs[i];

		free(j->job_id);
		free(j->package_id);
		free(j->package_name);
		free(j->program);
		free(j->command_line);
		free(j->package_sha256);
		for (size_t k = 0; k < j->nplatforms; k++)
			free(j->platforms[k]);
		free(j->platforms);
		for (size_t k = 0; k < j->nlocations; k++)
			free(j->locations[k]);
		free(j->locations);
	}
	free(f->jobs);
	free(f->machine);
	free(f->site);
	memset(f, 0, sizeof(*f));
}

typedef struct PcmPlaces
{
	char	   *site_server;	/* .../mancfg.box/pcmdom.box */
	List	   *logon_servers;	/* .../pcins.box, each, but failing ones */
	List	   *all_logon_servers;	/* failing ones too: a removal is tried there */
} PcmPlaces;

/*
 * A logon server whose copies could not be written: kept in the
 * Despooler's memory (TopMemoryContext), since a restart tries every
 * server again anyway.
 */
typedef struct FailingServer
{
	char	   *dir;			/* .../pcins.box */
	TimestampTz retry_at;		/* left out of the batches until then */
	long		backoff_ms;
	bool		probing;		/* the files were queued again to try it */
} FailingServer;

static List *failing_servers = NIL;

static FailingServer *
failing_server(const char *dir)
{
	ListCell   *lc;

	foreach(lc, failing_servers)
	{
		FailingServer *f = lfirst(lc);

		if (strcmp(f->dir, dir) == 0)
			return f;
	}
	return NULL;
}

/*
 * A copy could not be written to logon server dir: leave it out for a
 * while (said once, with a status message, when it begins to fail).
 */
static void
server_failed(const char *dir, const char *error)
{
	FailingServer *f = failing_server(dir);
	MemoryContext old;

	if (f == NULL)
	{
		SmsStatusRefs refs = {0};

		old = MemoryContextSwitchTo(TopMemoryContext);
		f = palloc0(sizeof(FailingServer));
		f->dir = pstrdup(dir);
		failing_servers = lappend(failing_servers, f);
		MemoryContextSwitchTo(old);
		sms_status_message(SMS_DESPOOLER, SMS_WARNING, SMS_MSG_LOGON_SERVER_FAILING, &refs,
						   "PCM files could not be written to the logon server \"%s\": %s; the other "
						   "places are served, and it is tried again until it takes them.", dir, error);
	}
	f->backoff_ms = f->backoff_ms == 0 ? 1000 : Min(f->backoff_ms * 2, (long) sms_poll_interval * 1000L);
	f->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), f->backoff_ms);
	f->probing = false;
	ereport(LOG,
			(errmsg("smsdist run phase: left out logon server \"%s\" for %ld ms: %s",
					dir, f->backoff_ms, error)));
}

/*
 * Failing logon servers whose back-off is over: every file of the site is
 * queued again, so that the next batches try them with every file.  Returns
 * the earliest time a failing server is to be tried (DT_NOEND if none).
 */
TimestampTz
sms_pcm_retry_failing_servers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = DT_NOEND;
	ListCell   *lc;
	bool		requeue = false;

	foreach(lc, failing_servers)
	{
		FailingServer *f = lfirst(lc);

		if (!f->probing && f->retry_at <= now)
		{
			f->probing = true;
			requeue = true;
		}
		if (!f->probing && f->retry_at < next)
			next = f->retry_at;
	}
	if (requeue &&
		SPI_execute("INSERT INTO smsdist.pcm_queue (sms_id) SELECT sms_id FROM smsdist.pcm_files"
					"    ON CONFLICT (sms_id) DO NOTHING", false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist run phase: queueing the files of a failing logon server failed");
	return next;
}

/* A copy reached logon server dir: it is failing no more. */
static void
server_served(const char *dir)
{
	FailingServer *f = failing_server(dir);

	if (f == NULL)
		return;
	ereport(LOG,
			(errmsg("smsdist run phase: logon server \"%s\" takes PCM files again", dir)));
	failing_servers = list_delete_ptr(failing_servers, f);
	pfree(f->dir);
	pfree(f);
}

/*
 * The site server's directory for instruction files: the root of the
 * site's first site-server drive, or the package store if it has none (in
 * sms_step_context).  The Offer Manager's boxes are there too.
 */
char *
sms_site_server_dir(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};

	if (SPI_execute_with_args("SELECT root_directory::text FROM smsdist.site_systems"
							  " WHERE site_code = $1 AND role = 'site_server_drive'"
							  " ORDER BY site_system_id LIMIT 1",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist: reading the site server failed");
	return MemoryContextStrdup(sms_step_context,
							   SPI_processed > 0 ?
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) :
							   sms_package_store());
}

static PcmPlaces
pcm_places(void)
{
	PcmPlaces	pl = {0};
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	MemoryContext old;

	pl.site_server = MemoryContextStrdup(sms_step_context,
										 sms_pcm_domain_box(sms_site_server_dir()));
	if (SPI_execute_with_args("SELECT root_directory::text || '/" SMS_FMT_DIR_PCINS "' FROM smsdist.site_systems"
							  " WHERE site_code = $1 AND role = 'logon_server' AND enabled"
							  " ORDER BY site_system_id",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist run phase: reading the logon servers failed");
	old = MemoryContextSwitchTo(sms_step_context);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *dir = pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		FailingServer *f = failing_server(dir);

		pl.all_logon_servers = lappend(pl.all_logon_servers, dir);
		if (f == NULL || f->probing)
			pl.logon_servers = lappend(pl.logon_servers, dir);
	}
	MemoryContextSwitchTo(old);
	return pl;
}

static char *
domain_dir(PcmPlaces *pl, const char *domain)
{
	return psprintf("%s/%s.000", pl->site_server, domain);
}

/*
 * Files are written in batches: each copy goes to "<dir>/.<name>.tmp.<pid>"
 * (a name no reader takes: they refuse names that start with '.'), then
 * flush_copies() makes the data durable with one syncfs() per file system,
 * renames every copy into place and fsyncs each directory once.  A reader
 * sees the old file or the new one, never part of one, as with a
 * per-file fsync -- at a fraction of its cost for 100,000 machines.
 */
typedef struct PendingCopy
{
	char	   *dir;
	char	   *name;
} PendingCopy;

static List *pending_copies = NIL;	/* in sms_step_context */
static List *pending_dirs = NIL;	/* distinct directories written to */

/* A copy's temporary name: this process's ID in it (see remove_stale_copies) */
static char *
copy_tmp_path(const char *dir, const char *name)
{
	return psprintf("%s/.%s.tmp.%d", dir, name, MyProcPid);
}

/*
 * A copy could not be written (message says why): an ERROR at elevel
 * ERROR; otherwise its temporary file goes (fd, if open, is closed first)
 * and false is returned with *error set.
 */
static bool
copy_failed(const char *tmp, int fd, char *message, int elevel, char **error,
			MemoryContext old)
{
	if (fd >= 0)
		close(fd);
	MemoryContextSwitchTo(old);
	if (elevel >= ERROR)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg_internal("%s", message)));
	if (tmp != NULL)
		(void) unlink(tmp);
	*error = message;
	return false;
}

/*
 * Write a copy under its temporary name (renamed by flush_copies).  A
 * problem is an ERROR, unless elevel is lower (a logon server's copy):
 * then it is reported to the caller, false with *error set, and nothing of
 * the copy is left.
 */
static bool
write_copy_at(const char *dir, const char *name, const char *buf, size_t len,
			  int elevel, char **error)
{
	MemoryContext old = MemoryContextSwitchTo(sms_step_context);
	PendingCopy *pc = palloc(sizeof(PendingCopy));
	char	   *tmp = copy_tmp_path(dir, name);
	ListCell   *lc;
	bool		known = false;
	int			fd;

	foreach(lc, pending_dirs)
		if (strcmp(lfirst(lc), dir) == 0)
			known = true;
	if (!known)
	{
		if (pg_mkdir_p(unconstify(char *, dir), pg_dir_create_mode) != 0 && errno != EEXIST)
			return copy_failed(NULL, -1, psprintf("could not create directory \"%s\": %m", dir),
							   elevel, error, old);
		pending_dirs = lappend(pending_dirs, pstrdup(dir));
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return copy_failed(NULL, -1, psprintf("could not create PCM file \"%s\": %m", tmp),
						   elevel, error, old);
	if (!sms_write_all(fd, buf, len) || fchmod(fd, 0644) != 0)
		return copy_failed(tmp, fd, psprintf("could not write PCM file \"%s\": %m", tmp),
						   elevel, error, old);
	if (close(fd) != 0)
		return copy_failed(tmp, -1, psprintf("could not close PCM file \"%s\": %m", tmp),
						   elevel, error, old);
	pc->dir = pstrdup(dir);
	pc->name = pstrdup(name);
	pending_copies = lappend(pending_copies, pc);
	MemoryContextSwitchTo(old);
	return true;
}

/* The site server's copy: it must be written, or the batch fails. */
static void
write_copy(const char *dir, const char *name, const char *buf, size_t len)
{
	(void) write_copy_at(dir, name, buf, len, ERROR, NULL);
}

static void
flush_copies(void)
{
	ListCell   *lc;
	List	   *devices = NIL;

	/* the data, durable: one syncfs() per file system, or (few) an fsync each */
	foreach(lc, list_length(pending_copies) <= SMS_FEW_FILES ? NIL : pending_dirs)
	{
		const char *dir = lfirst(lc);
		struct stat st;
		int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		bool		seen = false;
		ListCell   *d;

		if (fd < 0 || fstat(fd, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open directory \"%s\": %m", dir)));
		foreach(d, devices)
			if ((dev_t) lfirst_oid(d) == st.st_dev)
				seen = true;
		if (!seen)
		{
			if (syncfs(fd) != 0)
			{
				int			save_errno = errno;

				close(fd);
				errno = save_errno;
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not sync the file system of \"%s\": %m", dir)));
			}
			devices = lappend_oid(devices, (Oid) st.st_dev);
		}
		close(fd);
	}
	/* then the names */
	foreach(lc, pending_copies)
	{
		PendingCopy *pc = lfirst(lc);
		char	   *tmp = copy_tmp_path(pc->dir, pc->name);
		char	   *path = psprintf("%s/%s", pc->dir, pc->name);

		if (list_length(pending_copies) <= SMS_FEW_FILES)
			(void) fsync_fname_ext(tmp, false, false, ERROR);
		if (rename(tmp, path) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not rename \"%s\" to \"%s\": %m", tmp, path)));
		pfree(tmp);
		pfree(path);
	}
	foreach(lc, pending_dirs)
		(void) fsync_fname_ext(lfirst(lc), true, false, ERROR);
	pending_copies = NIL;
	pending_dirs = NIL;
}

static void
remove_copy(const char *dir, const char *name)
{
	char	   *path = psprintf("%s/%s", dir, name);

	if (unlink(path) != 0 && errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not remove PCM file \"%s\": %m", path)));
}

/*
 * Remove the temporary copies in dir that no batch will rename: those of a
 * process that is gone (a Despooler killed between write and rename), of
 * this one (a batch of its that failed), and the names without a process
 * ID that an earlier version wrote.  Problems are logged only: a batch
 * never fails for a leftover.  Returns how many were removed.
 */
static int
remove_stale_in(const char *dir)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	int			removed = 0;

	if (d == NULL && errno == ENOENT)
		return 0;
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		size_t		len = strlen(de->d_name);
		char	   *path;

		if (de->d_name[0] != '.' ||
			!(sms_stale_temporary(de->d_name, true) ||
			  (len > 5 && strcmp(de->d_name + len - 4, ".tmp") == 0)))
			continue;
		path = psprintf("%s/%s", dir, de->d_name);
		if (unlink(path) == 0)
			removed++;
		else if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("smsdist run phase: could not remove \"%s\": %m", path)));
		pfree(path);
	}
	if (d != NULL)
		FreeDir(d);
	return removed;
}

/*
 * Every place of PCM files swept of stale temporary copies: each domain's
 * directory on the site server and every logon server's box.  Done when a
 * Despooler starts and after a batch that failed (sweep_due), before any
 * batch of its own is in flight, so a machine that left the site (no batch
 * of its own to come) does not keep the file of a crash.
 */
static bool sweep_due = true;

static void
remove_stale_copies(void)
{
	PcmPlaces	places = pcm_places();
	PcmPlaces  *pl = &places;
	DIR		   *d = AllocateDir(pl->site_server);
	struct dirent *de;
	ListCell   *lc;
	int			removed = 0;

	while (d != NULL && (de = ReadDirExtended(d, pl->site_server, LOG)) != NULL)
	{
		char	   *sub;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		sub = psprintf("%s/%s", pl->site_server, de->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			removed += remove_stale_in(sub);
		pfree(sub);
	}
	if (d != NULL)
		FreeDir(d);
	foreach(lc, pl->all_logon_servers)
		removed += remove_stale_in(lfirst(lc));
	if (removed > 0)
		ereport(LOG,
				(errmsg("smsdist run phase: removed %d temporary PCM file%s left by an earlier batch",
						removed, removed == 1 ? "" : "s")));
	sweep_due = false;
}

/*
 * Remove every copy of a machine's file (domain: where the site server's
 * is).  On a failing logon server too: a removal needs no room, so a full
 * disk does not keep a stale file there; a removal that fails on a logon
 * server is logged and does not fail the batch.
 */
static void
remove_pcm(PcmPlaces *pl, const char *sms_id, const char *domain)
{
	ListCell   *lc;

	if (domain != NULL)
		remove_copy(domain_dir(pl, domain), sms_id);
	foreach(lc, pl->all_logon_servers)
	{
		char	   *path = psprintf("%s/%s", (char *) lfirst(lc), sms_id);

		if (unlink(path) != 0 && errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("smsdist run phase: could not remove PCM file \"%s\": %m", path)));
		pfree(path);
	}
}

/*
 * The batch's pcm_files rows, written in two statements at its end (one
 * statement per machine cost more than writing its three files).
 */
static List *rec_ids = NIL,
		   *rec_domains = NIL,
		   *rec_jobs = NIL,
		   *rec_sha = NIL,
		   *forgotten = NIL;
static int	rec_copies = 0;

/* the key that signs the current batch (site_key.c keeps it loaded) */
static const SmsSigner *batch_signer = NULL;

static void
record_file(const char *sms_id, const char *domain, const char *jobs, const char *buf,
			size_t len, int copies)
{
	MemoryContext old = MemoryContextSwitchTo(sms_step_context);
	char		hex[SMS_SHA256_HEX_LEN + 1];

	sms_sha256_buffer(buf, len, hex);
	rec_ids = lappend(rec_ids, pstrdup(sms_id));
	rec_domains = lappend(rec_domains, pstrdup(domain));
	rec_jobs = lappend(rec_jobs, pstrdup(jobs));
	rec_sha = lappend(rec_sha, pstrdup(hex));
	rec_copies = copies;
	MemoryContextSwitchTo(old);
}

static void
forget_file(const char *sms_id)
{
	MemoryContext old = MemoryContextSwitchTo(sms_step_context);

	forgotten = lappend(forgotten, pstrdup(sms_id));
	MemoryContextSwitchTo(old);
}

static Datum
text_array(List *l)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(list_length(l), 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, l)
		d[i++] = CStringGetTextDatum(lfirst(lc));
	return PointerGetDatum(construct_array(d, i, TEXTOID, -1, false, TYPALIGN_INT));
}

static void
record_batch(void)
{
	if (rec_ids != NIL)
	{
		Oid			types[6] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, TEXTOID};
		Datum		values[6] = {text_array(rec_ids), text_array(rec_domains), text_array(rec_jobs),
		text_array(rec_sha), Int32GetDatum(rec_copies),
		CStringGetTextDatum(sms_sig_signer_key_id(batch_signer))};

		if (SPI_execute_with_args("INSERT INTO smsdist.pcm_files (sms_id, domain, jobs, sha256, copies, key_id)"
								  "SELECT i, d, string_to_array(j, ','), s, $5, $6"
								  "  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(i, d, j, s)"
								  "    ON CONFLICT (sms_id) DO UPDATE"
								  "   SET domain = EXCLUDED.domain, jobs = EXCLUDED.jobs, sha256 = EXCLUDED.sha256,"
								  "       copies = EXCLUDED.copies, key_id = EXCLUDED.key_id,"
								  "       written_at = clock_timestamp()",
								  6, types, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "smsdist run phase: recording PCM files failed");
	}
	if (forgotten != NIL)
	{
		Oid			types[1] = {TEXTARRAYOID};
		Datum		values[1] = {text_array(forgotten)};

		if (SPI_execute_with_args("DELETE FROM smsdist.pcm_files WHERE sms_id = ANY ($1::text[])",
								  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "smsdist run phase: forgetting PCM files failed");
	}
}

/*
 * A PCM file signed with another key than the site's current one (after
 * smsdist.signing_key changed) is queued to be written again, so that every
 * file carries the new key's signature before agents drop the old key.
 * Checked once per key in each process: the files this process writes
 * afterwards record the key they carry (pcm_files.key_id).
 */
static void
requeue_if_key_changed(void)
{
	static char checked[SMS_SIG_KEY_ID_LEN + 1] = "";
	const char *id = sms_sig_signer_key_id(batch_signer);
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (strcmp(checked, id) == 0)
		return;
	values[0] = CStringGetTextDatum(id);
	if (SPI_execute_with_args("INSERT INTO smsdist.pcm_queue (sms_id)"
							  "SELECT sms_id FROM smsdist.pcm_files WHERE key_id IS DISTINCT FROM $1"
							  "    ON CONFLICT (sms_id) DO NOTHING",
							  1, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist run phase: queueing PCM files signed with another key failed");
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("smsdist run phase: %llu PCM file%s to sign again with key %s",
						(unsigned long long) SPI_processed, SPI_processed == 1 ? "" : "s", id)));
	strlcpy(checked, id, sizeof(checked));
}

/*
 * machine_policies is written by the PCM writer and the Offer Manager, each
 * computing policies in its own snapshot: without an order, a writer whose
 * snapshot predates the other's commit could store an older policy over a
 * newer one.  Each takes this lock (until its transaction ends) before the
 * statement that computes and stores, so that statement's snapshot sees
 * everything the other stored.
 */
void
sms_lock_machine_policies(void)
{
	if (SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock("
					" pg_catalog.hashtextextended('smsdist machine_policies', 0))",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist: locking machine_policies failed");
}

/*
 * The management point follows the PCM files: the policy of every machine
 * of the batch (its run-command jobs are what its PCM file says, see
 * live_run_jobs()) is computed again and stored in machine_policies, and
 * smsdist_policy_<SMS ID> is notified for each one that changed.  Machines
 * of other sites have no policy here unless one was stored (it is kept
 * right); a machine that no longer exists loses its row.
 */
static void
refresh_policies(Datum batch)
{
	Oid			types[2] = {TEXTARRAYOID, TEXTOID};
	Datum		values[2] = {batch, CStringGetTextDatum(sms_site_code)};

	sms_lock_machine_policies();
	if (SPI_execute_with_args("DELETE FROM smsdist.machine_policies mp"
							  " WHERE mp.sms_id = ANY ($1::text[])"
							  "   AND NOT EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id = mp.sms_id)",
							  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "smsdist run phase: forgetting policies failed");
	if (SPI_execute_with_args("SELECT smsdist.store_machine_policies(array("
							  "  SELECT r.sms_id::text FROM smsdist.system_resources r"
							  "   WHERE r.sms_id = ANY ($1::text[])"
							  "     AND (r.site_code = $2"
							  "          OR EXISTS (SELECT 1 FROM smsdist.machine_policies mp WHERE mp.sms_id = r.sms_id))))",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist run phase: updating machine policies failed");
}

/*
 * One job of a PCM file, from a row of live_run_jobs() as
 * sms_pcm_write_queued() reads it (column 1 is the machine).  Strings are
 * malloc'd: the format library frees them (free_pcm).
 */
static void
pcm_job_from_row(HeapTuple tup, TupleDesc td, SmsPcmJob *j)
{
	bool		null;
	Datum		d;

	memset(j, 0, sizeof(*j));
	j->job_id = strdup_or_error(SPI_getvalue(tup, td, 2));
	j->package_id = strdup_or_error(SPI_getvalue(tup, td, 3));
	j->package_name = strdup_or_error(SPI_getvalue(tup, td, 4));
	j->package_version = DatumGetInt32(SPI_getbinval(tup, td, 5, &null));
	j->program = strdup_or_error(SPI_getvalue(tup, td, 6));
	j->command_line = strdup_or_error(SPI_getvalue(tup, td, 7));
	j->platforms = split_malloc(SPI_getvalue(tup, td, 8), ',', &j->nplatforms);
	j->offer_after = DatumGetInt64(SPI_getbinval(tup, td, 9, &null));
	d = SPI_getbinval(tup, td, 10, &null);
	j->mandatory_at = null ? SMS_TIME_NONE : DatumGetInt64(d);
	d = SPI_getbinval(tup, td, 11, &null);
	j->expires_at = null ? SMS_TIME_NONE : DatumGetInt64(d);
	j->max_run_minutes = DatumGetInt32(SPI_getbinval(tup, td, 12, &null));
	j->locations = split_malloc(SPI_getvalue(tup, td, 13), '\n', &j->nlocations);
	j->package_sha256 = strdup_or_error(SPI_getvalue(tup, td, 14));
	j->user_rights = DatumGetBool(SPI_getbinval(tup, td, 15, &null));
}

/*
 * Take up to PCM_BATCH machines off the queue (committed with the batch).
 * Returns how many; *batch is their SMS IDs (text[]), in order.
 *
 * The batch is materialized first: as "IN (SELECT ... LIMIT)" the planner,
 * misled by a queue that was empty at its last ANALYZE, could rerun the
 * subquery for every row -- minutes for 100,000 rows.
 */
static int
take_queued_batch(Datum *batch)
{
	bool		isnull;
	int			n;

	if (SPI_execute("WITH pick AS MATERIALIZED ("
					"  SELECT sms_id FROM smsdist.pcm_queue ORDER BY queued_at"
					"   LIMIT " CppAsString2(PCM_BATCH) " FOR UPDATE SKIP LOCKED), "
					"b AS ("
					"  DELETE FROM smsdist.pcm_queue q USING pick WHERE q.sms_id = pick.sms_id"
					"  RETURNING q.sms_id)"
					"SELECT array_agg(sms_id::text ORDER BY sms_id), count(*)::integer FROM b",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist run phase: taking queued PCM files failed");
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (n > 0)
		*batch = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return n;
}

/*
 * Sign the PCM file of machine id (buf, malloc'd: freed here whatever
 * happens) and put a copy in its domain's directory on the site server and
 * on every logon server; a machine that moved to another domain loses its
 * old copy.  Recorded with the batch (record_file).
 */
static void
place_pcm_file(PcmPlaces *pl, const char *id, const char *domain, const char *old_domain,
			   const char *joblist, char *buf, size_t len)
{
	char		err[512];
	ListCell   *lc;
	volatile int copies = 1;

	PG_TRY();
	{
		if (!sms_sig_append(batch_signer, &buf, &len, err, sizeof(err)))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("could not sign the PCM file of machine %s: %s", id, err)));
		if (old_domain != NULL && strcmp(old_domain, domain) != 0)
			remove_copy(domain_dir(pl, old_domain), id);
		write_copy(domain_dir(pl, domain), id, buf, len);
		foreach(lc, pl->logon_servers)
		{
			char	   *dir = lfirst(lc);
			char	   *error;

			if (write_copy_at(dir, id, buf, len, LOG, &error))
			{
				server_served(dir);
				copies++;
			}
			else
			{
				/* out of this batch; the others go on */
				server_failed(dir, error);
				pl->logon_servers = foreach_delete_current(pl->logon_servers, lc);
			}
		}
		record_file(id, domain, joblist, buf, len, copies);
	}
	PG_FINALLY();
	{
		free(buf);
	}
	PG_END_TRY();
}

/*
 * Write the PCM files of a batch of queued machines.  Returns true if there
 * was a batch (the caller commits, which takes it off the queue).
 */
bool
sms_pcm_write_queued(void)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	Datum		batch = (Datum) 0;
	int			n;
	PcmPlaces	pl;
	SPITupleTable *machines;
	SPITupleTable *jobs;
	uint64		nmachines;
	uint64		njobrows;
	volatile uint64 jr = 0;
	char		err[512];
	volatile int written = 0,
				removed = 0;
	TimestampTz t_start = GetCurrentTimestamp();
	TimestampTz t_query,
				t_write;

	/* one key for the whole batch, recorded with its files */
	batch_signer = sms_site_signer();
	requeue_if_key_changed();

	if (sweep_due)
		remove_stale_copies();
	n = take_queued_batch(&batch);
	if (n == 0)
		return false;
	/* until its copies are renamed: a batch that fails leaves them */
	sweep_due = true;
	pgstat_report_activity(STATE_RUNNING, psprintf("writing %d PCM file%s", n, n == 1 ? "" : "s"));
	/* (lists of an earlier batch that failed are in a reset context) */
	pending_copies = NIL;
	pending_dirs = NIL;
	rec_ids = rec_domains = rec_jobs = rec_sha = forgotten = NIL;
	pl = pcm_places();

	/* the batch's machines: at this site (with their domain) or not */
	values[0] = batch;
	values[1] = CStringGetTextDatum(sms_site_code);
	types[0] = TEXTARRAYOID;
	/*
	 * (Lookups by key for each machine of the batch: as joins, the planner
	 * hashed all of pcm_files for every batch of 2,000.)
	 */
	if (SPI_execute_with_args("SELECT m.id,"
							  "       (SELECT r.domain::text FROM smsdist.system_resources r"
							  "         WHERE r.sms_id = m.id AND r.site_code = $2),"
							  "       (SELECT f.domain::text FROM smsdist.pcm_files f WHERE f.sms_id = m.id)"
							  "  FROM unnest($1::text[]) m(id)"
							  " ORDER BY m.id",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist run phase: reading machines failed");
	machines = SPI_tuptable;
	nmachines = SPI_processed;
	SPI_tuptable = NULL;		/* keep it: the next query makes its own */

	/* their live jobs, in machine then job order */
	if (SPI_execute_with_args("SELECT lj.sms_id, lj.job_id, lj.package_id, lj.package_name,"
							  "       lj.source_version, lj.program_name, lj.command_line,"
							  "       coalesce(array_to_string(lj.platforms, ','), ''),"
							  "       extract(epoch FROM lj.offer_after)::bigint,"
							  "       extract(epoch FROM lj.mandatory_at)::bigint,"
							  "       extract(epoch FROM lj.expires_at)::bigint,"
							  "       coalesce(lj.max_run_minutes, 0),"
							  "       array_to_string(lj.locations, E'\\n'),"
							  "       lj.package_sha256,"
							  "       lj.run_with = 'user_rights'"
							  "  FROM smsdist.live_run_jobs($1::text[], $2) lj"
							  " ORDER BY lj.sms_id, lj.job_id",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist run phase: reading live jobs failed");
	jobs = SPI_tuptable;
	njobrows = SPI_processed;
	t_query = GetCurrentTimestamp();

	for (uint64 i = 0; i < nmachines; i++)
	{
		char	   *id = SPI_getvalue(machines->vals[i], machines->tupdesc, 1);
		char	   *domain = SPI_getvalue(machines->vals[i], machines->tupdesc, 2);
		char	   *old_domain = SPI_getvalue(machines->vals[i], machines->tupdesc, 3);
		SmsPcmFile	f = {0};
		StringInfoData joblist;
		char	   *buf = NULL;
		size_t		len;

		CHECK_FOR_INTERRUPTS();
		initStringInfo(&joblist);
		/* the job rows of this machine */
		while (jr < njobrows && strcmp(SPI_getvalue(jobs->vals[jr], jobs->tupdesc, 1), id) == 0)
		{
			SmsPcmJob  *j;

			f.jobs = realloc(f.jobs, sizeof(SmsPcmJob) * (f.njobs + 1));
			if (f.jobs == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			j = &f.jobs[f.njobs++];
			pcm_job_from_row(jobs->vals[jr], jobs->tupdesc, j);
			appendStringInfo(&joblist, "%s%s", joblist.len ? "," : "", j->job_id);
			jr++;
		}

		if (f.njobs == 0 || domain == NULL)
		{
			/* no live job, or not (any more) a machine of this site */
			free_pcm(&f);
			if (old_domain != NULL || domain != NULL)
			{
				remove_pcm(&pl, id, old_domain ? old_domain : domain);
				if (old_domain != NULL && domain != NULL && strcmp(old_domain, domain) != 0)
					remove_pcm(&pl, id, domain);
				forget_file(id);
				removed++;
			}
			continue;
		}

		f.machine = strdup_or_error(id);
		f.site = strdup_or_error(sms_site_code);
		f.generated = (int64) time(NULL);
		if (!sms_pcm_to_text(&f, &buf, &len, err, sizeof(err)))
		{
			free_pcm(&f);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("could not make the PCM file of machine %s: %s", id, err)));
		}
		free_pcm(&f);
		place_pcm_file(&pl, id, domain, old_domain, joblist.data, buf, len);
		written++;
	}
	t_write = GetCurrentTimestamp();
	flush_copies();
	sweep_due = false;
	record_batch();
	refresh_policies(batch);
	SPI_freetuptable(machines);
	if (written + removed > 0)
		ereport(DEBUG1,
				(errmsg("smsdist run phase: %d PCM file%s written, %d removed (reading %ld ms, writing %ld ms, syncing %ld ms)",
						written, written == 1 ? "" : "s", removed,
						TimestampDifferenceMilliseconds(t_start, t_query),
						TimestampDifferenceMilliseconds(t_query, t_write),
						TimestampDifferenceMilliseconds(t_write, GetCurrentTimestamp()))));
	return true;
}
