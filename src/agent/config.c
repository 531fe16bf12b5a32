/*-------------------------------------------------------------------------
 *
 * config.c
 *	  The client agent's settings, from its configuration file and its
 *	  command line.
 *
 * Terms:
 *	legacy mode		--logon-server and --cap: the agent reads signed
 *					instruction files on the shares (legacy.c) and needs
 *					--site-key, and --machine-key to write status files.
 *	advanced mode	--management-point: the agent asks the site database
 *					(management_point.c).
 *	principal		a user or group as the lookup files and the policy
 *					name it: DOMAIN\name.
 *	configuration file	--config FILE, else DEFAULT_CONFIG_FILE when it
 *					exists (not with --no-config): "key = value" lines whose
 *					keys are the long options; '#' starts a comment line.
 *					The command line overrides the file: an option given on
 *					both takes the command line's value (--group and
 *					--site-key: the command line's list replaces the file's).
 *
 * The file decides what runs as root, so it is trusted only when it is a
 * regular file owned by root or by the agent's user and not writable by
 * group or others, in directories that group and others may not write
 * (or sticky ones); anything else is refused before it is read.  A key that
 * is not an option, a value an option refuses, or an option that makes no
 * sense in a file (--config, --run, --check, --help, --version) is an error
 * naming the file and the line.
 *
 * Every option that takes a number takes all of its text as a whole number
 * in a range; anything else is bad usage (exit status 2), said before any
 * poll, so that a typing error never runs the agent with another setting.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE				/* vasprintf */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_util.h"
#include "config.h"
#include "values.h"

/* the long options without a short form */
#define OPT_MACHINE_KEY		1001
#define OPT_INVENTORY_EVERY	1002
#define OPT_CONFIG			1003
#define OPT_NO_CONFIG		1004
#define OPT_CHECK			1005
#define OPT_LOG_LEVEL		1006

#ifndef DEFAULT_CONFIG_FILE
#define DEFAULT_CONFIG_FILE	"/etc/smsdist/agent.conf"
#endif

/* a line of a configuration file: at most this long */
#define CONFIG_LINE_MAX		4096

/* "FILE:LINE" while a configuration file is applied: it begins each error */
static char config_where[1100];

static const struct option options[] = {
	{"sms-id", required_argument, NULL, 'm'},
	{"site", required_argument, NULL, 's'},
	{"user", required_argument, NULL, 'u'},
	{"user-account", required_argument, NULL, 'A'},
	{"group", required_argument, NULL, 'g'},
	{"platform", required_argument, NULL, 'p'},
	{"state-dir", required_argument, NULL, 'd'},
	{"logon-server", required_argument, NULL, 'l'},
	{"cap", required_argument, NULL, 'c'},
	{"once", no_argument, NULL, '1'},
	{"management-point", required_argument, NULL, 'M'},
	{"max-skew", required_argument, NULL, 'k'},
	{"cache-dir", required_argument, NULL, 'C'},
	{"run", required_argument, NULL, 'R'},
	{"test-minute", required_argument, NULL, 'T'},
	{"clock-offset", required_argument, NULL, 'O'},
	{"cache-size", required_argument, NULL, 'Z'},
	{"inventory-every", required_argument, NULL, OPT_INVENTORY_EVERY},
	{"interval", required_argument, NULL, 'i'},
	{"now", required_argument, NULL, 'n'},
	{"site-key", required_argument, NULL, 'K'},
	{"machine-key", required_argument, NULL, OPT_MACHINE_KEY},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"no-config", no_argument, NULL, OPT_NO_CONFIG},
	{"check", no_argument, NULL, OPT_CHECK},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0}
};

/* An error of the settings: "FILE:LINE: " first while a file is applied */
static void config_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static void
config_error(const char *fmt,...)
{
	va_list		ap;
	char	   *text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (config_where[0] != '\0')
		agent_error("%s: %s", config_where, text ? text : "out of memory");
	else
		agent_error("%s", text ? text : "out of memory");
	free(text);
}

static void
usage(FILE *out)
{
	const char *progname = AGENT_PROGNAME;

	fprintf(out,
			"%s: the smsdist client agent (legacy mode: logon server and client access point\n"
			"shares; advanced mode: the management point)\n"
			"\n"
			"Usage:\n"
			"  %s --sms-id ID --site CODE --platform NAME --state-dir DIR\n"
			"     (--logon-server DIR --cap DIR --site-key FILE... --machine-key FILE | --management-point CONNINFO)\n"
			"     [--user DOMAIN\\NAME [--user-account LOGIN]] [--group DOMAIN\\NAME]...\n"
			"     [--once | --interval SECONDS] [--now YYYY-MM-DDTHH:MM:SSZ]\n"
			"  %s --state-dir DIR cache show | size MEGABYTES | move DIRECTORY | clear | verify\n"
			"\n"
			"Options:\n"
			"  --sms-id ID          this workstation's SMS ID (e.g. CEN0001A)\n"
			"  --site CODE          its site (e.g. CEN)\n"
			"  --platform NAME      its platform, as in the offer files (e.g. WINNT_X86)\n"
			"  --user DOMAIN\\NAME   the logged-on user (advertisements for users)\n"
			"  --user-account LOGIN the user's local account, for programs that run with the\n"
			"                       user's rights (default: NAME of --user; switching to it\n"
			"                       needs the agent to run as root)\n"
			"  --group DOMAIN\\NAME  a group of that user; repeat for each group\n"
			"  --state-dir DIR      the agent's own directory (created if missing)\n"
			"  --logon-server DIR   the logon server share (its pcins.box holds the PCM file)\n"
			"  --cap DIR            the client access point share\n"
			"  --site-key FILE      the site's public key(s) (PEM, from SELECT\n"
			"                       smsdist.site_public_key()); every file on the shares must\n"
			"                       be signed with one of them; repeat for several files\n"
			"  --machine-key FILE   the key the site issued this machine (hex, mode 0600):\n"
			"                       signs its status files (legacy mode)\n"
			"  --management-point CONNINFO\n"
			"                       advanced mode: fetch the policy from the site database\n"
			"                       (libpq conninfo; a role in smsdist_client), LISTEN for\n"
			"                       changes; --logon-server and --cap are then not used\n"
			"  --max-skew SECONDS   report a clock skew larger than this (default 300)\n"
			"  --cache-dir DIR      the download cache (default STATE-DIR/cache)\n"
			"  --cache-size MB      its size when it is made (default 1024; see 'cache size')\n"
			"  --inventory-every POLLS  report the cache's inventory when it changed, and\n"
			"                       at least every POLLS polls (default 60)\n"
			"  --run ID             run the program of offer ID (an advertisement or a job) now,\n"
			"                       as the user asking for it would\n"
			"  --test-minute SECONDS  seconds in a minute of maximum run time (tests only)\n"
			"  --clock-offset SECONDS  take this machine's clock as off by SECONDS (tests only)\n"
			"  --once               poll once and exit\n"
			"  --interval SECONDS   poll every SECONDS (default 60)\n"
			"  --now TIME           a test clock: take TIME as the time, the site's too\n"
			"  --config FILE        read settings from FILE (key = value; default\n"
			"                       " DEFAULT_CONFIG_FILE " when it exists)\n"
			"  --no-config          read no configuration file\n"
			"  --check              check the settings and the shares or management point,\n"
			"                       say what is wrong, and exit: nothing runs, nothing is sent\n"
			"  --log-level LEVEL    error, warning, info (default) or debug\n"
			"  --help, --version\n"
			"\n"
			"Each poll logs one line per offer and per waiting offer. Exit status: 0 the\n"
			"poll ran (or --check found all well), 1 a poll or a check failed, 2 bad usage\n"
			"or a bad configuration. See smsdist-agent(1).\n",
			progname, progname, progname);
}

/*
 * A principal: a NetBIOS domain (1 to 15 of A-Z a-z 0-9 _ -, not starting
 * with -), a backslash and a name; 256 bytes at most, no control
 * characters, no trailing space (the management point refuses anything
 * else).  False after saying what it wants.
 */
static bool
principal_option(const char *name, const char *v)
{
	size_t		len = strlen(v);
	size_t		d = 0;
	bool		ok = len >= 3 && len <= 256 && v[len - 1] != ' ';

	while (ok && d < len && v[d] != '\\')
	{
		char		ch = v[d];

		ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			ch == '_' || (ch == '-' && d > 0);
		d++;
	}
	ok = ok && d >= 1 && d <= 15 && d + 1 < len && v[d + 1] != '\\';
	ok = ok && !sms_fmt_has_control_char(v);
	if (!ok)
		config_error("--%s wants DOMAIN\\NAME: a domain of 1 to 15 of A-Z a-z 0-9 _ -, a backslash and a name, "
					 "256 bytes at most, without control characters or a trailing space, not \"%s\"", name, v);
	return ok;
}

/*
 * A whole number from min to max for option name, all of text (no "5x", no
 * overflow); false after saying what it wants.
 */
static bool
int_option(const char *name, const char *text, int64_t min, int64_t max, const char *unit, int64_t *out)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
	{
		config_error("--%s wants a whole number of %s from %lld to %lld, not \"%s\"", name, unit,
					 (long long) min, (long long) max, text);
		return false;
	}
	*out = v;
	return true;
}

/*
 * --machine-key FILE: the key the site issued this machine, in hex; the
 * file must not be open to other accounts (whoever reads it can speak for
 * this machine).  false after saying why.
 */
static bool
read_machine_key(Config *c, const char *file)
{
	struct stat st;
	char		text[SMS_STATUS_KEY_LEN * 2 + 8];
	char		err[256];
	ssize_t		n;
	int			fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
	{
		config_error("could not open the machine key \"%s\": %s", file, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		config_error("the machine key \"%s\" is not a regular file", file);
		close(fd);
		return false;
	}
	if (st.st_mode & 077)
	{
		config_error("the machine key \"%s\" is open to other accounts (mode %04o): make it 0600",
					 file, (unsigned) (st.st_mode & 07777));
		close(fd);
		return false;
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0 || !sms_status_key_from_hex(text, (size_t) n, c->machine_key, err, sizeof(err)))
	{
		config_error("could not read the machine key \"%s\": %s", file, n < 0 ? strerror(errno) : err);
		return false;
	}
	c->have_key = true;
	return true;
}

/* --site-key FILE: its public keys join the ring; CONFIG_OK or an exit status */
static int
add_site_key(Config *c, const char *file)
{
	char		err[512];

	if (c->site_keys == NULL)
		c->site_keys = sms_sig_keyring_new();
	if (c->site_keys == NULL)
	{
		config_error("out of memory");
		return 1;
	}
	if (!sms_sig_keyring_load(c->site_keys, file, err, sizeof(err)))
	{
		config_error("--site-key: %s", err);
		return 2;
	}
	return CONFIG_OK;
}

/* The options that take a number; CONFIG_OK or 2 (said). */
static int
apply_number_option(Config *c, int opt, const char *arg)
{
	int64_t		v;

	switch (opt)
	{
		case 'O':
			/* a century either way */
			return int_option("clock-offset", arg, -3155760000LL, 3155760000LL, "seconds", &c->clock_offset) ?
				CONFIG_OK : 2;
		case 'T':
			if (!int_option("test-minute", arg, 1, 60, "seconds", &v))
				return 2;
			c->minute = (int) v;
			break;
		case 'Z':
			/* up to a petabyte */
			if (!int_option("cache-size", arg, 1, (int64_t) 1 << 30, "megabytes", &v))
				return 2;
			c->cache_size = v * 1024 * 1024;
			break;
		case 'k':
			if (!int_option("max-skew", arg, 1, 86400 * 366, "seconds", &v))
				return 2;
			c->max_skew = (int) v;
			break;
		case 'i':
			if (!int_option("interval", arg, 1, 86400, "seconds", &v))
				return 2;
			c->interval = (int) v;
			break;
		case OPT_INVENTORY_EVERY:
			if (!int_option("inventory-every", arg, 1, 100000, "polls", &v))
				return 2;
			c->inventory_every = (int) v;
			break;
	}
	return CONFIG_OK;
}

/* One option (getopt_long's opt, its argument arg); CONFIG_OK or an exit status. */
static int
apply_option(Config *c, int opt, const char *arg)
{
	switch (opt)
	{
		case 'm':
			c->sms_id = arg;
			break;
		case 's':
			c->site = arg;
			break;
		case 'u':
			if (!principal_option("user", arg))
				return 2;
			c->user = arg;
			break;
		case 'A':
			c->user_account = arg;
			break;
		case 'g':
			if (c->ngroups == MAX_GROUPS)
			{
				config_error("at most %d groups", MAX_GROUPS);
				return 2;
			}
			if (!principal_option("group", arg))
				return 2;
			c->groups[c->ngroups++] = arg;
			break;
		case 'p':
			c->platform = arg;
			break;
		case 'd':
			c->state_dir = arg;
			break;
		case 'l':
			c->logon_dir = arg;
			break;
		case 'c':
			c->cap_dir = arg;
			break;
		case '1':
			c->once = true;
			break;
		case 'M':
			c->conninfo = arg;
			break;
		case 'R':
			c->run_now = arg;
			break;
		case 'O':
		case 'T':
		case 'Z':
		case 'k':
		case 'i':
		case OPT_INVENTORY_EVERY:
			return apply_number_option(c, opt, arg);
		case 'C':
			if (arg[0] != '/')
			{
				config_error("--cache-dir wants an absolute directory");
				return 2;
			}
			c->cache_dir = arg;
			break;
		case 'n':
			if (!sms_fmt_parse_time(arg, true, &c->now))
			{
				config_error("--now wants a UTC time like 2026-12-01T08:00:00Z, not \"%s\"", arg);
				return 2;
			}
			break;
		case 'K':
			return add_site_key(c, arg);
		case OPT_MACHINE_KEY:
			return read_machine_key(c, arg) ? CONFIG_OK : 2;
		case OPT_CHECK:
			c->check = true;
			break;
		case OPT_LOG_LEVEL:
			if (!agent_log_level_from_name(arg, &c->log_level))
			{
				config_error("--log-level wants error, warning, info or debug, not \"%s\"", arg);
				return 2;
			}
			break;
		case OPT_CONFIG:
		case OPT_NO_CONFIG:
			break;				/* read before the other options */
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("%s %s\n", AGENT_PROGNAME, SMSDIST_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
	}
	return CONFIG_OK;
}

/*
 * Whether argument a is the long option name, as getopt_long takes it: in
 * full or abbreviated to at least min characters (unambiguous there),
 * alone or with "=value" (then *value points to the value).
 */
static bool
is_long_option(const char *a, const char *name, size_t min, const char **value)
{
	const char *eq;
	size_t		len;

	if (strncmp(a, "--", 2) != 0)
		return false;
	a += 2;
	eq = strchr(a, '=');
	len = eq ? (size_t) (eq - a) : strlen(a);
	if (len < min || len > strlen(name) || strncmp(a, name, len) != 0)
		return false;
	*value = eq ? eq + 1 : NULL;
	return true;
}

/*
 * The configuration file the command line names: --config FILE, none with
 * --no-config, --help or --version (which must work whatever the file
 * holds), else the file the environment's SMSDIST_AGENT_CONFIG names (none
 * when it is set but empty: how a test or a second agent on the machine
 * keeps clear of the system's file), else DEFAULT_CONFIG_FILE when it
 * exists.  NULL: none.  A scan of
 * its own, before getopt_long, because the file comes first and the
 * command line overrides it; it takes the abbreviations getopt_long takes.
 */
static const char *
config_file_of(int argc, char **argv)
{
	const char *file = NULL;
	const char *value;
	bool		none = false;

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			break;
		if (is_long_option(a, "config", 3, &value))
			file = value ? value : (i + 1 < argc ? argv[++i] : NULL);
		else if (is_long_option(a, "no-config", 3, &value) || is_long_option(a, "help", 1, &value) ||
				 is_long_option(a, "version", 1, &value))
			none = true;
	}
	if (none)
		return NULL;
	if (file == NULL)
	{
		const char *env = getenv("SMSDIST_AGENT_CONFIG");

		/* set: it names the file (must exist), or none when empty */
		if (env != NULL)
			file = env[0] != '\0' ? env : NULL;
		else if (access(DEFAULT_CONFIG_FILE, F_OK) == 0)
			file = DEFAULT_CONFIG_FILE;
	}
	return file;
}

/*
 * No directory on the way to the configuration file (its real path, links
 * resolved) lets group or others replace it: none is writable by them
 * unless it is sticky (as /tmp), where only a file's owner may rename or
 * remove it.  False after naming the directory.
 */
static bool
config_dirs_safe(const char *file)
{
	char	   *path = realpath(file, NULL);
	char	   *slash;
	bool		ok = true;

	if (path == NULL)
	{
		config_error("could not resolve the configuration file \"%s\": %s", file, strerror(errno));
		return false;
	}
	while (ok && (slash = strrchr(path, '/')) != NULL)
	{
		struct stat st;

		if (slash == path)
			slash[1] = '\0';	/* the root directory, last */
		else
			*slash = '\0';
		if (stat(path, &st) != 0)
		{
			config_error("could not check the directory \"%s\" of the configuration file: %s", path,
						 strerror(errno));
			ok = false;
		}
		else if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
		{
			config_error("the configuration file \"%s\" is in directory \"%s\", which is writable by %s "
						 "(mode %04o): the file could be replaced", file, path,
						 (st.st_mode & 002) ? "others" : "its group", (unsigned) (st.st_mode & 07777));
			ok = false;
		}
		if (slash == path)
			break;
	}
	free(path);
	return ok;
}

/*
 * Open the configuration file if it may be trusted: a regular file, owned
 * by root or by this user, writable by nobody else, in directories nobody
 * else may change (config_dirs_safe).  NULL (said) if not.
 */
static FILE *
open_config_file(const char *file)
{
	struct stat st;
	FILE	   *f;
	int			fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
	{
		config_error("could not open the configuration file \"%s\": %s", file, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		config_error("the configuration file \"%s\" is not a regular file", file);
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		config_error("the configuration file \"%s\" is owned by user %u, not by root or by this user (%u): "
					 "it decides what runs here", file, (unsigned) st.st_uid, (unsigned) geteuid());
	else if (st.st_mode & 022)
		config_error("the configuration file \"%s\" is writable by %s (mode %04o): "
					 "it decides what runs here; make it 0644 or 0600", file,
					 (st.st_mode & 002) ? "others" : "its group", (unsigned) (st.st_mode & 07777));
	else if (!config_dirs_safe(file))
		;						/* said */
	else if ((f = fdopen(fd, "r")) != NULL)
		return f;
	else
		config_error("could not read the configuration file \"%s\": %s", file, strerror(errno));
	close(fd);
	return NULL;
}

/* A "key = value" line (text, trimmed of its newline) into c; CONFIG_OK or 2 (said). */
static int
config_line(Config *c, char *text)
{
	char	   *key = text;
	char	   *eq;
	char	   *value;
	char	   *end;
	const struct option *o;

	while (*key == ' ' || *key == '\t')
		key++;
	if (*key == '\0' || *key == '#')
		return CONFIG_OK;
	if ((eq = strchr(key, '=')) == NULL)
	{
		config_error("\"%s\" is not a \"key = value\" line", key);
		return 2;
	}
	for (end = eq; end > key && (end[-1] == ' ' || end[-1] == '\t'); end--)
		;
	*end = '\0';
	for (value = eq + 1; *value == ' ' || *value == '\t'; value++)
		;
	for (end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'); end--)
		;
	*end = '\0';
	for (o = options; o->name != NULL; o++)
		if (strcmp(o->name, key) == 0)
			break;
	if (o->name == NULL)
	{
		config_error("unknown key \"%s\" (the keys are the long options, without \"--\")", key);
		return 2;
	}
	if (o->val == OPT_CONFIG || o->val == OPT_NO_CONFIG || o->val == OPT_CHECK ||
		o->val == 'R' || o->val == 'h' || o->val == 'V')
	{
		config_error("\"%s\" belongs on the command line, not in a configuration file", key);
		return 2;
	}
	if (o->has_arg == no_argument)
	{
		/* a switch: on or off */
		if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "on") == 0)
			return apply_option(c, o->val, NULL);
		if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "off") == 0)
			return CONFIG_OK;
		config_error("%s wants true or false, not \"%s\"", key, value);
		return 2;
	}
	if (*value == '\0')
	{
		config_error("%s has no value", key);
		return 2;
	}
	/* the Config keeps pointers to option values: a copy that lives on */
	return apply_option(c, o->val, xstrdup(value));
}

/* The configuration file into c; CONFIG_OK or 2 (said, with the line). */
static int
read_config_file(Config *c, const char *file)
{
	FILE	   *f = open_config_file(file);
	char		line[CONFIG_LINE_MAX + 2];
	int			lineno = 0;
	int			rc = CONFIG_OK;

	if (f == NULL)
		return 2;
	while (rc == CONFIG_OK && fgets(line, sizeof(line), f) != NULL)
	{
		size_t		len = strlen(line);

		lineno++;
		snprintf(config_where, sizeof(config_where), "%s:%d", file, lineno);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f))
		{
			config_error("the line is longer than %d bytes", CONFIG_LINE_MAX);
			rc = 2;
			break;
		}
		rc = config_line(c, line);
	}
	if (rc == CONFIG_OK && ferror(f))
	{
		config_error("could not read: %s", strerror(errno));
		rc = 2;
	}
	config_where[0] = '\0';
	fclose(f);
	return rc;
}

int
config_from_args(Config *c, int argc, char **argv)
{
	int			opt;
	int			rc;
	int			file_groups;
	SmsSigKeyring *file_keys;
	const char *file = config_file_of(argc, argv);

	memset(c, 0, sizeof(*c));
	c->interval = 60;
	c->inventory_every = 60;
	c->max_skew = 300;
	c->minute = 60;
	c->cache_size = (int64_t) 1024 * 1024 * 1024;	/* 1 GB */
	c->now = SMS_TIME_NONE;
	c->log_level = AGENT_LOG_INFO;
	c->config_file = file;
	if (file != NULL && (rc = read_config_file(c, file)) != CONFIG_OK)
		return rc;
	file_groups = c->ngroups;
	file_keys = c->site_keys;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1)
	{
		/* a list on the command line replaces the file's */
		if (opt == 'g' && file_groups > 0)
			c->ngroups = file_groups = 0;
		if (opt == 'K' && file_keys != NULL)
		{
			sms_sig_keyring_free(file_keys);
			c->site_keys = file_keys = NULL;
		}
		if ((rc = apply_option(c, opt, optarg)) != CONFIG_OK)
			return rc;
	}
	agent_log_level = c->log_level;
	return CONFIG_OK;
}

int
config_check(const Config *c)
{
	if (!c->sms_id || !c->site || !c->platform || !c->state_dir ||
		(!c->conninfo && (!c->logon_dir || !c->cap_dir)))
	{
		config_error("--sms-id, --site, --platform, --state-dir, and --logon-server and --cap "
					 "(or --management-point) are required (--help)");
		return 2;
	}
	if (!c->conninfo && sms_sig_keyring_count(c->site_keys) == 0)
	{
		config_error("legacy mode (--logon-server and --cap) needs --site-key FILE: the site's public key "
					 "(SELECT smsdist.site_public_key() at the site); files on the shares are run only "
					 "when the site's signature verifies");
		return 2;
	}
	if (!sms_fmt_valid_sms_id(c->sms_id))
	{
		config_error("invalid SMS ID \"%s\": three characters of site code and five upper-case hexadecimal digits", c->sms_id);
		return 2;
	}
	if (!sms_fmt_valid_site_code(c->site))
	{
		config_error("invalid site code \"%s\": three characters A-Z 0-9", c->site);
		return 2;
	}
	return CONFIG_OK;
}
