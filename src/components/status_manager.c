/*-------------------------------------------------------------------------
 *
 * status_manager.c
 *	  The SMS Status Manager: takes the status messages client agents leave
 *	  on the site's client access points into smsdist.status_messages.
 *
 * In SMS: the client writes status back, and the site ingests it into a
 * status table.  Here an agent writes one file per message into its CAP's
 * status inbox, <CAP root>/statmsgs.box/<MACHINE>.<SEQ>.SMS (format
 * "status", docs/formats.md); the Status Manager reads each, checks it, and
 * inserts a row with the machine, the client's own time (client_at) and
 * sequence (client_sequence), and the IDs it names.
 *
 * Terms:
 *	inbox		statmsgs.box under the root of an enabled client access
 *				point of this site.
 *	batch		at most BATCH files of one inbox, oldest sequence first per
 *				machine: inserted in one transaction, then removed.
 *	refused		a file whose name or content is not a valid status message
 *				of the machine it names (damaged, a link, larger than
 *				smsdist.status_file_max, another machine's, not signed with
 *				the key of the machine it names, an unknown machine, a text
 *				or a client time outside the site's limits): renamed to
 *				<name>.bad, so it is neither retried nor lost, and reported
 *				(status message 3400 with the reason).
 *	machine key	the random key the site issued the machine when it was
 *				registered (smsdist.machine_keys); its agent signs each
 *				status file with it (HMAC-SHA256, the hmac line of the
 *				status format), so a file on a share speaks for a machine
 *				only if that machine's agent wrote it.
 *	abandoned	a temporary file in an inbox (".<name>.tmp.<pid>", an
 *				agent's write cut off) unchanged for an hour: removed.
 *	problem		an inbox the Status Manager cannot use (a link, not a
 *				directory, not owned by the server's user, which then could
 *				not remove what agents write, or not writable by it), or a
 *				file it cannot rename or remove: reported once (status
 *				message 3402 or 3403) and skipped, while every other inbox
 *				and file is served; looked at again at every step, and
 *				forgotten once it is gone.
 *
 * The Status Manager creates a CAP's inbox, when the CAP's root exists and
 * the inbox does not, owned by the server's user with mode 1733: agents
 * under any account can create files there but neither list nor remove
 * other machines' files, and the server, as the owner, can always rename
 * and remove them.  docs/agent.md describes the owners and modes.
 *
 * Files are removed only after their rows are committed.  A crash between
 * the two leaves files that are read again; the unique index on (machine,
 * client_sequence, client_at) makes the second insert a no-op, so nothing
 * is counted twice.  Agents write no wake-up: the Status Manager looks at
 * every smsdist.poll_interval, and at once when woken (smsdist.wake()).
 *
 * Summaries travel up (status_forwarder.c): after each step the Status
 * Manager sends its parent
 * site smsdist.status_report_for_parent() -- per advertisement and job of
 * the parent's, this site's counts and those its children sent -- through
 * smsdist.receive_status_report() over libpq (the sender_addresses row for
 * the parent's site code), when it differs from what it last sent.  And
 * target by target: the job and advertisement targets whose state changed
 * since the parent last heard (report_pending, set by a trigger) go to
 * smsdist.receive_target_report() in batches, each cleared here once the
 * parent has it, so the site that made a job knows how it ended on every
 * machine of its subtree.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "status.h"
#include "status_manager.h"
#include "status_forwarder.h"
#include "worker.h"
#include "smsdist.h"
#include "site_link.h"

#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "formats/sms_formats.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define BATCH			1000
#define ABANDONED_SECS	3600	/* an agent's temporary file, unchanged */
#define INBOX_MODE		01733	/* sticky; others create, the owner removes */

#define SMS_MSG_STATUS_FILE_REFUSED		3400
#define SMS_MSG_STATUS_INBOX_UNUSABLE	3402
#define SMS_MSG_STATUS_FILE_STUCK		3403

/* seconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch */
#define UNIX_TO_PG_SECS	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* ----------------------------------------------------------------
 * Problems: reported once, skipped, looked at again at every step
 * ----------------------------------------------------------------
 */
typedef enum ProblemKind
{
	PROBLEM_INBOX,				/* the inbox cannot be used */
	PROBLEM_RENAME,				/* a refused file could not become .bad */
	PROBLEM_REMOVE				/* a recorded file could not be removed */
} ProblemKind;

typedef struct Problem
{
	char		path[MAXPGPATH];	/* hash key */
	ProblemKind kind;
	char		reason[512];
} Problem;

static HTAB *problems = NULL;

static void report_problem(const char *path, ProblemKind kind, const char *machine,
						   const char *fmt,...) pg_attribute_printf(4, 5);

static Problem *
find_problem(const char *path)
{
	if (problems == NULL)
	{
		HASHCTL		ctl = {0};

		ctl.keysize = MAXPGPATH;
		ctl.entrysize = sizeof(Problem);
		problems = hash_create("smsdist status inbox problems", 64, &ctl,
							   HASH_ELEM | HASH_STRINGS);
	}
	if (strlen(path) >= MAXPGPATH)
		return NULL;
	return hash_search(problems, path, HASH_FIND, NULL);
}

/*
 * Remember a problem with path and report it (server log and a status
 * message), unless the same problem was already reported: a share that
 * stays broken is said once, not at every step.
 */
static void
report_problem(const char *path, ProblemKind kind, const char *machine, const char *fmt,...)
{
	char		reason[512];
	Problem    *p;
	bool		found;
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	(void) find_problem(path);	/* creates the table */
	if (strlen(path) >= MAXPGPATH)
		return;
	p = hash_search(problems, path, HASH_ENTER, &found);
	if (found && p->kind == kind && strcmp(p->reason, reason) == 0)
		return;
	p->kind = kind;
	strlcpy(p->reason, reason, sizeof(p->reason));
	ereport(LOG,
			(errmsg("smsdist status manager: %s", reason)));
	{
		SmsStatusRefs refs = {0};

		refs.machine = machine;
		sms_status_message(SMS_STATUS_MANAGER, SMS_WARNING,
						   kind == PROBLEM_INBOX ? SMS_MSG_STATUS_INBOX_UNUSABLE : SMS_MSG_STATUS_FILE_STUCK,
						   &refs, "%s", reason);
	}
}

static void
clear_problem(const char *path)
{
	if (find_problem(path) != NULL)
	{
		ereport(LOG,
				(errmsg("smsdist status manager: \"%s\" can be used again", path)));
		hash_search(problems, path, HASH_REMOVE, NULL);
	}
}

/*
 * Try again what could not be done to the files of box (rename to .bad,
 * remove), forgetting each problem that is gone.
 */
static void
retry_stuck_files(const char *box)
{
	HASH_SEQ_STATUS seq;
	Problem    *p;
	size_t		blen = strlen(box);

	if (problems == NULL)
		return;
	hash_seq_init(&seq, problems);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		int			rc;

		if (p->kind == PROBLEM_INBOX || strncmp(p->path, box, blen) != 0 || p->path[blen] != '/')
			continue;
		if (p->kind == PROBLEM_RENAME)
		{
			char	   *to = psprintf("%s.bad", p->path);

			rc = rename(p->path, to);
			pfree(to);
		}
		else
			rc = unlink(p->path);
		if (rc == 0 || errno == ENOENT)
			hash_search(problems, p->path, HASH_REMOVE, NULL);	/* allowed during a scan */
	}
}

/*
 * true if the inbox box can be served: a directory (not a link) owned by
 * the server's user, who can list, create, rename and remove there.  A
 * missing inbox is created (INBOX_MODE) if the CAP's root exists; a CAP
 * whose root does not exist yet has nothing to serve.  Otherwise the
 * problem is reported once and false returned.
 */
static bool
inbox_usable(const char *root, const char *box)
{
	struct stat st;

	if (lstat(box, &st) != 0)
	{
		if (errno != ENOENT)
		{
			report_problem(box, PROBLEM_INBOX, NULL,
						   "The status inbox \"%s\" cannot be used: could not look at it: %m; its status files wait.", box);
			return false;
		}
		if (lstat(root, &st) != 0 || !S_ISDIR(st.st_mode))
			return false;		/* no CAP there yet: nothing to serve */
		if (mkdir(box, INBOX_MODE) != 0 && errno != EEXIST)
		{
			report_problem(box, PROBLEM_INBOX, NULL,
						   "The status inbox \"%s\" cannot be created: %m; agents cannot send status through this CAP.", box);
			return false;
		}
		/* mkdir applies the umask */
		if (lstat(box, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
			chmod(box, INBOX_MODE) != 0)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("smsdist status manager: could not set mode %04o on \"%s\": %m", INBOX_MODE, box)));
		if (lstat(box, &st) != 0)
		{
			report_problem(box, PROBLEM_INBOX, NULL,
						   "The status inbox \"%s\" cannot be used: could not look at it: %m; its status files wait.", box);
			return false;
		}
	}
	if (S_ISLNK(st.st_mode))
	{
		report_problem(box, PROBLEM_INBOX, NULL,
					   "The status inbox \"%s\" is a symbolic link: it is not served (remove it; the Status Manager creates the inbox, owned by the server's user, mode %04o).",
					   box, INBOX_MODE);
		return false;
	}
	if (!S_ISDIR(st.st_mode))
	{
		report_problem(box, PROBLEM_INBOX, NULL,
					   "The status inbox \"%s\" is not a directory: it is not served (remove it; the Status Manager creates the inbox, owned by the server's user, mode %04o).",
					   box, INBOX_MODE);
		return false;
	}
	if (st.st_uid != geteuid())
	{
		report_problem(box, PROBLEM_INBOX, NULL,
					   "The status inbox \"%s\" is owned by uid %u, not by the server's user (uid %u), so the Status Manager could not rename or remove the status files in it: it is not served (chown it to the server's user, mode %04o, or remove it and the Status Manager creates it).",
					   box, (unsigned) st.st_uid, (unsigned) geteuid(), INBOX_MODE);
		return false;
	}
	if (access(box, R_OK | W_OK | X_OK) != 0)
	{
		report_problem(box, PROBLEM_INBOX, NULL,
					   "The status inbox \"%s\" (mode %04o) cannot be listed, written and searched by the server's user: it is not served (chmod %04o).",
					   box, (unsigned) (st.st_mode & 07777), INBOX_MODE);
		return false;
	}
	clear_problem(box);
	return true;
}

/* ----------------------------------------------------------------
 * Limits on what a machine says
 * ----------------------------------------------------------------
 */

/*
 * NULL if a status message's text (len bytes) and client time (Unix
 * seconds; SMS_TIME_NONE: not checked) are within the site's limits,
 * else the reason.  utf8: the text is UTF-8 (its C1 controls are refused
 * too).
 */
static char *
status_problem(const char *text, size_t len, bool utf8, int64 client_secs)
{
	if (text != NULL)
	{
		if (len > (size_t) sms_status_text_max)
			return psprintf("its text is %zu bytes, more than smsdist.status_text_max (%d bytes)",
							len, sms_status_text_max);
		for (size_t i = 0; i < len; i++)
		{
			unsigned char c = (unsigned char) text[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return psprintf("its text holds the control character 0x%02X at byte %zu (only tab is allowed)",
								c, i);
			if (utf8 && c == 0xc2 && i + 1 < len &&
				(unsigned char) text[i + 1] >= 0x80 && (unsigned char) text[i + 1] <= 0x9f)
				return psprintf("its text holds the control character U+%04X at byte %zu (only tab is allowed)",
								(unsigned char) text[i + 1], i);
		}
	}
	if (client_secs != SMS_TIME_NONE)
	{
		int64		site_secs = (int64) (GetCurrentTimestamp() / USECS_PER_SEC) + UNIX_TO_PG_SECS;

		if (client_secs < site_secs - sms_client_time_window ||
			client_secs > site_secs + sms_client_time_window)
		{
			char		c[SMS_FMT_TIME_BUFLEN];
			char		s[SMS_FMT_TIME_BUFLEN];

			sms_fmt_format_time(client_secs, true, c);
			sms_fmt_format_time(site_secs, true, s);
			return psprintf("its client time %s is not within smsdist.client_time_window (%d s) of the site's clock (%s)",
							c, sms_client_time_window, s);
		}
	}
	return NULL;
}

PG_FUNCTION_INFO_V1(smsdist_status_problem);

/* smsdist.status_problem(message text, client_at timestamptz) returns text */
Datum
smsdist_status_problem(PG_FUNCTION_ARGS)
{
	text	   *t = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	int64		secs = SMS_TIME_NONE;
	char	   *why;

	if (!PG_ARGISNULL(1))
	{
		TimestampTz ts = PG_GETARG_TIMESTAMPTZ(1);

		if (TIMESTAMP_NOT_FINITE(ts))
			PG_RETURN_TEXT_P(cstring_to_text("its client time is not a finite time"));
		secs = (int64) (ts / USECS_PER_SEC) + UNIX_TO_PG_SECS;
	}
	why = status_problem(t ? VARDATA_ANY(t) : NULL, t ? VARSIZE_ANY_EXHDR(t) : 0,
						 GetDatabaseEncoding() == PG_UTF8, secs);
	if (why == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(why));
}

/* ----------------------------------------------------------------
 * Machine keys
 * ----------------------------------------------------------------
 */
typedef struct InboxFile
{
	char	   *name;
	char		machine[16];
	int64		seq;
} InboxFile;

typedef struct KeyEntry
{
	char		machine[16];	/* hash key */
	bool		has_key;
	uint8		key[SMS_STATUS_KEY_LEN];
} KeyEntry;

typedef struct KeyCache
{
	HTAB	   *keys;			/* the machines of one batch: KeyEntry */
	uint8		key[SMS_STATUS_KEY_LEN];	/* machine_key()'s answer */
	char		why[256];		/* when it has none */
} KeyCache;

/*
 * Read the keys of every machine a batch's files name, in one query (one
 * per file made the keys a large part of a batch's time).  A machine
 * that is not in system_resources has no entry.
 */
static void
load_keys(KeyCache *kc, List *files)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {TEXTARRAYOID};
	Datum	   *names;
	Datum		values[1];
	HASHCTL		ctl;
	ListCell   *lc;
	int			n = 0;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(((KeyEntry *) 0)->machine);
	ctl.entrysize = sizeof(KeyEntry);
	ctl.hcxt = CurrentMemoryContext;	/* SPI memory: gone at the commit */
	kc->keys = hash_create("smsdist machine keys", Max(list_length(files), 16), &ctl,
						   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	names = palloc(sizeof(Datum) * Max(list_length(files), 1));
	foreach(lc, files)
	{
		InboxFile  *f = lfirst(lc);

		/* files are sorted by machine: each name once */
		if (n == 0 || strcmp(TextDatumGetCString(names[n - 1]), f->machine) != 0)
			names[n++] = CStringGetTextDatum(f->machine);
	}
	if (plan == NULL)
	{
		plan = SPI_prepare("SELECT r.sms_id::text, k.key FROM smsdist.system_resources r"
						   "  LEFT JOIN smsdist.machine_keys k ON k.sms_id = r.sms_id"
						   " WHERE r.sms_id = ANY ($1::smsdist.sms_id[])",
						   1, types);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "smsdist status manager: planning the machine key lookup failed");
	}
	values[0] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
	/*
	 * A fresh snapshot, newer than the listing of the files: a machine
	 * (and its key) committed after the step began may have written one.
	 */
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist status manager: reading machine keys failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		KeyEntry   *e;

		if (strlen(id) >= sizeof(e->machine))
			continue;
		e = hash_search(kc->keys, id, HASH_ENTER, NULL);
		e->has_key = !isnull && VARSIZE_ANY_EXHDR(DatumGetByteaPP(d)) == SMS_STATUS_KEY_LEN;
		if (e->has_key)
			memcpy(e->key, VARDATA_ANY(DatumGetByteaPP(d)), SMS_STATUS_KEY_LEN);
	}
}

/* The key of machine (in kc->key), or false with the reason in kc->why. */
static bool
machine_key(KeyCache *kc, const char *machine)
{
	KeyEntry   *e = strlen(machine) < sizeof(e->machine) ?
		hash_search(kc->keys, machine, HASH_FIND, NULL) : NULL;

	if (e == NULL)
	{
		snprintf(kc->why, sizeof(kc->why), "machine %s is unknown here (not in smsdist.system_resources)", machine);
		return false;
	}
	if (!e->has_key)
	{
		snprintf(kc->why, sizeof(kc->why), "machine %s has no key (smsdist.rotate_machine_key() issues one)", machine);
		return false;
	}
	memcpy(kc->key, e->key, SMS_STATUS_KEY_LEN);
	return true;
}


static int
inbox_file_cmp(const ListCell *a, const ListCell *b)
{
	const InboxFile *x = lfirst(a);
	const InboxFile *y = lfirst(b);
	int			c = strcmp(x->machine, y->machine);

	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * A temporary file an agent's write left (killed between create and
 * rename): that machine's agent removes it at its next run, but one that
 * never runs again would leave it for good.  Only the site's server can
 * remove files in an inbox (mode 1733), so it removes those unchanged for
 * ABANDONED_SECS; a write takes milliseconds.
 */
static void
remove_abandoned(const char *box, const char *name)
{
	char	   *path = psprintf("%s/%s", box, name);

	if (unlink(path) == 0)
		ereport(LOG,
				(errmsg("smsdist status manager: removed \"%s\", a temporary file unchanged for more than %d seconds",
						path, ABANDONED_SECS)));
	else if (errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("smsdist status manager: could not remove \"%s\": %m", path)));
	pfree(path);
}

/* One listing of an inbox: its status files, unsorted. */
static List *
list_inbox(const char *box)
{
	DIR		   *d = AllocateDir(box);
	struct dirent *de;
	List	   *files = NIL;

	if (d == NULL)
		return NIL;				/* no inbox yet: no agent has written */
	while ((de = ReadDirExtended(d, box, LOG)) != NULL)
	{
		char		machine[16];
		int64_t		seq;
		InboxFile  *f;

		if (!sms_fmt_parse_status_name(de->d_name, machine, &seq))
		{
			if (sms_fmt_old_temporary(box, de->d_name, ABANDONED_SECS))
				remove_abandoned(box, de->d_name);
			continue;			/* not ours: temporaries, .bad files, anything else */
		}
		if (problems != NULL)
		{
			char	   *path = psprintf("%s/%s", box, de->d_name);
			bool		stuck = find_problem(path) != NULL;

			pfree(path);
			if (stuck)
				continue;		/* reported; retry_stuck_files() tries again */
		}
		f = palloc(sizeof(InboxFile));
		f->name = pstrdup(de->d_name);
		strlcpy(f->machine, machine, sizeof(f->machine));
		f->seq = seq;
		files = lappend(files, f);
	}
	FreeDir(d);
	return files;
}

/*
 * The status files of one inbox to take now, at most BATCH, each machine's
 * in sequence order.
 *
 * A listing is no snapshot: a file renamed into the directory while it is
 * read may be returned or not, whatever its name, so one listing can hold
 * a machine's message 12 and miss its 11, written a moment before.  Taken
 * that way, 11 would be recorded after 12 and not move the target.  So the
 * inbox is listed twice, and of the second listing only the files up to
 * each machine's newest in the first are taken: an agent writes its
 * messages one after the other, so every older one of such a file was in
 * the directory before the second listing began, and is in it.  Newer
 * files are left for the next step (*held says there are some).
 */
static List *
inbox_files(const char *box, bool *held)
{
	List	   *first = list_inbox(box);
	List	   *second;
	List	   *newest = NIL;	/* per machine, its newest file in first */
	List	   *files = NIL;
	ListCell   *lc;
	int			i = 0;

	*held = false;
	if (first == NIL)
		return NIL;
	second = list_inbox(box);
	list_sort(first, inbox_file_cmp);
	list_sort(second, inbox_file_cmp);
	foreach(lc, first)
	{
		InboxFile  *f = lfirst(lc);

		if (newest != NIL && strcmp(((InboxFile *) llast(newest))->machine, f->machine) == 0)
			llast(newest) = f;	/* sorted: a newer one of the same machine */
		else
			newest = lappend(newest, f);
	}
	foreach(lc, second)
	{
		InboxFile  *f = lfirst(lc);
		InboxFile  *n = NULL;

		while (i < list_length(newest) &&
			   strcmp(((InboxFile *) list_nth(newest, i))->machine, f->machine) < 0)
			i++;
		if (i < list_length(newest))
			n = list_nth(newest, i);
		if (n == NULL || strcmp(n->machine, f->machine) != 0 || f->seq > n->seq)
		{
			*held = true;
			continue;
		}
		files = lappend(files, f);
		if (list_length(files) == BATCH)
			break;
	}
	return files;
}

static void
refuse(const char *box, InboxFile *f, const char *why)
{
	char	   *from = psprintf("%s/%s", box, f->name);
	char	   *to = psprintf("%s/%s.bad", box, f->name);
	SmsStatusRefs refs = {0};

	if (rename(from, to) != 0 && errno != ENOENT)
	{
		/* the file stays; it is not read again while this lasts */
		report_problem(from, PROBLEM_RENAME, f->machine,
					   "Status message file \"%s\" refused (%s), but it could not be renamed to %s.bad: %m; it is skipped.",
					   from, why, f->name);
		return;
	}
	refs.machine = f->machine;
	sms_status_message(SMS_STATUS_MANAGER, SMS_WARNING, SMS_MSG_STATUS_FILE_REFUSED, &refs,
					   "Status message file \"%s\" refused (kept as %s.bad): %s", from, f->name, why);
}

/*
 * The rows of one batch, column by column, inserted by one statement
 * (flush_batch): the target moves of a whole batch, and the completion of
 * the jobs they end, then cost one statement instead of one per file.
 */
#define NCOLS			12
typedef struct Batch
{
	int			n;
	Datum		values[NCOLS][BATCH];
	bool		nulls[NCOLS][BATCH];
} Batch;

/*
 * Read and parse a status-format file of box (a status message or an
 * inventory) of at most limit bytes (limit_name says which limit): its
 * size is looked at before it is read, so a huge file never is, and again
 * after.  False if the file was refused (or is gone); else *m and *buf
 * (malloc'd, the caller frees it) hold it.
 */
static bool
read_machine_file(const char *box, InboxFile *f, int limit, const char *limit_name,
				  SmsStatusFile *m, char **buf, size_t *len)
{
	char		err[512];
	struct stat st;
	char	   *path = psprintf("%s/%s", box, f->name);

	if (lstat(path, &st) != 0)
		return false;			/* gone: nothing to do */
	if (S_ISREG(st.st_mode) && st.st_size > limit)
	{
		snprintf(err, sizeof(err), "it is %lld bytes, more than %s (%d bytes)",
				 (long long) st.st_size, limit_name, limit);
		refuse(box, f, err);
		return false;
	}
	if (!sms_fmt_read_file(box, f->name, buf, len, err, sizeof(err)))
	{
		refuse(box, f, err);
		return false;
	}
	if (*len > (size_t) limit)
	{
		/* it grew after the look */
		free(*buf);
		snprintf(err, sizeof(err), "it is %zu bytes, more than %s (%d bytes)", *len, limit_name, limit);
		refuse(box, f, err);
		return false;
	}
	if (!sms_status_parse(*buf, *len, m, err, sizeof(err)))
	{
		free(*buf);
		refuse(box, f, err);
		return false;
	}
	return true;
}

/*
 * Why the file (buf, len, parsed as m) does not speak for the machine it
 * names -- it is not signed with that machine's key, or its text or time
 * are outside the site's limits -- or NULL if it does.
 */
static char *
signed_problem(KeyCache *kc, SmsStatusFile *m, const char *buf, size_t len)
{
	char		err[512];

	if (!machine_key(kc, m->machine))
		return kc->why;
	if (!sms_status_verify(buf, len, m, kc->key, err, sizeof(err)))
		return pstrdup(err);
	return status_problem(m->text, strlen(m->text), true, m->at);
}

/* Read, check and add one message to the batch; false if the file was refused. */
static bool
ingest(const char *box, InboxFile *f, KeyCache *kc, Batch *b)
{
	static const char *const severities[] = {"informational", "warning", "error"};
	char	   *buf = NULL;
	size_t		len;
	char		err[512];
	char	   *why;
	SmsStatusFile m = {0};
	int			r;

	if (!read_machine_file(box, f, sms_status_file_max, "smsdist.status_file_max", &m, &buf, &len))
		return false;
	if (strcmp(m.machine, f->machine) != 0 || m.sequence != f->seq)
	{
		free(buf);
		snprintf(err, sizeof(err), "the file name says machine %s, message %lld; the file says %s, %lld",
				 f->machine, (long long) f->seq, m.machine, (long long) m.sequence);
		sms_status_free(&m);
		refuse(box, f, err);
		return false;
	}
	/* it speaks for the machine it names only if signed with that machine's key */
	why = signed_problem(kc, &m, buf, len);
	free(buf);
	if (why != NULL)
	{
		sms_status_free(&m);
		refuse(box, f, why);
		return false;
	}
	r = b->n++;
	for (int c = 0; c < NCOLS; c++)
		b->nulls[c][r] = false;
	b->values[0][r] = CStringGetTextDatum(m.site);
	b->values[1][r] = CStringGetTextDatum(m.component);
	b->values[2][r] = CStringGetTextDatum(m.machine);
	b->values[3][r] = CStringGetTextDatum(severities[m.severity]);
	b->values[4][r] = Int32GetDatum(m.message_id);
	b->values[5][r] = CStringGetTextDatum(m.text);
	b->values[6][r] = m.job_id ? CStringGetTextDatum(m.job_id) : (Datum) 0;
	b->nulls[6][r] = m.job_id == NULL;
	b->values[7][r] = m.package_id ? CStringGetTextDatum(m.package_id) : (Datum) 0;
	b->nulls[7][r] = m.package_id == NULL;
	b->values[8][r] = m.advert_id ? CStringGetTextDatum(m.advert_id) : (Datum) 0;
	b->nulls[8][r] = m.advert_id == NULL;
	b->values[9][r] = Int64GetDatum(m.sequence);
	/* Unix seconds to a timestamptz */
	b->values[10][r] = TimestampTzGetDatum((TimestampTz) (m.at - UNIX_TO_PG_SECS) * USECS_PER_SEC);
	/* the program's exit code (10008/10009), if the file has one */
	b->values[11][r] = Int32GetDatum(m.exit_code);
	b->nulls[11][r] = !m.has_exit_code;
	sms_status_free(&m);
	return true;
}

/*
 * Insert the batch's rows in one statement, in file order (oldest sequence
 * first per machine), so that each message's trigger sees the targets as
 * the messages before it left them.  A file read again after a crash is
 * recorded once (the unique index; ON CONFLICT DO NOTHING).
 */
static void
flush_batch(Batch *b)
{
	static SPIPlanPtr plan = NULL;
	static const Oid elemtypes[NCOLS] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, INT4OID};
	Datum		arrays[NCOLS];

	if (b->n == 0)
		return;
	if (plan == NULL)
	{
		Oid			types[NCOLS];

		for (int c = 0; c < NCOLS; c++)
			types[c] = get_array_type(elemtypes[c]);
		plan = SPI_prepare("INSERT INTO smsdist.status_messages"
						   "        (site_code, component, machine, severity, message_id, message,"
						   "         job_id, package_id, advert_id, client_sequence, client_at, exit_code)"
						   " SELECT u.s, u.c, u.m, u.sev::smsdist.severity, u.mid, u.msg, u.j, u.p, u.a,"
						   "        u.seq, u.at, u.x"
						   "   FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
						   "        AS u(s, c, m, sev, mid, msg, j, p, a, seq, at, x)"
						   " ON CONFLICT (machine, client_sequence, client_at)"
						   "   WHERE client_sequence IS NOT NULL DO NOTHING",
						   NCOLS, types);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "smsdist status manager: planning the status message insert failed");
	}
	for (int c = 0; c < NCOLS; c++)
	{
		int			dims[1] = {b->n};
		int			lbs[1] = {1};
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elemtypes[c], &typlen, &typbyval, &typalign);
		arrays[c] = PointerGetDatum(construct_md_array(b->values[c], b->nulls[c], 1, dims, lbs,
													   elemtypes[c], typlen, typbyval, typalign));
	}
	if (SPI_execute_plan(plan, arrays, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "smsdist status manager: inserting %d status messages failed", b->n);
	b->n = 0;
}

/* ----------------------------------------------------------------
 * Cache inventories: <MACHINE>.INV, one per machine, replaced by its agent
 * ----------------------------------------------------------------
 */
#define INVENTORY_FILE_MAX	(SMS_STATUS_INVENTORY_MAX + 8192)

typedef struct InventoryDone
{
	char	   *name;
	dev_t		dev;
	ino_t		ino;
} InventoryDone;

/*
 * Check one inventory file and record it (smsdist.record_cache_inventory,
 * which refuses a bad report with the reason and never raises for one).
 * A file that is refused is renamed <name>.bad and reported (3400), as a
 * status file is.  True if recorded (or older than the one kept); *st is
 * the file as it was read, so that a newer one the agent put in its place
 * meanwhile is not removed.
 */
static bool
ingest_inventory(const char *box, InboxFile *f, KeyCache *kc, struct stat *st)
{
	static SPIPlanPtr plan = NULL;
	char	   *buf = NULL;
	size_t		len;
	char		err[512];
	char	   *why;
	char	   *path = psprintf("%s/%s", box, f->name);
	SmsStatusFile m = {0};
	Datum		values[3];
	bool		isnull;
	Datum		d;

	if (lstat(path, st) != 0)
		return false;			/* gone: nothing to do */
	if (!read_machine_file(box, f, INVENTORY_FILE_MAX, "an inventory file may have", &m, &buf, &len))
		return false;
	if (strcmp(m.machine, f->machine) != 0)
		snprintf(err, sizeof(err), "the file name says machine %s; the file says %s", f->machine, m.machine);
	else if (m.message_id != SMS_STATUS_CACHE_INVENTORY || m.inventory == NULL)
		snprintf(err, sizeof(err), "an inventory file holds message %d with an inventory line",
				 SMS_STATUS_CACHE_INVENTORY);
	else if ((why = signed_problem(kc, &m, buf, len)) != NULL)
		strlcpy(err, why, sizeof(err));
	else
		err[0] = '\0';
	free(buf);
	if (err[0] != '\0')
	{
		sms_status_free(&m);
		refuse(box, f, err);
		return false;
	}
	if (plan == NULL)
	{
		Oid			types[3] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};

		plan = SPI_prepare("SELECT smsdist.record_cache_inventory($1, $2, $3)", 3, types);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "smsdist status manager: planning the inventory insert failed");
	}
	values[0] = CStringGetTextDatum(m.machine);
	values[1] = TimestampTzGetDatum((TimestampTz) (m.at - UNIX_TO_PG_SECS) * USECS_PER_SEC);
	values[2] = CStringGetTextDatum(m.inventory);
	sms_status_free(&m);
	if (SPI_execute_plan(plan, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "smsdist status manager: recording an inventory failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		snprintf(err, sizeof(err), "its cache inventory was refused: %s", TextDatumGetCString(d));
		refuse(box, f, err);
		return false;
	}
	return true;
}

/*
 * Take in the inventory files of one inbox (at most BATCH), commit, then
 * remove each one recorded, unless its agent has replaced it since.
 */
static void
take_inventories(const char *box)
{
	DIR		   *dir;
	struct dirent *de;
	List	   *files = NIL;
	List	   *done = NIL;
	ListCell   *lc;
	KeyCache	kc = {0};
	MemoryContext old = MemoryContextSwitchTo(sms_step_context);

	dir = AllocateDir(box);
	while (dir != NULL && (de = ReadDirExtended(dir, box, LOG)) != NULL && list_length(files) < BATCH)
	{
		char		machine[16];
		InboxFile  *f;

		if (!sms_fmt_parse_inventory_name(de->d_name, machine))
			continue;
		if (problems != NULL)
		{
			char	   *path = psprintf("%s/%s", box, de->d_name);
			bool		stuck = find_problem(path) != NULL;

			pfree(path);
			if (stuck)
				continue;
		}
		f = palloc0(sizeof(InboxFile));
		f->name = pstrdup(de->d_name);
		strlcpy(f->machine, machine, sizeof(f->machine));
		files = lappend(files, f);
	}
	if (dir != NULL)
		FreeDir(dir);
	MemoryContextSwitchTo(old);
	if (files == NIL)
		return;
	list_sort(files, inbox_file_cmp);
	load_keys(&kc, files);
	foreach(lc, files)
	{
		InboxFile  *f = lfirst(lc);
		struct stat st;

		if (ingest_inventory(box, f, &kc, &st))
		{
			InventoryDone *x = MemoryContextAlloc(sms_step_context, sizeof(InventoryDone));

			x->name = f->name;
			x->dev = st.st_dev;
			x->ino = st.st_ino;
			old = MemoryContextSwitchTo(sms_step_context);
			done = lappend(done, x);
			MemoryContextSwitchTo(old);
		}
	}
	sms_step_commit();
	foreach(lc, done)
	{
		InventoryDone *x = lfirst(lc);
		char	   *path = psprintf("%s/%s", box, x->name);
		struct stat now;

		/* the agent renames a newer report over it: that one stays */
		if (lstat(path, &now) != 0 || now.st_dev != x->dev || now.st_ino != x->ino)
			continue;
		if (unlink(path) != 0 && errno != ENOENT)
			report_problem(path, PROBLEM_REMOVE, NULL,
						   "Inventory file \"%s\" is recorded but could not be removed: %m; it is skipped until it can be.",
						   path);
	}
}

TimestampTz
sms_status_manager_step(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *boxes = NIL;
	List	   *roots = NIL;
	ListCell   *lc;
	bool		more = false;
	TimestampTz forward_due;

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}
	sms_link_forget_lost(5 * 60 * 1000);	/* the kept link to the parent: site_link.c */
	values[0] = CStringGetTextDatum(sms_site_code);
	if (SPI_execute_with_args("SELECT root_directory::text FROM smsdist.site_systems"
							  " WHERE site_code = $1 AND role = 'client_access_point' AND enabled"
							  " ORDER BY site_system_id",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist status manager: listing client access points failed");
	{
		MemoryContext old = MemoryContextSwitchTo(sms_step_context);

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			char	   *root = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			roots = lappend(roots, root);
			boxes = lappend(boxes, psprintf("%s/%s", root, SMS_FMT_DIR_STATUS));
		}
		MemoryContextSwitchTo(old);
	}

	foreach(lc, boxes)
	{
		const char *box = lfirst(lc);
		List	   *files;
		List	   *done = NIL;
		ListCell   *fc;
		MemoryContext old;
		KeyCache	kc = {0};
		Batch	   *batch;
		bool		held;

		if (!inbox_usable(lfirst(list_nth_cell(roots, foreach_current_index(lc))), box))
			continue;			/* reported once; the other inboxes are served */
		retry_stuck_files(box);
		take_inventories(box);
		old = MemoryContextSwitchTo(sms_step_context);
		files = inbox_files(box, &held);
		MemoryContextSwitchTo(old);
		if (held)
			more = true;		/* files that came during the listings */
		if (files == NIL)
			continue;
		load_keys(&kc, files);
		if (list_length(files) == BATCH)
			more = true;
		sms_step_note = psprintf("taking %d status messages from %s", list_length(files), box);
		batch = palloc(sizeof(Batch));
		batch->n = 0;
		foreach(fc, files)
		{
			InboxFile  *f = lfirst(fc);

			if (ingest(box, f, &kc, batch))
			{
				/* not in SPI memory: the commit below frees that */
				old = MemoryContextSwitchTo(sms_step_context);
				done = lappend(done, f);
				MemoryContextSwitchTo(old);
			}
		}
		flush_batch(batch);
		/* the rows are safe before the files go */
		sms_step_commit();
		foreach(fc, done)
		{
			InboxFile  *f = lfirst(fc);
			char	   *path = psprintf("%s/%s", box, f->name);

			if (unlink(path) != 0 && errno != ENOENT)
				report_problem(path, PROBLEM_REMOVE, f->machine,
							   "Status message file \"%s\" is recorded but could not be removed: %m; it is skipped until it can be.",
							   path);
		}
	}
	if (more)
		return GetCurrentTimestamp();
	forward_due = sms_forward_status_to_parent();	/* (not inside Min()) */
	return Min(forward_due,
			   TimestampTzPlusMilliseconds(GetCurrentTimestamp(), sms_poll_interval * 1000L));
}
