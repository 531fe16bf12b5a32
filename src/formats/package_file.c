/*-------------------------------------------------------------------------
 *
 * package_file.c
 *	  The package file (.PKG): the package in the header, then numbered
 *	  "[program N]" sections sorted by program name.
 *
 * icon= is either "none" or the name of this package's own icon file: a
 * file name read from the share is not trusted, so a reader accepts no
 * other.  An icon comes with icon_sha256=, the hash of the .ICO, which is
 * not signed itself (icon_file.h): the pair is refused unless both or
 * neither are there.  A reader before 0.9 ignores icon_sha256 (unknown
 * keys are), and treats the .ICO as it always did.  A program name appears once, which the writer and the reader
 * both enforce, so that what a reader accepts can always be written back.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "package_file.h"

#include <stdio.h>
#include <string.h>

#include "box_file.h"
#include "fields.h"

static const SmsField package_header[] = {
	SMS_STRING(SmsPackageFile, package_id, SMS_REQUIRED, sms_check_sms_id),
	SMS_STRING(SmsPackageFile, name, SMS_REQUIRED, sms_check_name),
	SMS_STRING(SmsPackageFile, product_version, SMS_OPTIONAL, sms_check_name),
	SMS_STRING(SmsPackageFile, manufacturer, SMS_OPTIONAL, sms_check_name),
	SMS_STRING(SmsPackageFile, language, SMS_OPTIONAL, sms_check_name),
	SMS_INT(SmsPackageFile, source_version, SMS_REQUIRED, 1, INT32_MAX),
	SMS_STRING(SmsPackageFile, sha256, SMS_REQUIRED, sms_check_sha256),
	SMS_STRING(SmsPackageFile, icon_sha256, SMS_OPTIONAL, sms_check_sha256),
};

static const SmsField package_program[] = {
	SMS_STRING(SmsPackageProgram, name, SMS_REQUIRED, sms_check_name),
	SMS_STRING(SmsPackageProgram, command_line, SMS_REQUIRED, sms_check_command_line),
	SMS_LIST(SmsPackageProgram, platforms, SMS_REQUIRED, ',', 0, sms_check_platform),
	SMS_INT(SmsPackageProgram, max_run_minutes, SMS_OPTIONAL, 1, SMS_FMT_MAX_RUN_MINUTES),
	SMS_RUN_WITH(SmsPackageProgram, user_rights),
};

static int
cmp_program(const void *a, const void *b)
{
	return strcmp((*(const SmsPackageProgram *const *) a)->name,
				  (*(const SmsPackageProgram *const *) b)->name);
}

static void
program_twice(const void *elem, char *err, size_t errlen)
{
	char		q[SMS_FMT_QUOTE_BUFLEN];

	sms_fmt_error(err, errlen, "program \"%s\" appears twice",
				  sms_fmt_quote(((const SmsPackageProgram *) elem)->name, q, sizeof(q)));
}

static const SmsSectionSpec package_sections[] = {
	{
		.type = "program",
		.fields = package_program,
		.nfields = SMS_NFIELDS(package_program),
		.elem_size = sizeof(SmsPackageProgram),
		.array_offset = offsetof(SmsPackageFile, programs),
		.count_offset = offsetof(SmsPackageFile, nprograms),
		.cmp = cmp_program,
		.duplicate = program_twice,
	},
};

static bool
write_icon(SmsFmtSection *h, const void *obj, char *err, size_t errlen)
{
	const SmsPackageFile *f = obj;
	char		icon[SMS_FMT_NAME_BUFLEN];
	bool		ok = true;

	if (f->has_icon != (f->icon_sha256 != NULL))
		return sms_fmt_error(err, errlen, "[smsdist] icon: an icon needs its icon_sha256, and only an icon has one");
	if (f->has_icon)
		ok = sms_fmt_file_name(SMS_FILE_ICON, f->package_id, 0, icon, sizeof(icon), err, errlen);
	else
		strcpy(icon, "none");
	return ok && sms_fmt_set(h, "icon", icon, err, errlen);
}

static bool
read_icon(const SmsFmtDoc *doc, void *obj, char *err, size_t errlen)
{
	SmsPackageFile *f = obj;
	const SmsFmtSection *h = doc->sections[0];
	const char *icon = sms_fmt_get(h, "icon");
	char		expect[SMS_FMT_NAME_BUFLEN];
	char		msg[100];

	sms_fmt_file_name(SMS_FILE_ICON, f->package_id, 0, expect, sizeof(expect), NULL, 0);
	if (icon != NULL && strcmp(icon, "none") == 0)
		f->has_icon = false;
	else if (icon != NULL && strcmp(icon, expect) == 0)
		f->has_icon = true;
	else
	{
		snprintf(msg, sizeof(msg), "must be none or %s", expect);
		return sms_field_read_problem(h, "icon", msg, icon, err, errlen);
	}
	if (f->has_icon != (f->icon_sha256 != NULL))
		return sms_field_read_problem(h, "icon", f->has_icon ? "an icon without icon_sha256"
									  : "icon_sha256 without an icon", icon, err, errlen);
	return true;
}

static const SmsFormatSpec package_format = {
	.format = SMS_FMT_PACKAGE,
	.size = sizeof(SmsPackageFile),
	.header = package_header,
	.nheader = SMS_NFIELDS(package_header),
	.sections = package_sections,
	.nsections = SMS_NFIELDS(package_sections),
	.write_extra = write_icon,
	.read_extra = read_icon,
};

bool
sms_package_to_text(const SmsPackageFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	size_t		i;

	*out = NULL;
	*len = 0;
	/* the programs are sorted by name: they must have one first */
	for (i = 0; i < f->nprograms; i++)
		if (f->programs[i].name == NULL)
			return sms_fmt_error(err, errlen, "program %zu: the name is missing", i + 1);
	return sms_format_to_text(&package_format, f, out, len, err, errlen);
}

bool
sms_package_parse(const char *buf, size_t len, SmsPackageFile *out, char *err, size_t errlen)
{
	return sms_format_parse(&package_format, buf, len, out, err, errlen);
}

void
sms_package_free(SmsPackageFile *f)
{
	sms_format_free(&package_format, f);
}
