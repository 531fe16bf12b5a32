/*-------------------------------------------------------------------------
 *
 * due_runs.c
 *	  Which offers' programs are due, and running them from the cache.
 *
 * Terms:
 *	due			an offer's program is due when one of its mandatory times
 *				(a job's mandatory_at, an advertisement's assignments, each
 *				recurrence once) has come and was not handled yet -- a
 *				missed one runs at the next poll -- and the machine is
 *				inside one of its maintenance windows, if it has any; or
 *				when the user asked for it (--run), at any time.
 *	rerun		what a mandatory time does when the program ran before:
 *				the offer's rerun behaviour (always, never, if the last run
 *				failed, if it succeeded) decides, once per due time; a
 *				program that never ran always runs.
 *	runs		<state dir>/runs, oldest first:
 *				"<kind> <id> <due> <exit code> <at>"	a run for the
 *					mandatory time due (a user's run: the time it ran);
 *					exit code -1: stopped at its maximum run time
 *				"<kind> <id> <due> skipped <at>"	the mandatory time due
 *					did not run the program again (its rerun behaviour)
 *
 * A program runs only from the verified copy in the cache, checked again
 * right before it runs (cache_verify.h).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_util.h"
#include "cache_verify.h"
#include "downloads.h"
#include "due_runs.h"
#include "program_runner.h"
#include "schedule.h"
#include "state_files.h"
#include "status_report.h"

void
run_history(const char *runs, const char *kind, const char *id, RunHistory *h)
{
	char		prefix[64];
	const char *pos = NULL;
	const char *rest;

	memset(h, 0, sizeof(*h));
	h->handled = SMS_TIME_NONE;
	h->last_at = SMS_TIME_NONE;
	snprintf(prefix, sizeof(prefix), "%s %s ", kind, id);
	while ((rest = next_line_with(runs, &pos, prefix)) != NULL)
	{
		char	   *p;
		int64_t		due = strtoll(rest, &p, 10);

		if (h->handled == SMS_TIME_NONE || due > h->handled)
			h->handled = due;
		if (strncmp(p, " skipped ", 9) == 0)
			continue;
		h->ran = true;
		h->last_rc = (int) strtol(p, &p, 10);
		h->last_at = strtoll(p, NULL, 10);
	}
}

/*
 * Does a mandatory time run x again after h?  No (and why, in why) when its
 * rerun behaviour says so.
 */
static bool
rerun_wanted(const Offer *x, const RunHistory *h, char *why, size_t whylen)
{
	char		at[SMS_FMT_TIME_BUFLEN] = "";
	char		outcome[64];

	if (!h->ran)
		return true;
	sms_fmt_format_time(h->last_at, true, at);
	if (h->last_rc == 0)
		snprintf(outcome, sizeof(outcome), "succeeded (exit code 0)");
	else if (h->last_rc < 0)
		snprintf(outcome, sizeof(outcome), "failed (stopped at its maximum run time)");
	else
		snprintf(outcome, sizeof(outcome), "failed (exit code %d)", h->last_rc);
	switch (x->rerun)
	{
		case SMS_RERUN_ALWAYS:
			return true;
		case SMS_RERUN_IF_FAILED:
			if (h->last_rc != 0)
				return true;
			break;
		case SMS_RERUN_IF_SUCCEEDED:
			if (h->last_rc == 0)
				return true;
			break;
		case SMS_RERUN_NEVER:
			break;
	}
	snprintf(why, whylen, "its rerun behaviour is %s and its last run, at %s, %s",
			 sms_rerun_name(x->rerun), at, outcome);
	return false;
}

/* append line to the runs text and write it whole to <state dir>/runs */
static void
record_run(const Config *c, char **runs, const char *line)
{
	char		err[512];
	char	   *more = xmalloc((*runs ? strlen(*runs) : 0) + strlen(line) + 1);

	sprintf(more, "%s%s", *runs ? *runs : "", line);
	free(*runs);
	*runs = more;
	if (!sms_fmt_write_file(c->state_dir, "runs", *runs, strlen(*runs), err, sizeof(err)))
		agent_warn("could not record the run in \"%s/runs\": %s", c->state_dir, err);
}

/* Mandatory time due does not run x again (why): said, and recorded as handled. */
static void
skip_rerun(const Config *c, int64_t now, const Offer *x, int64_t due, const char *why, char **runs)
{
	char		when[SMS_FMT_TIME_BUFLEN];
	char		text[1400];
	char		line[128];

	sms_fmt_format_time(due, true, when);
	snprintf(text, sizeof(text), "Program \"%s\" of package %s was not run again at its mandatory time %s: %s.",
			 x->program, x->package_id, when, why);
	agent_info("skipped %s %s: %s", x->kind, x->id, text);
	status_message_about(c, now, MSG_RERUN_SKIPPED, SMS_STATUS_INFO, x->kind, x->id, x->package_id,
						 text, NO_EXIT_CODE);
	snprintf(line, sizeof(line), "%s %s %lld skipped %lld\n", x->kind, x->id, (long long) due, (long long) now);
	record_run(c, runs, line);
}

/*
 * The cached copy of x's package (e) differs from its manifest (why): it
 * runs nothing and goes; the next poll downloads it again, and the program
 * runs then (nothing is recorded in runs).
 */
static void
refuse_changed_copy(const Config *c, int64_t now, Cache *cache, const Offer *x, CacheEntry *e, const char *why)
{
	char		text[1400];
	char		err[512];

	snprintf(text, sizeof(text), "Program \"%s\" of package %s was not started: the cached copy of version %lld "
			 "does not match its manifest: %s. The cached copy was removed; it will be downloaded again.",
			 x->program, x->package_id, (long long) x->version, why);
	agent_info("not running %s %s: %s", x->kind, x->id, text);
	status_message_about(c, now, MSG_CACHED_REFUSED, SMS_STATUS_ERROR, x->kind, x->id, x->package_id,
						 text, NO_EXIT_CODE);
	if (!cache_drop(cache, e, err, sizeof(err)))
		agent_warn("%s", err);
}

/*
 * Start x's program from its cached copy e, as account, and wait for it;
 * run_program's result.  A user-rights program without an account never
 * starts (why says why already).
 */
static int
start_program(const Config *c, int64_t now, const Cache *cache, const Offer *x, const CacheEntry *e,
			  const struct passwd *account, char *why, size_t whylen)
{
	char		text[1400];
	char	   *pkgdir;
	int			rc;

	if (x->user_rights && account == NULL)
		return RUN_NOT_STARTED;
	snprintf(text, sizeof(text), "Program \"%s\" of package %s started%s%s: %s", x->program, x->package_id,
			 account ? " as " : "", account ? account->pw_name : "", x->command_line);
	status_message_about(c, now, MSG_PROGRAM_STARTED, SMS_STATUS_INFO, x->kind, x->id, x->package_id,
						 text, NO_EXIT_CODE);
	pkgdir = cache_entry_dir(cache, e);
	rc = run_program(pkgdir, x->command_line, x->max_run_minutes, c->minute, account, why, whylen);
	free(pkgdir);
	return rc;
}

/* What x's run came to (rc, and why it did not start): said, and sent. */
static void
report_run(const Config *c, int64_t now, const Offer *x, int rc, const char *why)
{
	char		text[1400];
	bool		not_started = why[0] && rc == RUN_NOT_STARTED;

	if (not_started)
		snprintf(text, sizeof(text), "Program \"%s\" of package %s could not be started: %s.",
				 x->program, x->package_id, why);
	else if (rc == 0)
		snprintf(text, sizeof(text), "Program \"%s\" of package %s succeeded (exit code 0).", x->program, x->package_id);
	else if (rc < 0)
		snprintf(text, sizeof(text), "Program \"%s\" of package %s ran longer than its maximum run time (%d minutes) and was stopped.",
				 x->program, x->package_id, x->max_run_minutes);
	else
		snprintf(text, sizeof(text), "Program \"%s\" of package %s failed with exit code %d.", x->program, x->package_id, rc);
	agent_info("ran %s %s: %s", x->kind, x->id, text);
	/* the exit code of a program that ran to its end; none if stopped or never started */
	status_message_about(c, now, rc == 0 ? MSG_PROGRAM_OK : MSG_PROGRAM_FAILED, rc == 0 ? SMS_STATUS_INFO : SMS_STATUS_ERROR,
						 x->kind, x->id, x->package_id, text, rc < 0 || not_started ? NO_EXIT_CODE : rc);
}

/* Run x's program if it is due (or asked for) and can run now. */
static void
run_if_due(const Config *c, int64_t now, Cache *cache, const Offer *x, char **runs)
{
	bool		asked = c->run_now && strcmp(c->run_now, x->id) == 0;
	int64_t		due = last_due(x->assignments, x->nassignments, now);
	CacheEntry *e;
	const struct passwd *account = NULL;
	char		why[600];
	char		err[512];
	char		line[128];
	int			rc;
	RunHistory	h;

	if (x->waiting)
		return;
	run_history(*runs, x->kind, x->id, &h);
	if (!asked && (due == SMS_TIME_NONE || (h.handled != SMS_TIME_NONE && h.handled >= due)))
		return;
	/* a mandatory time: the rerun behaviour decides, once per due time */
	if (!asked && !rerun_wanted(x, &h, why, sizeof(why)))
	{
		skip_rerun(c, now, x, due, why, runs);
		return;
	}
	if (!asked && !in_window(x->windows, x->nwindows, now))
	{
		agent_info("waiting to run %s %s: outside its maintenance windows", x->kind, x->id);
		return;
	}
	if ((e = cache_find(cache, x->package_id, x->version, x->sha256[0] ? x->sha256 : NULL)) == NULL)
	{
		agent_info("waiting to run %s %s: its package is not in the cache", x->kind, x->id);
		return;
	}
	/* no user logged on: it waits for one; anything else is a failure */
	if (x->user_rights && (account = user_rights_account(c->user, c->user_account, why, sizeof(why))) == NULL &&
		c->user == NULL)
	{
		agent_info("waiting to run %s %s: %s", x->kind, x->id, why);
		return;
	}
	/* whoever changed the cached copy since the download must not choose what runs here */
	if (!(x->user_rights && account == NULL) && !cache_verify(cache, e, why, sizeof(why)))
	{
		refuse_changed_copy(c, now, cache, x, e, why);
		return;
	}
	rc = start_program(c, now, cache, x, e, account, why, sizeof(why));
	report_run(c, now, x, rc, why);
	/* as in SMS: the package unlocks 24 hours after its program ran */
	if (!(rc == RUN_NOT_STARTED && why[0]))
		cache_mark_ran(cache, e, now);
	if (!cache_save(cache, err, sizeof(err)))
		agent_warn("%s", err);
	snprintf(line, sizeof(line), "%s %s %lld %d %lld\n", x->kind, x->id,
			 (long long) (due == SMS_TIME_NONE ? now : due), rc, (long long) now);
	record_run(c, runs, line);
}

void
run_due(const Config *c, int64_t now, const Offers *o)
{
	Cache		cache;
	char	   *runs;

	if (!agent_cache_open(c, &cache, true))
		return;
	runs = state_read(c, "runs", NULL);
	for (size_t i = 0; i < o->n; i++)
		run_if_due(c, now, &cache, &o->items[i], &runs);
	fflush(stdout);
	free(runs);
	cache_close(&cache);
}
