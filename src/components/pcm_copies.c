/*-------------------------------------------------------------------------
 *
 * pcm_copies.c
 *	  The places of the PCM files and the copies written there: the site
 *	  server's domain directories, the logon servers (failing ones left
 *	  out for a while), and how a batch's copies are made durable, renamed
 *	  into place, removed and swept.
 *
 * Terms (pcm_writer.c defines the PCM file, the batch and the queue):
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
 *	pending copy	a copy written under its temporary name
 *				("<dir>/.<SMS ID>.tmp.<pid>") and not yet renamed: the
 *				batch's copies become durable together, then take their
 *				names (sms_pcm_flush_copies).
 *	stale copy	a temporary copy no batch will rename (its writer was
 *				killed, or its batch failed): swept before the next batch.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "pcm_copies.h"
#include "status.h"
#include "worker.h"
#include "file_util.h"
#include "package_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "common/file_perm.h"
#include "formats/sms_formats.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

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

/* Is a logon server left out of the batches now? */
bool
sms_pcm_servers_failing(void)
{
	return failing_servers != NIL;
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
		sms_execute_kept_noargs("INSERT INTO smsdist.pcm_queue (sms_id) SELECT sms_id FROM smsdist.pcm_files"
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

	if (sms_execute_kept("SELECT root_directory::text FROM smsdist.site_systems"
						 " WHERE site_code = $1 AND role = 'site_server_drive'"
						 " ORDER BY site_system_id LIMIT 1",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist: reading the site server failed");
	return MemoryContextStrdup(sms_step_context,
							   SPI_processed > 0 ?
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) :
							   sms_package_store());
}

PcmPlaces
sms_pcm_places(void)
{
	PcmPlaces	pl = {0};
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	MemoryContext old;

	pl.site_server = MemoryContextStrdup(sms_step_context,
										 sms_pcm_domain_box(sms_site_server_dir()));
	if (sms_execute_kept("SELECT root_directory::text || '/" SMS_FMT_DIR_PCINS "' FROM smsdist.site_systems"
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
 * sms_pcm_flush_copies() makes the data durable with one syncfs() per file system,
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
/* copies of a batch may be left under temporary names (a batch failed) */
static bool sweep_due = true;

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
 * Write a copy under its temporary name (renamed by sms_pcm_flush_copies).  A
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

void
sms_pcm_flush_copies(void)
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
	/* every copy of the batch has its name: nothing of it to sweep */
	sweep_due = false;
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
			!(sms_fmt_stale_temporary(de->d_name, true) ||
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
static void
remove_stale_copies(void)
{
	PcmPlaces	places = sms_pcm_places();
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
void
sms_pcm_remove_copies(PcmPlaces *pl, const char *sms_id, const char *domain)
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


/* A batch begins: no copy of it is pending yet. */
void
sms_pcm_begin_copies(void)
{
	/* (lists of an earlier batch that failed are in a reset context) */
	pending_copies = NIL;
	pending_dirs = NIL;
}

/* The next sweep is due: another writer stopped, maybe leaving copies. */
void
sms_pcm_sweep_soon(void)
{
	sweep_due = true;
}

/* Sweep the stale copies if a batch failed or none ran yet in this process */
void
sms_pcm_sweep_stale_copies(void)
{
	if (sweep_due)
		remove_stale_copies();
}

/*
 * Put a copy of a machine's signed file (buf) in its domain's directory on
 * the site server and on every logon server that is not failing; a machine
 * that moved to another domain loses its old copy.  A logon server whose
 * copy cannot be written is left out of the batch; the others go on.
 * Returns how many copies were written (the site server's included).
 */
int
sms_pcm_place_copies(PcmPlaces *pl, const char *id, const char *domain,
					 const char *old_domain, const char *buf, size_t len)
{
	ListCell   *lc;
	int			copies = 1;

	/* from the first copy of a batch until its renames, a failure leaves some */
	sweep_due = true;
	if (old_domain != NULL && strcmp(old_domain, domain) != 0)
		remove_copy(domain_dir(pl, old_domain), id);
	write_copy(domain_dir(pl, domain), id, buf, len);
	foreach(lc, pl->logon_servers)
	{
		char	   *dir = lfirst(lc);
		char	   *error;

		if (write_copy_at(dir, id, buf, len, pl->all_or_error ? ERROR : LOG, &error))
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
	return copies;
}
