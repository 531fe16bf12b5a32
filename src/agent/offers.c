/*-------------------------------------------------------------------------
 *
 * offers.c
 *	  The offers of one poll, and the targets that are not offers.
 *
 * Terms:
 *	target		a run-command job ("job") or an advertisement ("advert")
 *				meant for this machine, its logged-on user or one of the
 *				user's groups, whatever else is true of it.
 *	offer		a target that this workstation may run now: its platform
 *				matches, its offer time has come and it has not expired.
 *	waiting		an offer whose time has not come yet (or whose package is
 *				not at this site yet); shown, not offered.
 *	not applicable	a target whose program does not run on this platform.
 *
 * Both modes (legacy.c, management_point.c) fill an Offers the same way,
 * so that the rest of a poll cannot tell where the offers came from.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_util.h"
#include "offers.h"
#include "schedule.h"

const char *
kind_title(const char *kind)
{
	return strcmp(kind, "job") == 0 ? "Run-command job" : "Advertisement";
}

bool
platform_matches(char *const *platforms, size_t n, const char *mine)
{
	if (n == 0)
		return true;			/* any platform */
	for (size_t i = 0; i < n; i++)
		if (strcmp(platforms[i], mine) == 0)
			return true;
	return false;
}

void
offers_add_target(Offers *o, const char *kind, const char *id)
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

Offer *
offers_add(Offers *o, const char *kind, const char *id, const char *package_id,
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
	offers_add_target(o, kind, id);	/* an offer is a target, whatever its source */
	return x;
}

void
offers_add_not_applicable(Offers *o, const char *kind, const char *id, const char *package_id,
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

Offer *
offers_add_scheduled(Offers *o, const OfferTerms *t, const char *platform, int64_t now)
{
	Offer	   *x;

	if (has_come(t->expires, now))
		return NULL;
	if (!platform_matches(t->platforms, t->nplatforms, platform))
	{
		offers_add_not_applicable(o, t->kind, t->id, t->package_id, t->program,
								  t->platforms, t->nplatforms);
		return NULL;
	}
	x = offers_add(o, t->kind, t->id, t->package_id, t->program, t->command_line);
	x->expires = instant_of(t->expires);
	if (!has_come(t->offer_time, now))
		offer_wait_until(x, t->offer_time);
	return x;
}

void
offer_set_package(Offer *x, int64_t version, const char *sha256, char *const *locations, size_t n)
{
	x->version = version;
	snprintf(x->sha256, sizeof(x->sha256), "%s", sha256 ? sha256 : "");
	x->locations = xmalloc(sizeof(char *) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		x->locations[i] = xstrdup(locations[i]);
	x->nlocations = n;
}

void
offer_set_icon(Offer *x, const char *base, const char *source, const char *sha256)
{
	free(x->icon_base);
	free(x->icon_source);
	x->icon_base = xstrdup(base);
	x->icon_source = xstrdup(source);
	snprintf(x->icon_sha256, sizeof(x->icon_sha256), "%s", sha256);
}

void
offer_wait(Offer *x, const char *why)
{
	x->waiting = true;
	x->why = xstrdup(why);
}

void
offer_wait_until(Offer *x, SmsWhen when)
{
	char		text[32];

	sms_fmt_format_time(when.secs, when.utc, text);
	offer_wait(x, text);
}

void
offer_wait_for_package(Offer *x, bool removed)
{
	offer_wait(x, removed ? "its package was removed from this site" :
			   "its package is not at this site yet");
}

void
offers_free(Offers *o)
{
	for (size_t i = 0; i < o->n; i++)
	{
		free(o->items[i].program);
		free(o->items[i].command_line);
		free(o->items[i].why);
		for (size_t k = 0; k < o->items[i].nlocations; k++)
			free(o->items[i].locations[k]);
		free(o->items[i].locations);
		free(o->items[i].icon_base);
		free(o->items[i].icon_source);
		free(o->items[i].assignments);
		free(o->items[i].windows);
	}
	free(o->items);
	for (size_t i = 0; i < o->nna; i++)
	{
		free(o->na[i].program);
		free(o->na[i].platforms);
	}
	free(o->na);
	free(o->targeted);
	memset(o, 0, sizeof(*o));
}
