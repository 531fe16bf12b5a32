/*-------------------------------------------------------------------------
 *
 * config.h
 *	  The client agent's settings, from its configuration file and its
 *	  command line (config.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_AGENT_CONFIG_H
#define SMSDIST_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_util.h"
#include "sms_formats.h"
#include "sms_signature.h"

#define MAX_GROUPS			256

typedef struct Config
{
	const char *sms_id;
	const char *site;
	const char *user;			/* DOMAIN\name, or NULL: nobody logged on */
	const char *user_account;	/* the user's local account; NULL: name of --user */
	const char *groups[MAX_GROUPS];
	int			ngroups;
	const char *platform;
	const char *state_dir;
	const char *logon_dir;		/* holds pcins.box */
	const char *cap_dir;		/* holds offerinf.box, pkginfo.box, statmsgs.box */
	SmsSigKeyring *site_keys;	/* --site-key: the keys instruction files are signed with */
	const char *conninfo;		/* advanced mode: the management point; NULL: legacy */
	const char *cache_dir;		/* NULL: <state dir>/cache (or where it was moved) */
	const char *run_now;		/* "run ID": the user starts this offer's program now */
	int			minute;			/* seconds in a minute of max run time (tests: fewer) */
	int64_t		clock_offset;	/* tests: this machine's clock is off by this much */
	int64_t		cache_size;		/* bytes, for a new cache */
	int			max_skew;		/* seconds of clock skew worth a status message */
	int			interval;		/* seconds between polls */
	int			inventory_every;	/* polls: the cache inventory is reported again */
	bool		once;
	bool		check;			/* --check: check the settings and exit */
	AgentLogLevel log_level;
	const char *config_file;	/* the configuration file read, or NULL */
	int64_t		now;			/* SMS_TIME_NONE: the clock */
	/* legacy mode: the key that signs status files (--machine-key) */
	bool		have_key;
	uint8_t		machine_key[SMS_STATUS_KEY_LEN];
} Config;

/* what config_from_args and config_check return when the agent goes on */
#define CONFIG_OK			(-1)

/*
 * The configuration file's settings, then the options of argv, into c
 * (getopt_long: optind is then the first argument that is not an option).  CONFIG_OK, or the exit status the
 * agent ends with at once: 0 for --help and --version, 2 for bad usage or
 * a bad configuration file (said), 1 when out of memory.
 */
extern int	config_from_args(Config *c, int argc, char **argv);

/* The settings a poll needs are there and valid: CONFIG_OK, or 2 (said). */
extern int	config_check(const Config *c);

#endif							/* SMSDIST_AGENT_CONFIG_H */
