/*-------------------------------------------------------------------------
 *
 * inbox_manager.c
 *	  The SMS Inbox Manager: makes every client access point's boxes equal
 *	  to the outbox the Offer Manager writes, and puts the site's clock on
 *	  each of them.
 *
 * In SMS: "ever-faithful Inbox Manager copies these instruction files to
 * the Offerinf.box folder on the CAPs."
 *
 *	CAP			a client access point: a site system of role
 *				'client_access_point'; its boxes are <root>/offerinf.box and
 *				<root>/pkginfo.box (instruction_box.c defines boxes)
 *	heartbeat	<SITE>.HBT in each CAP's offerinf.box: the site's time and
 *				poll interval, signed, for clients that measure their skew
 *
 * The files are read from the outbox by the format library's reader (no
 * links, regular files only).  A step comes at least every
 * smsdist.poll_interval, so the heartbeat stays current.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "kept_plan.h"
#include "inbox_manager.h"
#include "instruction_box.h"
#include "site_key.h"
#include "worker.h"

#include <time.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "formats/sms_formats.h"
#include "formats/sms_signature.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * The site's clock on every CAP (<SITE>.HBT in offerinf.box), for clients
 * that read the shares to measure their skew: rewritten at every step, and
 * a step comes at least every smsdist.poll_interval.  A CAP that cannot be
 * written is reported in the log and tried again next time.
 */
static void
write_heartbeats(List *caps)
{
	SmsHeartbeatFile hb = {0};
	char	   *buf;
	size_t		len;
	char		err[512];
	char		name[SMS_FMT_NAME_BUFLEN];
	ListCell   *lc;
	const SmsSigner *signer = sms_site_signer();

	hb.site = sms_site_code;
	hb.site_time = (int64_t) time(NULL);
	hb.interval_seconds = Min(Max(sms_poll_interval, 1), 86400);
	if (!sms_heartbeat_to_text(&hb, &buf, &len, err, sizeof(err)) ||
		!sms_fmt_file_name(SMS_FILE_HEARTBEAT, sms_site_code, 0, name, sizeof(name), err, sizeof(err)))
		elog(ERROR, "smsdist inbox manager: making the heartbeat failed: %s", err);
	if (!sms_sig_append(signer, &buf, &len, err, sizeof(err)))
	{
		free(buf);
		elog(ERROR, "smsdist inbox manager: signing the heartbeat failed: %s", err);
	}
	foreach(lc, caps)
	{
		char	   *dir = psprintf("%s/%s", (char *) lfirst(lc), SMS_FMT_DIR_OFFERINF);

		if (MakePGDirectory(dir) != 0 && errno != EEXIST)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("smsdist inbox manager: could not create \"%s\": %m", dir)));
		else if (!sms_fmt_write_file(dir, name, buf, len, err, sizeof(err)))
			ereport(LOG,
					(errmsg("smsdist inbox manager: could not write the heartbeat to \"%s\": %s", dir, err)));
	}
	free(buf);
}

TimestampTz
sms_inbox_manager_step(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char	   *box;
	List	   *caps = NIL;
	ListCell   *lc;
	/* (package files first, as in the outbox) */
	static const char *const boxes[] = {SMS_FMT_DIR_PKGINFO, SMS_FMT_DIR_OFFERINF};

	if (sms_site_code == NULL || sms_site_code[0] == '\0')
	{
		sms_step_note = "waiting: smsdist.site_code is not set";
		return DT_NOEND;
	}
	values[0] = CStringGetTextDatum(sms_site_code);
	box = sms_instruction_outbox();
	if (sms_execute_kept("SELECT root_directory::text FROM smsdist.site_systems"
						 " WHERE site_code = $1 AND role = 'client_access_point' AND enabled"
						 " ORDER BY site_system_id",
						 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "smsdist inbox manager: reading client access points failed");
	for (uint64 i = 0; i < SPI_processed; i++)
		caps = lappend(caps, MemoryContextStrdup(sms_step_context,
												 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
	for (size_t b = 0; b < lengthof(boxes); b++)
	{
		char	   *src = psprintf("%s/%s", box, boxes[b]);
		List	   *files = NIL;
		DIR		   *d = AllocateDir(src);
		struct dirent *de;

		/* what the outbox holds (nothing yet: the CAPs hold nothing either) */
		while (d != NULL && (de = ReadDirExtended(d, src, LOG)) != NULL)
		{
			SmsBoxFile *w;
			char	   *buf;
			size_t		len;
			char		err[512];

			if (!sms_instruction_file_name(de->d_name))
				continue;
			if (!sms_fmt_read_file(src, de->d_name, &buf, &len, err, sizeof(err)))
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read \"%s/%s\": %s", src, de->d_name, err)));
			w = palloc(sizeof(SmsBoxFile));
			w->box = boxes[b];
			w->name = pstrdup(de->d_name);
			w->text = palloc(len + 1);
			memcpy(w->text, buf, len);
			w->len = len;
			free(buf);
			files = lappend(files, w);
		}
		if (d != NULL)
			FreeDir(d);
		foreach(lc, caps)
			(void) sms_sync_box(psprintf("%s/%s", (char *) lfirst(lc), boxes[b]), boxes[b], files);
	}
	write_heartbeats(caps);
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) sms_poll_interval * 1000);
}
