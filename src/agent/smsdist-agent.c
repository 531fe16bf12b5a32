/*-------------------------------------------------------------------------
 *
 * smsdist-agent.c
 *	  The client agent: one workstation's side of software distribution.
 *
 * SMS's Package Command Manager (the Run phase of a job) and Advanced
 * Client, for a workstation of an smsdist site.
 * Legacy (shares) mode: like SMS's Package Command Manager the
 * agent reads its PCM file in its logon server's pcins.box, and like the
 * Offer Data Providers it reads its CAP's lookup files to find the
 * advertisements meant for this machine, its logged-on user or one of the
 * user's groups, then their installation and offer files and the package's
 * .NAL.  It keeps the current offers in its state directory and writes a
 * status message to the CAP's status inbox for each new offer.
 *
 * Terms:
 *	offer		a run-command job from the PCM file, or an advertisement,
 *				that this workstation may run now: its platform matches,
 *				its offer time has come and it has not expired.
 *	waiting		an offer whose time has not come yet (or whose package is
 *				not at this site yet); shown, not offered.
 *	state dir	the agent's own directory: "offers" (the current offers, one
 *				per line) and "sequence" (the number of the last status
 *				message).  Both are written whole (temporary name, fsync,
 *				rename).
 *	site time	the clock schedules are checked against.  In advanced mode
 *				it is the site database's clock, read at every poll; in
 *				legacy mode the heartbeat the site writes on the CAP
 *				(<SITE>.HBT).  A user who sets this machine's clock back
 *				cannot bring back an expired offer, and a skew over
 *				--max-skew is reported (status message 10020).  --now is a
 *				test clock for both.
 *
 * Signatures: in legacy mode every instruction file on a share must carry
 * the site's signature (src/formats/sms_signature.h), verified with the
 * public keys of --site-key before a byte of it is parsed; a file that does
 * not verify is refused with status message 10010 and the reason, and
 * offers nothing.  Each file must also be the one its name says (the PCM
 * file of this machine, the offer of that advertisement, the package file
 * of that package, this site's lookup and heartbeat files), so that a
 * signed file copied under another name is refused too.  A heartbeat older
 * than the newest one accepted by more than --max-skew is refused as a
 * replay (the newest is kept in the state directory, "heartbeat").
 *
 * Every file is read and written through the format library
 * (src/formats/sms_formats.h) that the site's writers use, so the two sides
 * cannot drift.  Exit codes: 0 the poll(s) ran; 1 a poll failed (an
 * unreadable share or state directory); 2 bad usage.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache_fetch.h"
#include "cache_move.h"
#include "cache_verify.h"
#include "download_cache.h"
#include "file_tree.h"
#include "libpq-fe.h"
#include "sms_formats.h"
#include "sms_signature.h"

#define AGENT_COMPONENT		"Client Agent"

/*
 * Others may pass through the state directory, not list it: a program that
 * runs with the user's rights runs from the cache inside it.
 */
#define STATE_DIR_MODE		0711
#define MAX_GROUPS			256

/* status message IDs of the agent (docs/status-messages.md) */
#define MSG_ADVERT_OFFERED	10001
#define MSG_JOB_OFFERED		10002
#define MSG_FILE_REFUSED	10010
#define MSG_CACHED_REFUSED	10011
#define MSG_CLOCK_SKEW		10020
#define MSG_DOWNLOADED		10003
#define MSG_NOT_DOWNLOADED	10004
#define MSG_CACHE_FULL		10006
#define MSG_PROGRAM_STARTED	10005
#define MSG_PROGRAM_OK		10008
#define MSG_PROGRAM_FAILED	10009
#define MSG_NOT_APPLICABLE	10007
#define MSG_RERUN_SKIPPED	10012
#define INVENTORY_MAX_PACKAGES	1000	/* what the site takes in one report */
#define NO_EXIT_CODE		(-1)	/* status_message: the message has no exit code */

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
	int64_t		now;			/* SMS_TIME_NONE: the clock */
	/* legacy mode: the key that signs status files (--machine-key) */
	bool		have_key;
	uint8_t		machine_key[SMS_STATUS_KEY_LEN];
} Config;

typedef struct Offer
{
	char		kind[8];		/* "job" or "advert" */
	char		id[16];
	char		package_id[16];
	char	   *program;
	char	   *command_line;
	bool		waiting;
	char	   *why;			/* for a waiting offer */
	int64_t		version;		/* the package version to download */
	char		sha256[65];		/* its hash (of its manifest); "" unknown */
	char	  **locations;		/* distribution point paths, preferred first */
	size_t		nlocations;
	int32_t		max_run_minutes;	/* 0: no limit */
	bool		user_rights;	/* runs as the logged-on user, not as the agent */
	/* mandatory: a job's mandatory_at, or an advertisement's assignments */
	SmsOfferAssignment *assignments;
	size_t		nassignments;
	SmsOfferWindow *windows;	/* maintenance windows that apply; none: any time */
	size_t		nwindows;
	SmsRerunBehaviour rerun;	/* what a mandatory time does after a run */
	int64_t		expires;		/* UTC instant, or SMS_TIME_NONE */
} Offer;

/*
 * A target whose program does not run on this platform: reported once
 * (status message 10007, remembered in <state dir>/not_applicable).
 */
typedef struct NotApplicable
{
	char		kind[8];
	char		id[16];
	char		package_id[16];
	char	   *program;
	char	   *platforms;		/* comma list */
} NotApplicable;

typedef struct Offers
{
	Offer	   *items;
	size_t		n;
	size_t		cap;
	/* every "<kind> <id>\n" this machine is a target of now, offered or not */
	char	   *targeted;
	size_t		targeted_len;
	NotApplicable *na;
	size_t		nna;
} Offers;

/* instruction files refused so far: a poll that refused one does not know all its targets */
static int refusals = 0;

static const char *progname = "smsdist-agent";

static void
usage(FILE *out)
{
	fprintf(out,
			"%s: the smsdist client agent (legacy mode: logon server and client access point\n"
			"shares; advanced mode: the management point)\n"
			"\n"
			"Usage:\n"
			"  %s --sms-id ID --site CODE --platform NAME --state-dir DIR\n"
			"     (--logon-server DIR --cap DIR --site-key FILE... --machine-key FILE | --management-point CONNINFO)\n"
			"     [--user DOMAIN\\NAME [--user-account LOGIN]] [--group DOMAIN\\NAME]...\n"
			"     [--once | --interval SECONDS] [--now YYYY-MM-DDTHH:MM:SSZ]\n"
			"  %s --state-dir DIR cache show | size MEGABYTES | move DIRECTORY | clear\n"
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
			"  --help, --version\n"
			"\n"
			"Each poll prints one line per offer and per waiting offer. Exit status: 0 the\n"
			"poll ran, 1 a poll failed, 2 bad usage. See smsdist-agent(1).\n",
			progname, progname, progname);
}

static void
warnx(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void *
xmalloc(size_t n)
{
	void	   *p = calloc(1, n ? n : 1);

	if (p == NULL)
	{
		warnx("out of memory");
		exit(1);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	char	   *p = xmalloc(strlen(s) + 1);

	strcpy(p, s);
	return p;
}

static char *
join(const char *dir, const char *sub)
{
	char	   *p = path_join(dir, sub);

	if (p == NULL)
	{
		warnx("out of memory");
		exit(1);
	}
	return p;
}

/* ----------------------------------------------------------------
 * Time: an SmsWhen is an instant (utc) or a wall-clock reading
 * ---------------------------------------------------------------- */

/* now as this machine's wall-clock reading, held as if it were UTC */
static int64_t
local_reading(int64_t now)
{
	time_t		t = (time_t) now;
	struct tm	tm;

	localtime_r(&t, &tm);
	return (int64_t) timegm(&tm);
}

/* true if when has come (an absent time never comes) */
static bool
has_come(SmsWhen when, int64_t now)
{
	if (when.secs == SMS_TIME_NONE)
		return false;
	return when.secs <= (when.utc ? now : local_reading(now));
}

static int64_t local_instant(int64_t reading);

static bool
platform_ok(char **platforms, size_t n, const char *mine)
{
	if (n == 0)
		return true;			/* any platform */
	for (size_t i = 0; i < n; i++)
		if (strcmp(platforms[i], mine) == 0)
			return true;
	return false;
}

/* ----------------------------------------------------------------
 * Offers
 * ---------------------------------------------------------------- */

static void add_target(Offers *o, const char *kind, const char *id);

static Offer *
add_offer(Offers *o, const char *kind, const char *id, const char *package_id,
		  const char *program, const char *command_line)
{
	Offer	   *x;

	if (o->n == o->cap)
	{
		size_t		cap = o->cap ? o->cap * 2 : 16;
		Offer	   *items = xmalloc(cap * sizeof(Offer));

		if (o->n)
			memcpy(items, o->items, o->n * sizeof(Offer));
		free(o->items);
		o->items = items;
		o->cap = cap;
	}
	x = &o->items[o->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->kind, sizeof(x->kind), "%s", kind);
	snprintf(x->id, sizeof(x->id), "%s", id);
	snprintf(x->package_id, sizeof(x->package_id), "%s", package_id ? package_id : "");
	x->program = xstrdup(program ? program : "");
	x->command_line = xstrdup(command_line ? command_line : "");
	add_target(o, kind, id);	/* an offer is a target, whatever its source */
	return x;
}

static void
set_package(Offer *x, int64_t version, const char *sha256, char *const *locations, size_t n)
{
	x->version = version;
	snprintf(x->sha256, sizeof(x->sha256), "%s", sha256 ? sha256 : "");
	x->locations = xmalloc(sizeof(char *) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		x->locations[i] = xstrdup(locations[i]);
	x->nlocations = n;
}

/* this machine is a target of kind id (whether it is offered or not) */
static void
add_target(Offers *o, const char *kind, const char *id)
{
	size_t		l = strlen(kind) + strlen(id) + 2;
	char	   *more = xmalloc(o->targeted_len + l + 1);

	if (o->targeted_len)
		memcpy(more, o->targeted, o->targeted_len);
	sprintf(more + o->targeted_len, "%s %s\n", kind, id);
	free(o->targeted);
	o->targeted = more;
	o->targeted_len += l;
}

/* a target whose program does not run on this machine's platform */
static void
add_not_applicable(Offers *o, const char *kind, const char *id, const char *package_id,
				   const char *program, char *const *platforms, size_t nplatforms)
{
	NotApplicable *na = xmalloc(sizeof(NotApplicable) * (o->nna + 1));
	NotApplicable *x;
	size_t		l = 1;

	if (o->nna)
		memcpy(na, o->na, sizeof(NotApplicable) * o->nna);
	free(o->na);
	o->na = na;
	x = &o->na[o->nna++];
	memset(x, 0, sizeof(*x));
	snprintf(x->kind, sizeof(x->kind), "%s", kind);
	snprintf(x->id, sizeof(x->id), "%s", id);
	snprintf(x->package_id, sizeof(x->package_id), "%s", package_id ? package_id : "");
	x->program = xstrdup(program ? program : "");
	for (size_t i = 0; i < nplatforms; i++)
		l += strlen(platforms[i]) + 2;
	x->platforms = xmalloc(l);
	x->platforms[0] = '\0';
	for (size_t i = 0; i < nplatforms; i++)
	{
		if (i)
			strcat(x->platforms, ", ");
		strcat(x->platforms, platforms[i]);
	}
}

static void
wait_for(Offer *x, const char *why)
{
	x->waiting = true;
	x->why = xstrdup(why);
}

/* ----------------------------------------------------------------
 * Status messages: <cap>/statmsgs.box/<MACHINE>.<SEQ>.SMS
 * ---------------------------------------------------------------- */

/* advanced mode: the connection to the management point, or NULL */
static PGconn *mp_conn = NULL;

static void
mp_drop(void)
{
	if (mp_conn)
		PQfinish(mp_conn);
	mp_conn = NULL;
}

static int64_t
next_sequence(const Config *c)
{
	char	   *buf = NULL;
	size_t		len;
	char		err[256];
	int64_t		seq = 0;
	char		text[32];

	if (sms_fmt_read_file(c->state_dir, "sequence", &buf, &len, err, sizeof(err)))
	{
		seq = strtoll(buf, NULL, 10);
		free(buf);
	}
	seq = (seq + 1) % 10000000000LL;
	snprintf(text, sizeof(text), "%lld\n", (long long) seq);
	/* written before the message: a crash between them skips a number, never repeats one */
	if (!sms_fmt_write_file(c->state_dir, "sequence", text, strlen(text), err, sizeof(err)))
	{
		warnx("could not write the sequence in \"%s\": %s", c->state_dir, err);
		return -1;
	}
	return seq;
}

static bool
status_message(const Config *c, int64_t now, int32_t id, SmsStatusLevel severity,
			   const char *advert_id, const char *job_id, const char *package_id,
			   const char *text, int exit_code)
{
	SmsStatusFile m = {0};
	char	   *buf;
	size_t		len;
	char		err[512];
	char		name[SMS_FMT_NAME_BUFLEN];
	char	   *box = NULL;
	bool		ok = false;

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
		goto done;
	if (c->conninfo != NULL)
	{
		/* advanced mode: through the management point */
		static const char *const sev[] = {"informational", "warning", "error"};
		char		seq[32];
		char		at[32];
		char		mid[16];
		char		code[16];
		const char *v[11];
		PGresult   *r;

		if (mp_conn == NULL)
		{
			warnx("status message %d not sent: no connection to the management point", id);
			goto done;
		}
		snprintf(seq, sizeof(seq), "%lld", (long long) m.sequence);
		sms_fmt_format_time(now, true, at);
		snprintf(mid, sizeof(mid), "%d", id);
		v[0] = c->sms_id;
		v[1] = seq;
		v[2] = at;
		v[3] = mid;
		v[4] = sev[severity];
		v[5] = AGENT_COMPONENT;
		v[6] = text;
		v[7] = advert_id;
		v[8] = job_id;
		v[9] = m.package_id;
		snprintf(code, sizeof(code), "%d", exit_code);
		v[10] = exit_code >= 0 ? code : NULL;
		r = PQexecParams(mp_conn, "SELECT smsdist.client_status($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, p_exit_code => $11::integer)",
						 11, NULL, v, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
			warnx("status message %d not sent: %s", id, PQerrorMessage(mp_conn));
		PQclear(r);
		goto done;
	}
	if (!c->have_key)
	{
		/* the site refuses a status file it cannot authenticate */
		warnx("status message %d not written: no --machine-key (smsdist.machine_key() gives it)", id);
		goto done;
	}
	m.key = c->machine_key;
	if (!sms_status_to_text(&m, &buf, &len, err, sizeof(err)))
	{
		warnx("could not make a status message: %s", err);
		goto done;
	}
	/*
	 * The site's Status Manager makes the inbox, owned by the server's
	 * account so that it can always remove what agents leave there; one
	 * made here (as root, say) could wedge it.
	 */
	box = join(c->cap_dir, SMS_FMT_DIR_STATUS);
	if (access(box, F_OK) != 0)
		warnx("status message %d not written: the CAP has no status inbox \"%s\" (%s; the site's Status Manager creates it)",
			  id, box, strerror(errno));
	else if (!sms_fmt_file_name(SMS_FILE_STATUS, c->sms_id, m.sequence, name, sizeof(name), err, sizeof(err)) ||
			 !sms_fmt_write_file(box, name, buf, len, err, sizeof(err)))
		warnx("could not write a status message to \"%s\": %s", box, err);
	else
		ok = true;
	free(buf);
done:
	free(box);
	return ok;
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
		warnx("could not open the machine key \"%s\": %s", file, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		warnx("the machine key \"%s\" is not a regular file", file);
		close(fd);
		return false;
	}
	if (st.st_mode & 077)
	{
		warnx("the machine key \"%s\" is open to other accounts (mode %04o): make it 0600",
			  file, (unsigned) (st.st_mode & 07777));
		close(fd);
		return false;
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0 || !sms_status_key_from_hex(text, (size_t) n, c->machine_key, err, sizeof(err)))
	{
		warnx("could not read the machine key \"%s\": %s", file, n < 0 ? strerror(errno) : err);
		return false;
	}
	c->have_key = true;
	return true;
}

/* ----------------------------------------------------------------
 * Reading the shares
 * ---------------------------------------------------------------- */

/*
 * Read dir/name and verify its signature with the site's keys; NULL if it
 * does not exist.  *len is the length of the signed document, the only
 * part the caller parses.  Any other failure (unreadable, not signed, a
 * signature that does not verify) is reported (stderr and status message
 * 10010 with the reason) and also gives NULL: the file offers nothing.
 */
static char *
read_share_file(const Config *c, int64_t now, const char *dir, const char *name, size_t *len)
{
	char	   *buf = NULL;
	char		err[512];
	struct stat st;
	char	   *path = join(dir, name);
	size_t		signed_len;

	if (lstat(path, &st) != 0 && errno == ENOENT)
	{
		free(path);
		return NULL;
	}
	if (!sms_fmt_read_file(dir, name, &buf, len, err, sizeof(err)) ||
		!sms_sig_verify(c->site_keys, buf, *len, &signed_len, err, sizeof(err)))
	{
		char		text[1024];

		snprintf(text, sizeof(text), "Instruction file \"%s\" refused: %s", path, err);
		warnx("%s", text);
		status_message(c, now, MSG_FILE_REFUSED, SMS_STATUS_ERROR, NULL, NULL, NULL, text, NO_EXIT_CODE);
		refusals++;
		free(buf);
		buf = NULL;
	}
	else
		*len = signed_len;
	free(path);
	return buf;
}

static void
refused(const Config *c, int64_t now, const char *dir, const char *name, const char *err)
{
	char		text[1024];

	snprintf(text, sizeof(text), "Instruction file \"%s/%s\" refused: %s", dir, name, err);
	refusals++;
	warnx("%s", text);
	status_message(c, now, MSG_FILE_REFUSED, SMS_STATUS_ERROR, NULL, NULL, NULL, text, NO_EXIT_CODE);
}

/* Run-command jobs from the PCM file. */
static void
pcm_offers(const Config *c, int64_t now, Offers *o)
{
	char	   *dir = join(c->logon_dir, SMS_FMT_DIR_PCINS);
	size_t		len;
	char	   *buf = read_share_file(c, now, dir, c->sms_id, &len);
	SmsPcmFile f = {0};
	char		err[512];

	if (buf == NULL)
		goto out;
	if (!sms_pcm_parse(buf, len, &f, err, sizeof(err)))
		refused(c, now, dir, c->sms_id, err);
	else if (strcmp(f.machine, c->sms_id) != 0)
		refused(c, now, dir, c->sms_id, "it is the PCM file of another machine");
	else
	{
		for (size_t i = 0; i < f.njobs; i++)
		{
			SmsPcmJob  *j = &f.jobs[i];
			Offer	   *x;

			add_target(o, "job", j->job_id);
			if (j->expires_at != SMS_TIME_NONE && j->expires_at <= now)
				continue;
			if (!platform_ok(j->platforms, j->nplatforms, c->platform))
			{
				/* not for this platform: not shown, reported once */
				add_not_applicable(o, "job", j->job_id, j->package_id, j->program,
								   j->platforms, j->nplatforms);
				continue;
			}
			x = add_offer(o, "job", j->job_id, j->package_id, j->program, j->command_line);
			x->expires = j->expires_at;
			set_package(x, j->package_version, j->package_sha256, j->locations, j->nlocations);
			x->max_run_minutes = j->max_run_minutes;
			x->user_rights = j->user_rights;
			if (j->mandatory_at != SMS_TIME_NONE)
			{
				x->assignments = xmalloc(sizeof(SmsOfferAssignment));
				x->assignments[0].time.secs = j->mandatory_at;
				x->assignments[0].time.utc = true;
				x->nassignments = 1;
			}
			if (j->offer_after > now)
			{
				char		when[32];

				sms_fmt_format_time(j->offer_after, true, when);
				wait_for(x, when);
			}
		}
		sms_pcm_free(&f);
	}
	free(buf);
out:
	free(dir);
}

static bool
seen(char **ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/* The advertisement IDs the lookup files give this machine, its user and groups. */
static size_t
lookup_adverts(const Config *c, int64_t now, const char *box, char ***out)
{
	static const SmsFmtFileKind kinds[3] = {SMS_FILE_LOOKUP_SYSTEM, SMS_FILE_LOOKUP_USER, SMS_FILE_LOOKUP_USERGROUP};
	char	  **ids = xmalloc(sizeof(char *) * 1024);
	size_t		n = 0,
				cap = 1024;

	for (int k = 0; k < 3; k++)
	{
		char		name[SMS_FMT_NAME_BUFLEN];
		char		err[512];
		size_t		len;
		char	   *buf;
		SmsLookupFile f = {0};
		const char *who[1 + MAX_GROUPS];
		int			nwho = 0;

		if (k == 0)
			who[nwho++] = c->sms_id;
		else if (k == 1 && c->user)
			who[nwho++] = c->user;
		else if (k == 2)
			for (int g = 0; g < c->ngroups; g++)
				who[nwho++] = c->groups[g];
		if (nwho == 0)
			continue;
		if (!sms_fmt_file_name(kinds[k], c->site, 0, name, sizeof(name), err, sizeof(err)))
			continue;
		if ((buf = read_share_file(c, now, box, name, &len)) == NULL)
			continue;
		if (!sms_lookup_parse(buf, len, &f, err, sizeof(err)))
			refused(c, now, box, name, err);
		else if (strcmp(f.site, c->site) != 0 || (int) f.kind != k)
		{
			refused(c, now, box, name, strcmp(f.site, c->site) != 0 ?
					"it is the lookup file of another site" : "it is another kind of lookup file");
			sms_lookup_free(&f);
		}
		else
		{
			for (int w = 0; w < nwho; w++)
			{
				const SmsLookupEntry *e = sms_lookup_find(&f, who[w]);

				for (size_t a = 0; e && a < e->nadverts; a++)
				{
					if (seen(ids, n, e->adverts[a]))
						continue;
					if (n == cap)
					{
						char	  **more = xmalloc(sizeof(char *) * cap * 2);

						memcpy(more, ids, sizeof(char *) * n);
						free(ids);
						ids = more;
						cap *= 2;
					}
					ids[n++] = xstrdup(e->adverts[a]);
				}
			}
			sms_lookup_free(&f);
		}
		free(buf);
	}
	*out = ids;
	return n;
}

/*
 * The package as this site has it: version and hash from its .PKG, the
 * locations from its .NAL.  False if either is missing (not at this site
 * yet) or refused.
 */
/*
 * Does the CAP say the package was removed from this site (a NAL file with
 * removed=true)?  A file that does not verify says nothing.
 */
static bool
package_removed(const Config *c, int64_t now, const char *package_id)
{
	char	   *box = join(c->cap_dir, SMS_FMT_DIR_PKGINFO);
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	size_t		len;
	char	   *buf = NULL;
	SmsNalFile	nal = {0};
	bool		removed = false;

	if (sms_fmt_file_name(SMS_FILE_NAL, package_id, 0, name, sizeof(name), err, sizeof(err)) &&
		(buf = read_share_file(c, now, box, name, &len)) != NULL &&
		sms_nal_parse(buf, len, &nal, err, sizeof(err)))
	{
		removed = nal.removed && strcmp(nal.package_id, package_id) == 0;
		sms_nal_free(&nal);
	}
	free(buf);
	free(box);
	return removed;
}

static bool
package_info(const Config *c, int64_t now, const char *package_id, Offer *x)
{
	char	   *box = join(c->cap_dir, SMS_FMT_DIR_PKGINFO);
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	size_t		len;
	char	   *buf = NULL;
	SmsNalFile nal = {0};
	SmsPackageFile pkg = {0};
	bool		here = false;

	if (sms_fmt_file_name(SMS_FILE_PACKAGE, package_id, 0, name, sizeof(name), err, sizeof(err)) &&
		(buf = read_share_file(c, now, box, name, &len)) != NULL)
	{
		if (!sms_package_parse(buf, len, &pkg, err, sizeof(err)))
			refused(c, now, box, name, err);
		else if (strcmp(pkg.package_id, package_id) != 0)
			refused(c, now, box, name, "it is the package file of another package");
		else
			here = true;
	}
	free(buf);
	buf = NULL;
	if (here && sms_fmt_file_name(SMS_FILE_NAL, package_id, 0, name, sizeof(name), err, sizeof(err)) &&
		(buf = read_share_file(c, now, box, name, &len)) != NULL)
	{
		if (!sms_nal_parse(buf, len, &nal, err, sizeof(err)))
		{
			refused(c, now, box, name, err);
			here = false;
		}
		else if (strcmp(nal.package_id, package_id) != 0)
		{
			refused(c, now, box, name, "it is the NAL file of another package");
			sms_nal_free(&nal);
			here = false;
		}
		else
		{
			char	  **paths = xmalloc(sizeof(char *) * (nal.nlocations ? nal.nlocations : 1));
			size_t		n = 0;

			/* this site's locations of the version the .PKG describes */
			for (size_t i = 0; i < nal.nlocations; i++)
				if (strcmp(nal.locations[i].site, c->site) == 0 && nal.source_version == pkg.source_version)
					paths[n++] = nal.locations[i].path;
			here = n > 0;
			if (here)
				set_package(x, pkg.source_version, pkg.sha256, paths, n);
			for (size_t i = 0; here && i < pkg.nprograms; i++)
				if (strcmp(pkg.programs[i].name, x->program) == 0)
				{
					x->max_run_minutes = pkg.programs[i].max_run_minutes;
					x->user_rights = pkg.programs[i].user_rights;
				}
			free(paths);
			sms_nal_free(&nal);
		}
	}
	else
		here = false;
	if (pkg.package_id)
		sms_package_free(&pkg);
	free(buf);
	free(box);
	return here;
}

/* Advertisements for this machine, its user and its groups. */
static void
advert_offers(const Config *c, int64_t now, Offers *o)
{
	char	   *box = join(c->cap_dir, SMS_FMT_DIR_OFFERINF);
	char	  **ids;
	size_t		n = lookup_adverts(c, now, box, &ids);

	for (size_t i = 0; i < n; i++)
		add_target(o, "advert", ids[i]);
	for (size_t i = 0; i < n; i++)
	{
		char		name[SMS_FMT_NAME_BUFLEN];
		char		err[512];
		size_t		len;
		char	   *buf;
		SmsInstallFile ins = {0};
		SmsOfferFile ofr = {0};
		Offer	   *x;

		/* the installation file first: it must name this advertisement */
		if (!sms_fmt_file_name(SMS_FILE_INSTALL, ids[i], 0, name, sizeof(name), err, sizeof(err)) ||
			(buf = read_share_file(c, now, box, name, &len)) == NULL)
			continue;			/* not written yet: next poll */
		if (!sms_install_parse(buf, len, &ins, err, sizeof(err)) || strcmp(ins.advert_id, ids[i]) != 0)
		{
			refused(c, now, box, name, err[0] ? err : "it names another advertisement");
			free(buf);
			continue;
		}
		free(buf);
		sms_install_free(&ins);

		if (!sms_fmt_file_name(SMS_FILE_OFFER, ids[i], 0, name, sizeof(name), err, sizeof(err)) ||
			(buf = read_share_file(c, now, box, name, &len)) == NULL)
			continue;
		if (!sms_offer_parse(buf, len, &ofr, err, sizeof(err)) || strcmp(ofr.advert_id, ids[i]) != 0)
		{
			refused(c, now, box, name, err[0] ? err : "it names another advertisement");
			free(buf);
			continue;
		}
		free(buf);
		if (!platform_ok(ofr.platforms, ofr.nplatforms, c->platform) && !has_come(ofr.expires_time, now))
			add_not_applicable(o, "advert", ofr.advert_id, ofr.package_id, ofr.program,
							   ofr.platforms, ofr.nplatforms);
		else if (!has_come(ofr.expires_time, now))
		{
			x = add_offer(o, "advert", ofr.advert_id, ofr.package_id, ofr.program, ofr.command_line);
			x->rerun = ofr.rerun;
			x->expires = ofr.expires_time.secs == SMS_TIME_NONE ? SMS_TIME_NONE :
				ofr.expires_time.utc ? ofr.expires_time.secs : local_instant(ofr.expires_time.secs);
			if (ofr.nassignments)
			{
				x->assignments = xmalloc(sizeof(SmsOfferAssignment) * ofr.nassignments);
				memcpy(x->assignments, ofr.assignments, sizeof(SmsOfferAssignment) * ofr.nassignments);
				x->nassignments = ofr.nassignments;
			}
			if (ofr.nwindows)
			{
				x->windows = xmalloc(sizeof(SmsOfferWindow) * ofr.nwindows);
				memcpy(x->windows, ofr.windows, sizeof(SmsOfferWindow) * ofr.nwindows);
				x->nwindows = ofr.nwindows;
			}
			if (!has_come(ofr.offer_time, now))
			{
				char		when[32];

				sms_fmt_format_time(ofr.offer_time.secs, ofr.offer_time.utc, when);
				wait_for(x, when);
			}
			else if (!package_info(c, now, ofr.package_id, x))
				wait_for(x, package_removed(c, now, ofr.package_id) ?
						 "its package was removed from this site" :
						 "its package is not at this site yet");
		}
		sms_offer_free(&ofr);
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	free(box);
}

/* ----------------------------------------------------------------
 * Advanced mode: the policy from the management point
 * ---------------------------------------------------------------- */

/* Connect and LISTEN, if not connected; false (and a warning) if it fails. */
static bool
mp_connect(const Config *c)
{
	char		sql[128];
	PGresult   *r;

	if (mp_conn != NULL && PQstatus(mp_conn) == CONNECTION_OK)
		return true;
	mp_drop();
	mp_conn = PQconnectdb(c->conninfo);
	if (PQstatus(mp_conn) != CONNECTION_OK)
	{
		warnx("could not connect to the management point: %s", PQerrorMessage(mp_conn));
		mp_drop();
		return false;
	}
	/* the channel is the SMS ID in lower case (an SMS ID needs no quoting) */
	snprintf(sql, sizeof(sql), "LISTEN smsdist_policy_%s", c->sms_id);
	for (char *p = sql; *p; p++)
		*p = (*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p;
	r = PQexec(mp_conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		warnx("could not listen for policy changes: %s", PQerrorMessage(mp_conn));
		PQclear(r);
		mp_drop();
		return false;
	}
	PQclear(r);
	return true;
}

/*
 * Report a clock skew (site minus this machine, seconds) once per run of
 * the agent, when it is larger than --max-skew.
 */
static void
report_skew(const Config *c, int64_t now, int64_t skew)
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

/*
 * The site time of the newest heartbeat this agent accepted (state file
 * "heartbeat"), or SMS_TIME_NONE.  An older signed heartbeat put back on
 * the share must not turn the site's clock back (bringing back expired
 * offers), so one older than this by more than --max-skew is refused.
 */
static int64_t
newest_heartbeat(const Config *c)
{
	char	   *buf = NULL;
	size_t		len;
	char		err[256];
	char		text[SMS_FMT_TIME_BUFLEN];
	int64_t		t = SMS_TIME_NONE;

	if (!sms_fmt_read_file(c->state_dir, "heartbeat", &buf, &len, err, sizeof(err)))
		return SMS_TIME_NONE;
	if (len == SMS_FMT_TIME_BUFLEN && buf[len - 1] == '\n')
	{
		memcpy(text, buf, len - 1);
		text[len - 1] = '\0';
		if (!sms_fmt_parse_time(text, true, &t))
			t = SMS_TIME_NONE;
	}
	free(buf);
	return t;
}

static void
keep_newest_heartbeat(const Config *c, int64_t site_time)
{
	char		text[SMS_FMT_TIME_BUFLEN + 1];
	char		err[256];

	if (!sms_fmt_format_time(site_time, true, text))
		return;
	strcat(text, "\n");
	if (!sms_fmt_write_file(c->state_dir, "heartbeat", text, strlen(text), err, sizeof(err)))
		warnx("could not write the heartbeat in \"%s\": %s", c->state_dir, err);
}

/*
 * Legacy mode: the site's clock, from the heartbeat the Inbox Manager
 * rewrites on the CAP at least every interval.  Its site_time is up to an
 * interval old, so this machine counts as skewed only if its clock is
 * outside [site_time - max skew, site_time + interval + max skew]; then
 * schedules follow site_time.  Without a heartbeat (an older site), this
 * machine's clock.
 */
static int64_t
legacy_site_time(const Config *c, int64_t local)
{
	char	   *box = join(c->cap_dir, SMS_FMT_DIR_OFFERINF);
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	char	   *buf = NULL;
	size_t		len;
	SmsHeartbeatFile hb = {0};
	int64_t		site = local;

	if (sms_fmt_file_name(SMS_FILE_HEARTBEAT, c->site, 0, name, sizeof(name), err, sizeof(err)) &&
		(buf = read_share_file(c, local, box, name, &len)) != NULL)
	{
		int64_t		newest = newest_heartbeat(c);

		if (!sms_heartbeat_parse(buf, len, &hb, err, sizeof(err)))
			refused(c, local, box, name, err);
		else if (strcmp(hb.site, c->site) != 0)
		{
			refused(c, local, box, name, "it is the heartbeat of another site");
			sms_heartbeat_free(&hb);
		}
		else if (newest != SMS_TIME_NONE && hb.site_time < newest - c->max_skew)
		{
			char		t1[SMS_FMT_TIME_BUFLEN],
						t2[SMS_FMT_TIME_BUFLEN],
						why[256];

			sms_fmt_format_time(hb.site_time, true, t1);
			sms_fmt_format_time(newest, true, t2);
			snprintf(why, sizeof(why),
					 "its site time %s is older than the newest heartbeat this machine accepted (%s) "
					 "by more than --max-skew (%d s): a replayed heartbeat", t1, t2, c->max_skew);
			refused(c, local, box, name, why);
			sms_heartbeat_free(&hb);
		}
		else
		{
			if (newest == SMS_TIME_NONE || hb.site_time > newest)
				keep_newest_heartbeat(c, hb.site_time);
			if (local < hb.site_time - c->max_skew ||
				local > hb.site_time + hb.interval_seconds + c->max_skew)
			{
				site = hb.site_time;
				report_skew(c, site, site - local);
			}
			sms_heartbeat_free(&hb);
		}
	}
	free(buf);
	free(box);
	return site;
}

/* "a:b:c,..." into assignments (epoch:utc:recur) or windows (start:duration:days) */
static void
parse_triples(const char *text, Offer *x, bool assignments)
{
	char	  **parts;
	size_t		n;

	if (!sms_fmt_split(text, ',', &parts, &n) || n == 0)
		return;
	if (assignments)
		x->assignments = xmalloc(sizeof(SmsOfferAssignment) * n);
	else
		x->windows = xmalloc(sizeof(SmsOfferWindow) * n);
	for (size_t k = 0; k < n; k++)
	{
		char	   *p = parts[k];
		long long	a = strtoll(p, &p, 10);

		if (assignments)
		{
			x->assignments[k].time.secs = a;
			x->assignments[k].time.utc = strncmp(p, ":true", 5) == 0;
			p = strchr(p + 1, ':');
			x->assignments[k].recur_every_minutes = p ? (int32_t) strtol(p + 1, NULL, 10) : 0;
		}
		else
		{
			x->windows[k].start_minute = (int) a;
			x->windows[k].duration_minutes = (int32_t) strtol(p + 1, &p, 10);
			x->windows[k].days = (unsigned) strtoul(p + 1, NULL, 10);
		}
	}
	if (assignments)
		x->nassignments = n;
	else
		x->nwindows = n;
	sms_fmt_free_list(parts, n);
}

/*
 * The run-command jobs and advertisements of this machine's policy, with
 * those of its logged-on user and the user's groups when --user or --group
 * say who that is: the offers a legacy agent takes from the PCM file and
 * the lookup files, from the management point.  Schedules are checked on
 * the site's clock (the server's), not this machine's: *now becomes the
 * site's time, and a skew over --max-skew is reported.  False if the
 * management point could not be asked.
 */
static bool
mp_offers(const Config *c, int64_t *now, Offers *o)
{
	const char *v[3] = {c->sms_id, c->user, NULL};
	char	   *groups = NULL;
	const char *sql;
	PGresult   *r;
	int64_t		local = *now;	/* this machine's clock */
	bool		who = c->user != NULL || c->ngroups > 0;

	if (!mp_connect(c))
		return false;
	if (c->ngroups > 0)
	{
		/* one group a line: a name has no control characters (checked) */
		size_t		len = 1;

		for (int g = 0; g < c->ngroups; g++)
			len += strlen(c->groups[g]) + 1;
		groups = xmalloc(len);
		groups[0] = '\0';
		for (int g = 0; g < c->ngroups; g++)
		{
			strcat(groups, c->groups[g]);
			if (g + 1 < c->ngroups)
				strcat(groups, "\n");
		}
		v[2] = groups;
	}
	/*
	 * Who is logged on only when somebody is: the machine alone is the
	 * one-argument call, which a management point of any version answers.
	 */
	sql = who ? "SELECT smsdist.machine_policy($1, $2, string_to_array($3, E'\\n')) AS p"
		: "SELECT smsdist.machine_policy($1) AS p";
	{
		char		query[8192];

		snprintf(query, sizeof(query),
				 "SELECT extract(epoch FROM clock_timestamp())::bigint, o.* FROM (%s) x LEFT JOIN LATERAL ("
				 /* run-command jobs: what the PCM file says, in the same order */
				 "SELECT j->>'job_id', j->>'package_id', j->>'program', j->>'command_line',"
				 "       coalesce((SELECT string_agg(pl.v, ',') FROM jsonb_array_elements_text("
				 "                   CASE WHEN jsonb_typeof(j->'platforms') = 'array' THEN j->'platforms' END) AS pl(v)), ''),"
				 "       extract(epoch FROM (j->>'offer_after')::timestamptz)::bigint, true,"
				 "       extract(epoch FROM (j->>'expires_at')::timestamptz)::bigint, true,"
				 "       jsonb_array_length(coalesce(j->'locations', '[]'::jsonb)),"
				 "       j->>'package_version', j->>'package_sha256',"
				 "       (SELECT string_agg(l.v, E'\\n') FROM jsonb_array_elements_text("
				 "           CASE WHEN jsonb_typeof(j->'locations') = 'array' THEN j->'locations' END) AS l(v)),"
				 "       coalesce((j->>'max_run_minutes')::integer, 0),"
				 /* the mandatory time: one assignment, UTC, not recurring */
				 "       extract(epoch FROM (j->>'mandatory_at')::timestamptz)::bigint || ':true:0',"
				 "       NULL::text,"	/* no windows: a PCM job has none */
				 "       coalesce(j->>'run_with', '') = 'user_rights', 'job',"
				 /* a run-command job runs again only if it failed */
				 "       'rerun_if_failed', false"
				 "  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x.p->'jobs') = 'array' THEN x.p->'jobs' END) j "
				 "UNION ALL "
				 "SELECT a->>'advert_id', a->>'package_id', a->>'program', a->>'command_line',"
				 "       coalesce((SELECT string_agg(pl.v, ',') FROM jsonb_array_elements_text("
				 "                   CASE WHEN jsonb_typeof(a->'platforms') = 'array' THEN a->'platforms' END) AS pl(v)), ''),"
				 "       extract(epoch FROM (a->>'offer_time')::timestamp)::bigint, (a->>'offer_time_utc')::boolean,"
				 "       extract(epoch FROM (a->>'expires_time')::timestamp)::bigint, (a->>'expires_time_utc')::boolean,"
				 "       jsonb_array_length(coalesce(a->'locations', '[]'::jsonb)),"
				 "       a->>'package_version', a->>'package_sha256',"
				 "       (SELECT string_agg(l.v, E'\\n') FROM jsonb_array_elements_text("
				 "           CASE WHEN jsonb_typeof(a->'locations') = 'array' THEN a->'locations' END) AS l(v)),"
				 "       coalesce((a->>'max_run_minutes')::integer, 0),"
				 /* assignments: epoch:utc:recur minutes, as the offer file has them */
				 "       (SELECT string_agg(extract(epoch FROM (s->>'time')::timestamp)::bigint || ':' || (s->>'time_utc')"
				 "                          || ':' || coalesce(s->>'recur_every_minutes', '0'), ',')"
				 "          FROM jsonb_array_elements(coalesce(a->'assignments', '[]'::jsonb)) s),"
				 /* the machine's windows: start minute:duration:days bits (mon = 1) */
				 "       (SELECT string_agg(((split_part(w->>'start', ':', 1))::int * 60 + (split_part(w->>'start', ':', 2))::int)"
				 "                          || ':' || (w->>'duration_minutes') || ':'"
				 "                          || (SELECT sum(1 << (array_position(ARRAY['mon','tue','wed','thu','fri','sat','sun'], d.v) - 1))"
				 "                                FROM jsonb_array_elements_text(w->'days') AS d(v)), ',')"
				 "          FROM jsonb_array_elements(coalesce(x.p->'maintenance_windows', '[]'::jsonb)) w),"
				 "       coalesce(a->>'run_with', '') = 'user_rights', 'advert',"
				 "       coalesce(a->>'rerun_behaviour', 'rerun_if_failed'),"
				 /* a site before 0.9 does not say: "not here yet" */
				 "       coalesce(a->>'package_removed', 'false') = 'true'"
				 "  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x.p->'advertisements') = 'array'"
				 "                                 THEN x.p->'advertisements' END) a"
				 ") o ON true", sql);
		r = PQexecParams(mp_conn, query, who ? 3 : 1, NULL, v, NULL, NULL, 0);
	}
	free(groups);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		warnx("could not read the policy: %s", PQerrorMessage(mp_conn));
		PQclear(r);
		if (PQstatus(mp_conn) != CONNECTION_OK)
			mp_drop();
		return false;
	}
	if (PQntuples(r) > 0)
	{
		/* the site's clock, whatever this machine's says (a test clock stands for both) */
		*now = c->now != SMS_TIME_NONE ? c->now : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		report_skew(c, *now, *now - local);
	}
	for (int i = 0; i < PQntuples(r); i++)
	{
		char	  **platforms;
		size_t		nplatforms;
		SmsWhen		offer,
					expires;
		Offer	   *x;
		const char *kind;

		if (PQgetisnull(r, i, 1))
			continue;			/* nothing at all */
		kind = PQgetvalue(r, i, 18);
		if (!sms_fmt_split(PQgetvalue(r, i, 5), ',', &platforms, &nplatforms))
			continue;
		offer.secs = PQgetisnull(r, i, 6) ? SMS_TIME_NONE : strtoll(PQgetvalue(r, i, 6), NULL, 10);
		offer.utc = PQgetvalue(r, i, 7)[0] == 't';
		expires.secs = PQgetisnull(r, i, 8) ? SMS_TIME_NONE : strtoll(PQgetvalue(r, i, 8), NULL, 10);
		expires.utc = PQgetvalue(r, i, 9)[0] == 't';
		add_target(o, kind, PQgetvalue(r, i, 1));
		if (!platform_ok(platforms, nplatforms, c->platform) && !has_come(expires, *now))
			add_not_applicable(o, kind, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
							   PQgetvalue(r, i, 3), platforms, nplatforms);
		else if (!has_come(expires, *now))
		{
			x = add_offer(o, kind, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
						  PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
			if (!sms_rerun_from_name(PQgetvalue(r, i, 19), &x->rerun))
				x->rerun = SMS_RERUN_IF_FAILED;
			x->expires = expires.secs == SMS_TIME_NONE ? SMS_TIME_NONE :
				expires.utc ? expires.secs : local_instant(expires.secs);
			if (!has_come(offer, *now))
			{
				char		when[32];

				sms_fmt_format_time(offer.secs, offer.utc, when);
				wait_for(x, when);
			}
			else if (strcmp(PQgetvalue(r, i, 10), "0") == 0)
				wait_for(x, PQgetvalue(r, i, 20)[0] == 't' ?
						 "its package was removed from this site" :
						 "its package is not at this site yet");
			else
			{
				char	  **locs;
				size_t		nlocs;

				if (sms_fmt_split(PQgetvalue(r, i, 13), '\n', &locs, &nlocs))
				{
					set_package(x, strtoll(PQgetvalue(r, i, 11), NULL, 10), PQgetvalue(r, i, 12), locs, nlocs);
					sms_fmt_free_list(locs, nlocs);
				}
			}
			x->max_run_minutes = (int32_t) strtol(PQgetvalue(r, i, 14), NULL, 10);
			parse_triples(PQgetvalue(r, i, 15), x, true);
			parse_triples(PQgetvalue(r, i, 16), x, false);
			x->user_rights = strcmp(PQgetvalue(r, i, 17), "t") == 0;
		}
		sms_fmt_free_list(platforms, nplatforms);
	}
	PQclear(r);
	return true;
}

/*
 * Advanced mode, between polls: wait until the policy changes (a NOTIFY)
 * or the interval passes.  Without a connection this is plain polling.
 */
static void
mp_wait(const Config *c)
{
	struct pollfd pfd;

	if (mp_conn == NULL || PQstatus(mp_conn) != CONNECTION_OK)
	{
		sleep((unsigned) c->interval);
		return;
	}
	pfd.fd = PQsocket(mp_conn);
	pfd.events = POLLIN;
	if (poll(&pfd, 1, c->interval * 1000) > 0)
	{
		PGnotify   *n;

		if (!PQconsumeInput(mp_conn))
		{
			warnx("lost the management point: %s", PQerrorMessage(mp_conn));
			mp_drop();			/* polling from now on, until it is back */
			return;
		}
		while ((n = PQnotifies(mp_conn)) != NULL)
			PQfreemem(n);
	}
}

/* ----------------------------------------------------------------
 * State: the offers of the last poll
 * ---------------------------------------------------------------- */

/*
 * The state files are lines.  The next line of text (after *pos) that starts
 * with prefix: returns what follows the prefix, and moves *pos past that
 * line; NULL when there is none.
 */
static const char *
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

/* Does text hold this whole line (with its newline)? */
static bool
has_line(const char *text, const char *line)
{
	const char *pos = NULL;

	return next_line_with(text, &pos, line) != NULL;
}

/* Was x among the offers of the last poll (lines "<kind> <id>")? */
static bool
was_offered(const char *state, const Offer *x)
{
	char		line[64];

	snprintf(line, sizeof(line), "%s %s\n", x->kind, x->id);
	return has_line(state, line);
}

/* ----------------------------------------------------------------
 * The download cache
 * ---------------------------------------------------------------- */

/* Where the cache is: where it was last moved, else --cache-dir, else <state>/cache. */
static char *
cache_location(const Config *c)
{
	char	   *buf;
	size_t		len;
	char		err[256];

	if (sms_fmt_read_file(c->state_dir, "cache.location", &buf, &len, err, sizeof(err)))
	{
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		if (len > 0 && buf[0] == '/')
			return buf;
		free(buf);
	}
	return c->cache_dir ? xstrdup(c->cache_dir) : join(c->state_dir, "cache");
}

static const char *
result_name(CacheResult r)
{
	switch (r)
	{
		case CACHE_DOWNLOADED:
			return "downloaded";
		case CACHE_PRESENT:
			return "present";
		case CACHE_TOO_LARGE:
			return "too-large";
		case CACHE_FULL:
			return "full";
		case CACHE_UNAVAILABLE:
			return "unavailable";
		case CACHE_ERROR:
			break;
	}
	return "error";
}

/*
 * Download the package of every offer into the cache.  A status message
 * says what happened, once per package version and outcome (the last
 * outcomes are kept in <state>/downloads), so a full cache is reported once,
 * not at every poll.
 */
static void
download_offers(const Config *c, int64_t now, Offers *o)
{
	Cache		cache;
	char		err[512];
	char	   *dir = cache_location(c);
	char	   *last = NULL;
	size_t		len;
	size_t		cap = 256,
				used = 0;
	char	   *out = xmalloc(cap);

	if (!cache_open(&cache, dir, c->cache_size, err, sizeof(err)))
	{
		warnx("%s", err);
		free(dir);
		free(out);
		return;
	}
	if (!sms_fmt_read_file(c->state_dir, "downloads", &last, &len, err, sizeof(err)))
		last = NULL;
	for (size_t i = 0; i < o->n; i++)
	{
		Offer	   *x = &o->items[i];
		char		msg[1024];
		char		key[64];
		char		line[128];
		const char *pos;
		CacheResult r;
		bool		same;
		int			l;

		if (x->waiting || x->sha256[0] == '\0' || x->nlocations == 0)
			continue;
		snprintf(key, sizeof(key), "%s.%lld ", x->package_id, (long long) x->version);
		pos = NULL;
		if (next_line_with(out, &pos, key) != NULL)
			continue;			/* another offer of the same package, handled above */
		r = cache_fetch(&cache, x->package_id, x->version, x->sha256, x->locations, x->nlocations,
						now, msg, sizeof(msg));
		printf("%s %s version %lld: %s\n",
			   r == CACHE_DOWNLOADED || r == CACHE_PRESENT ? "cached" : "not downloaded",
			   x->package_id, (long long) x->version, msg);
		l = snprintf(line, sizeof(line), "%s%s\n", key, result_name(r));
		same = has_line(last, line);
		while (used + (size_t) l + 1 > cap)
		{
			char	   *more = xmalloc(cap * 2);

			memcpy(more, out, used);
			free(out);
			out = more;
			cap *= 2;
		}
		memcpy(out + used, line, (size_t) l + 1);
		used += (size_t) l;
		if (same || r == CACHE_PRESENT)
			continue;
		{
			char		text[1400];

			snprintf(text, sizeof(text), "Package %s version %lld %s: %s", x->package_id, (long long) x->version,
					 r == CACHE_DOWNLOADED ? "downloaded into the cache" : "not downloaded", msg);
			status_message(c, now,
						   r == CACHE_DOWNLOADED ? MSG_DOWNLOADED :
						   (r == CACHE_FULL || r == CACHE_TOO_LARGE) ? MSG_CACHE_FULL : MSG_NOT_DOWNLOADED,
						   r == CACHE_DOWNLOADED ? SMS_STATUS_INFO : SMS_STATUS_WARNING,
						   strcmp(x->kind, "advert") == 0 ? x->id : NULL,
						   strcmp(x->kind, "job") == 0 ? x->id : NULL,
						   x->package_id, text, NO_EXIT_CODE);
		}
	}
	if (!sms_fmt_write_file(c->state_dir, "downloads", out, used, err, sizeof(err)))
		warnx("could not write \"%s/downloads\": %s", c->state_dir, err);
	fflush(stdout);
	free(out);
	free(last);
	free(dir);
	cache_close(&cache);
}

/* ----------------------------------------------------------------
 * Running programs
 * ---------------------------------------------------------------- */

/* a client-local reading (seconds, as if UTC) as an instant on this machine */
static int64_t
local_instant(int64_t reading)
{
	time_t		t = (time_t) reading;
	struct tm	tm;

	gmtime_r(&t, &tm);
	tm.tm_isdst = -1;
	return (int64_t) mktime(&tm);
}

/* The latest mandatory time at or before now, or SMS_TIME_NONE. */
static int64_t
last_due(const Offer *x, int64_t now)
{
	int64_t		best = SMS_TIME_NONE;

	for (size_t i = 0; i < x->nassignments; i++)
	{
		const SmsOfferAssignment *a = &x->assignments[i];
		int64_t		first = a->time.utc ? a->time.secs : local_instant(a->time.secs);
		int64_t		due = first;

		if (first > now)
			continue;
		if (a->recur_every_minutes > 0)
		{
			int64_t		step = (int64_t) a->recur_every_minutes * 60;

			due = first + ((now - first) / step) * step;
		}
		if (best == SMS_TIME_NONE || due > best)
			best = due;
	}
	return best;
}

/* Is now (this machine's wall clock at the site's instant) inside a window? */
static bool
in_window(const Offer *x, int64_t now)
{
	int64_t		local = local_reading(now);
	int64_t		days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
	int64_t		week_minute = ((days + 3) % 7 + 7) % 7 * 1440 + (local - days * 86400) / 60;	/* Monday 00:00 = 0 */

	if (x->nwindows == 0)
		return true;
	for (size_t i = 0; i < x->nwindows; i++)
		for (int d = 0; d < 7; d++)
		{
			int64_t		start,
						end;

			if (!(x->windows[i].days & (1u << d)))
				continue;
			start = d * 1440 + x->windows[i].start_minute;
			end = start + x->windows[i].duration_minutes;
			if ((week_minute >= start && week_minute < end) ||
				(end > 7 * 1440 && week_minute < end - 7 * 1440))
				return true;
		}
	return false;
}

/*
 * What <state>/runs says of x.  Its lines, oldest first:
 *	"<kind> <id> <due> <exit code> <at>"	a run for the mandatory time due
 *		(a user's run: the time it ran); exit code -1: stopped at its
 *		maximum run time
 *	"<kind> <id> <due> skipped <at>"	the mandatory time due did not run
 *		the program again (its rerun behaviour)
 */
typedef struct RunHistory
{
	int64_t		handled;		/* latest due time run or skipped, or SMS_TIME_NONE */
	bool		ran;			/* it ran at least once */
	int			last_rc;		/* the exit code of its last run */
	int64_t		last_at;		/* when its last run was */
} RunHistory;

static void
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
 * rerun behaviour says so; a program that never ran always runs.
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

/* append line to the runs text and write it whole to <state>/runs */
static void
record_run(const Config *c, char **runs, const char *line)
{
	char		err[512];
	char	   *more = xmalloc((*runs ? strlen(*runs) : 0) + strlen(line) + 1);

	sprintf(more, "%s%s", *runs ? *runs : "", line);
	free(*runs);
	*runs = more;
	if (!sms_fmt_write_file(c->state_dir, "runs", *runs, strlen(*runs), err, sizeof(err)))
		warnx("could not record the run in \"%s/runs\": %s", c->state_dir, err);
}

/*
 * The local account a user-rights program runs as: --user-account, else the
 * name part of --user (CORP\alice -> alice).  NULL, with why filled in, when
 * it cannot run now.
 */
static const struct passwd *
user_rights_account(const Config *c, char *why, size_t whylen)
{
	const char *name = c->user_account;
	const struct passwd *pw;

	if (c->user == NULL)
	{
		snprintf(why, whylen, "it runs with the user's rights and no user is logged on");
		return NULL;
	}
	if (name == NULL)
		name = strchr(c->user, '\\') ? strchr(c->user, '\\') + 1 : c->user;
	errno = 0;
	if ((pw = getpwnam(name)) == NULL)
	{
		snprintf(why, whylen, "it runs with the user's rights and user %s has no local account \"%s\"%s%s",
				 c->user, name, errno ? ": " : "", errno ? strerror(errno) : "");
		return NULL;
	}
	if (geteuid() != 0 && pw->pw_uid != geteuid())
	{
		snprintf(why, whylen, "it runs with the user's rights (account \"%s\") and the agent, not running as root, cannot switch to another account",
				 name);
		return NULL;
	}
	return pw;
}

/*
 * The PATH a program gets after its package directory: fixed, so that
 * nothing from the agent's environment decides what a root program runs.
 */
#define PROGRAM_PATH		"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* what a program may take from the agent's environment, if set */
static const char *const program_env_kept[] = {"LANG", "LC_ALL", "TZ"};
#define PROGRAM_ENV_MAX		16

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

/*
 * A program's environment, built from nothing: PATH (its package directory,
 * then PROGRAM_PATH), HOME, USER and LOGNAME of the account it runs as, and
 * LANG, LC_ALL and TZ when the agent has them.  Nothing else of the agent's
 * (PGPASSWORD, PGPASSFILE, test settings...) reaches it.  The strings are
 * malloc'd; env is NULL-terminated.
 */
static void
program_env(const char *dir, const struct passwd *pw, char **env)
{
	int			n = 0;
	char	   *s;

	s = xmalloc(strlen("PATH=") + strlen(dir) + 1 + strlen(PROGRAM_PATH) + 1);
	sprintf(s, "PATH=%s:%s", dir, PROGRAM_PATH);
	env[n++] = s;
	s = xmalloc(strlen("HOME=") + (pw ? strlen(pw->pw_dir) : 1) + 1);
	sprintf(s, "HOME=%s", pw ? pw->pw_dir : "/");
	env[n++] = s;
	if (pw)
	{
		s = xmalloc(strlen("USER=") + strlen(pw->pw_name) + 1);
		sprintf(s, "USER=%s", pw->pw_name);
		env[n++] = s;
		s = xmalloc(strlen("LOGNAME=") + strlen(pw->pw_name) + 1);
		sprintf(s, "LOGNAME=%s", pw->pw_name);
		env[n++] = s;
	}
	for (size_t i = 0; i < sizeof(program_env_kept) / sizeof(program_env_kept[0]); i++)
	{
		const char *v = getenv(program_env_kept[i]);

		if (v == NULL)
			continue;
		s = xmalloc(strlen(program_env_kept[i]) + 1 + strlen(v) + 1);
		sprintf(s, "%s=%s", program_env_kept[i], v);
		env[n++] = s;
	}
	env[n] = NULL;
}

/*
 * In the child: every descriptor above 2 is closed when the program starts
 * (the pipe that reports a failed start is close-on-exec already), whatever
 * the agent inherited or opened.
 */
static bool
close_on_exec_from_3(void)
{
	DIR		   *d;
	struct dirent *de;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return true;
#endif
	if ((d = opendir("/proc/self/fd")) == NULL)
		return false;
	while ((de = readdir(d)) != NULL)
	{
		int			fd = atoi(de->d_name);

		if (fd > 2 && fd != dirfd(d) && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
		{
			closedir(d);
			return false;
		}
	}
	closedir(d);
	return true;
}

/*
 * Descriptors 0, 1 and 2 open (on /dev/null if the agent was started
 * without them), so that no pipe or file of the agent's takes their place.
 */
static void
std_fds_open(void)
{
	int			fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

/*
 * Run cmd in dir (first on PATH), at most max_minutes, as account (NULL: the
 * agent's own); returns the exit code, 128 + the signal that ended it, or -1
 * if it ran out of time (then its whole session was killed).  If the
 * program could not be started at all, returns 127 and says why in why.
 *
 * The program runs in a session of its own, without a controlling
 * terminal: a program that runs with the user's rights must not reach the
 * terminal of whoever started the agent (TIOCSTI would type into a root
 * shell).  Its standard input is /dev/null, and standard output or error
 * that is a terminal becomes /dev/null too; it has a clean environment
 * (program_env) and no descriptor of the agent's beyond 0, 1 and 2.
 */
static int
run_program(const Config *c, const char *dir, const char *cmd, int32_t max_minutes,
			const struct passwd *account, char *why, size_t whylen)
{
	pid_t		pid;
	int			st;
	int			errpipe[2];
	time_t		deadline = max_minutes > 0 ? time(NULL) + (time_t) max_minutes * c->minute : 0;
	int			rc;
	ssize_t		got;
	char	   *env[PROGRAM_ENV_MAX];

	why[0] = '\0';
	std_fds_open();
	program_env(dir, account ? account : getpwuid(geteuid()), env);
	/* the child says why it could not start through a pipe closed by exec */
	if (pipe(errpipe) != 0 || fcntl(errpipe[0], F_SETFD, FD_CLOEXEC) != 0 ||
		fcntl(errpipe[1], F_SETFD, FD_CLOEXEC) != 0)
	{
		snprintf(why, whylen, "cannot create a pipe: %s", strerror(errno));
		for (int i = 0; env[i]; i++)
			free(env[i]);
		return 127;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		snprintf(why, whylen, "cannot fork: %s", strerror(errno));
		close(errpipe[0]);
		close(errpipe[1]);
		for (int i = 0; env[i]; i++)
			free(env[i]);
		return 127;
	}
	if (pid == 0)
	{
		char		msg[512];
		const char *step = NULL;
		int			null;

		close(errpipe[0]);
		if (setsid() < 0)
			step = "starting a new session";
		else if ((null = open("/dev/null", O_RDWR)) < 0)
			step = "opening /dev/null";
		else
		{
			if (dup2(null, 0) < 0 ||
				(isatty(1) && dup2(null, 1) < 0) ||
				(isatty(2) && dup2(null, 2) < 0))
				step = "redirecting to /dev/null";
			if (null > 2)
				close(null);
			if (step == NULL && !close_on_exec_from_3())
				step = "closing the agent's descriptors";
		}
		if (step == NULL && account != NULL && account->pw_uid != geteuid())
		{
			/* groups first: after setuid there is no right left to change them */
			if (initgroups(account->pw_name, account->pw_gid) != 0)
				step = "initgroups";
			else if (setgid(account->pw_gid) != 0)
				step = "setgid";
			else if (setuid(account->pw_uid) != 0)
				step = "setuid";
			else if (setuid(0) == 0)
				step = "dropping root";	/* must not be possible any more */
		}
		if (step == NULL && chdir(dir) != 0)
			step = "entering the package directory";
		if (step == NULL)
		{
			char	   *argv[] = {"sh", "-c", (char *) cmd, NULL};

			execve("/bin/sh", argv, env);
			step = "starting /bin/sh";
		}
		snprintf(msg, sizeof(msg), "%s%s%s failed: %s", step,
				 account ? " as " : "", account ? account->pw_name : "", strerror(errno));
		if (write(errpipe[1], msg, strlen(msg)) < 0)
			_exit(127);
		_exit(127);
	}
	close(errpipe[1]);
	for (int i = 0; env[i]; i++)
		free(env[i]);
	got = read(errpipe[0], why, whylen - 1);
	why[got > 0 ? got : 0] = '\0';
	close(errpipe[0]);
	for (;;)
	{
		pid_t		r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
		{
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return why[0] ? 127 : rc;
		}
		if (r < 0 && errno != EINTR)
			return 127;
		if (deadline && time(NULL) >= deadline)
		{
			/* its session is its process group: the program and what it started */
			kill(-pid, SIGTERM);
			for (int i = 0; i < 50 && waitpid(pid, &st, WNOHANG) == 0; i++)
				usleep(100000);
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(50000);
	}
}

/*
 * Run what is due: a mandatory time (a job's mandatory_at, an assignment,
 * each recurrence once; a missed one runs at the next poll), inside a
 * maintenance window when the machine has any; or the one offer the user
 * asked for (--run, any time).  Only from the verified copy in the cache.
 */
static void
run_due(const Config *c, int64_t now, Offers *o)
{
	Cache		cache;
	char		err[512];
	char	   *dir = cache_location(c);
	char	   *runs = NULL;
	size_t		len;

	if (!cache_open(&cache, dir, c->cache_size, err, sizeof(err)))
	{
		warnx("%s", err);
		free(dir);
		return;
	}
	if (!sms_fmt_read_file(c->state_dir, "runs", &runs, &len, err, sizeof(err)))
		runs = NULL;
	for (size_t i = 0; i < o->n; i++)
	{
		Offer	   *x = &o->items[i];
		bool		asked = c->run_now && strcmp(c->run_now, x->id) == 0;
		int64_t		due = last_due(x, now);
		CacheEntry *e;
		char	   *pkgdir;
		const struct passwd *account = NULL;
		char		why[600];
		char		text[1400];
		int			rc;
		char		line[128];
		RunHistory	h;

		if (x->waiting)
			continue;
		run_history(runs, x->kind, x->id, &h);
		if (!asked && (due == SMS_TIME_NONE || (h.handled != SMS_TIME_NONE && h.handled >= due)))
			continue;
		/* a mandatory time: the rerun behaviour decides, once per due time */
		if (!asked && !rerun_wanted(x, &h, why, sizeof(why)))
		{
			char		when[SMS_FMT_TIME_BUFLEN];

			sms_fmt_format_time(due, true, when);
			snprintf(text, sizeof(text), "Program \"%s\" of package %s was not run again at its mandatory time %s: %s.",
					 x->program, x->package_id, when, why);
			printf("skipped %s %s: %s\n", x->kind, x->id, text);
			status_message(c, now, MSG_RERUN_SKIPPED, SMS_STATUS_INFO, strcmp(x->kind, "advert") == 0 ? x->id : NULL,
						   strcmp(x->kind, "job") == 0 ? x->id : NULL, x->package_id, text, NO_EXIT_CODE);
			snprintf(line, sizeof(line), "%s %s %lld skipped %lld\n", x->kind, x->id, (long long) due, (long long) now);
			record_run(c, &runs, line);
			continue;
		}
		if (!asked && !in_window(x, now))
		{
			printf("waiting to run %s %s: outside its maintenance windows\n", x->kind, x->id);
			continue;
		}
		if ((e = cache_find(&cache, x->package_id, x->version, x->sha256[0] ? x->sha256 : NULL)) == NULL)
		{
			printf("waiting to run %s %s: its package is not in the cache\n", x->kind, x->id);
			continue;
		}
		if (x->user_rights && (account = user_rights_account(c, why, sizeof(why))) == NULL)
		{
			/* no user logged on: it waits for one; anything else is a failure */
			if (c->user == NULL)
			{
				printf("waiting to run %s %s: %s\n", x->kind, x->id, why);
				continue;
			}
		}
		/*
		 * The cached copy is checked again right before it runs: whoever
		 * changed it since the download must not choose what runs here.  A
		 * copy that differs runs nothing and goes; the next poll downloads
		 * it again, and the program runs then (nothing is recorded in runs).
		 */
		if (!(x->user_rights && account == NULL) && !cache_verify(&cache, e, why, sizeof(why)))
		{
			snprintf(text, sizeof(text), "Program \"%s\" of package %s was not started: the cached copy of version %lld "
					 "does not match its manifest: %s. The cached copy was removed; it will be downloaded again.",
					 x->program, x->package_id, (long long) x->version, why);
			printf("not running %s %s: %s\n", x->kind, x->id, text);
			status_message(c, now, MSG_CACHED_REFUSED, SMS_STATUS_ERROR, strcmp(x->kind, "advert") == 0 ? x->id : NULL,
						   strcmp(x->kind, "job") == 0 ? x->id : NULL, x->package_id, text, NO_EXIT_CODE);
			if (!cache_drop(&cache, e, err, sizeof(err)))
				warnx("%s", err);
			continue;
		}
		pkgdir = cache_entry_dir(&cache, e);
		if (x->user_rights && account == NULL)
			rc = 127;			/* never started: why says it */
		else
		{
			snprintf(text, sizeof(text), "Program \"%s\" of package %s started%s%s: %s", x->program, x->package_id,
					 account ? " as " : "", account ? account->pw_name : "", x->command_line);
			status_message(c, now, MSG_PROGRAM_STARTED, SMS_STATUS_INFO, strcmp(x->kind, "advert") == 0 ? x->id : NULL,
						   strcmp(x->kind, "job") == 0 ? x->id : NULL, x->package_id, text, NO_EXIT_CODE);
			rc = run_program(c, pkgdir, x->command_line, x->max_run_minutes, account, why, sizeof(why));
		}
		free(pkgdir);
		if (why[0] && rc == 127)
			snprintf(text, sizeof(text), "Program \"%s\" of package %s could not be started: %s.",
					 x->program, x->package_id, why);
		else if (rc == 0)
			snprintf(text, sizeof(text), "Program \"%s\" of package %s succeeded (exit code 0).", x->program, x->package_id);
		else if (rc < 0)
			snprintf(text, sizeof(text), "Program \"%s\" of package %s ran longer than its maximum run time (%d minutes) and was stopped.",
					 x->program, x->package_id, x->max_run_minutes);
		else
			snprintf(text, sizeof(text), "Program \"%s\" of package %s failed with exit code %d.", x->program, x->package_id, rc);
		printf("ran %s %s: %s\n", x->kind, x->id, text);
		/* the exit code of a program that ran to its end; none if stopped or never started */
		status_message(c, now, rc == 0 ? MSG_PROGRAM_OK : MSG_PROGRAM_FAILED, rc == 0 ? SMS_STATUS_INFO : SMS_STATUS_ERROR,
					   strcmp(x->kind, "advert") == 0 ? x->id : NULL, strcmp(x->kind, "job") == 0 ? x->id : NULL,
					   x->package_id, text, rc < 0 || (why[0] && rc == 127) ? NO_EXIT_CODE : rc);
		/* as in SMS: the package unlocks 24 hours after its program ran */
		if (!(rc == 127 && why[0]))
			cache_mark_ran(&cache, e, now);
		if (!cache_save(&cache, err, sizeof(err)))
			warnx("%s", err);
		snprintf(line, sizeof(line), "%s %s %lld %d %lld\n", x->kind, x->id,
				 (long long) (asked && due == SMS_TIME_NONE ? now : (due == SMS_TIME_NONE ? now : due)), rc, (long long) now);
		record_run(c, &runs, line);
	}
	fflush(stdout);
	free(runs);
	free(dir);
	cache_close(&cache);
}

/* ----------------------------------------------------------------
 * Targets that end here: not applicable, no longer targeted
 * ---------------------------------------------------------------- */

static const char *
kind_title(const char *kind)
{
	return strcmp(kind, "job") == 0 ? "Run-command job" : "Advertisement";
}

/*
 * Each target whose program does not run on this platform, once: status
 * message 10007, remembered in <state dir>/not_applicable (lines "<kind>
 * <id>") once the message is out, so that it is not repeated every poll.
 */
static void
report_not_applicable(const Config *c, int64_t now, const Offers *o)
{
	char	   *done = NULL;
	size_t		len;
	char		err[512];

	if (o->nna == 0)
		return;
	if (!sms_fmt_read_file(c->state_dir, "not_applicable", &done, &len, err, sizeof(err)))
		done = NULL;
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
		printf("not applicable %s %s: %s\n", x->kind, x->id, text);
		if (status_message(c, now, MSG_NOT_APPLICABLE, SMS_STATUS_INFO, strcmp(x->kind, "advert") == 0 ? x->id : NULL,
						   strcmp(x->kind, "job") == 0 ? x->id : NULL, x->package_id, text, NO_EXIT_CODE))
		{
			char	   *more = xmalloc((done ? strlen(done) : 0) + strlen(line) + 1);

			sprintf(more, "%s%s", done ? done : "", line);
			free(done);
			done = more;
			if (!sms_fmt_write_file(c->state_dir, "not_applicable", done, strlen(done), err, sizeof(err)))
				warnx("could not write \"%s/not_applicable\": %s", c->state_dir, err);
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
 * The offers of the last poll (state) that this poll found no longer
 * targeting this machine (not in its PCM file, not in the lookup files for
 * it, its user or groups; advanced mode: not in its policy), before their
 * program ran here: status message 10007 "no longer targeted", once (the
 * offer leaves <state dir>/offers).  Not for one that expired (its expiry
 * is kept in <state dir>/expires), nor, in legacy mode, for an
 * advertisement whose offer file is gone from the CAP (deleted or
 * disabled).  A job cancelled at the site leaves the PCM file just as a
 * machine that left its collection does: the agent cannot tell them apart
 * and reports both; the site keeps a cancelled target cancelled.  When the
 * logged-on user or groups changed since the last poll (<state
 * dir>/logon), an advertisement that left may have been the previous
 * user's: advertisements are not reported at that poll.
 */
static void
report_no_longer_targeted(const Config *c, int64_t now, const Offers *o, const char *state,
						  bool same_logon)
{
	char	   *runs = NULL;
	char	   *expires = NULL;
	size_t		len;
	char		err[512];
	const char *p = state;

	if (state == NULL)
		return;
	if (!sms_fmt_read_file(c->state_dir, "runs", &runs, &len, err, sizeof(err)))
		runs = NULL;
	if (!sms_fmt_read_file(c->state_dir, "expires", &expires, &len, err, sizeof(err)))
		expires = NULL;
	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t		l = nl ? (size_t) (nl - p) : strlen(p);
		char		line[64];
		char		kind[8],
					id[16];
		RunHistory	h;
		int64_t		exp;
		char		text[1024];

		snprintf(line, sizeof(line), "%.*s\n", (int) (l < 60 ? l : 60), p);
		p += l + (nl ? 1 : 0);
		if (sscanf(line, "%7s %15s", kind, id) != 2 || (strcmp(kind, "job") != 0 && strcmp(kind, "advert") != 0))
			continue;
		if (o->targeted && has_line(o->targeted, line))
			continue;			/* still a target (offered, waiting, expired, ...) */
		if (!same_logon && strcmp(kind, "advert") == 0)
			continue;			/* perhaps the previous user's */
		run_history(runs, kind, id, &h);
		if (h.ran)
			continue;
		exp = known_expiry(expires, kind, id);
		if (exp != SMS_TIME_NONE && exp <= now + c->max_skew)
			continue;
		if (c->conninfo == NULL && strcmp(kind, "advert") == 0)
		{
			char		name[SMS_FMT_NAME_BUFLEN];
			char	   *box = join(c->cap_dir, SMS_FMT_DIR_OFFERINF);
			char	   *path = NULL;
			struct stat st;
			bool		gone = true;

			if (sms_fmt_file_name(SMS_FILE_OFFER, id, 0, name, sizeof(name), err, sizeof(err)))
			{
				path = join(box, name);
				gone = lstat(path, &st) != 0;
			}
			free(path);
			free(box);
			if (gone)
				continue;		/* the advertisement itself is gone */
		}
		snprintf(text, sizeof(text), "%s %s is no longer targeted at this machine and its program did not run here: %s.",
				 kind_title(kind), id,
				 c->conninfo != NULL ? "this machine's policy no longer has it" :
				 strcmp(kind, "job") == 0 ? "this machine's PCM file no longer has it" :
				 "the lookup files no longer name this machine, its user or its groups for it");
		printf("no longer targeted %s %s: %s\n", kind, id, text);
		status_message(c, now, MSG_NOT_APPLICABLE, SMS_STATUS_INFO, strcmp(kind, "advert") == 0 ? id : NULL,
					   strcmp(kind, "job") == 0 ? id : NULL, NULL, text, NO_EXIT_CODE);
	}
	free(runs);
	free(expires);
}

/*
 * Is the logged-on user (and are the groups) the same as at the last poll?
 * Records this poll's in <state dir>/logon.  Unknown (no record): false.
 */
static bool
same_logon_as_before(const Config *c)
{
	size_t		cap = 16 + (c->user ? strlen(c->user) : 0);
	char	   *now;
	char	   *before = NULL;
	size_t		len;
	char		err[512];
	bool		same;

	for (int g = 0; g < c->ngroups; g++)
		cap += strlen(c->groups[g]) + 1;
	now = xmalloc(cap);
	snprintf(now, cap, "%s\n", c->user ? c->user : "");
	for (int g = 0; g < c->ngroups; g++)
	{
		strcat(now, c->groups[g]);
		strcat(now, "\n");
	}
	if (!sms_fmt_read_file(c->state_dir, "logon", &before, &len, err, sizeof(err)))
		before = NULL;
	same = before != NULL && strcmp(before, now) == 0;
	if (!same && !sms_fmt_write_file(c->state_dir, "logon", now, strlen(now), err, sizeof(err)))
		warnx("could not write \"%s/logon\": %s", c->state_dir, err);
	free(before);
	free(now);
	return same;
}

/* <state dir>/expires: the expiry of each current offer that has one */
static void
keep_expiries(const Config *c, const Offers *o)
{
	size_t		cap = 64 * (o->n + 1);
	size_t		used = 0;
	char	   *out = xmalloc(cap);
	char		err[512];
	struct stat st;
	char	   *path = join(c->state_dir, "expires");

	out[0] = '\0';
	for (size_t i = 0; i < o->n; i++)
		if (!o->items[i].waiting && o->items[i].expires != SMS_TIME_NONE)
			used += snprintf(out + used, cap - used, "%s %s %lld\n", o->items[i].kind, o->items[i].id,
							 (long long) o->items[i].expires);
	if ((used > 0 || stat(path, &st) == 0) &&
		!sms_fmt_write_file(c->state_dir, "expires", out, used, err, sizeof(err)))
		warnx("could not write \"%s/expires\": %s", c->state_dir, err);
	free(path);
	free(out);
}

/* smsdist-agent ... cache show|size MB|move DIR|clear */
static int
cache_command(const Config *c, int argc, char **argv)
{
	Cache		cache;
	char		err[512];
	char	   *dir = cache_location(c);
	int64_t		now = c->now != SMS_TIME_NONE ? c->now : (int64_t) time(NULL);
	const char *what = argc > 0 ? argv[0] : "show";
	int			rc = 0;

	if (!cache_open(&cache, dir, c->cache_size, err, sizeof(err)))
	{
		warnx("%s", err);
		free(dir);
		return 1;
	}
	cache_update_locks(&cache, now);
	if (strcmp(what, "show") == 0 && argc <= 1)
	{
		printf("cache %s: %lld of %lld bytes used, %zu package%s\n", cache.dir, (long long) cache_used(&cache),
			   (long long) cache.limit, cache.n, cache.n == 1 ? "" : "s");
		for (size_t i = 0; i < cache.n; i++)
		{
			CacheEntry *e = &cache.entries[i];
			char		dl[32],
						un[32];

			sms_fmt_format_time(e->downloaded_at, true, dl);
			sms_fmt_format_time(cache_unlock_at(e), true, un);
			printf("%s version %lld: %lld bytes, downloaded %s, %s %s%s\n", e->package_id, (long long) e->version,
				   (long long) e->bytes, dl, e->locked ? "locked until" : "unlocked since", un,
				   e->ran_at ? " (its program ran)" : "");
		}
	}
	else if (strcmp(what, "size") == 0 && argc == 2)
	{
		char	   *end;
		long long	mb = strtoll(argv[1], &end, 10);

		if (*end != '\0' || mb < 1)
		{
			warnx("cache size wants a whole number of megabytes, at least 1");
			rc = 2;
		}
		else if (!cache_resize(&cache, (int64_t) mb * 1024 * 1024, now, err, sizeof(err)))
		{
			warnx("%s", err);
			rc = 1;
		}
		else
			printf("cache %s: %lld bytes\n", cache.dir, (long long) cache.limit);
	}
	else if (strcmp(what, "move") == 0 && argc == 2)
	{
		if (argv[1][0] != '/')
		{
			warnx("cache move wants an absolute directory");
			rc = 2;
		}
		else if (!cache_move(&cache, argv[1], err, sizeof(err)) ||
				 !sms_fmt_write_file(c->state_dir, "cache.location", argv[1], strlen(argv[1]), err, sizeof(err)))
		{
			warnx("%s", err);
			rc = 1;
		}
		else
			printf("cache moved to %s with its %zu package%s\n", argv[1], cache.n, cache.n == 1 ? "" : "s");
	}
	else if (strcmp(what, "clear") == 0 && argc == 1)
	{
		if (!cache_clear(&cache, err, sizeof(err)))
		{
			warnx("%s", err);
			rc = 1;
		}
		else
			printf("cache %s emptied\n", cache.dir);
	}
	else
	{
		warnx("cache commands: show, size MEGABYTES, move DIRECTORY, clear");
		rc = 2;
	}
	cache_close(&cache);
	free(dir);
	return rc;
}

/* ----------------------------------------------------------------
 * The cache inventory: what the cache holds, for the site (preview())
 * ---------------------------------------------------------------- */

/* this machine's offset from UTC at now, in seconds */
static int32_t
utc_offset(int64_t now)
{
	time_t		t = (time_t) now;
	struct tm	tm;

	localtime_r(&t, &tm);
	return (int32_t) (timegm(&tm) - (int64_t) t);
}

static void
append(char **buf, size_t *used, size_t *cap, const char *fmt,...)
{
	va_list		ap;
	int			n;

	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(*buf + *used, *cap - *used, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < *cap - *used)
		{
			*used += (size_t) n;
			return;
		}
		{
			char	   *more = xmalloc(*cap * 2);

			memcpy(more, *buf, *used);
			free(*buf);
			*buf = more;
			*cap *= 2;
		}
	}
}

/* The inventory as the site takes it (a JSON object), malloc'd; NULL: no cache. */
static char *
inventory_json(const Config *c, int64_t now, size_t *npackages)
{
	Cache		cache;
	char		err[512];
	char	   *dir = cache_location(c);
	size_t		cap = 1024,
				used = 0;
	char	   *out;
	int64_t		locked = 0;

	if (!cache_open(&cache, dir, c->cache_size, err, sizeof(err)))
	{
		/* said already by the poll's downloads: nothing to report */
		free(dir);
		return NULL;
	}
	free(dir);
	cache_update_locks(&cache, now);
	out = xmalloc(cap);
	out[0] = '\0';
	for (size_t i = 0; i < cache.n; i++)
		if (cache.entries[i].locked)
			locked += cache.entries[i].bytes;
	append(&out, &used, &cap, "{\"size_limit_bytes\": %lld, \"used_bytes\": %lld, \"locked_bytes\": %lld, "
		   "\"utc_offset_seconds\": %d, \"packages\": [",
		   (long long) cache.limit, (long long) cache_used(&cache), (long long) locked, (int) utc_offset(now));
	for (size_t i = 0; i < cache.n; i++)
	{
		CacheEntry *e = &cache.entries[i];
		char		dl[32],
					un[32],
					ran[32];

		sms_fmt_format_time(e->downloaded_at, true, dl);
		sms_fmt_format_time(cache_unlock_at(e), true, un);
		if (e->ran_at)
			sms_fmt_format_time(e->ran_at, true, ran);
		append(&out, &used, &cap, "%s{\"package_id\": \"%s\", \"source_version\": %lld, \"bytes\": %lld, "
			   "\"downloaded_at\": \"%s\", \"locked_until\": %s%s%s, \"last_run_at\": %s%s%s}",
			   i ? ", " : "", e->package_id, (long long) e->version, (long long) e->bytes, dl,
			   e->locked ? "\"" : "", e->locked ? un : "null", e->locked ? "\"" : "",
			   e->ran_at ? "\"" : "", e->ran_at ? ran : "null", e->ran_at ? "\"" : "");
	}
	append(&out, &used, &cap, "]}");
	*npackages = cache.n;
	cache_close(&cache);
	return out;
}

/*
 * Report the cache's inventory to the site when it changed since the last
 * report, and at least every --inventory-every polls: legacy mode as
 * <MACHINE>.INV in the CAP's status inbox (replaced by each report, signed
 * like a status file), advanced mode through client_cache_inventory().
 * <state dir>/inventory keeps the polls since the last report and what it
 * said; a report that could not be made is tried again at the next poll.
 */
static void
report_inventory(const Config *c, int64_t now)
{
	static bool site_lacks_it = false;
	static bool said_no_key = false;	/* or no inbox: said once a run */
	char	   *json;
	char	   *last = NULL;
	size_t		len;
	size_t		npackages = 0;
	long		polls = 0;
	const char *said = NULL;
	char		err[512];
	char		text[256];
	bool		ok = false;

	if (site_lacks_it)
		return;
	json = inventory_json(c, now, &npackages);
	if (json == NULL)
		return;
	if (sms_fmt_read_file(c->state_dir, "inventory", &last, &len, err, sizeof(err)))
	{
		polls = strtol(last, NULL, 10);
		said = strchr(last, '\n');
		said = said ? said + 1 : NULL;
	}
	if (said != NULL && polls + 1 < c->inventory_every && strcmp(said, json) == 0)
	{
		/* nothing new: count the poll */
		char	   *keep = xmalloc(strlen(json) + 32);

		snprintf(keep, strlen(json) + 32, "%ld\n%s", polls + 1, json);
		if (!sms_fmt_write_file(c->state_dir, "inventory", keep, strlen(keep), err, sizeof(err)))
			warnx("could not write \"%s/inventory\": %s", c->state_dir, err);
		free(keep);
		free(last);
		free(json);
		return;
	}
	free(last);
	if (npackages > INVENTORY_MAX_PACKAGES)
		warnx("the cache holds %zu packages; the site takes an inventory of at most %d: it will refuse this one",
			  npackages, INVENTORY_MAX_PACKAGES);
	snprintf(text, sizeof(text), "Download cache inventory: %zu package%s", npackages, npackages == 1 ? "" : "s");
	if (c->conninfo != NULL)
	{
		char		at[32];
		const char *v[3];
		PGresult   *r;

		if (mp_conn == NULL)
		{
			free(json);
			return;				/* said by the poll; tried again at the next */
		}
		sms_fmt_format_time(now, true, at);
		v[0] = c->sms_id;
		v[1] = at;
		v[2] = json;
		r = PQexecParams(mp_conn, "SELECT smsdist.client_cache_inventory($1, $2::timestamptz, $3::jsonb)",
						 3, NULL, v, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
		{
			const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

			if (state != NULL && strcmp(state, "42883") == 0)
			{
				/* a site older than 0.9: it takes no inventories */
				warnx("the site takes no cache inventory (smsdist before 0.9); not reported again in this run");
				site_lacks_it = true;
			}
			else
				warnx("cache inventory not reported: %s", PQerrorMessage(mp_conn));
		}
		PQclear(r);
	}
	else if (!c->have_key)
	{
		if (!said_no_key)
			warnx("cache inventory not written: no --machine-key (the site would refuse it)");
		said_no_key = true;
	}
	else
	{
		SmsStatusFile m = {0};
		char	   *buf;
		char		name[SMS_FMT_NAME_BUFLEN];
		char	   *box = join(c->cap_dir, SMS_FMT_DIR_STATUS);

		m.machine = (char *) c->sms_id;
		m.site = (char *) c->site;
		m.sequence = 0;
		m.at = now;
		m.message_id = SMS_STATUS_CACHE_INVENTORY;
		m.severity = SMS_STATUS_INFO;
		m.component = AGENT_COMPONENT;
		m.text = text;
		m.inventory = json;
		m.key = c->machine_key;
		if (access(box, F_OK) != 0)
		{
			if (!said_no_key)
				warnx("cache inventory not written: the CAP has no status inbox \"%s\" (%s; the site's Status Manager creates it)",
					  box, strerror(errno));
			said_no_key = true;	/* once a run, as for the key */
		}
		else if (!sms_status_to_text(&m, &buf, &len, err, sizeof(err)))
			warnx("could not make the cache inventory: %s", err);
		else
		{
			if (!sms_fmt_file_name(SMS_FILE_INVENTORY, c->sms_id, 0, name, sizeof(name), err, sizeof(err)) ||
				!sms_fmt_write_file(box, name, buf, len, err, sizeof(err)))
				warnx("could not write the cache inventory to \"%s\": %s", box, err);
			else
				ok = true;
			free(buf);
		}
		free(box);
	}
	if (ok)
	{
		char	   *keep = xmalloc(strlen(json) + 32);

		snprintf(keep, strlen(json) + 32, "0\n%s", json);
		if (!sms_fmt_write_file(c->state_dir, "inventory", keep, strlen(keep), err, sizeof(err)))
			warnx("could not write \"%s/inventory\": %s", c->state_dir, err);
		free(keep);
	}
	free(json);
}

static bool
poll_once(const Config *c)
{
	/* this machine's clock (--clock-offset: a clock set wrong, for tests) */
	int64_t		now = (c->now != SMS_TIME_NONE ? c->now : (int64_t) time(NULL)) + c->clock_offset;
	Offers		o = {0};
	char	   *state = NULL;
	size_t		len;
	char		err[512];
	size_t		cap = 64,
				used = 0;
	char	   *out = xmalloc(cap);
	int			refused_before = refusals;
	bool		same_logon;

	if (c->conninfo != NULL)
	{
		if (!mp_offers(c, &now, &o))
		{
			free(out);
			return false;		/* nothing known: keep the last offers */
		}
	}
	else
	{
		/* the site's clock: the test clock when given, else the heartbeat's */
		now = c->now != SMS_TIME_NONE ? c->now : legacy_site_time(c, now);
		if (c->now != SMS_TIME_NONE && c->clock_offset != 0)
			report_skew(c, now, -c->clock_offset);
		pcm_offers(c, now, &o);
		advert_offers(c, now, &o);
	}

	if (!sms_fmt_read_file(c->state_dir, "offers", &state, &len, err, sizeof(err)))
		state = NULL;			/* none yet */

	for (size_t i = 0; i < o.n; i++)
	{
		Offer	   *x = &o.items[i];
		char		line[2048];
		int			l;

		if (x->waiting)
		{
			printf("waiting %s %s package %s program \"%s\": %s\n", x->kind, x->id, x->package_id,
				   x->program, x->why);
			continue;
		}
		printf("offer %s %s package %s program \"%s\": %s\n", x->kind, x->id, x->package_id,
			   x->program, x->command_line);
		l = snprintf(line, sizeof(line), "%s %s\n", x->kind, x->id);
		while (used + l + 1 > cap)
		{
			char	   *more = xmalloc(cap * 2);

			memcpy(more, out, used);
			free(out);
			out = more;
			cap *= 2;
		}
		memcpy(out + used, line, l);
		used += l;
		if (!was_offered(state, x))
		{
			char		text[1024];

			snprintf(text, sizeof(text), "%s %s offered: package %s, program \"%s\"",
					 strcmp(x->kind, "job") == 0 ? "Run-command job" : "Advertisement",
					 x->id, x->package_id, x->program);
			status_message(c, now, strcmp(x->kind, "job") == 0 ? MSG_JOB_OFFERED : MSG_ADVERT_OFFERED,
						   SMS_STATUS_INFO,
						   strcmp(x->kind, "advert") == 0 ? x->id : NULL,
						   strcmp(x->kind, "job") == 0 ? x->id : NULL,
						   x->package_id, text, NO_EXIT_CODE);
		}
	}
	report_not_applicable(c, now, &o);
	/* a poll that refused an instruction file does not know every target */
	same_logon = same_logon_as_before(c);
	if (refusals == refused_before)
		report_no_longer_targeted(c, now, &o, state, same_logon);
	fflush(stdout);
	free(state);
	download_offers(c, now, &o);
	run_due(c, now, &o);
	report_inventory(c, now);
	keep_expiries(c, &o);
	if (!sms_fmt_write_file(c->state_dir, "offers", out, used, err, sizeof(err)))
	{
		warnx("could not write the offers in \"%s\": %s", c->state_dir, err);
		free(out);
		return false;
	}
	free(out);
	for (size_t i = 0; i < o.n; i++)
	{
		free(o.items[i].program);
		free(o.items[i].command_line);
		free(o.items[i].why);
		for (size_t k = 0; k < o.items[i].nlocations; k++)
			free(o.items[i].locations[k]);
		free(o.items[i].locations);
		free(o.items[i].assignments);
		free(o.items[i].windows);
	}
	free(o.items);
	for (size_t i = 0; i < o.nna; i++)
	{
		free(o.na[i].program);
		free(o.na[i].platforms);
	}
	free(o.na);
	free(o.targeted);
	return true;
}

/*
 * A user or group as the lookup files name it: DOMAIN\name, a NetBIOS
 * domain (1 to 15 of A-Z a-z 0-9 _ -, not starting with -), a backslash and
 * a name; 256 bytes at most, no control characters, no trailing space (the
 * management point refuses anything else).  False after saying what it wants.
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
	for (size_t i = 0; ok && i < len; i++)
		ok = (unsigned char) v[i] >= 0x20 && v[i] != 0x7f;
	if (!ok)
		warnx("--%s wants DOMAIN\\NAME: a domain of 1 to 15 of A-Z a-z 0-9 _ -, a backslash and a name, "
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
		warnx("--%s wants a whole number of %s from %lld to %lld, not \"%s\"", name, unit,
			  (long long) min, (long long) max, text);
		return false;
	}
	*out = v;
	return true;
}

int
main(int argc, char **argv)
{
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
		{"inventory-every", required_argument, NULL, 1002},
		{"interval", required_argument, NULL, 'i'},
		{"now", required_argument, NULL, 'n'},
		{"site-key", required_argument, NULL, 'K'},
		{"machine-key", required_argument, NULL, 1001},	/* no short form */
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	Config		c = {0};
	int			opt;
	int64_t		v;

	c.interval = 60;
	c.inventory_every = 60;
	c.max_skew = 300;
	c.minute = 60;
	c.cache_size = (int64_t) 1024 * 1024 * 1024;	/* 1 GB */
	c.now = SMS_TIME_NONE;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1)
	{
		switch (opt)
		{
			case 'm':
				c.sms_id = optarg;
				break;
			case 's':
				c.site = optarg;
				break;
			case 'u':
				if (!principal_option("user", optarg))
					return 2;
				c.user = optarg;
				break;
			case 'A':
				c.user_account = optarg;
				break;
			case 'g':
				if (c.ngroups == MAX_GROUPS)
				{
					warnx("at most %d groups", MAX_GROUPS);
					return 2;
				}
				if (!principal_option("group", optarg))
					return 2;
				c.groups[c.ngroups++] = optarg;
				break;
			case 'p':
				c.platform = optarg;
				break;
			case 'd':
				c.state_dir = optarg;
				break;
			case 'l':
				c.logon_dir = optarg;
				break;
			case 'c':
				c.cap_dir = optarg;
				break;
			case '1':
				c.once = true;
				break;
			case 'M':
				c.conninfo = optarg;
				break;
			case 'R':
				c.run_now = optarg;
				break;
			case 'O':
				/* a century either way */
				if (!int_option("clock-offset", optarg, -3155760000LL, 3155760000LL, "seconds", &c.clock_offset))
					return 2;
				break;
			case 'T':
				if (!int_option("test-minute", optarg, 1, 60, "seconds", &v))
					return 2;
				c.minute = (int) v;
				break;
			case 'C':
				if (optarg[0] != '/')
				{
					warnx("--cache-dir wants an absolute directory");
					return 2;
				}
				c.cache_dir = optarg;
				break;
			case 'Z':
				/* up to a petabyte */
				if (!int_option("cache-size", optarg, 1, (int64_t) 1 << 30, "megabytes", &v))
					return 2;
				c.cache_size = v * 1024 * 1024;
				break;
			case 'k':
				if (!int_option("max-skew", optarg, 1, 86400 * 366, "seconds", &v))
					return 2;
				c.max_skew = (int) v;
				break;
			case 'i':
				if (!int_option("interval", optarg, 1, 86400, "seconds", &v))
					return 2;
				c.interval = (int) v;
				break;
			case 'n':
				if (!sms_fmt_parse_time(optarg, true, &c.now))
				{
					warnx("--now wants a UTC time like 2026-12-01T08:00:00Z, not \"%s\"", optarg);
					return 2;
				}
				break;
			case 'K':
				{
					char		err[512];

					if (c.site_keys == NULL)
						c.site_keys = sms_sig_keyring_new();
					if (c.site_keys == NULL)
					{
						warnx("out of memory");
						return 1;
					}
					if (!sms_sig_keyring_load(c.site_keys, optarg, err, sizeof(err)))
					{
						warnx("--site-key: %s", err);
						return 2;
					}
				}
				break;
			case 1001:
				if (!read_machine_key(&c, optarg))
					return 2;
				break;
			case 1002:
				if (!int_option("inventory-every", optarg, 1, 100000, "polls", &v))
					return 2;
				c.inventory_every = (int) v;
				break;
			case 'h':
				usage(stdout);
				return 0;
			case 'V':
				printf("smsdist-agent (smsdist) %s\n", SMSDIST_VERSION);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc && strcmp(argv[optind], "cache") == 0)
	{
		if (!c.state_dir)
		{
			warnx("cache commands need --state-dir");
			return 2;
		}
		if (mkdir(c.state_dir, STATE_DIR_MODE) != 0 && errno != EEXIST)
		{
			warnx("could not create the state directory \"%s\": %s", c.state_dir, strerror(errno));
			return 1;
		}
		return cache_command(&c, argc - optind - 1, argv + optind + 1);
	}
	if (optind < argc)
	{
		warnx("unexpected argument \"%s\"", argv[optind]);
		return 2;
	}
	if (!c.sms_id || !c.site || !c.platform || !c.state_dir ||
		(!c.conninfo && (!c.logon_dir || !c.cap_dir)))
	{
		warnx("--sms-id, --site, --platform, --state-dir, and --logon-server and --cap "
			  "(or --management-point) are required (--help)");
		return 2;
	}
	if (!c.conninfo && sms_sig_keyring_count(c.site_keys) == 0)
	{
		warnx("legacy mode (--logon-server and --cap) needs --site-key FILE: the site's public key "
			  "(SELECT smsdist.site_public_key() at the site); files on the shares are run only "
			  "when the site's signature verifies");
		return 2;
	}
	if (!sms_fmt_valid_sms_id(c.sms_id))
	{
		warnx("invalid SMS ID \"%s\": three characters of site code and five upper-case hexadecimal digits", c.sms_id);
		return 2;
	}
	if (!sms_fmt_valid_site_code(c.site))
	{
		warnx("invalid site code \"%s\": three characters A-Z 0-9", c.site);
		return 2;
	}
	if (mkdir(c.state_dir, STATE_DIR_MODE) != 0 && errno != EEXIST)
	{
		warnx("could not create the state directory \"%s\": %s", c.state_dir, strerror(errno));
		return 1;
	}
	for (;;)
	{
		bool		ok = poll_once(&c);

		if (c.once)
			return ok ? 0 : 1;
		if (c.conninfo != NULL)
			mp_wait(&c);
		else
			sleep((unsigned) c.interval);
	}
}
