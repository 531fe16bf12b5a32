/*-------------------------------------------------------------------------
 *
 * offer_file.c
 *	  The offer (.OFR): the advertisement in the header, then numbered
 *	  "[assignment N]" and "[window N]" sections.
 *
 * A window's start is a local time of day "HH:MM" and its days a list of
 * day names; those two keys have their own writer and reader below, the
 * rest is said by the tables.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "offer_file.h"

#include <stdio.h>
#include <string.h>

#include "fields.h"

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* indexed by SmsRerunBehaviour */
static const char *const rerun_names[] = {
	[SMS_RERUN_IF_FAILED] = "rerun_if_failed",
	[SMS_RERUN_NEVER] = "never_rerun",
	[SMS_RERUN_ALWAYS] = "always_rerun",
	[SMS_RERUN_IF_SUCCEEDED] = "rerun_if_succeeded",
};

const char *
sms_rerun_name(SmsRerunBehaviour r)
{
	return (unsigned) r < sizeof(rerun_names) / sizeof(rerun_names[0]) ? rerun_names[r] : NULL;
}

bool
sms_rerun_from_name(const char *name, SmsRerunBehaviour *out)
{
	for (size_t i = 0; i < sizeof(rerun_names) / sizeof(rerun_names[0]); i++)
		if (name != NULL && strcmp(name, rerun_names[i]) == 0)
		{
			*out = (SmsRerunBehaviour) i;
			return true;
		}
	return false;
}

/* ----------------------------------------------------------------
 * A window's start and days
 * ----------------------------------------------------------------
 */
/* Both refused before a key of the window is written; the writers rely on it. */
static bool
check_window(const SmsFmtSection *s, const void *elem, char *err, size_t errlen)
{
	const SmsOfferWindow *w = elem;

	if (w->start_minute < 0 || w->start_minute > 1439)
		return sms_field_write_problem(s, "start", "the start is a time of day from 00:00 to 23:59",
									   NULL, err, errlen);
	if (w->days == 0 || (w->days & ~0x7Fu) != 0)
		return sms_field_write_problem(s, "days", "at least one day, and only SMS_DAY_* bits",
									   NULL, err, errlen);
	return true;
}

static bool
write_start(SmsFmtSection *s, const SmsField *f, const void *obj, char *err, size_t errlen)
{
	int			m = ((const SmsOfferWindow *) obj)->start_minute;
	char		start[16];

	snprintf(start, sizeof(start), "%02d:%02d", m / 60, m % 60);
	return sms_fmt_set(s, f->key, start, err, errlen);
}

static bool
read_start(const SmsFmtSection *s, const SmsField *f, void *obj, char *err, size_t errlen)
{
	const char *start = sms_fmt_get(s, f->key);
	int			hh,
				mm;

	if (start == NULL)
		return sms_field_read_problem(s, f->key, NULL, NULL, err, errlen);
	if (strlen(start) != 5 || start[2] != ':' || !sms_fmt_parse_digits(start, 2, &hh) ||
		!sms_fmt_parse_digits(start + 3, 2, &mm) || hh > 23 || mm > 59)
		return sms_field_read_problem(s, f->key, "not a local time of day HH:MM", start,
									  err, errlen);
	((SmsOfferWindow *) obj)->start_minute = hh * 60 + mm;
	return true;
}

static bool
write_days(SmsFmtSection *s, const SmsField *f, const void *obj, char *err, size_t errlen)
{
	unsigned	bits = ((const SmsOfferWindow *) obj)->days;
	char		days[32];
	int			d;

	days[0] = '\0';
	for (d = 0; d < 7; d++)
		if (bits & (1u << d))
		{
			if (days[0] != '\0')
				strcat(days, ",");
			strcat(days, day_names[d]);
		}
	return sms_fmt_set(s, f->key, days, err, errlen);
}

static bool
read_days(const SmsFmtSection *s, const SmsField *f, void *obj, char *err, size_t errlen)
{
	const char *days = sms_fmt_get(s, f->key);
	unsigned   *bits = &((SmsOfferWindow *) obj)->days;
	const char *p;

	if (days == NULL)
		return sms_field_read_problem(s, f->key, NULL, NULL, err, errlen);
	*bits = 0;
	for (p = days;;)
	{
		size_t		l = strcspn(p, ",");
		int			d;

		for (d = 0; d < 7; d++)
			if (l == 3 && strncmp(p, day_names[d], 3) == 0)
				break;
		if (d == 7)
			return sms_field_read_problem(s, f->key, "a list of mon tue wed thu fri sat sun",
										  days, err, errlen);
		if (*bits & (1u << d))
			return sms_field_read_problem(s, f->key, "a day appears twice", days, err, errlen);
		*bits |= 1u << d;
		if (p[l] == '\0')
			break;
		p += l + 1;
	}
	return true;
}

/* ----------------------------------------------------------------
 * The tables
 * ----------------------------------------------------------------
 */
static const SmsField offer_header[] = {
	SMS_STRING(SmsOfferFile, advert_id, SMS_REQUIRED, sms_check_sms_id),
	SMS_STRING(SmsOfferFile, name, SMS_REQUIRED, sms_check_name),
	SMS_STRING(SmsOfferFile, package_id, SMS_REQUIRED, sms_check_sms_id),
	SMS_STRING(SmsOfferFile, program, SMS_REQUIRED, sms_check_name),
	SMS_STRING(SmsOfferFile, command_line, SMS_REQUIRED, sms_check_command_line),
	SMS_LIST(SmsOfferFile, platforms, SMS_REQUIRED, ',', 0, sms_check_platform),
	SMS_WHEN(SmsOfferFile, offer_time, SMS_REQUIRED),
	SMS_WHEN(SmsOfferFile, expires_time, SMS_OPTIONAL),
	SMS_ENUM(SmsOfferFile, rerun, "rerun_behaviour", SMS_WRITE_DEFAULT, rerun_names,
			 "rerun behaviour",
			 "must be never_rerun, always_rerun, rerun_if_failed or rerun_if_succeeded"),
};

static const SmsField offer_assignment[] = {
	SMS_WHEN(SmsOfferAssignment, time, SMS_REQUIRED),
	SMS_INT(SmsOfferAssignment, recur_every_minutes, SMS_OPTIONAL, 1, INT32_MAX),
};

static const SmsField offer_window[] = {
	SMS_CUSTOM(SmsOfferWindow, start_minute, "start", write_start, read_start),
	SMS_INT(SmsOfferWindow, duration_minutes, SMS_REQUIRED, 1, SMS_FMT_MAX_RUN_MINUTES),
	SMS_CUSTOM(SmsOfferWindow, days, "days", write_days, read_days),
};

static int
cmp_assignment(const void *a, const void *b)
{
	const SmsOfferAssignment *x = *(const SmsOfferAssignment *const *) a;
	const SmsOfferAssignment *y = *(const SmsOfferAssignment *const *) b;

	if (x->time.secs != y->time.secs)
		return x->time.secs < y->time.secs ? -1 : 1;
	if (x->time.utc != y->time.utc)
		return x->time.utc ? 1 : -1;
	if (x->recur_every_minutes != y->recur_every_minutes)
		return x->recur_every_minutes < y->recur_every_minutes ? -1 : 1;
	return 0;
}

static int
cmp_window(const void *a, const void *b)
{
	const SmsOfferWindow *x = *(const SmsOfferWindow *const *) a;
	const SmsOfferWindow *y = *(const SmsOfferWindow *const *) b;

	if (x->start_minute != y->start_minute)
		return x->start_minute < y->start_minute ? -1 : 1;
	if (x->duration_minutes != y->duration_minutes)
		return x->duration_minutes < y->duration_minutes ? -1 : 1;
	if (x->days != y->days)
		return x->days < y->days ? -1 : 1;
	return 0;
}

static const SmsSectionSpec offer_sections[] = {
	{
		.type = "assignment",
		.fields = offer_assignment,
		.nfields = SMS_NFIELDS(offer_assignment),
		.elem_size = sizeof(SmsOfferAssignment),
		.array_offset = offsetof(SmsOfferFile, assignments),
		.count_offset = offsetof(SmsOfferFile, nassignments),
		.cmp = cmp_assignment,
	},
	{
		.type = "window",
		.fields = offer_window,
		.nfields = SMS_NFIELDS(offer_window),
		.elem_size = sizeof(SmsOfferWindow),
		.array_offset = offsetof(SmsOfferFile, windows),
		.count_offset = offsetof(SmsOfferFile, nwindows),
		.cmp = cmp_window,
		.write_check = check_window,
	},
};

static const SmsFormatSpec offer_format = {
	.format = SMS_FMT_OFFER,
	.size = sizeof(SmsOfferFile),
	.header = offer_header,
	.nheader = SMS_NFIELDS(offer_header),
	.sections = offer_sections,
	.nsections = SMS_NFIELDS(offer_sections),
};

bool
sms_offer_to_text(const SmsOfferFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	return sms_format_to_text(&offer_format, f, out, len, err, errlen);
}

bool
sms_offer_parse(const char *buf, size_t len, SmsOfferFile *out, char *err, size_t errlen)
{
	return sms_format_parse(&offer_format, buf, len, out, err, errlen);
}

void
sms_offer_free(SmsOfferFile *f)
{
	sms_format_free(&offer_format, f);
}
