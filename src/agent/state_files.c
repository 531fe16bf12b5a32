/*-------------------------------------------------------------------------
 *
 * state_files.c
 *	  The agent's state directory and its files of lines.
 *
 * Terms:
 *	state dir	the agent's own directory (--state-dir).  Its files, each
 *				written whole (temporary name, fsync, rename):
 *				  offers			the offers of the last poll, "<kind> <id>"
 *				  sequence			the number of the last status message
 *				  heartbeat			the newest site heartbeat accepted (legacy)
 *				  downloads			the last outcome of each package version
 *				  runs				the runs and skipped mandatory times
 *				  not_applicable	the targets reported as not applicable
 *				  expires			the expiry of each current offer
 *				  logon				the user and groups of the last poll
 *				  inventory			the last cache inventory reported
 *				  cache.location	where the cache was moved
 *				and the download cache, "cache", unless it is elsewhere.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_util.h"
#include "sms_formats.h"
#include "state_files.h"

/*
 * Others may pass through the state directory, not list it: a program that
 * runs with the user's rights runs from the cache inside it.
 */
#define STATE_DIR_MODE		0711

bool
make_state_dir(const Config *c)
{
	char		err[512];

	if (mkdir(c->state_dir, STATE_DIR_MODE) != 0 && errno != EEXIST)
	{
		agent_error("could not create the state directory \"%s\": %s", c->state_dir, strerror(errno));
		return false;
	}
	/* what an agent killed mid-write left (this host's processes only) */
	if (sms_fmt_remove_stale_temporaries(c->state_dir, NULL, err, sizeof(err)) < 0)
		agent_warn("%s", err);
	return true;
}

char *
state_read(const Config *c, const char *name, size_t *len)
{
	char	   *buf = NULL;
	size_t		l;
	char		err[512];

	if (!sms_fmt_read_file(c->state_dir, name, &buf, &l, err, sizeof(err)))
		return NULL;
	if (len)
		*len = l;
	return buf;
}

bool
state_write(const Config *c, const char *name, const char *text, size_t len)
{
	char		err[512];

	if (sms_fmt_write_file(c->state_dir, name, text, len, err, sizeof(err)))
		return true;
	agent_warn("could not write \"%s/%s\": %s", c->state_dir, name, err);
	return false;
}

const char *
next_line_with(const char *text, const char **pos, const char *prefix)
{
	size_t		l = strlen(prefix);

	if (text == NULL)
		return NULL;
	if (*pos == NULL)
		*pos = text;
	while (**pos)
	{
		const char *line = *pos;
		const char *nl = strchr(line, '\n');

		*pos = nl ? nl + 1 : line + strlen(line);
		if (strncmp(line, prefix, l) == 0)
			return line + l;
	}
	return NULL;
}

bool
has_line(const char *text, const char *line)
{
	const char *pos = NULL;

	return next_line_with(text, &pos, line) != NULL;
}
