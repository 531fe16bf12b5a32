/*-------------------------------------------------------------------------
 *
 * legacy.c
 *	  Legacy mode: the offers and the site's clock from the shares.
 *
 * Like SMS's Package Command Manager the agent reads its PCM file in its
 * logon server's pcins.box, and like the Offer Data Providers it reads its
 * CAP's lookup files to find the advertisements meant for this machine,
 * its logged-on user or one of the user's groups, then their installation
 * and offer files and the package's .PKG and .NAL (and its .ICO, which
 * icons.c reads, checked against the hash in the .PKG).
 *
 * Terms:
 *	share		the logon server (--logon-server) or the client access
 *				point (--cap), directories the site writes.
 *	signed		every instruction file on a share must carry the site's
 *				signature (src/formats/sms_signature.h), verified with the
 *				public keys of --site-key before a byte of it is parsed.  A
 *				file that does not verify is refused with status message
 *				10010 and the reason, and offers nothing.
 *	its name	each file must also be the one its name says (the PCM file
 *				of this machine, the offer of that advertisement, the
 *				package file of that package, this site's lookup and
 *				heartbeat files), so that a signed file copied under
 *				another name is refused too.
 *	heartbeat	<SITE>.HBT in the CAP's offerinf.box, rewritten by the
 *				site at least every interval: the site's clock in legacy
 *				mode.  One older than the newest accepted by more than
 *				--max-skew is refused as a replay (the newest is kept in
 *				the state directory, "heartbeat"), so that a user cannot
 *				turn the site's clock back and bring back expired offers.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_util.h"
#include "legacy.h"
#include "sms_formats.h"
#include "sms_signature.h"
#include "state_files.h"
#include "status_report.h"

/* instruction files refused so far in this run */
static int refusals = 0;

int
legacy_refusals(void)
{
	return refusals;
}

/* An instruction file refused: said, counted, and sent as status message 10010. */
static void
refused(const Config *c, int64_t now, const char *dir, const char *name, const char *err)
{
	char		text[1024];

	snprintf(text, sizeof(text), "Instruction file \"%s/%s\" refused: %s", dir, name, err);
	refusals++;
	agent_warn("%s", text);
	status_message(c, now, MSG_FILE_REFUSED, SMS_STATUS_ERROR, NULL, NULL, NULL, text, NO_EXIT_CODE);
}

/*
 * Read dir/name and verify its signature with the site's keys; NULL if it
 * does not exist.  *len is the length of the signed document, the only
 * part the caller parses.  Any other failure (unreadable, not signed, a
 * signature that does not verify) is refused and also gives NULL: the
 * file offers nothing.
 */
static char *
read_share_file(const Config *c, int64_t now, const char *dir, const char *name, size_t *len)
{
	char	   *buf = NULL;
	char		err[512];
	struct stat st;
	char	   *path = xpath_join(dir, name);
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
		agent_warn("%s", text);
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

/*
 * The instruction file of kind for id (a site, an advertisement, a
 * package) in box, read as read_share_file reads it; its name in name
 * (SMS_FMT_NAME_BUFLEN bytes).  NULL if it is not there or refused.
 */
static char *
read_instruction(const Config *c, int64_t now, const char *box, SmsFmtFileKind kind, const char *id,
				 char *name, size_t *len)
{
	char		err[512];

	if (!sms_fmt_file_name(kind, id, 0, name, SMS_FMT_NAME_BUFLEN, err, sizeof(err)))
		return NULL;
	return read_share_file(c, now, box, name, len);
}

/* One job of the PCM file into o: a target, and an offer unless it expired or is not for this platform. */
static void
add_job(const Config *c, int64_t now, const SmsPcmJob *j, Offers *o)
{
	Offer	   *x;

	offers_add_target(o, "job", j->job_id);
	if (j->expires_at != SMS_TIME_NONE && j->expires_at <= now)
		return;
	if (!platform_matches(j->platforms, j->nplatforms, c->platform))
	{
		/* not for this platform: not shown, reported once */
		offers_add_not_applicable(o, "job", j->job_id, j->package_id, j->program,
								  j->platforms, j->nplatforms);
		return;
	}
	x = offers_add(o, "job", j->job_id, j->package_id, j->program, j->command_line);
	x->expires = j->expires_at;
	offer_set_package(x, j->package_version, j->package_sha256, j->locations, j->nlocations);
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
		offer_wait_until(x, (SmsWhen) {j->offer_after, true});
}

void
legacy_job_offers(const Config *c, int64_t now, Offers *o)
{
	char	   *dir = xpath_join(c->logon_dir, SMS_FMT_DIR_PCINS);
	size_t		len;
	char	   *buf = read_share_file(c, now, dir, c->sms_id, &len);
	SmsPcmFile	f = {0};
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
			add_job(c, now, &f.jobs[i], o);
		sms_pcm_free(&f);
	}
	free(buf);
out:
	free(dir);
}

/* ----------------------------------------------------------------
 * Advertisements
 * ---------------------------------------------------------------- */

/* A list of advertisement IDs, each once. */
typedef struct AdvertIds
{
	char	  **ids;
	size_t		n;
	size_t		cap;
} AdvertIds;

static void
add_advert_id(AdvertIds *a, const char *id)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->ids[i], id) == 0)
			return;
	if (a->n == a->cap)
	{
		char	  **more = xmalloc(sizeof(char *) * a->cap * 2);

		memcpy(more, a->ids, sizeof(char *) * a->n);
		free(a->ids);
		a->ids = more;
		a->cap *= 2;
	}
	a->ids[a->n++] = xstrdup(id);
}

/* Who lookup file kind k is read for: this machine, its user, or its groups; how many. */
static int
lookup_names(const Config *c, int k, const char **who)
{
	int			nwho = 0;

	if (k == 0)
		who[nwho++] = c->sms_id;
	else if (k == 1 && c->user)
		who[nwho++] = c->user;
	else if (k == 2)
		for (int g = 0; g < c->ngroups; g++)
			who[nwho++] = c->groups[g];
	return nwho;
}

/* The advertisement IDs the lookup files give this machine, its user and groups. */
static void
lookup_adverts(const Config *c, int64_t now, const char *box, AdvertIds *out)
{
	static const SmsFmtFileKind kinds[3] = {SMS_FILE_LOOKUP_SYSTEM, SMS_FILE_LOOKUP_USER, SMS_FILE_LOOKUP_USERGROUP};

	out->cap = 1024;
	out->n = 0;
	out->ids = xmalloc(sizeof(char *) * out->cap);
	for (int k = 0; k < 3; k++)
	{
		char		name[SMS_FMT_NAME_BUFLEN];
		char		err[512];
		size_t		len;
		char	   *buf;
		SmsLookupFile f = {0};
		const char *who[1 + MAX_GROUPS];
		int			nwho = lookup_names(c, k, who);

		if (nwho == 0)
			continue;
		if ((buf = read_instruction(c, now, box, kinds[k], c->site, name, &len)) == NULL)
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
					add_advert_id(out, e->adverts[a]);
			}
			sms_lookup_free(&f);
		}
		free(buf);
	}
}

/*
 * Does the CAP say the package was removed from this site (a NAL file with
 * removed=true)?  A file that does not verify says nothing.
 */
static bool
package_removed(const Config *c, int64_t now, const char *package_id)
{
	char	   *box = xpath_join(c->cap_dir, SMS_FMT_DIR_PKGINFO);
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	size_t		len;
	char	   *buf = NULL;
	SmsNalFile	nal = {0};
	bool		removed = false;

	if ((buf = read_instruction(c, now, box, SMS_FILE_NAL, package_id, name, &len)) != NULL &&
		sms_nal_parse(buf, len, &nal, err, sizeof(err)))
	{
		removed = nal.removed && strcmp(nal.package_id, package_id) == 0;
		sms_nal_free(&nal);
	}
	free(buf);
	free(box);
	return removed;
}

/*
 * The package of x from its .NAL in box: this site's locations of the
 * version pkg describes, and the program's settings from pkg.  False if
 * the file is missing, refused, or has no such location.
 */
static bool
package_locations(const Config *c, int64_t now, const char *box, const SmsPackageFile *pkg, Offer *x)
{
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	size_t		len;
	char	   *buf = NULL;
	SmsNalFile	nal = {0};
	bool		here = false;

	if ((buf = read_instruction(c, now, box, SMS_FILE_NAL, pkg->package_id, name, &len)) == NULL)
		return false;
	if (!sms_nal_parse(buf, len, &nal, err, sizeof(err)))
		refused(c, now, box, name, err);
	else if (strcmp(nal.package_id, pkg->package_id) != 0)
	{
		refused(c, now, box, name, "it is the NAL file of another package");
		sms_nal_free(&nal);
	}
	else
	{
		char	  **paths = xmalloc(sizeof(char *) * (nal.nlocations ? nal.nlocations : 1));
		size_t		n = 0;

		for (size_t i = 0; i < nal.nlocations; i++)
			if (strcmp(nal.locations[i].site, c->site) == 0 && nal.source_version == pkg->source_version)
				paths[n++] = nal.locations[i].path;
		here = n > 0;
		if (here)
			offer_set_package(x, pkg->source_version, pkg->sha256, paths, n);
		if (here && pkg->has_icon)
		{
			char		icon[SMS_FMT_NAME_BUFLEN];

			if (sms_fmt_file_name(SMS_FILE_ICON, pkg->package_id, 0, icon, sizeof(icon), NULL, 0))
				offer_set_icon(x, box, icon, pkg->icon_sha256);
		}
		for (size_t i = 0; here && i < pkg->nprograms; i++)
			if (strcmp(pkg->programs[i].name, x->program) == 0)
			{
				x->max_run_minutes = pkg->programs[i].max_run_minutes;
				x->user_rights = pkg->programs[i].user_rights;
			}
		free(paths);
		sms_nal_free(&nal);
	}
	free(buf);
	return here;
}

/*
 * The package as this site has it: version and hash from its .PKG, the
 * locations from its .NAL.  False if either is missing (not at this site
 * yet) or refused.
 */
static bool
package_info(const Config *c, int64_t now, const char *package_id, Offer *x)
{
	char	   *box = xpath_join(c->cap_dir, SMS_FMT_DIR_PKGINFO);
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	size_t		len;
	char	   *buf = NULL;
	SmsPackageFile pkg = {0};
	bool		here = false;

	if ((buf = read_instruction(c, now, box, SMS_FILE_PACKAGE, package_id, name, &len)) != NULL)
	{
		if (!sms_package_parse(buf, len, &pkg, err, sizeof(err)))
			refused(c, now, box, name, err);
		else if (strcmp(pkg.package_id, package_id) != 0)
			refused(c, now, box, name, "it is the package file of another package");
		else
			here = true;
	}
	free(buf);
	if (here)
		here = package_locations(c, now, box, &pkg, x);
	if (pkg.package_id)
		sms_package_free(&pkg);
	free(box);
	return here;
}

/*
 * The offer file of advertisement id in box, after its installation file:
 * both must name it.  False if either is missing (not written yet) or
 * refused.
 */
static bool
read_offer_file(const Config *c, int64_t now, const char *box, const char *id, SmsOfferFile *ofr)
{
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512] = "";
	size_t		len;
	char	   *buf;
	SmsInstallFile ins = {0};

	/* the installation file first: it must name this advertisement */
	if ((buf = read_instruction(c, now, box, SMS_FILE_INSTALL, id, name, &len)) == NULL)
		return false;			/* not written yet: next poll */
	if (!sms_install_parse(buf, len, &ins, err, sizeof(err)) || strcmp(ins.advert_id, id) != 0)
	{
		refused(c, now, box, name, err[0] ? err : "it names another advertisement");
		free(buf);
		return false;
	}
	free(buf);
	sms_install_free(&ins);

	if ((buf = read_instruction(c, now, box, SMS_FILE_OFFER, id, name, &len)) == NULL)
		return false;
	if (!sms_offer_parse(buf, len, ofr, err, sizeof(err)) || strcmp(ofr->advert_id, id) != 0)
	{
		refused(c, now, box, name, err[0] ? err : "it names another advertisement");
		free(buf);
		return false;
	}
	free(buf);
	return true;
}

/* The offer of one advertisement's offer file into o (none if it expired or is not for this platform). */
static void
add_advert(const Config *c, int64_t now, const SmsOfferFile *ofr, Offers *o)
{
	OfferTerms	t = {
		.kind = "advert",.id = ofr->advert_id,.package_id = ofr->package_id,
		.program = ofr->program,.command_line = ofr->command_line,
		.platforms = ofr->platforms,.nplatforms = ofr->nplatforms,
		.offer_time = ofr->offer_time,.expires = ofr->expires_time
	};
	Offer	   *x = offers_add_scheduled(o, &t, c->platform, now);

	if (x == NULL)
		return;
	x->rerun = ofr->rerun;
	if (ofr->nassignments)
	{
		x->assignments = xmalloc(sizeof(SmsOfferAssignment) * ofr->nassignments);
		memcpy(x->assignments, ofr->assignments, sizeof(SmsOfferAssignment) * ofr->nassignments);
		x->nassignments = ofr->nassignments;
	}
	if (ofr->nwindows)
	{
		x->windows = xmalloc(sizeof(SmsOfferWindow) * ofr->nwindows);
		memcpy(x->windows, ofr->windows, sizeof(SmsOfferWindow) * ofr->nwindows);
		x->nwindows = ofr->nwindows;
	}
	if (!x->waiting && !package_info(c, now, ofr->package_id, x))
		offer_wait_for_package(x, package_removed(c, now, ofr->package_id));
}

void
legacy_advert_offers(const Config *c, int64_t now, Offers *o)
{
	char	   *box = xpath_join(c->cap_dir, SMS_FMT_DIR_OFFERINF);
	AdvertIds	ids;

	lookup_adverts(c, now, box, &ids);
	for (size_t i = 0; i < ids.n; i++)
		offers_add_target(o, "advert", ids.ids[i]);
	for (size_t i = 0; i < ids.n; i++)
	{
		SmsOfferFile ofr = {0};

		if (!read_offer_file(c, now, box, ids.ids[i], &ofr))
			continue;
		add_advert(c, now, &ofr, o);
		sms_offer_free(&ofr);
	}
	for (size_t i = 0; i < ids.n; i++)
		free(ids.ids[i]);
	free(ids.ids);
	free(box);
}

bool
legacy_offer_file_exists(const Config *c, const char *advert_id)
{
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	char	   *box = xpath_join(c->cap_dir, SMS_FMT_DIR_OFFERINF);
	char	   *path = NULL;
	struct stat st;
	bool		gone = true;

	if (sms_fmt_file_name(SMS_FILE_OFFER, advert_id, 0, name, sizeof(name), err, sizeof(err)))
	{
		path = xpath_join(box, name);
		gone = lstat(path, &st) != 0;
	}
	free(path);
	free(box);
	return !gone;
}

/* ----------------------------------------------------------------
 * The site's clock
 * ---------------------------------------------------------------- */

/*
 * The site time of the newest heartbeat this agent accepted (state file
 * "heartbeat"), or SMS_TIME_NONE.
 */
static int64_t
newest_heartbeat(const Config *c)
{
	size_t		len;
	char	   *buf = state_read(c, "heartbeat", &len);
	char		text[SMS_FMT_TIME_BUFLEN];
	int64_t		t = SMS_TIME_NONE;

	if (buf == NULL)
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
		agent_warn("could not write the heartbeat in \"%s\": %s", c->state_dir, err);
}

/* Refuse heartbeat hb as a replay: older than newest by more than --max-skew. */
static void
refuse_replayed(const Config *c, int64_t local, const char *box, const char *name,
				const SmsHeartbeatFile *hb, int64_t newest)
{
	char		t1[SMS_FMT_TIME_BUFLEN],
				t2[SMS_FMT_TIME_BUFLEN],
				why[256];

	sms_fmt_format_time(hb->site_time, true, t1);
	sms_fmt_format_time(newest, true, t2);
	snprintf(why, sizeof(why),
			 "its site time %s is older than the newest heartbeat this machine accepted (%s) "
			 "by more than --max-skew (%d s): a replayed heartbeat", t1, t2, c->max_skew);
	refused(c, local, box, name, why);
}

/*
 * The heartbeat's site_time is up to an interval old, so this machine
 * counts as skewed only if its clock is outside [site_time - max skew,
 * site_time + interval + max skew]; then schedules follow site_time.
 * Without a heartbeat (an older site), this machine's clock.
 */
int64_t
legacy_site_time(const Config *c, int64_t local)
{
	char	   *box = xpath_join(c->cap_dir, SMS_FMT_DIR_OFFERINF);
	char		name[SMS_FMT_NAME_BUFLEN];
	char		err[512];
	char	   *buf = NULL;
	size_t		len;
	SmsHeartbeatFile hb = {0};
	int64_t		site = local;

	if ((buf = read_instruction(c, local, box, SMS_FILE_HEARTBEAT, c->site, name, &len)) != NULL)
	{
		int64_t		newest = newest_heartbeat(c);

		if (!sms_heartbeat_parse(buf, len, &hb, err, sizeof(err)))
			refused(c, local, box, name, err);
		else
		{
			if (strcmp(hb.site, c->site) != 0)
				refused(c, local, box, name, "it is the heartbeat of another site");
			else if (newest != SMS_TIME_NONE && hb.site_time < newest - c->max_skew)
				refuse_replayed(c, local, box, name, &hb, newest);
			else
			{
				if (newest == SMS_TIME_NONE || hb.site_time > newest)
					keep_newest_heartbeat(c, hb.site_time);
				if (local < hb.site_time - c->max_skew ||
					local > hb.site_time + hb.interval_seconds + c->max_skew)
					site = hb.site_time;
			}
			sms_heartbeat_free(&hb);
		}
	}
	free(buf);
	free(box);
	return site;
}
