/*-------------------------------------------------------------------------
 *
 * target_reports.c
 *	  Targets that end here: not applicable, no longer targeted.
 *
 * Terms:
 *	not applicable		a target whose program does not run on this
 *						platform: status message 10007, once (remembered in
 *						<state dir>/not_applicable, lines "<kind> <id>", once
 *						the message is out).
 *	no longer targeted	an offer of the last poll that this poll found no
 *						longer targeting this machine (not in its PCM file,
 *						not in the lookup files for it, its user or groups;
 *						advanced mode: not in its policy), before its
 *						program ran here: status message 10007, once (the
 *						offer leaves <state dir>/offers).
 *
 * Not every offer that leaves was untargeted: one that expired (its expiry
 * is kept in <state dir>/expires) is not reported, nor, in legacy mode, an
 * advertisement whose offer file is gone from the CAP (deleted or
 * disabled).  A job cancelled at the site leaves the PCM file just as a
 * machine that left its collection does: the agent cannot tell them apart
 * and reports both; the site keeps a cancelled target cancelled.  When the
 * logged-on user or groups changed since the last poll (<state
 * dir>/logon), an advertisement that left may have been the previous
 * user's: advertisements are not reported at that poll.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_util.h"
#include "due_runs.h"
#include "legacy.h"
#include "state_files.h"
#include "status_report.h"
#include "target_reports.h"

void
report_not_applicable(const Config *c, int64_t now, const Offers *o)
{
	char	   *done;

	if (o->nna == 0)
		return;
	done = state_read(c, "not_applicable", NULL);
	for (size_t i = 0; i < o->nna; i++)
	{
		const NotApplicable *x = &o->na[i];
		char		line[64];
		char		text[1024];

		snprintf(line, sizeof(line), "%s %s\n", x->kind, x->id);
		if (has_line(done, line))
			continue;
		snprintf(text, sizeof(text), "%s %s (package %s, program \"%s\") does not apply to this machine: "
				 "the program runs on %s; this machine is %s.", kind_title(x->kind), x->id, x->package_id,
				 x->program, x->platforms, c->platform);
		agent_info("not applicable %s %s: %s", x->kind, x->id, text);
		if (status_message_about(c, now, MSG_NOT_APPLICABLE, SMS_STATUS_INFO, x->kind, x->id, x->package_id,
								 text, NO_EXIT_CODE))
		{
			char	   *more = xmalloc((done ? strlen(done) : 0) + strlen(line) + 1);

			sprintf(more, "%s%s", done ? done : "", line);
			free(done);
			done = more;
			state_write(c, "not_applicable", done, strlen(done));
		}
	}
	free(done);
}

/* the expiry of kind id in <state dir>/expires ("<kind> <id> <epoch>"), or SMS_TIME_NONE */
static int64_t
known_expiry(const char *expires, const char *kind, const char *id)
{
	char		prefix[64];
	const char *pos = NULL;
	const char *rest;

	snprintf(prefix, sizeof(prefix), "%s %s ", kind, id);
	rest = next_line_with(expires, &pos, prefix);
	return rest ? strtoll(rest, NULL, 10) : SMS_TIME_NONE;
}

/*
 * Did kind id of the last poll (its line, "<kind> <id>\n") stop targeting
 * this machine before its program ran here?  runs and expires: the state
 * files, or NULL.
 */
static bool
untargeted(const Config *c, int64_t now, const Offers *o, const char *line, const char *kind,
		   const char *id, bool same_logon, const char *runs, const char *expires)
{
	RunHistory	h;
	int64_t		exp;

	if (o->targeted && has_line(o->targeted, line))
		return false;			/* still a target (offered, waiting, expired, ...) */
	if (!same_logon && strcmp(kind, "advert") == 0)
		return false;			/* perhaps the previous user's */
	run_history(runs, kind, id, &h);
	if (h.ran)
		return false;
	exp = known_expiry(expires, kind, id);
	if (exp != SMS_TIME_NONE && exp <= now + c->max_skew)
		return false;
	if (c->conninfo == NULL && strcmp(kind, "advert") == 0 && !legacy_offer_file_exists(c, id))
		return false;			/* the advertisement itself is gone */
	return true;
}

void
report_no_longer_targeted(const Config *c, int64_t now, const Offers *o, const char *state,
						  bool same_logon)
{
	char	   *runs;
	char	   *expires;
	const char *p = state;

	if (state == NULL)
		return;
	runs = state_read(c, "runs", NULL);
	expires = state_read(c, "expires", NULL);
	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t		l = nl ? (size_t) (nl - p) : strlen(p);
		char		line[64];
		char		kind[8],
					id[16];
		char		text[1024];

		snprintf(line, sizeof(line), "%.*s\n", (int) (l < 60 ? l : 60), p);
		p += l + (nl ? 1 : 0);
		if (sscanf(line, "%7s %15s", kind, id) != 2 || (strcmp(kind, "job") != 0 && strcmp(kind, "advert") != 0))
			continue;
		if (!untargeted(c, now, o, line, kind, id, same_logon, runs, expires))
			continue;
		snprintf(text, sizeof(text), "%s %s is no longer targeted at this machine and its program did not run here: %s.",
				 kind_title(kind), id,
				 c->conninfo != NULL ? "this machine's policy no longer has it" :
				 strcmp(kind, "job") == 0 ? "this machine's PCM file no longer has it" :
				 "the lookup files no longer name this machine, its user or its groups for it");
		agent_info("no longer targeted %s %s: %s", kind, id, text);
		status_message_about(c, now, MSG_NOT_APPLICABLE, SMS_STATUS_INFO, kind, id, NULL, text, NO_EXIT_CODE);
	}
	free(runs);
	free(expires);
}

bool
same_logon_as_before(const Config *c)
{
	TextBuf		now;
	char	   *before;
	bool		same;

	textbuf_init(&now, 16);
	textbuf_append(&now, "%s\n", c->user ? c->user : "");
	for (int g = 0; g < c->ngroups; g++)
		textbuf_append(&now, "%s\n", c->groups[g]);
	before = state_read(c, "logon", NULL);
	same = before != NULL && strcmp(before, now.data) == 0;
	if (!same)
		state_write(c, "logon", now.data, now.len);
	free(before);
	free(now.data);
	return same;
}

void
keep_expiries(const Config *c, const Offers *o)
{
	TextBuf		out;
	struct stat st;
	char	   *path = xpath_join(c->state_dir, "expires");

	textbuf_init(&out, 64 * (o->n + 1));
	for (size_t i = 0; i < o->n; i++)
		if (!o->items[i].waiting && o->items[i].expires != SMS_TIME_NONE)
			textbuf_append(&out, "%s %s %lld\n", o->items[i].kind, o->items[i].id,
						   (long long) o->items[i].expires);
	if (out.len > 0 || stat(path, &st) == 0)
		state_write(c, "expires", out.data, out.len);
	free(path);
	free(out.data);
}
