/*-------------------------------------------------------------------------
 *
 * status_report.c
 *	  The agent's status messages to its site.
 *
 * Terms:
 *	status message	what the agent tells its site about an offer, a
 *				download, a run or itself: an ID (status_report.h), a
 *				severity, a text and the advertisement, job and package it
 *				is about.  In legacy mode it is a file,
 *				<cap>/statmsgs.box/<MACHINE>.<SEQ>.SMS, signed with the
 *				machine key (--machine-key) so that the site can tell who
 *				wrote it; in advanced mode a call of client_status() on
 *				the management point (management_point.c).
 *	sequence	the number of the last status message, in the state
 *				directory ("sequence"): each message has the next one, so
 *				that the site can tell a message from a replay of it.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_util.h"
#include "management_point.h"
#include "state_files.h"
#include "status_report.h"

/* The next sequence number, recorded; -1 (said) if it cannot be. */
static int64_t
next_sequence(const Config *c)
{
	char	   *buf = state_read(c, "sequence", NULL);
	char		err[256];
	int64_t		seq = 0;
	char		text[32];

	if (buf != NULL)
	{
		seq = strtoll(buf, NULL, 10);
		free(buf);
	}
	seq = (seq + 1) % 10000000000LL;
	snprintf(text, sizeof(text), "%lld\n", (long long) seq);
	/* written before the message: a crash between them skips a number, never repeats one */
	if (!sms_fmt_write_file(c->state_dir, "sequence", text, strlen(text), err, sizeof(err)))
	{
		agent_warn("could not write the sequence in \"%s\": %s", c->state_dir, err);
		return -1;
	}
	return seq;
}

/* Legacy mode: m as a signed file in the CAP's status inbox. */
bool
tidy_status_inbox(const Config *c, const char *box)
{
	static bool done = false;
	char		prefix[64];
	char		err[512];

	if (done)
		return true;
	done = true;
	snprintf(prefix, sizeof(prefix), "%s.", c->sms_id);
	if (sms_fmt_remove_stale_temporaries(box, prefix, err, sizeof(err)) < 0)
		agent_warn("%s", err);
	return true;
}

static bool
write_status_file(const Config *c, SmsStatusFile *m)
{
	char	   *buf;
	size_t		len;
	char		err[512];
	char		name[SMS_FMT_NAME_BUFLEN];
	char	   *box;
	bool		ok = false;

	if (!c->have_key)
	{
		/* the site refuses a status file it cannot authenticate */
		agent_warn("status message %d not written: no --machine-key (smsdist.machine_key() gives it)",
				   m->message_id);
		return false;
	}
	m->key = c->machine_key;
	if (!sms_status_to_text(m, &buf, &len, err, sizeof(err)))
	{
		agent_warn("could not make a status message: %s", err);
		return false;
	}
	/*
	 * The site's Status Manager makes the inbox, owned by the server's
	 * account so that it can always remove what agents leave there; one
	 * made here (as root, say) could wedge it.
	 */
	box = xpath_join(c->cap_dir, SMS_FMT_DIR_STATUS);
	if (access(box, F_OK) != 0)
		agent_warn("status message %d not written: the CAP has no status inbox \"%s\" (%s; the site's Status Manager creates it)",
				   m->message_id, box, strerror(errno));
	else if (!tidy_status_inbox(c, box) ||
			 !sms_fmt_file_name(SMS_FILE_STATUS, c->sms_id, m->sequence, name, sizeof(name), err, sizeof(err)) ||
			 !sms_fmt_write_file(box, name, buf, len, err, sizeof(err)))
		agent_warn("could not write a status message to \"%s\": %s", box, err);
	else
		ok = true;
	free(buf);
	free(box);
	return ok;
}

bool
status_message(const Config *c, int64_t now, int32_t id, SmsStatusLevel severity,
			   const char *advert_id, const char *job_id, const char *package_id,
			   const char *text, int exit_code)
{
	SmsStatusFile m = {0};

	m.machine = (char *) c->sms_id;
	m.site = (char *) c->site;
	m.sequence = next_sequence(c);
	m.at = now;
	m.message_id = id;
	m.severity = severity;
	m.component = AGENT_COMPONENT;
	m.advert_id = (char *) advert_id;
	m.job_id = (char *) job_id;
	m.package_id = (char *) package_id && package_id[0] ? (char *) package_id : NULL;
	m.text = (char *) text;
	m.has_exit_code = exit_code >= 0;
	m.exit_code = exit_code >= 0 ? exit_code : 0;
	if (m.sequence < 0)
		return false;
	if (c->conninfo != NULL)
		return mp_send_status(&m);
	return write_status_file(c, &m);
}

bool
status_message_about(const Config *c, int64_t now, int32_t id, SmsStatusLevel severity,
					 const char *kind, const char *target_id, const char *package_id,
					 const char *text, int exit_code)
{
	return status_message(c, now, id, severity,
						  strcmp(kind, "advert") == 0 ? target_id : NULL,
						  strcmp(kind, "job") == 0 ? target_id : NULL,
						  package_id, text, exit_code);
}

void
report_clock_skew(const Config *c, int64_t now, int64_t skew)
{
	static bool reported = false;
	char		text[256];

	if (reported || (skew <= c->max_skew && -skew <= c->max_skew))
		return;
	snprintf(text, sizeof(text),
			 "This machine's clock is %lld s %s the site's; schedules are checked on the site's clock.",
			 (long long) (skew < 0 ? -skew : skew), skew < 0 ? "ahead of" : "behind");
	status_message(c, now, MSG_CLOCK_SKEW, SMS_STATUS_WARNING, NULL, NULL, NULL, text, NO_EXIT_CODE);
	reported = true;
}
