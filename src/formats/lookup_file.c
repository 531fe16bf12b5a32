/*-------------------------------------------------------------------------
 *
 * lookup_file.c
 *	  The lookup files (.LKP): the site and the kind in the header, then
 *	  numbered "[entry N]" sections sorted by name, ignoring case.
 *
 * What a valid entry name is depends on the kind (a machine's SMS ID, or
 * a user or group name), so each kind has its own entry table, and the
 * kind is read before the entries.  Names are compared ignoring ASCII
 * case, as the directory does: two names that differ in case only are
 * one name written twice, which writer and reader both refuse.  This
 * format therefore calls the steps of fields.h one by one.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "lookup_file.h"

#include <stdlib.h>
#include <string.h>

#include "fields.h"

#define MAX_LOOKUP_NAME		256

static const char *const lookup_kinds[] = {"system", "user", "usergroup"};

static char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* strcmp ignoring ASCII case only: the same in every locale */
static int
ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++)
	{
		unsigned char ca = (unsigned char) ascii_lower(*a);
		unsigned char cb = (unsigned char) ascii_lower(*b);

		if (ca != cb)
			return ca < cb ? -1 : 1;
		if (ca == '\0')
			return 0;
	}
}

/* user and group names can be anything the directory allows, DOMAIN\name */
static const char *
check_lookup_name(const char *v)
{
	size_t		l = strlen(v);

	if (l == 0 || l > MAX_LOOKUP_NAME || sms_fmt_has_control_char(v) ||
		v[0] == ' ' || v[l - 1] == ' ')
		return "a lookup name is 1 to 256 bytes without control characters or leading or trailing spaces";
	return NULL;
}

/* site, then kind: a reader refuses a bare [entry] between the two */
static const SmsField lookup_header[] = {
	SMS_STRING(SmsLookupFile, site, SMS_REQUIRED, sms_check_site),
	SMS_ENUM(SmsLookupFile, kind, "kind", SMS_REQUIRED, lookup_kinds, "lookup kind",
			 "must be system, user or usergroup"),
};

static const SmsField lookup_system_entry[] = {
	SMS_STRING(SmsLookupEntry, name, SMS_REQUIRED, sms_check_sms_id),
	SMS_LIST(SmsLookupEntry, adverts, SMS_REQUIRED | SMS_SORTED, ',', 0, sms_check_sms_id),
};

static const SmsField lookup_named_entry[] = {
	SMS_STRING(SmsLookupEntry, name, SMS_REQUIRED, check_lookup_name),
	SMS_LIST(SmsLookupEntry, adverts, SMS_REQUIRED | SMS_SORTED, ',', 0, sms_check_sms_id),
};

static int
cmp_lookup_entry(const void *a, const void *b)
{
	const SmsLookupEntry *x = *(const SmsLookupEntry *const *) a;
	const SmsLookupEntry *y = *(const SmsLookupEntry *const *) b;
	int			c = ascii_casecmp(x->name, y->name);

	/* equal ignoring case is a duplicate; strcmp only keeps qsort total */
	return c != 0 ? c : strcmp(x->name, y->name);
}

/* [0]: system, [1]: user and usergroup */
static const SmsSectionSpec lookup_sections[2] = {
	{
		.type = "entry",
		.fields = lookup_system_entry,
		.nfields = SMS_NFIELDS(lookup_system_entry),
		.elem_size = sizeof(SmsLookupEntry),
		.array_offset = offsetof(SmsLookupFile, entries),
		.count_offset = offsetof(SmsLookupFile, nentries),
		.cmp = cmp_lookup_entry,
	},
	{
		.type = "entry",
		.fields = lookup_named_entry,
		.nfields = SMS_NFIELDS(lookup_named_entry),
		.elem_size = sizeof(SmsLookupEntry),
		.array_offset = offsetof(SmsLookupFile, entries),
		.count_offset = offsetof(SmsLookupFile, nentries),
		.cmp = cmp_lookup_entry,
	},
};

static const SmsSectionSpec *
entry_spec(SmsLookupKind kind)
{
	return &lookup_sections[kind == SMS_LOOKUP_SYSTEM ? 0 : 1];
}

/* false, with the message, if two names differ in ASCII case at most */
static bool
check_unique_names(const SmsLookupEntry *entries, size_t n, char *err, size_t errlen)
{
	const void **order = sms_fields_sorted(entries, n, sizeof(SmsLookupEntry), cmp_lookup_entry);
	const SmsLookupEntry *dup = NULL;
	size_t		i;
	char		q[SMS_FMT_QUOTE_BUFLEN];

	if (order == NULL)
		return sms_fmt_oom(err, errlen);
	for (i = 1; i < n && dup == NULL; i++)
		if (ascii_casecmp(((const SmsLookupEntry *) order[i - 1])->name,
						  ((const SmsLookupEntry *) order[i])->name) == 0)
			dup = order[i];
	free(order);
	if (dup == NULL)
		return true;
	return sms_fmt_error(err, errlen, "the name \"%s\" appears twice (names are compared ignoring case)",
						 sms_fmt_quote(dup->name, q, sizeof(q)));
}

bool
sms_lookup_to_text(const SmsLookupFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	const SmsSectionSpec *spec;
	SmsFmtDoc  *doc;
	size_t		i;
	bool		ok;
	char		q[SMS_FMT_QUOTE_BUFLEN];

	*out = NULL;
	*len = 0;
	if ((unsigned) f->kind > SMS_LOOKUP_USERGROUP)
		return sms_fmt_error(err, errlen, "unknown lookup kind %d", (int) f->kind);
	spec = entry_spec(f->kind);
	/* the names are sorted: they must be valid first */
	for (i = 0; i < f->nentries; i++)
	{
		const char *name = f->entries[i].name;
		const char *problem;

		if (name == NULL || !sms_fmt_valid_utf8(name, strlen(name)))
			return sms_fmt_error(err, errlen, "entry %zu: the name is missing or not valid UTF-8", i + 1);
		if ((problem = spec->fields[0].check(name)) != NULL)
			return sms_fmt_error(err, errlen, "entry %zu: %s (\"%s\")", i + 1, problem,
								 sms_fmt_quote(name, q, sizeof(q)));
	}
	if ((doc = sms_fmt_doc_new(SMS_FMT_LOOKUP, err, errlen)) == NULL)
		return false;
	ok = sms_fields_write(sms_fmt_header(doc), lookup_header, SMS_NFIELDS(lookup_header), f,
						  err, errlen) &&
		check_unique_names(f->entries, f->nentries, err, errlen) &&
		sms_fields_write_sections(doc, spec, f, err, errlen);
	return sms_format_finish(doc, ok, out, len, err, errlen);
}

void
sms_lookup_free(SmsLookupFile *f)
{
	if (f == NULL)
		return;
	sms_fields_free(lookup_header, SMS_NFIELDS(lookup_header), f);
	sms_fields_free_sections(entry_spec(f->kind), f);
	memset(f, 0, sizeof(*f));
}

bool
sms_lookup_parse(const char *buf, size_t len, SmsLookupFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	const SmsFmtSection *h;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_LOOKUP, &doc, err, errlen))
		return false;
	h = doc->sections[0];
	ok = sms_fields_read(h, &lookup_header[0], 1, out, err, errlen) &&
		sms_fields_check_bare(doc, lookup_sections, 1, err, errlen) &&
		sms_fields_read(h, &lookup_header[1], 1, out, err, errlen) &&
		sms_fields_read_sections(doc, entry_spec(out->kind), 1, out, err, errlen) &&
		check_unique_names(out->entries, out->nentries, err, errlen);
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_lookup_free(out);
	return ok;
}

/*
 * A linear scan: the agent makes a handful of look-ups per file it reads,
 * and the entries may come from a writer that did not sort them.
 */
const SmsLookupEntry *
sms_lookup_find(const SmsLookupFile *f, const char *name)
{
	size_t		i;

	for (i = 0; name != NULL && i < f->nentries; i++)
		if (ascii_casecmp(f->entries[i].name, name) == 0)
			return &f->entries[i];
	return NULL;
}
