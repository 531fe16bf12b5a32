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
 *	helper		a process (smsdist pcm writer, a dynamic background
 *				worker) that writes batches of the same queue beside the
 *				Despooler while its batches come out full: the Run phase
 *				of a job for many machines on two cores.
 *	copies		the site server's and every logon server's copy of a file,
 *				their places and failing logon servers: pcm_copies.c.
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
 * (sms_pcm_sweep_stale_copies), whether or not their machine has a batch to come.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "pcm_writer.h"
#include "pcm_copies.h"
#include "status.h"
#include "site_key.h"
#include "worker.h"
#include "file_util.h"
#include "sha256.h"
#include "package_store.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "common/file_perm.h"
#include "postmaster/bgworker.h"
#include "formats/sms_formats.h"
#include "formats/sms_signature.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * Batch sizes: a batch's copies are made durable by one syncfs(), which
 * waits for everything dirty on the file system, other processes' writes
 * too: on a busy machine most of its cost is per call.  The first batch of
 * a run of the queue is small, so that the first files appear soon; while
 * batches come out full (more is queued), each one is twice the last, up to
 * PCM_BATCH_MAX: 100,000 machines take 8 syncs, not 50.  The cap bounds
 * what a crash makes the writer redo and how long a distribution that
 * arrives meanwhile waits for the step.  A batch that fails starts again
 * from PCM_BATCH_FIRST.
 */
#define PCM_BATCH_FIRST	2000
#define PCM_BATCH_MAX	20000
/* batches of at most this many machines read their jobs with a kept plan */
#define PCM_FEW_MACHINES	16

static int	next_batch_size = PCM_BATCH_FIRST;

/*
 * Helpers: while the Despooler takes full batches, up to
 * smsdist.pcm_helpers processes take batches of the same queue beside it
 * (FOR UPDATE SKIP LOCKED: never the same machine), each on its own core,
 * and stop when the queue is empty.  A helper writes a batch all or nothing:
 * a logon server that fails or any other error rolls its batch back and
 * stops it, and the Despooler, which keeps the failing logon servers and
 * reports the errors, writes those machines.
 */
#define PCM_MAX_HELPERS	8
static bool am_helper = false;
static int	helper_slot = 0;	/* a helper's: its place among smsdist.pcm_helpers */
static int	helper_batches = 0;	/* a helper's batches and files */
static long helper_files = 0;
static int	last_batch_files = 0;	/* written by the last batch */
static BackgroundWorkerHandle *helpers[PCM_MAX_HELPERS];

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

/*
 * The batch's pcm_files rows, written in two statements at its end (one
 * statement per machine cost more than writing its three files).
 */
static List *rec_ids = NIL,
		   *rec_domains = NIL,
		   *rec_jobs = NIL,
		   *rec_sha = NIL,
		   *rec_copies = NIL,	/* each file's own: a logon server can fail
								 * in the middle of a batch */
		   *forgotten = NIL;

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
	rec_copies = lappend_int(rec_copies, copies);
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
int_array(List *l)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(list_length(l), 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, l)
		d[i++] = Int32GetDatum(lfirst_int(lc));
	return PointerGetDatum(construct_array(d, i, INT4OID, sizeof(int32), true, TYPALIGN_INT));
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
		Oid			types[6] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTOID};
		Datum		values[6] = {text_array(rec_ids), text_array(rec_domains), text_array(rec_jobs),
		text_array(rec_sha), int_array(rec_copies),
		CStringGetTextDatum(sms_sig_signer_key_id(batch_signer))};

		if (sms_execute_kept("INSERT INTO smsdist.pcm_files (sms_id, domain, jobs, sha256, copies, key_id)"
							 "SELECT i, d, string_to_array(j, ','), s, c, $6"
							 "  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[]) AS u(i, d, j, s, c)"
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

		if (sms_execute_kept("DELETE FROM smsdist.pcm_files WHERE sms_id = ANY ($1::text[])",
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
	if (sms_execute_kept("INSERT INTO smsdist.pcm_queue (sms_id)"
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
 * machine_policies is written by the PCM writers and the Offer Manager, each
 * computing policies in its own snapshot: without an order, a writer whose
 * snapshot predates the other's commit could store an older policy over a
 * newer one.  Each takes this lock (until its transaction ends) before the
 * statement that computes and stores, so that statement's snapshot sees
 * everything the other stored.  The Offer Manager, which may store any
 * machine's policy, takes it alone (exclusive); the PCM writers share it
 * among themselves: their batches hold different machines, and a machine
 * queued again while a batch holds it is taken by the next batch only once
 * that one has committed (its queue row stays locked until then), so a
 * later batch's snapshot sees what an earlier one stored.
 */
void
sms_lock_machine_policies(bool exclusive)
{
	if (sms_execute_kept_noargs(exclusive
								? "SELECT pg_catalog.pg_advisory_xact_lock("
								"   pg_catalog.hashtextextended('smsdist machine_policies', 0))"
								: "SELECT pg_catalog.pg_advisory_xact_lock_shared("
								"   pg_catalog.hashtextextended('smsdist machine_policies', 0))",
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

	sms_lock_machine_policies(false);
	if (sms_execute_kept("DELETE FROM smsdist.machine_policies mp"
						 " WHERE mp.sms_id = ANY ($1::text[])"
						 "   AND NOT EXISTS (SELECT 1 FROM smsdist.system_resources r WHERE r.sms_id = mp.sms_id)",
						 1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "smsdist run phase: forgetting policies failed");
	if (sms_execute_kept("SELECT smsdist.store_machine_policies(array("
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
 * Take up to size machines off the queue (committed with the batch).
 * Returns how many; *batch is their SMS IDs (text[]), in order.
 *
 * The batch is materialized first: as "IN (SELECT ... LIMIT)" the planner,
 * misled by a queue that was empty at its last ANALYZE, could rerun the
 * subquery for every row -- minutes for 100,000 rows.
 */
static int
take_queued_batch(int size, Datum *batch)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(size)};
	bool		isnull;
	int			n;

	if (sms_execute_kept("WITH pick AS MATERIALIZED ("
						 "  SELECT sms_id FROM smsdist.pcm_queue ORDER BY queued_at"
						 "   LIMIT $1 FOR UPDATE SKIP LOCKED), "
						 "b AS ("
						 "  DELETE FROM smsdist.pcm_queue q USING pick WHERE q.sms_id = pick.sms_id"
						 "  RETURNING q.sms_id)"
						 "SELECT array_agg(sms_id::text ORDER BY sms_id), count(*)::integer FROM b",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
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
	int			copies;

	PG_TRY();
	{
		if (!sms_sig_append(batch_signer, &buf, &len, err, sizeof(err)))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("could not sign the PCM file of machine %s: %s", id, err)));
		copies = sms_pcm_place_copies(pl, id, domain, old_domain, buf, len);
		record_file(id, domain, joblist, buf, len, copies);
	}
	PG_FINALLY();
	{
		free(buf);
	}
	PG_END_TRY();
}

/* The live jobs of a batch of machines ($1), this site $2. */
static const char live_jobs_sql[] =
	"SELECT lj.sms_id, lj.job_id, lj.package_id, lj.package_name,"
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
	" ORDER BY lj.sms_id, lj.job_id";

/*
 * Helpers that have stopped are forgotten, and the temporary copies one
 * may have left (stopped by SIGTERM in the middle of a batch) are swept
 * before the Despooler's next batch.
 */
static void
forget_stopped_helpers(void)
{
	for (int i = 0; i < PCM_MAX_HELPERS; i++)
	{
		pid_t		pid;

		if (helpers[i] != NULL && GetBackgroundWorkerPid(helpers[i], &pid) == BGWH_STOPPED)
		{
			pfree(helpers[i]);
			helpers[i] = NULL;
			sms_pcm_sweep_soon();
		}
	}
}

/*
 * More is queued than this batch: start the helpers that are not running
 * (each stops by itself once the queue is empty).  Without a free worker
 * slot the Despooler writes alone.
 */
static void
start_helpers(void)
{
	int			mine = 0;
	int			others;
	bool		isnull;

	forget_stopped_helpers();
	for (int i = 0; i < PCM_MAX_HELPERS; i++)
		if (helpers[i] != NULL)
			mine++;
	/*
	 * Helpers this process did not start: those of a Despooler that
	 * stopped and was started again, which write on until the queue is
	 * empty.  Counted so that no more than smsdist.pcm_helpers run.
	 */
	if (sms_execute_kept_noargs("SELECT count(*)::integer FROM pg_catalog.pg_stat_activity"
								" WHERE backend_type = 'smsdist pcm writer'"
								"   AND datid = (SELECT oid FROM pg_catalog.pg_database"
								"                 WHERE datname = pg_catalog.current_database())",
								true, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist run phase: counting the PCM writers failed");
	others = Max(DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) - mine, 0);
	for (int i = 0; i < Min(sms_pcm_helpers - others, PCM_MAX_HELPERS); i++)
	{
		MemoryContext old;
		bool		started;

		if (helpers[i] != NULL)
			continue;			/* running, or about to */
		/* the handle in TopMemoryContext: kept from batch to batch */
		old = MemoryContextSwitchTo(TopMemoryContext);
		started = sms_start_helper("smsdist_pcm_helper_main", "smsdist pcm writer", (uint32) i,
								   MyDatabaseId, &helpers[i]);
		MemoryContextSwitchTo(old);
		if (!started)
		{
			helpers[i] = NULL;
			return;
		}
	}
}

/* A helper failed: its stale copies (this process's) go. */
static void
helper_cleanup(void)
{
	sms_pcm_sweep_stale_copies();
}

/*
 * A helper's batch: counted for its last words.  A helper whose place is
 * no longer among smsdist.pcm_helpers (lowered by a reload, read before
 * each batch) stops before its next batch.
 */
static bool
helper_batch(void)
{
	if (helper_slot >= sms_pcm_helpers)
	{
		ereport(LOG,
				(errmsg("smsdist pcm writer: stopping, smsdist.pcm_helpers is %d now",
						sms_pcm_helpers)));
		return false;
	}
	if (!sms_pcm_write_queued())
		return false;
	helper_batches++;
	helper_files += last_batch_files;
	return true;
}

void
smsdist_pcm_helper_main(Datum arg)
{
	TimestampTz started = GetCurrentTimestamp();
	struct rusage ru;

	am_helper = true;
	helper_slot = (int) DatumGetUInt32(arg);
	sms_helper_loop(SMS_DESPOOLER, helper_batch, helper_cleanup);
	getrusage(RUSAGE_SELF, &ru);
	ereport(LOG,
			(errmsg("smsdist pcm writer: wrote %d batch%s of PCM files (%ld file%s) in %ld ms, CPU %.1f s user, %.1f s system",
					helper_batches, helper_batches == 1 ? "" : "es",
					helper_files, helper_files == 1 ? "" : "s",
					TimestampDifferenceMilliseconds(started, GetCurrentTimestamp()),
					ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
					ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6)));
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
	int			size = next_batch_size;
	int			n;
	int			ret;
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
				t_write,
				t_flush;

	/* one key for the whole batch, recorded with its files */
	batch_signer = sms_site_signer();
	requeue_if_key_changed();

	if (!am_helper)
		forget_stopped_helpers();
	sms_pcm_sweep_stale_copies();
	/* until this batch is done: one that fails is followed by a small one */
	next_batch_size = PCM_BATCH_FIRST;
	n = take_queued_batch(size, &batch);
	if (n == 0)
		return false;
	/*
	 * More is queued: helpers, unless a logon server is failing (a helper
	 * would stop at its first copy there; the Despooler keeps that server
	 * out of its batches)
	 */
	if (n == size && !am_helper && sms_pcm_helpers > 0 && !sms_pcm_servers_failing())
		start_helpers();
	pgstat_report_activity(STATE_RUNNING, psprintf("writing %d PCM file%s", n, n == 1 ? "" : "s"));
	sms_pcm_begin_copies();
	rec_ids = rec_domains = rec_jobs = rec_sha = rec_copies = forgotten = NIL;
	pl = sms_pcm_places();
	pl.all_or_error = am_helper;

	/* the batch's machines: at this site (with their domain) or not */
	values[0] = batch;
	values[1] = CStringGetTextDatum(sms_site_code);
	types[0] = TEXTARRAYOID;
	/*
	 * (Lookups by key for each machine of the batch: as joins, the planner
	 * hashed all of pcm_files for every batch of 2,000.)
	 */
	if (sms_execute_kept("SELECT m.id,"
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

	/*
	 * their live jobs, in machine then job order; the generic plan kept
	 * for a few machines only (it is made for about ten, and joined a
	 * batch of 20,000 machines to their jobs in a nested loop)
	 */
	ret = n <= PCM_FEW_MACHINES
		? sms_execute_kept_generic(live_jobs_sql, 2, types, values, NULL, false, 0)
		: SPI_execute_with_args(live_jobs_sql, 2, types, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
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
				sms_pcm_remove_copies(&pl, id, old_domain ? old_domain : domain);
				if (old_domain != NULL && domain != NULL && strcmp(old_domain, domain) != 0)
					sms_pcm_remove_copies(&pl, id, domain);
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
	sms_pcm_flush_copies();
	t_flush = GetCurrentTimestamp();
	record_batch();
	refresh_policies(batch);
	last_batch_files = written;
	SPI_freetuptable(machines);
	/* a full batch: more is likely queued, and the next one is larger */
	if (n == size)
		next_batch_size = Min(size * 2, PCM_BATCH_MAX);
	if (written + removed > 0)
		ereport(DEBUG1,
				(errmsg("smsdist run phase%s: %d PCM file%s written, %d removed (reading %ld ms, writing %ld ms, syncing and renaming %ld ms, recording %ld ms)",
						am_helper ? " (helper)" : "",
						written, written == 1 ? "" : "s", removed,
						TimestampDifferenceMilliseconds(t_start, t_query),
						TimestampDifferenceMilliseconds(t_query, t_write),
						TimestampDifferenceMilliseconds(t_write, t_flush),
						TimestampDifferenceMilliseconds(t_flush, GetCurrentTimestamp()))));
	return true;
}
