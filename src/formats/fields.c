/*-------------------------------------------------------------------------
 *
 * fields.c
 *	  The field-table engine: one writer and one reader per field type,
 *	  repeated sections, and the generic to_text/parse/free of a format.
 *
 * Terms are defined in fields.h.  A writer validates every field with the
 * same rule its reader applies, and says what is wrong in the same words,
 * so a file this code writes is always one it reads back.  Readers check a
 * section's fields in table order and report the first problem, with the
 * line it is on.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "fields.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sms_run_with_names[2] = {"administrative_rights", "user_rights"};

/* ----------------------------------------------------------------
 * Members by offset
 * ----------------------------------------------------------------
 */
#define MEMBER(obj, off)		((char *) (obj) + (off))
#define CMEMBER(obj, off)		((const char *) (obj) + (off))

/*
 * An array member (SmsPcmJob *jobs, ...) is read and written through
 * memcpy: it is not a void * that could be accessed as one.
 */
static void *
load_ptr(const void *p)
{
	void	   *v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void
store_ptr(void *p, void *v)
{
	memcpy(p, &v, sizeof(v));
}

/* an INT or ENUM member: int64_t, int32_t, an enum or a bool */
static int64_t
load_int(const void *p, size_t size)
{
	int64_t		v64;
	int32_t		v32;
	bool		b;

	if (size == sizeof(int64_t))
	{
		memcpy(&v64, p, sizeof(v64));
		return v64;
	}
	if (size == sizeof(int32_t))
	{
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&b, p, sizeof(b));
	return b;
}

static void
store_int(void *p, size_t size, int64_t v)
{
	int32_t		v32 = (int32_t) v;
	bool		b = v != 0;

	if (size == sizeof(int64_t))
		memcpy(p, &v, sizeof(v));
	else if (size == sizeof(int32_t))
		memcpy(p, &v32, sizeof(v32));
	else
		memcpy(p, &b, sizeof(b));
}

/* ----------------------------------------------------------------
 * Lists
 * ----------------------------------------------------------------
 */
static int
cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The first item that appears twice, or NULL. */
static const char *
list_duplicate(char *const *items, size_t n, bool *nomem)
{
	char	  **copy;
	size_t		i;
	const char *dup = NULL;

	*nomem = false;
	if (n < 2)
		return NULL;
	copy = malloc(n * sizeof(*copy));
	if (copy == NULL)
	{
		*nomem = true;
		return NULL;
	}
	memcpy(copy, items, n * sizeof(*copy));
	qsort(copy, n, sizeof(*copy), cmp_str_ptr);
	for (i = 1; i < n && dup == NULL; i++)
		if (strcmp(copy[i - 1], copy[i]) == 0)
			dup = copy[i];
	free(copy);
	return dup;
}

const void **
sms_fields_sorted(const void *base, size_t n, size_t size,
				  int (*cmp) (const void *, const void *))
{
	const void **p = malloc((n ? n : 1) * sizeof(*p));
	size_t		i;

	if (p == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		p[i] = (const char *) base + i * size;
	qsort(p, n, sizeof(*p), cmp);
	return p;
}

/* ----------------------------------------------------------------
 * Reading one field
 * ----------------------------------------------------------------
 */
bool
sms_field_read_problem(const SmsFmtSection *s, const char *key, const char *problem,
					   const char *value, char *err, size_t errlen)
{
	const SmsFmtEntry *e = sms_fmt_find_entry(s, key);
	char		q[SMS_FMT_QUOTE_BUFLEN];

	if (e == NULL)
		sms_fmt_error(err, errlen, "line %d: [%s] has no %s key", s->line, s->name, key);
	else if (value != NULL)
		sms_fmt_error(err, errlen, "line %d: [%s] %s: %s (\"%s\")", e->line, s->name, key,
					  problem, sms_fmt_quote(value, q, sizeof(q)));
	else
		sms_fmt_error(err, errlen, "line %d: [%s] %s: %s", e->line, s->name, key, problem);
	return false;
}

static bool
rd_str(const SmsFmtSection *s, const char *key, bool required, SmsCheck check,
	   char **out, char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);
	const char *problem;

	*out = NULL;
	if (v == NULL)
		return required ? sms_field_read_problem(s, key, NULL, NULL, err, errlen) : true;
	if (check != NULL && (problem = check(v)) != NULL)
		return sms_field_read_problem(s, key, problem, v, err, errlen);
	if ((*out = strdup(v)) == NULL)
		return sms_fmt_oom(err, errlen);
	return true;
}

/* absent and optional: *out = 0 */
static bool
rd_int(const SmsFmtSection *s, const char *key, bool required, int64_t min,
	   int64_t max, int64_t *out, char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);
	char		problem[100];

	*out = 0;
	if (v == NULL)
		return required ? sms_field_read_problem(s, key, NULL, NULL, err, errlen) : true;
	if (!sms_fmt_parse_uint(v, out) || *out < min || *out > max)
	{
		*out = 0;
		snprintf(problem, sizeof(problem), "not an integer from %" PRId64 " to %" PRId64,
				 min, max);
		return sms_field_read_problem(s, key, problem, v, err, errlen);
	}
	return true;
}

static bool
rd_bool(const SmsFmtSection *s, const char *key, bool *out, char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);

	if (v == NULL)
		return sms_field_read_problem(s, key, NULL, NULL, err, errlen);
	if (strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0)
		*out = false;
	else
		return sms_field_read_problem(s, key, "must be true or false", v, err, errlen);
	return true;
}

/* A UTC time; absent and optional: SMS_TIME_NONE. */
static bool
rd_utc(const SmsFmtSection *s, const char *key, bool required, int64_t *out,
	   char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);

	*out = SMS_TIME_NONE;
	if (v == NULL)
		return required ? sms_field_read_problem(s, key, NULL, NULL, err, errlen) : true;
	if (!sms_fmt_parse_time(v, true, out))
	{
		*out = SMS_TIME_NONE;
		return sms_field_read_problem(s, key, "not a UTC time YYYY-MM-DDTHH:MM:SSZ", v,
									  err, errlen);
	}
	return true;
}

/* A time that may be local: key plus key_utc; the form must match. */
static bool
rd_when(const SmsFmtSection *s, const char *key, bool required, SmsWhen *out,
		char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);
	char		ukey[SMS_FMT_MAX_KEY + 8];

	out->secs = SMS_TIME_NONE;
	out->utc = true;
	if (v == NULL)
		return required ? sms_field_read_problem(s, key, NULL, NULL, err, errlen) : true;
	snprintf(ukey, sizeof(ukey), "%s_utc", key);
	if (!rd_bool(s, ukey, &out->utc, err, errlen))
		return false;
	if (!sms_fmt_parse_time(v, out->utc, &out->secs))
	{
		out->secs = SMS_TIME_NONE;
		return sms_field_read_problem(s, key, out->utc ?
									  "not a UTC time YYYY-MM-DDTHH:MM:SSZ (the _utc key is true)" :
									  "not a local time YYYY-MM-DDTHH:MM:SS (the _utc key is false)",
									  v, err, errlen);
	}
	return true;
}

/* The items of a list value, each checked; an empty value is no item. */
static bool
split_checked(const SmsFmtSection *s, const SmsField *f, const char *v, size_t n,
			  char **items, char *err, size_t errlen)
{
	const char *p = v;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		const char *end = strchr(p, f->sep);
		size_t		l = end ? (size_t) (end - p) : strlen(p);
		const char *problem;

		items[i] = malloc(l + 1);
		if (items[i] == NULL)
			return sms_fmt_oom(err, errlen);
		memcpy(items[i], p, l);
		items[i][l] = '\0';
		problem = l == 0 ? "the list has an empty item" : f->check(items[i]);
		if (problem != NULL)
		{
			char		q[SMS_FMT_QUOTE_BUFLEN];
			char		msg[300];

			snprintf(msg, sizeof(msg), "%s (item \"%s\")", problem,
					 sms_fmt_quote(items[i], q, sizeof(q)));
			return sms_field_read_problem(s, f->key, msg, NULL, err, errlen);
		}
		p = end ? end + 1 : p + l;
	}
	return true;
}

/*
 * A list: items separated by sep, none empty, none twice.  An empty value
 * is an empty list.  Sorted lists are sorted once read (the writer wrote
 * them sorted anyway); in the others the order means something.
 */
static bool
rd_list(const SmsFmtSection *s, const SmsField *f, char ***out, size_t *nout,
		char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, f->key);
	const char *p;
	size_t		n = 0;
	char	  **items;
	const char *dup;
	bool		nomem;

	*out = NULL;
	*nout = 0;
	if (v == NULL)
		return sms_field_read_problem(s, f->key, NULL, NULL, err, errlen);
	if (v[0] != '\0')
		for (n = 1, p = v; *p; p++)
			n += *p == f->sep;
	if (n < f->min_items)
		return sms_field_read_problem(s, f->key, "the list may not be empty", v, err, errlen);
	if (n == 0)
		return true;
	items = calloc(n, sizeof(*items));
	if (items == NULL)
		return sms_fmt_oom(err, errlen);
	if (!split_checked(s, f, v, n, items, err, errlen))
	{
		sms_fmt_free_list(items, n);
		return false;
	}
	if ((dup = list_duplicate(items, n, &nomem)) != NULL || nomem)
	{
		char		q[SMS_FMT_QUOTE_BUFLEN];
		char		msg[200];

		if (nomem)
		{
			sms_fmt_free_list(items, n);
			return sms_fmt_oom(err, errlen);
		}
		snprintf(msg, sizeof(msg), "\"%s\" appears twice", sms_fmt_quote(dup, q, sizeof(q)));
		sms_fmt_free_list(items, n);
		return sms_field_read_problem(s, f->key, msg, NULL, err, errlen);
	}
	if (f->flags & SMS_SORTED)
		qsort(items, n, sizeof(*items), cmp_str_ptr);
	*out = items;
	*nout = n;
	return true;
}

/* absent and optional: the first name's value */
static bool
rd_enum(const SmsFmtSection *s, const SmsField *f, void *obj, char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, f->key);
	size_t		i;

	store_int(MEMBER(obj, f->offset), f->size, 0);
	if (v == NULL)
		return (f->flags & SMS_REQUIRED) ?
			sms_field_read_problem(s, f->key, NULL, NULL, err, errlen) : true;
	for (i = 0; i < f->nnames; i++)
		if (strcmp(v, f->names[i]) == 0)
		{
			store_int(MEMBER(obj, f->offset), f->size, (int64_t) i);
			return true;
		}
	return sms_field_read_problem(s, f->key, f->problem, v, err, errlen);
}

static bool
read_field(const SmsFmtSection *s, const SmsField *f, void *obj, char *err, size_t errlen)
{
	void	   *p = MEMBER(obj, f->offset);
	bool		required = (f->flags & SMS_REQUIRED) != 0;
	int64_t		v;
	bool		ok;

	switch (f->type)
	{
		case SMS_FIELD_STRING:
			return rd_str(s, f->key, required, f->check, (char **) p, err, errlen);
		case SMS_FIELD_INT:
			ok = rd_int(s, f->key, required, f->min, f->max, &v, err, errlen);
			store_int(p, f->size, v);
			if (ok && (f->flags & SMS_HAS_PRESENCE))
				*(bool *) MEMBER(obj, f->aux_offset) = sms_fmt_get(s, f->key) != NULL;
			return ok;
		case SMS_FIELD_BOOL:
			if (!required && sms_fmt_get(s, f->key) == NULL)
				return true;
			return rd_bool(s, f->key, (bool *) p, err, errlen);
		case SMS_FIELD_UTC:
			return rd_utc(s, f->key, required, (int64_t *) p, err, errlen);
		case SMS_FIELD_WHEN:
			return rd_when(s, f->key, required, (SmsWhen *) p, err, errlen);
		case SMS_FIELD_LIST:
			return rd_list(s, f, (char ***) p, (size_t *) MEMBER(obj, f->aux_offset),
						   err, errlen);
		case SMS_FIELD_ENUM:
			return rd_enum(s, f, obj, err, errlen);
		case SMS_FIELD_CUSTOM:
			return f->read(s, f, obj, err, errlen);
	}
	return sms_fmt_error(err, errlen, "[%s] %s: unknown field type", s->name, f->key);
}

bool
sms_fields_read(const SmsFmtSection *s, const SmsField *fields, size_t n, void *obj,
				char *err, size_t errlen)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (!read_field(s, &fields[i], obj, err, errlen))
			return false;
	return true;
}

void
sms_fields_free(const SmsField *fields, size_t n, void *obj)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		const SmsField *f = &fields[i];

		if (f->type == SMS_FIELD_STRING)
			free(*(char **) MEMBER(obj, f->offset));
		else if (f->type == SMS_FIELD_LIST)
			sms_fmt_free_list(*(char ***) MEMBER(obj, f->offset),
							  *(size_t *) MEMBER(obj, f->aux_offset));
	}
}

/* ----------------------------------------------------------------
 * Writing one field
 * ----------------------------------------------------------------
 */
bool
sms_field_write_problem(const SmsFmtSection *s, const char *key, const char *problem,
						const char *value, char *err, size_t errlen)
{
	char		q[SMS_FMT_QUOTE_BUFLEN];

	if (value == NULL)
		return sms_fmt_error(err, errlen, "[%s] %s: %s", s->name, key, problem);
	return sms_fmt_error(err, errlen, "[%s] %s: %s (\"%s\")", s->name, key, problem,
						 sms_fmt_quote(value, q, sizeof(q)));
}

static bool
wr_str(SmsFmtSection *s, const char *key, const char *v, bool required,
	   SmsCheck check, char *err, size_t errlen)
{
	const char *problem;

	if (v == NULL)
		return required ? sms_field_write_problem(s, key, "missing", NULL, err, errlen) : true;
	if (!sms_fmt_valid_utf8(v, strlen(v)))
		return sms_field_write_problem(s, key, "not valid UTF-8", NULL, err, errlen);
	if (check != NULL && (problem = check(v)) != NULL)
		return sms_field_write_problem(s, key, problem, v, err, errlen);
	return sms_fmt_set(s, key, v, err, errlen);
}

static bool
wr_int(SmsFmtSection *s, const char *key, int64_t v, int64_t min, int64_t max,
	   char *err, size_t errlen)
{
	char		problem[100];

	if (v < min || v > max)
	{
		snprintf(problem, sizeof(problem), "%" PRId64 " is not from %" PRId64 " to %" PRId64,
				 v, min, max);
		return sms_field_write_problem(s, key, problem, NULL, err, errlen);
	}
	return sms_fmt_set_int(s, key, v, err, errlen);
}

static bool
wr_utc(SmsFmtSection *s, const char *key, int64_t secs, bool required,
	   char *err, size_t errlen)
{
	if (secs == SMS_TIME_NONE)
		return required ? sms_field_write_problem(s, key, "missing", NULL, err, errlen) : true;
	return sms_fmt_set_time(s, key, secs, true, err, errlen);
}

static bool
wr_when(SmsFmtSection *s, const char *key, SmsWhen w, bool required,
		char *err, size_t errlen)
{
	char		ukey[SMS_FMT_MAX_KEY + 8];

	if (w.secs == SMS_TIME_NONE)
		return required ? sms_field_write_problem(s, key, "missing", NULL, err, errlen) : true;
	snprintf(ukey, sizeof(ukey), "%s_utc", key);
	return sms_fmt_set_time(s, key, w.secs, w.utc, err, errlen) &&
		sms_fmt_set_bool(s, ukey, w.utc, err, errlen);
}

/* The list's items, each checked; *total: the bytes of their joined form. */
static bool
list_items_valid(SmsFmtSection *s, const SmsField *f, char *const *items, size_t n,
				 size_t *total, char *err, size_t errlen)
{
	size_t		i;
	const char *dup;
	bool		nomem;

	if (n < f->min_items)
		return sms_field_write_problem(s, f->key, "the list may not be empty", NULL, err, errlen);
	for (i = 0; i < n; i++)
	{
		const char *problem;

		if (items[i] == NULL)
			return sms_field_write_problem(s, f->key, "an item is missing (NULL)", NULL, err, errlen);
		if (!sms_fmt_valid_utf8(items[i], strlen(items[i])))
			return sms_field_write_problem(s, f->key, "an item is not valid UTF-8", NULL, err, errlen);
		/* the checks refuse sep, but say so plainly if one ever does not */
		problem = items[i][0] == '\0' ? "an item is empty" :
			strchr(items[i], f->sep) ? "an item contains the list separator" : f->check(items[i]);
		if (problem != NULL)
			return sms_field_write_problem(s, f->key, problem, items[i], err, errlen);
		*total += strlen(items[i]) + 1;
	}
	dup = list_duplicate(items, n, &nomem);
	if (nomem)
		return sms_fmt_oom(err, errlen);
	if (dup != NULL)
		return sms_field_write_problem(s, f->key, "an item appears twice", dup, err, errlen);
	return true;
}

static bool
wr_list(SmsFmtSection *s, const SmsField *f, char *const *items, size_t n,
		char *err, size_t errlen)
{
	size_t		total = 1;
	size_t		i;
	char	  **order;
	char	   *v;
	char	   *o;
	bool		ok;

	if (!list_items_valid(s, f, items, n, &total, err, errlen))
		return false;
	order = malloc((n ? n : 1) * sizeof(*order));
	v = malloc(total);
	if (order == NULL || v == NULL)
	{
		free(order);
		free(v);
		return sms_fmt_oom(err, errlen);
	}
	if (n > 0)
		memcpy(order, items, n * sizeof(*order));
	if (f->flags & SMS_SORTED)
		qsort(order, n, sizeof(*order), cmp_str_ptr);
	o = v;
	for (i = 0; i < n; i++)
	{
		size_t		l = strlen(order[i]);

		if (i > 0)
			*o++ = f->sep;
		memcpy(o, order[i], l);
		o += l;
	}
	*o = '\0';
	ok = sms_fmt_set(s, f->key, v, err, errlen);
	free(order);
	free(v);
	return ok;
}

static bool
wr_enum(SmsFmtSection *s, const SmsField *f, const void *obj, char *err, size_t errlen)
{
	int64_t		v = load_int(CMEMBER(obj, f->offset), f->size);

	if (v < 0 || (uint64_t) v >= f->nnames)
		return sms_fmt_error(err, errlen, "unknown %s %d", f->what, (int) v);
	if (v == 0 && !(f->flags & (SMS_REQUIRED | SMS_WRITE_DEFAULT)))
		return true;
	return sms_fmt_set(s, f->key, f->names[v], err, errlen);
}

static bool
write_field(SmsFmtSection *s, const SmsField *f, const void *obj, char *err, size_t errlen)
{
	const void *p = CMEMBER(obj, f->offset);
	bool		required = (f->flags & SMS_REQUIRED) != 0;
	int64_t		v;

	switch (f->type)
	{
		case SMS_FIELD_STRING:
			return wr_str(s, f->key, *(char *const *) p, required, f->check, err, errlen);
		case SMS_FIELD_INT:
			v = load_int(p, f->size);
			if ((f->flags & SMS_HAS_PRESENCE) ?
				!*(const bool *) CMEMBER(obj, f->aux_offset) : (!required && v == 0))
				return true;
			return wr_int(s, f->key, v, f->min, f->max, err, errlen);
		case SMS_FIELD_BOOL:
			if (!required && !*(const bool *) p)
				return true;
			return sms_fmt_set_bool(s, f->key, *(const bool *) p, err, errlen);
		case SMS_FIELD_UTC:
			return wr_utc(s, f->key, *(const int64_t *) p, required, err, errlen);
		case SMS_FIELD_WHEN:
			return wr_when(s, f->key, *(const SmsWhen *) p, required, err, errlen);
		case SMS_FIELD_LIST:
			return wr_list(s, f, *(char *const *const *) p,
						   *(const size_t *) CMEMBER(obj, f->aux_offset), err, errlen);
		case SMS_FIELD_ENUM:
			return wr_enum(s, f, obj, err, errlen);
		case SMS_FIELD_CUSTOM:
			return f->write(s, f, obj, err, errlen);
	}
	return sms_fmt_error(err, errlen, "[%s] %s: unknown field type", s->name, f->key);
}

bool
sms_fields_write(SmsFmtSection *s, const SmsField *fields, size_t n, const void *obj,
				 char *err, size_t errlen)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (!write_field(s, &fields[i], obj, err, errlen))
			return false;
	return true;
}

/* ----------------------------------------------------------------
 * Repeated sections
 * ----------------------------------------------------------------
 */

/*
 * The argument of a section named "<type> <arg>", or NULL when the
 * section is of another type.
 */
static const char *
section_arg(const SmsFmtSection *s, const char *type)
{
	size_t		l = strlen(type);

	if (strncmp(s->name, type, l) == 0 && s->name[l] == ' ')
		return s->name + l + 1;
	return NULL;
}

size_t
sms_fields_count_sections(const SmsFmtDoc *doc, const char *type)
{
	size_t		i,
				n = 0;

	for (i = 1; i < doc->nsections; i++)
		if (section_arg(doc->sections[i], type) != NULL)
			n++;
	return n;
}

/* "[assignment N]": N is 1, 2, ... ; only its uniqueness matters */
static bool
check_numbered(const SmsFmtSection *s, const char *arg, char *err, size_t errlen)
{
	int64_t		n;

	if (!sms_fmt_parse_uint(arg, &n) || n < 1 || n > 999999999)
		return sms_fmt_error(err, errlen, "line %d: section [%s]: expected a number from 1 after the section type",
							 s->line, s->name);
	return true;
}

/* A bare "[job]" or "[program]" is a mistake, not an unknown section. */
bool
sms_fields_check_bare(const SmsFmtDoc *doc, const SmsSectionSpec *specs, size_t n,
					  char *err, size_t errlen)
{
	size_t		i,
				k;

	for (k = 0; k < n; k++)
		for (i = 1; i < doc->nsections; i++)
			if (strcmp(doc->sections[i]->name, specs[k].type) == 0)
				return sms_fmt_error(err, errlen, "line %d: section [%s] needs an argument after the type",
									 doc->sections[i]->line, specs[k].type);
	return true;
}

bool
sms_fields_write_sections(SmsFmtDoc *doc, const SmsSectionSpec *spec, const void *parent,
						  char *err, size_t errlen)
{
	const void *base = load_ptr(CMEMBER(parent, spec->array_offset));
	size_t		n = *(const size_t *) CMEMBER(parent, spec->count_offset);
	const void **order = sms_fields_sorted(base, n, spec->elem_size, spec->cmp);
	char		name[SMS_FMT_MAX_SECTION_NAME + 1];
	size_t		i;
	bool		ok = true;

	if (order == NULL)
		return sms_fmt_oom(err, errlen);
	for (i = 0; ok && i < n; i++)
	{
		SmsFmtSection *s;

		if (spec->duplicate != NULL && i > 0 && spec->cmp(&order[i - 1], &order[i]) == 0)
		{
			spec->duplicate(order[i], err, errlen);
			ok = false;
			break;
		}
		if (spec->arg_what == NULL)
			snprintf(name, sizeof(name), "%s %zu", spec->type, i + 1);
		else
			snprintf(name, sizeof(name), "%s %s", spec->type,
					 *(char *const *) CMEMBER(order[i], spec->arg_offset));
		ok = (s = sms_fmt_add_section(doc, name, err, errlen)) != NULL &&
			(spec->write_check == NULL || spec->write_check(s, order[i], err, errlen)) &&
			sms_fields_write(s, spec->fields, spec->nfields, order[i], err, errlen);
	}
	free(order);
	return ok;
}

/* One section of spec's type: the next element of its array. */
static bool
read_element(const SmsFmtSection *s, const char *arg, const SmsSectionSpec *spec,
			 void *parent, char *err, size_t errlen)
{
	char	   *base = load_ptr(MEMBER(parent, spec->array_offset));
	size_t	   *count = (size_t *) MEMBER(parent, spec->count_offset);
	void	   *elem = base + (*count)++ * spec->elem_size;

	if (spec->arg_what == NULL)
	{
		if (!check_numbered(s, arg, err, errlen))
			return false;
	}
	else
	{
		if (spec->arg_check(arg) != NULL)
			return sms_fmt_error(err, errlen, "line %d: section [%s]: the %s is %s",
								 s->line, s->name, spec->arg_what, spec->arg_check(arg));
		if ((*(char **) MEMBER(elem, spec->arg_offset) = strdup(arg)) == NULL)
			return sms_fmt_oom(err, errlen);
	}
	return sms_fields_read(s, spec->fields, spec->nfields, elem, err, errlen);
}

/* Refuse two elements spec->cmp finds equal, as the writer refuses them. */
static bool
check_duplicates(const SmsSectionSpec *spec, void *parent, char *err, size_t errlen)
{
	const void *base = load_ptr(MEMBER(parent, spec->array_offset));
	size_t		n = *(size_t *) MEMBER(parent, spec->count_offset);
	const void **order;
	size_t		i;
	bool		ok = true;

	if (spec->duplicate == NULL)
		return true;
	if ((order = sms_fields_sorted(base, n, spec->elem_size, spec->cmp)) == NULL)
		return sms_fmt_oom(err, errlen);
	for (i = 1; ok && i < n; i++)
		if (spec->cmp(&order[i - 1], &order[i]) == 0)
		{
			spec->duplicate(order[i], err, errlen);
			ok = false;
		}
	free(order);
	return ok;
}

bool
sms_fields_read_sections(const SmsFmtDoc *doc, const SmsSectionSpec *specs, size_t n,
						 void *parent, char *err, size_t errlen)
{
	size_t		i,
				k;
	bool		ok = true;

	for (k = 0; ok && k < n; k++)
	{
		size_t		count = sms_fields_count_sections(doc, specs[k].type);
		void	   *array;

		if (count == 0)
			continue;
		if ((array = calloc(count, specs[k].elem_size)) == NULL)
			ok = sms_fmt_oom(err, errlen);
		store_ptr(MEMBER(parent, specs[k].array_offset), array);
	}
	for (i = 1; ok && i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];

		for (k = 0; k < n; k++)
		{
			const char *arg = section_arg(s, specs[k].type);

			if (arg != NULL)
			{
				ok = read_element(s, arg, &specs[k], parent, err, errlen);
				break;
			}
		}
	}
	for (k = 0; ok && k < n; k++)
		ok = check_duplicates(&specs[k], parent, err, errlen);
	return ok;
}

void
sms_fields_free_sections(const SmsSectionSpec *spec, void *parent)
{
	char	   *base = load_ptr(MEMBER(parent, spec->array_offset));
	size_t		n = *(size_t *) MEMBER(parent, spec->count_offset);
	size_t		i;

	for (i = 0; i < n; i++)
	{
		void	   *elem = base + i * spec->elem_size;

		if (spec->arg_what != NULL)
			free(*(char **) MEMBER(elem, spec->arg_offset));
		sms_fields_free(spec->fields, spec->nfields, elem);
	}
	free(base);
}

/* ----------------------------------------------------------------
 * Whole formats
 * ----------------------------------------------------------------
 */
bool
sms_format_finish(SmsFmtDoc *doc, bool ok, char **out, size_t *len, char *err, size_t errlen)
{
	if (ok)
		ok = sms_fmt_serialize(doc, out, len, err, errlen);
	sms_fmt_doc_free(doc);
	return ok;
}

bool
sms_format_to_text(const SmsFormatSpec *spec, const void *obj, char **out, size_t *len,
				   char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	size_t		k;
	bool		ok;

	*out = NULL;
	*len = 0;
	if ((doc = sms_fmt_doc_new(spec->format, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = sms_fields_write(h, spec->header, spec->nheader, obj, err, errlen) &&
		(spec->write_extra == NULL || spec->write_extra(h, obj, err, errlen));
	for (k = 0; ok && k < spec->nsections; k++)
		ok = sms_fields_write_sections(doc, &spec->sections[k], obj, err, errlen);
	return sms_format_finish(doc, ok, out, len, err, errlen);
}

bool
sms_format_parse(const SmsFormatSpec *spec, const char *buf, size_t len, void *obj,
				 char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	bool		ok;

	memset(obj, 0, spec->size);
	if (!sms_fmt_parse(buf, len, spec->format, &doc, err, errlen))
		return false;
	ok = sms_fields_read(doc->sections[0], spec->header, spec->nheader, obj, err, errlen) &&
		sms_fields_check_bare(doc, spec->sections, spec->nsections, err, errlen) &&
		(spec->read_extra == NULL || spec->read_extra(doc, obj, err, errlen)) &&
		sms_fields_read_sections(doc, spec->sections, spec->nsections, obj, err, errlen);
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_format_free(spec, obj);
	return ok;
}

void
sms_format_free(const SmsFormatSpec *spec, void *obj)
{
	size_t		k;

	if (obj == NULL)
		return;
	sms_fields_free(spec->header, spec->nheader, obj);
	for (k = 0; k < spec->nsections; k++)
		sms_fields_free_sections(&spec->sections[k], obj);
	memset(obj, 0, spec->size);
}
