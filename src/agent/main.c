/*-------------------------------------------------------------------------
 *
 * main.c
 *	  The client agent, smsdist-agent: one workstation's side of software
 *	  distribution.
 *
 * SMS's Package Command Manager (the Run phase of a job) and Advanced
 * Client, for a workstation of an smsdist site.  In legacy (shares) mode
 * the agent reads signed instruction files on its logon server and client
 * access point (legacy.c); in advanced mode it asks the management point,
 * the site database (management_point.c).  Either way each poll
 * (agent_poll.c) finds the offers for this machine, its logged-on user and
 * the user's groups, downloads their packages into the download cache
 * (download_cache.h), runs the programs that are due (due_runs.c) and
 * reports to the site (status_report.c, inventory.c).  What it must
 * remember between polls is in its state directory (state_files.c).
 *
 * Every instruction and status file is read and written through the
 * format library (src/formats/sms_formats.h) that the site's writers use,
 * so the two sides cannot drift.
 *
 * Terms:
 *	poll		one look at the site's instructions and what follows from
 *				them; --once polls once, else the agent polls every
 *				--interval seconds (in advanced mode, also as soon as the
 *				site says the policy changed).
 *	exit status	0 the poll(s) ran, or --check found all well; 1 a poll
 *				failed (an unreadable share or state directory), or --check
 *				found a problem; 2 bad usage or a bad configuration file.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_check.h"
#include "agent_util.h"
#include "cache_command.h"
#include "config.h"
#include "management_point.h"
#include "agent_poll.h"
#include "state_files.h"

int
main(int argc, char **argv)
{
	Config		c;
	int			rc;

	/*
	 * A line at a time: under a service manager standard output is a pipe,
	 * and a log line should reach the journal when it happens, in order
	 * with standard error's.
	 */
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = config_from_args(&c, argc, argv);

	if (rc != CONFIG_OK)
		return rc;
	if (optind < argc && strcmp(argv[optind], "cache") == 0)
		return cache_command(&c, argc - optind - 1, argv + optind + 1);
	if (optind < argc)
	{
		agent_error("unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	if ((rc = config_check(&c)) != CONFIG_OK)
		return rc;
	if (c.check)
		return agent_check(&c);
	if (!make_state_dir(&c))
		return 1;
	agent_debug("settings from %s%s", c.config_file ? c.config_file : "the command line only",
				c.config_file ? " and the command line" : "");
	for (;;)
	{
		bool		ok;

		agent_debug("poll starts");
		ok = poll_once(&c);
		agent_debug("poll %s", ok ? "done" : "failed");
		if (c.once)
			return ok ? 0 : 1;
		if (c.conninfo != NULL)
			mp_wait(&c);
		else
			sleep((unsigned) c.interval);
	}
}
