/*-------------------------------------------------------------------------
 *
 * nal_file.c
 *	  The NAL (.NAL): the package in the header, then numbered
 *	  "[location N]" sections sorted by site, server and path.
 *
 * removed=true is written only when it is true, so that the files of
 * packages that are here stay as they were before the key existed; a
 * removed package has no location.  A location listed twice is refused by
 * the writer and the reader alike (as a program listed twice in a package
 * file): what a reader accepts can always be written back.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "nal_file.h"

#include <string.h>

#include "fields.h"

static const char *
check_server(const char *v)
{
	size_t		i,
				l = strlen(v);

	for (i = 0; i < l; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
			  (v[i] >= '0' && v[i] <= '9') || v[i] == '-' || v[i] == '_'))
			break;
	if (l == 0 || l > 15 || i < l || v[0] == '-')
		return "a server name is 1 to 15 of A-Z a-z 0-9 - _, not starting with -";
	return NULL;
}

static const SmsField nal_header[] = {
	SMS_STRING(SmsNalFile, package_id, SMS_REQUIRED, sms_check_sms_id),
	SMS_INT(SmsNalFile, source_version, SMS_REQUIRED, 1, INT32_MAX),
	SMS_BOOL(SmsNalFile, removed, SMS_OPTIONAL),
};

static const SmsField nal_location[] = {
	SMS_STRING(SmsNalLocation, site, SMS_REQUIRED, sms_check_site),
	SMS_STRING(SmsNalLocation, server, SMS_REQUIRED, check_server),
	SMS_STRING(SmsNalLocation, path, SMS_REQUIRED, sms_check_path),
};

static int
cmp_nal_location(const void *a, const void *b)
{
	const SmsNalLocation *x = *(const SmsNalLocation *const *) a;
	const SmsNalLocation *y = *(const SmsNalLocation *const *) b;
	int			c;

	if ((c = strcmp(x->site, y->site)) != 0 || (c = strcmp(x->server, y->server)) != 0)
		return c;
	return strcmp(x->path, y->path);
}

static void
location_twice(const void *elem, char *err, size_t errlen)
{
	const SmsNalLocation *l = elem;

	sms_fmt_error(err, errlen, "location %s %s %s appears twice", l->site, l->server, l->path);
}

static const SmsSectionSpec nal_sections[] = {
	{
		.type = "location",
		.fields = nal_location,
		.nfields = SMS_NFIELDS(nal_location),
		.elem_size = sizeof(SmsNalLocation),
		.array_offset = offsetof(SmsNalFile, locations),
		.count_offset = offsetof(SmsNalFile, nlocations),
		.cmp = cmp_nal_location,
		.duplicate = location_twice,
	},
};

static bool
read_removed_has_none(const SmsFmtDoc *doc, void *obj, char *err, size_t errlen)
{
	size_t		n = sms_fields_count_sections(doc, "location");

	if (((SmsNalFile *) obj)->removed && n > 0)
		return sms_fmt_error(err, errlen, "a removed package has no location, and this file lists %zu", n);
	return true;
}

static const SmsFormatSpec nal_format = {
	.format = SMS_FMT_NAL,
	.size = sizeof(SmsNalFile),
	.header = nal_header,
	.nheader = SMS_NFIELDS(nal_header),
	.sections = nal_sections,
	.nsections = SMS_NFIELDS(nal_sections),
	.read_extra = read_removed_has_none,
};

bool
sms_nal_to_text(const SmsNalFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	size_t		i;

	*out = NULL;
	*len = 0;
	/* the locations are sorted on all three: they must be there first */
	for (i = 0; i < f->nlocations; i++)
		if (f->locations[i].site == NULL || f->locations[i].server == NULL ||
			f->locations[i].path == NULL)
			return sms_fmt_error(err, errlen, "location %zu: site, server and path are required", i + 1);
	if (f->removed && f->nlocations > 0)
		return sms_fmt_error(err, errlen, "a removed package has no location");
	return sms_format_to_text(&nal_format, f, out, len, err, errlen);
}

bool
sms_nal_parse(const char *buf, size_t len, SmsNalFile *out, char *err, size_t errlen)
{
	return sms_format_parse(&nal_format, buf, len, out, err, errlen);
}

void
sms_nal_free(SmsNalFile *f)
{
	sms_format_free(&nal_format, f);
}
