/*-------------------------------------------------------------------------
 *
 * instruction_box.c
 *	  Instruction-file boxes: directories that must hold exactly a given set
 *	  of instruction files.
 *
 *	outbox		the site server's copy of the boxes, <site server>/inboxes,
 *				where the Offer Manager writes (offer_manager.c)
 *	box			a subdirectory of the outbox or of a CAP: offerinf.box
 *				(offers, installs, lookups, the heartbeat) or pkginfo.box
 *				(package, icon and NAL files)
 *	instruction file	a file the Offer Manager writes and may remove:
 *				.OFR .INS .LKP .PKG .ICO .NAL (docs/formats.md); anything
 *				else in a box is left alone
 *
 * Writes go through the format library (temporary name, fsync, rename), and
 * a file whose content is unchanged is not rewritten, so a client that reads
 * a box never sees a partial file and re-running a step changes nothing.
 * A writer killed between create and rename leaves its temporary file
 * (".<name>.tmp.<pid>", box_file.c); the next sync removes it once no live
 * process has that ID.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "instruction_box.h"
#include "file_util.h"
#include "package_store.h"
#include "pcm_copies.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "formats/sms_formats.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

/* Is name one of the files the Offer Manager writes (and may remove)? */
bool
sms_instruction_file_name(const char *name)
{
	size_t		len = strlen(name);
	static const char *const exts[] = {".OFR", ".INS", ".LKP", ".PKG", ".ICO", ".NAL"};

	if (name[0] == '.' || len < 5)
		return false;
	for (size_t i = 0; i < lengthof(exts); i++)
		if (strcmp(name + len - 4, exts[i]) == 0)
			return true;
	return false;
}

static bool
same_content(const char *dir, const char *name, const char *text, size_t len)
{
	char	   *buf;
	size_t		have;
	bool		same;

	if (!sms_fmt_read_file(dir, name, &buf, &have, NULL, 0))
		return false;
	same = have == len && memcmp(buf, text, len) == 0;
	free(buf);
	return same;
}

/*
 * Make dir hold exactly the wanted files of box: write what differs, remove
 * instruction files that are not wanted.  Returns the number of changes.
 */
int
sms_sync_box(const char *dir, const char *box, List *files)
{
	ListCell   *lc;
	DIR		   *d;
	struct dirent *de;
	int			changes = 0;
	char		err[512];
	bool		any = false;
	struct stat st;

	/* nothing to hold and no box yet: do not make one */
	foreach(lc, files)
		if (strcmp(((SmsBoxFile *) lfirst(lc))->box, box) == 0)
			any = true;
	if (!any && stat(dir, &st) != 0 && errno == ENOENT)
		return 0;
	if (pg_mkdir_p(unconstify(char *, dir), pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	foreach(lc, files)
	{
		SmsBoxFile *w = lfirst(lc);

		if (strcmp(w->box, box) != 0 || same_content(dir, w->name, w->text, w->len))
			continue;
		if (!sms_fmt_write_file(dir, w->name, w->text, w->len, err, sizeof(err)))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write \"%s/%s\": %s", dir, w->name, err)));
		changes++;
	}
	d = AllocateDir(dir);
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		bool		keep = false;

		if (sms_fmt_stale_temporary(de->d_name, false))
		{
			char	   *path = psprintf("%s/%s", dir, de->d_name);

			if (unlink(path) != 0 && errno != ENOENT)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not remove \"%s\": %m", path)));
			continue;
		}
		if (!sms_instruction_file_name(de->d_name))
			continue;
		foreach(lc, files)
		{
			SmsBoxFile *w = lfirst(lc);

			if (strcmp(w->box, box) == 0 && strcmp(w->name, de->d_name) == 0)
				keep = true;
		}
		if (!keep)
		{
			char	   *path = psprintf("%s/%s", dir, de->d_name);

			if (unlink(path) != 0 && errno != ENOENT)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not remove \"%s\": %m", path)));
			changes++;
		}
	}
	FreeDir(d);
	return changes;
}

/* <site server>/inboxes, where the Offer Manager writes. */
char *
sms_instruction_outbox(void)
{
	return MemoryContextStrdup(sms_step_context, sms_outbox_dir(sms_site_server_dir()));
}
