/*-------------------------------------------------------------------------
 *
 * agent_check.c
 *	  --check: the agent's settings and what they name, checked without a
 *	  poll.
 *
 * An administrator who installs the agent as a service wants to know before
 * it starts whether it will work, and if not, what to fix.  --check reads
 * the configuration (config.c has refused a bad one with exit status 2) and
 * tries what a poll needs, one thing at a time, naming each:
 *
 *	legacy mode		the logon server and its pcins.box readable; the CAP's
 *					offerinf.box and pkginfo.box readable; its statmsgs.box
 *					writable when there is a machine key (else a warning:
 *					no status would be written).  A box the site has not
 *					made yet is a warning, not a failure.  Then the site
 *					key: the signed files found in those boxes must verify
 *					with --site-key's keys.  None verifying is a failure
 *					(the key of another site, or an old one); some not
 *					verifying is a warning naming them (a share holding
 *					tampered or stale files); no file yet is a warning.
 *	advanced mode	the management point: connect, authenticate, ask this
 *					machine's policy (management_point.c, mp_check).
 *	both			the state directory writable, or creatable.
 *
 * Nothing is written, run or sent: no state directory is made, no status
 * message leaves, no program starts.  Access is tested with the agent's
 * own rights (access(2) with the effective IDs), as the poll would have.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE				/* eaccess */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_check.h"
#include "agent_util.h"
#include "box_file.h"
#include "management_point.h"
#include "sms_signature.h"

/* At most this many files of each box are verified: enough to tell a wrong key. */
#define CHECK_SIGNED_PER_BOX 16

/* What the site-key check found across the boxes. */
typedef struct KeyCheck
{
	int			verified;		/* files whose signature verified */
	int			failed;			/* files that did not verify */
	char		first_ok[1024];	/* the first file that verified */
}			KeyCheck;

/*
 * Directory dir (what: how to name it) is there and this account may list
 * it, and write in it when writable; false after saying what is wrong.
 */
static bool
check_dir(const char *what, const char *dir, bool writable)
{
	struct stat st;
	int			mode = R_OK | X_OK | (writable ? W_OK : 0);

	if (stat(dir, &st) != 0)
	{
		agent_error("check: %s \"%s\": %s", what, dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode))
	{
		agent_error("check: %s \"%s\" is not a directory", what, dir);
		return false;
	}
	if (eaccess(dir, mode) != 0)
	{
		agent_error("check: %s \"%s\" is not %s by this account (uid %u): %s", what, dir,
					writable ? "readable and writable" : "readable", (unsigned) geteuid(), strerror(errno));
		return false;
	}
	agent_info("check: %s \"%s\" is %s", what, dir, writable ? "readable and writable" : "readable");
	return true;
}

/*
 * dir/sub, checked as check_dir does; but one that is not there yet is a
 * warning only: the site makes its boxes when it first writes into them
 * (a CAP has no pkginfo.box before the first advertisement), and a poll
 * then finds nothing there.
 */
static bool
check_subdir(const char *what, const char *dir, const char *sub, bool writable)
{
	char	   *path = xpath_join(dir, sub);
	bool		ok = true;

	if (access(path, F_OK) != 0 && errno == ENOENT)
		agent_warn("check: %s \"%s\" is not there (yet): nothing is offered through it until the site "
				   "writes it; is this the right directory?", what, path);
	else
		ok = check_dir(what, path, writable);
	free(path);
	return ok;
}

/* The state directory is there and writable, or can be made; false (said) if not. */
static bool
check_state_dir(const Config *c)
{
	char	   *parent;
	char	   *slash;
	bool		ok;

	if (access(c->state_dir, F_OK) == 0)
		return check_dir("the state directory", c->state_dir, true);
	parent = xstrdup(c->state_dir);
	slash = strrchr(parent, '/');
	if (slash == NULL)
		strcpy(parent, ".");
	else if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	ok = check_dir("the state directory's parent (the state directory is missing and will be made)",
				   parent, true);
	free(parent);
	return ok;
}

/*
 * Verify the signed files of box dir/sub with the site's keys, counting
 * into kc; each that does not verify is named.  Temporary files (a
 * leading dot: a writer's file not yet renamed) are not the site's word
 * yet and are skipped, as are entries that are not regular files and
 * icons (.ICO: binary, checked by the hash their signed .PKG holds).
 */
static void
check_box_signatures(const Config *c, const char *dir, const char *sub, KeyCheck *kc)
{
	char	   *box = xpath_join(dir, sub);
	DIR		   *d = opendir(box);
	struct dirent *e;
	int			seen = 0;

	if (d == NULL)
	{
		free(box);
		return;					/* said by check_subdir */
	}
	while (seen < CHECK_SIGNED_PER_BOX && (e = readdir(d)) != NULL)
	{
		char	   *path;
		struct stat st;
		char	   *buf = NULL;
		size_t		len;
		size_t		signed_len;
		char		err[512];
		bool		regular;

		size_t		nlen = strlen(e->d_name);

		if (e->d_name[0] == '.' || (nlen > 4 && strcasecmp(e->d_name + nlen - 4, ".ico") == 0))
			continue;
		path = xpath_join(box, e->d_name);
		regular = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
		if (!regular)
		{
			free(path);
			continue;
		}
		seen++;
		if (sms_fmt_read_file(box, e->d_name, &buf, &len, err, sizeof(err)) &&
			sms_sig_verify(c->site_keys, buf, len, &signed_len, err, sizeof(err)))
		{
			if (kc->verified++ == 0)
				snprintf(kc->first_ok, sizeof(kc->first_ok), "%s", path);
		}
		else
		{
			kc->failed++;
			agent_warn("check: \"%s\" does not verify with the site key(s): %s", path, err);
		}
		free(buf);
		free(path);
	}
	closedir(d);
	free(box);
}

/*
 * The site key(s) of --site-key verify what the site wrote on the shares:
 * a key that verifies nothing there is the wrong key, and every file it
 * refuses would offer nothing.
 */
static bool
check_site_key(const Config *c)
{
	KeyCheck	kc = {0};

	check_box_signatures(c, c->logon_dir, SMS_FMT_DIR_PCINS, &kc);
	check_box_signatures(c, c->cap_dir, SMS_FMT_DIR_OFFERINF, &kc);
	check_box_signatures(c, c->cap_dir, SMS_FMT_DIR_PKGINFO, &kc);
	if (kc.verified == 0 && kc.failed == 0)
	{
		agent_warn("check: no signed file on the shares yet: the site key is checked once the site "
				   "has written one");
		return true;
	}
	if (kc.verified == 0)
	{
		agent_error("check: the site key(s) verify none of the %d signed file(s) on the shares: is "
					"--site-key the public key of this site (SELECT smsdist.site_public_key())?", kc.failed);
		return false;
	}
	agent_info("check: the site key verifies %d signed file(s) on the shares (first: \"%s\")",
			   kc.verified, kc.first_ok);
	if (kc.failed > 0)
		agent_warn("check: %d file(s) on the shares do not verify (above): they offer nothing", kc.failed);
	return true;
}

static bool
check_legacy(const Config *c)
{
	bool		ok = true;

	if (check_dir("the logon server", c->logon_dir, false))
		ok &= check_subdir("the logon server's PCM files", c->logon_dir, SMS_FMT_DIR_PCINS, false);
	else
		ok = false;
	if (check_dir("the CAP", c->cap_dir, false))
	{
		ok &= check_subdir("the CAP's offers", c->cap_dir, SMS_FMT_DIR_OFFERINF, false);
		ok &= check_subdir("the CAP's package files", c->cap_dir, SMS_FMT_DIR_PKGINFO, false);
		if (c->have_key)
			ok &= check_subdir("the CAP's status inbox", c->cap_dir, SMS_FMT_DIR_STATUS, true);
		else
			agent_warn("check: no --machine-key: this agent will write no status files");
	}
	else
		ok = false;
	if (ok)
		ok = check_site_key(c);
	return ok;
}

int
agent_check(const Config *c)
{
	bool		ok = check_state_dir(c);

	if (c->conninfo != NULL)
		ok &= mp_check(c);
	else
		ok &= check_legacy(c);
	if (ok)
		agent_info("check: all is well%s%s", c->config_file ? " with " : "",
				   c->config_file ? c->config_file : "");
	else
		agent_error("check: the agent would not work as configured (see above)");
	return ok ? 0 : 1;
}
