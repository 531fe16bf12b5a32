/*-------------------------------------------------------------------------
 *
 * agent_poll.c
 *	  One poll of the client agent.
 *
 * A poll finds this machine's offers (legacy.c or management_point.c),
 * prints one line per offer and per waiting offer, sends a status message
 * for each new offer, reports the targets that end here
 * (target_reports.c), downloads the offers' packages (downloads.c), runs
 * what is due (due_runs.c), reports the cache inventory (inventory.c), and
 * records the offers in <state dir>/offers for the next poll.
 *
 * Terms:
 *	local		this machine's clock (--now replaces it in tests, and
 *				--clock-offset sets it wrong).
 *	site time	the clock schedules are checked against.  In advanced mode
 *				it is the site database's clock, read at every poll; in
 *				legacy mode the heartbeat the site writes on the CAP.  A
 *				user who sets this machine's clock back cannot bring back
 *				an expired offer, and a skew over --max-skew is reported
 *				(status message 10020).  --now is a test clock for both.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_util.h"
#include "downloads.h"
#include "due_runs.h"
#include "inventory.h"
#include "legacy.h"
#include "management_point.h"
#include "icons.h"
#include "offers.h"
#include "agent_poll.h"
#include "state_files.h"
#include "status_report.h"
#include "target_reports.h"

/*
 * This poll's offers into o, and the site time into *now, given this
 * machine's clock (local).  False if nothing is known.
 */
static bool
gather_offers(const Config *c, int64_t local, int64_t *now, Offers *o)
{
	*now = local;
	if (c->conninfo != NULL)
	{
		if (!mp_offers(c, now, o))
			return false;
		report_clock_skew(c, *now, *now - local);
		return true;
	}
	/* the site's clock: the test clock when given, else the heartbeat's */
	*now = c->now != SMS_TIME_NONE ? c->now : legacy_site_time(c, local);
	report_clock_skew(c, *now, *now - local);
	legacy_job_offers(c, *now, o);
	legacy_advert_offers(c, *now, o);
	return true;
}

/*
 * Print each offer, and each waiting one; the offers' lines into out;
 * status message 10001 or 10002 for those not offered at the last poll
 * (state).
 */
static void
announce_offers(const Config *c, int64_t now, const Offers *o, const char *state, TextBuf *out)
{
	for (size_t i = 0; i < o->n; i++)
	{
		const Offer *x = &o->items[i];
		char		line[64];

		if (x->waiting)
		{
			agent_info("waiting %s %s package %s program \"%s\": %s", x->kind, x->id, x->package_id,
				   x->program, x->why);
			continue;
		}
		agent_info("offer %s %s package %s program \"%s\": %s", x->kind, x->id, x->package_id,
			   x->program, x->command_line);
		snprintf(line, sizeof(line), "%s %s\n", x->kind, x->id);
		textbuf_append(out, "%s", line);
		if (!has_line(state, line))
		{
			char		text[1024];

			snprintf(text, sizeof(text), "%s %s offered: package %s, program \"%s\"",
					 kind_title(x->kind), x->id, x->package_id, x->program);
			status_message_about(c, now, strcmp(x->kind, "job") == 0 ? MSG_JOB_OFFERED : MSG_ADVERT_OFFERED,
								 SMS_STATUS_INFO, x->kind, x->id, x->package_id, text, NO_EXIT_CODE);
		}
	}
}

bool
poll_once(const Config *c)
{
	/* this machine's clock (--clock-offset: a clock set wrong, for tests) */
	int64_t		local = (c->now != SMS_TIME_NONE ? c->now : (int64_t) time(NULL)) + c->clock_offset;
	int64_t		now;
	Offers		o = {0};
	char	   *state;
	char		err[512];
	TextBuf		out;
	int			refused_before = legacy_refusals();
	bool		same_logon;
	bool		ok;

	if (!gather_offers(c, local, &now, &o))
	{
		offers_free(&o);
		return false;			/* nothing known: keep the last offers */
	}
	state = state_read(c, "offers", NULL);	/* NULL: none yet */
	textbuf_init(&out, 64);
	announce_offers(c, now, &o, state, &out);
	report_not_applicable(c, now, &o);
	same_logon = same_logon_as_before(c);
	/* a poll that refused an instruction file does not know every target */
	if (legacy_refusals() == refused_before)
		report_no_longer_targeted(c, now, &o, state, same_logon);
	fflush(stdout);
	free(state);
	keep_icons(c, now, &o);
	download_offers(c, now, &o);
	run_due(c, now, &o);
	report_inventory(c, now);
	keep_expiries(c, &o);
	ok = sms_fmt_write_file(c->state_dir, "offers", out.data, out.len, err, sizeof(err));
	if (!ok)
		agent_warn("could not write the offers in \"%s\": %s", c->state_dir, err);
	free(out.data);
	offers_free(&o);
	return ok;
}
