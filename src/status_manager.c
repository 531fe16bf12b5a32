/*-------------------------------------------------------------------------
 *
 * status_manager.c
 *	  The SMS Status Manager: takes the status messages client agents leave
 *	  on the site's client access points into smsdist.status_messages.
 *
 * Seed 004: the client writes status back, and the site ingests it into a
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
 *				of the machine it names (damaged, a link, too large, another
 *				machine's): renamed to <name>.bad, so it is neither retried
 *				nor lost, and reported (status message 3400).
 *
 * Files are removed only after their rows are committed.  A crash between
 * the two leaves files that are read again; the unique index on (machine,
 * client_sequence, client_at) makes the second insert a no-op, so nothing
 * is counted twice.  Agents write no wake-up: the Status Manager looks at
 * every smsdist.poll_interval, and at once when woken (smsdist.wake()).
 *
 * Summaries travel up: after each step the Status Manager sends its parent
 * site smsdist.status_report_for_parent() -- per advertisement and job of
 * the parent's, this site's counts and those its children sent -- through
 * smsdist.receive_status_report() over libpq (the sender_addresses row for
 * the parent's site code), when it differs from what it last sent.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_archive.h"
#include "site_link.h"

#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "formats/sms_formats.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define BATCH			1000

#define SMS_MSG_STATUS_FILE_REFUSED		3400
#define SMS_MSG_STATUS_NOT_FORWARDED	3401

typedef struct InboxFile
{
	char	   *name;
	char		machine[16];
	int64		seq;
} InboxFile;

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

/* The status files of one inbox, at most BATCH, in order. */
static List *
inbox_files(const char *box)
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
			continue;			/* not ours: temporaries, .bad files, anything else */
		f = palloc(sizeof(InboxFile));
		f->name = pstrdup(de->d_name);
		strlcpy(f->machine, machine, sizeof(f->machine));
		f->seq = seq;
		files = lappend(files, f);
	}
	FreeDir(d);
	list_sort(files, inbox_file_cmp);
	if (list_length(files) > BATCH)
		files = list_truncate(files, BATCH);
	return files;
}

static void
refuse(const char *box, InboxFile *f, const char *why)
{
	char	   *from = psprintf("%s/%s", box, f->name);
	char	   *to = psprintf("%s/%s.bad", box, f->name);
	SmsStatusRefs refs = {0};

	if (rename(from, to) != 0 && errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename \"%s\" to \"%s\": %m", from, to)));
	refs.machine = f->machine;
	sms_status_message(SMS_STATUS_MANAGER, SMS_WARNING, SMS_MSG_STATUS_FILE_REFUSED, &refs,
					   "Status message file \"%s\" refused (kept as %s.bad): %s", from, f->name, why);
}

/* Insert one message; false if the file was refused. */
static bool
ingest(const char *box, InboxFile *f)
{
	static const char *const severities[] = {"informational", "warning", "error"};
	char	   *buf = NULL;
	size_t		len;
	char		err[512];
	SmsStatusFile m = {0};
	Oid			types[11] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[11];
	char		nulls[11];

	if (!sms_fmt_read_file(box, f->name, &buf, &len, err, sizeof(err)))
	{
		refuse(box, f, err);
		return false;
	}
	if (!sms_status_parse(buf, len, &m, err, sizeof(err)))
	{
		free(buf);
		refuse(box, f, err);
		return false;
	}
	free(buf);
	if (strcmp(m.machine, f->machine) != 0 || m.sequence != f->seq)
	{
		snprintf(err, sizeof(err), "the file name says machine %s, message %lld; the file says %s, %lld",
				 f->machine, (long long) f->seq, m.machine, (long long) m.sequence);
		sms_status_free(&m);
		refuse(box, f, err);
		return false;
	}
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(m.site);
	values[1] = CStringGetTextDatum(m.component);
	values[2] = CStringGetTextDatum(m.machine);
	values[3] = CStringGetTextDatum(severities[m.severity]);
	values[4] = Int32GetDatum(m.message_id);
	values[5] = CStringGetTextDatum(m.text);
	values[6] = m.job_id ? CStringGetTextDatum(m.job_id) : (Datum) 0;
	nulls[6] = m.job_id ? ' ' : 'n';
	values[7] = m.package_id ? CStringGetTextDatum(m.package_id) : (Datum) 0;
	nulls[7] = m.package_id ? ' ' : 'n';
	values[8] = m.advert_id ? CStringGetTextDatum(m.advert_id) : (Datum) 0;
	nulls[8] = m.advert_id ? ' ' : 'n';
	values[9] = Int64GetDatum(m.sequence);
	/* Unix seconds to a timestamptz */
	values[10] = TimestampTzGetDatum((TimestampTz) (m.at - ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) * USECS_PER_SEC);
	sms_status_free(&m);
	if (SPI_execute_with_args("INSERT INTO smsdist.status_messages"
							  "        (site_code, component, machine, severity, message_id, message,"
							  "         job_id, package_id, advert_id, client_sequence, client_at)"
							  " VALUES ($1, $2, $3, $4::smsdist.severity, $5, $6, $7, $8, $9, $10, $11)"
							  " ON CONFLICT (machine, client_sequence, client_at)"
							  "   WHERE client_sequence IS NOT NULL DO NOTHING",
							  11, types, values, nulls, false, 0) < 0)
		elog(ERROR, "smsdist status manager: inserting a status message failed");
	return true;
}

/*
 * Send the parent this site's summary if it changed since it was last
 * sent (by this process: after a restart it is sent once more, which is
 * harmless).  Returns false if it could not be sent (try again soon).
 */
static bool
forward_to_parent(void)
{
	static char last_md5[33] = "";
	static bool failing = false;	/* reported once until it works again */
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(sms_site_code)};
	char	   *parent;
	char	   *conninfo;
	char	   *report;
	char	   *md5;
	char	   *err = NULL;
	PGconn	   *conn;
	PGresult   *res;
	const char *v[2];

	if (SPI_execute_with_args("SELECT s.parent_site_code::text,"
							  "       (SELECT a.conninfo::text FROM smsdist.sender_addresses a"
							  "         WHERE a.target_site_code = s.parent_site_code AND a.enabled"
							  "         ORDER BY a.priority LIMIT 1),"
							  "       r::text, md5(r::text)"
							  "  FROM smsdist.sites s, smsdist.status_report_for_parent() r"
							  " WHERE s.site_code = $1 AND s.parent_site_code IS NOT NULL",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "smsdist status manager: making the report for the parent failed");
	if (SPI_processed != 1)
		return true;			/* the central site: nobody to tell */
	parent = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	conninfo = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	report = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	md5 = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	if (strcmp(md5, last_md5) == 0)
		return true;
	if (conninfo == NULL)
	{
		/* said once per change, not at every step */
		ereport(LOG,
				(errmsg("smsdist status manager: no enabled sender address for parent site %s: status summaries stay here",
						parent)));
		strlcpy(last_md5, md5, sizeof(last_md5));
		return true;
	}
	conn = link_open(conninfo, &err);
	if (conn != NULL)
	{
		v[0] = sms_site_code;
		v[1] = report;
		res = link_exec(conn, "SELECT smsdist.receive_status_report($1, $2::jsonb)", 2, v, NULL, NULL, &err);
		link_close(conn, res != NULL);
		if (res != NULL)
		{
			PQclear(res);
			strlcpy(last_md5, md5, sizeof(last_md5));
			failing = false;
			return true;
		}
	}
	ereport(LOG,
			(errmsg("smsdist status manager: status summaries could not be sent to parent site %s: %s",
					parent, err ? err : "unknown error")));
	if (!failing)
	{
		SmsStatusRefs refs = {0};

		/* a status message wakes this worker: one, not one per attempt */
		failing = true;

		sms_status_message(SMS_STATUS_MANAGER, SMS_WARNING, SMS_MSG_STATUS_NOT_FORWARDED, &refs,
						   "Status summaries could not be sent to parent site %s: %s (tried again shortly).",
						   parent, err ? err : "unknown error");
	}
	return false;
}

TimestampTz
sms_status_manager_step(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *boxes = NIL;
	ListCell   *lc;
	bool		more = false;

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
			boxes = lappend(boxes, psprintf("%s/%s", SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
											SMS_FMT_DIR_STATUS));
		MemoryContextSwitchTo(old);
	}

	foreach(lc, boxes)
	{
		const char *box = lfirst(lc);
		List	   *files;
		List	   *done = NIL;
		ListCell   *fc;
		MemoryContext old;

		old = MemoryContextSwitchTo(sms_step_context);
		files = inbox_files(box);
		MemoryContextSwitchTo(old);
		if (files == NIL)
			continue;
		if (list_length(files) == BATCH)
			more = true;
		sms_step_note = psprintf("taking %d status messages from %s", list_length(files), box);
		foreach(fc, files)
		{
			InboxFile  *f = lfirst(fc);

			if (ingest(box, f))
			{
				/* not in SPI memory: the commit below frees that */
				old = MemoryContextSwitchTo(sms_step_context);
				done = lappend(done, f);
				MemoryContextSwitchTo(old);
			}
		}
		/* the rows are safe before the files go */
		sms_step_commit();
		foreach(fc, done)
		{
			InboxFile  *f = lfirst(fc);
			char	   *path = psprintf("%s/%s", box, f->name);

			if (unlink(path) != 0 && errno != ENOENT)
				ereport(WARNING,
						(errcode_for_file_access(),
						 errmsg("could not remove \"%s\": %m", path),
						 errdetail("Its message is recorded; it will be read again and ignored.")));
		}
	}
	if (more)
		return GetCurrentTimestamp();
	if (!forward_to_parent())
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), sms_poll_interval * 1000L);
}
