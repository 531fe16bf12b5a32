/*-------------------------------------------------------------------------
 *
 * offers.h
 *	  The offers of one poll, and the targets that are not offers
 *	  (offers.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_OFFERS_H
#define SMSDIST_OFFERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sms_formats.h"

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
	/* the package's icon (icons.c): at icon_base/icon_source, its hash */
	char	   *icon_base;
	char	   *icon_source;
	char		icon_sha256[65];	/* "": no icon */
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
 * (target_reports.c).
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

/* What both modes know of a target before its package: see offers_add_scheduled. */
typedef struct OfferTerms
{
	const char *kind;
	const char *id;
	const char *package_id;
	const char *program;
	const char *command_line;
	char	   *const *platforms;	/* none: any platform */
	size_t		nplatforms;
	SmsWhen		offer_time;
	SmsWhen		expires;
} OfferTerms;

/* "Run-command job" or "Advertisement", for messages */
extern const char *kind_title(const char *kind);
extern bool platform_matches(char *const *platforms, size_t n, const char *mine);

/* this machine is a target of kind id (whether it is offered or not) */
extern void offers_add_target(Offers *o, const char *kind, const char *id);
/* a new offer (also a target) */
extern Offer *offers_add(Offers *o, const char *kind, const char *id, const char *package_id,
						 const char *program, const char *command_line);
extern void offers_add_not_applicable(Offers *o, const char *kind, const char *id, const char *package_id,
									  const char *program, char *const *platforms, size_t nplatforms);

/*
 * A target's offer on this platform at now: NULL if it expired, or if its
 * program does not run here (then recorded as not applicable); else the
 * offer, with its expiry, waiting if its offer time has not come.
 */
extern Offer *offers_add_scheduled(Offers *o, const OfferTerms *t, const char *platform, int64_t now);

extern void offer_set_package(Offer *x, int64_t version, const char *sha256,
							  char *const *locations, size_t n);
/* the package's icon: base/source (relative), vouched for by sha256 */
extern void offer_set_icon(Offer *x, const char *base, const char *source, const char *sha256);
extern void offer_wait(Offer *x, const char *why);
extern void offer_wait_until(Offer *x, SmsWhen when);
/* waiting for its package, which is not at this site yet, or was removed */
extern void offer_wait_for_package(Offer *x, bool removed);

extern void offers_free(Offers *o);

#endif							/* SMSDIST_OFFERS_H */
