/*-------------------------------------------------------------------------
 *
 * ini.c
 *	  Documents of sections and key=value entries: building them, their
 *	  text form, and the parser that reads it back.
 *
 * Terms are defined in ini.h.  The rules that matter here:
 *
 *	- A writer must never produce a file that a reader refuses, so the
 *	  serializer enforces the same limits (line, file size, duplicates)
 *	  that the parser does.
 *	- Nothing read from a file is trusted: the client agent reads files
 *	  from a network share that anyone with write access to it could have
 *	  put there.  Every limit is enforced before memory is committed to it,
 *	  and duplicate detection sorts rather than searching, so a hostile
 *	  64 MB file costs O(n log n), not O(n^2).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "ini.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "values.h"

/* ----------------------------------------------------------------
 * Names
 * ----------------------------------------------------------------
 */
static bool
valid_key(const char *s, size_t len)
{
	size_t		i;

	if (len == 0 || len > SMS_FMT_MAX_KEY)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool
valid_section_name(const char *s, size_t len)
{
	size_t		i;

	if (len == 0 || len > SMS_FMT_MAX_SECTION_NAME)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			  (s[i] >= '0' && s[i] <= '9') ||
			  s[i] == '_' || s[i] == ' ' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ----------------------------------------------------------------
 * Documents
 * ----------------------------------------------------------------
 */
static void
section_free(SmsFmtSection *sec)
{
	size_t		i;

	if (sec == NULL)
		return;
	for (i = 0; i < sec->nentries; i++)
	{
		free(sec->entries[i].key);
		free(sec->entries[i].value);
	}
	free(sec->entries);
	free(sec->name);
	free(sec);
}

void
sms_fmt_doc_free(SmsFmtDoc *doc)
{
	size_t		i;

	if (doc == NULL)
		return;
	for (i = 0; i < doc->nsections; i++)
		section_free(doc->sections[i]);
	free(doc->sections);
	free(doc);
}

static SmsFmtSection *
add_section_len(SmsFmtDoc *doc, const char *name, size_t len, int line,
				char *err, size_t errlen)
{
	SmsFmtSection *sec;

	if (doc->nsections == doc->capacity)
	{
		size_t		ncap = doc->capacity ? doc->capacity * 2 : 8;
		SmsFmtSection **n = realloc(doc->sections, ncap * sizeof(*n));

		if (n == NULL)
		{
			sms_fmt_oom(err, errlen);
			return NULL;
		}
		doc->sections = n;
		doc->capacity = ncap;
	}
	sec = calloc(1, sizeof(*sec));
	if (sec == NULL || (sec->name = malloc(len + 1)) == NULL)
	{
		free(sec);
		sms_fmt_oom(err, errlen);
		return NULL;
	}
	memcpy(sec->name, name, len);
	sec->name[len] = '\0';
	sec->line = line;
	doc->sections[doc->nsections++] = sec;
	return sec;
}

/* Takes ownership of key and value (frees them on failure). */
static bool
add_entry(SmsFmtSection *sec, char *key, char *value, int line,
		  char *err, size_t errlen)
{
	if (sec->nentries == sec->capacity)
	{
		size_t		ncap = sec->capacity ? sec->capacity * 2 : 8;
		SmsFmtEntry *n = realloc(sec->entries, ncap * sizeof(*n));

		if (n == NULL)
		{
			free(key);
			free(value);
			return sms_fmt_oom(err, errlen);
		}
		sec->entries = n;
		sec->capacity = ncap;
	}
	sec->entries[sec->nentries].key = key;
	sec->entries[sec->nentries].value = value;
	sec->entries[sec->nentries].line = line;
	sec->nentries++;
	return true;
}

SmsFmtSection *
sms_fmt_add_section(SmsFmtDoc *doc, const char *name, char *err, size_t errlen)
{
	char		q[100];

	if (name == NULL || !valid_section_name(name, strlen(name)))
	{
		sms_fmt_error(err, errlen, "invalid section name \"%s\": a section name is 1 to %d of A-Z a-z 0-9 _ . - and space",
				sms_fmt_quote(name, q, sizeof(q)), SMS_FMT_MAX_SECTION_NAME);
		return NULL;
	}
	return add_section_len(doc, name, strlen(name), 0, err, errlen);
}

SmsFmtSection *
sms_fmt_header(const SmsFmtDoc *doc)
{
	return (doc != NULL && doc->nsections > 0) ? doc->sections[0] : NULL;
}

bool
sms_fmt_set(SmsFmtSection *sec, const char *key, const char *value,
			char *err, size_t errlen)
{
	char		q[100];
	char	   *k;
	char	   *v;

	if (key == NULL || !valid_key(key, strlen(key)))
	{
		sms_fmt_error(err, errlen, "[%s] invalid key \"%s\": a key is 1 to %d of a-z 0-9 _",
				sec->name, sms_fmt_quote(key, q, sizeof(q)), SMS_FMT_MAX_KEY);
		return false;
	}
	if (value == NULL || !sms_fmt_valid_utf8(value, strlen(value)))
	{
		sms_fmt_error(err, errlen, "[%s] %s: the value is %s", sec->name, key,
				value == NULL ? "missing" : "not valid UTF-8");
		return false;
	}
	k = strdup(key);
	v = strdup(value);
	if (k == NULL || v == NULL)
	{
		free(k);
		free(v);
		return sms_fmt_oom(err, errlen);
	}
	return add_entry(sec, k, v, 0, err, errlen);
}

bool
sms_fmt_set_int(SmsFmtSection *sec, const char *key, int64_t value,
				char *err, size_t errlen)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, value);
	return sms_fmt_set(sec, key, buf, err, errlen);
}

bool
sms_fmt_set_bool(SmsFmtSection *sec, const char *key, bool value,
				 char *err, size_t errlen)
{
	return sms_fmt_set(sec, key, value ? "true" : "false", err, errlen);
}

bool
sms_fmt_set_time(SmsFmtSection *sec, const char *key, int64_t secs, bool utc,
				 char *err, size_t errlen)
{
	char		buf[SMS_FMT_TIME_BUFLEN];

	if (!sms_fmt_format_time(secs, utc, buf))
	{
		sms_fmt_error(err, errlen, "[%s] %s: time out of range (years 0001 to 9999)",
				sec->name, key);
		return false;
	}
	return sms_fmt_set(sec, key, buf, err, errlen);
}

SmsFmtDoc *
sms_fmt_doc_new(const char *format, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;

	if (format == NULL || !valid_key(format, strlen(format)))
	{
		sms_fmt_error(err, errlen, "invalid format name");
		return NULL;
	}
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL)
	{
		sms_fmt_oom(err, errlen);
		return NULL;
	}
	h = sms_fmt_add_section(doc, "smsdist", err, errlen);
	if (h == NULL ||
		!sms_fmt_set(h, "format", format, err, errlen) ||
		!sms_fmt_set_int(h, "version", SMS_FMT_VERSION, err, errlen))
	{
		sms_fmt_doc_free(doc);
		return NULL;
	}
	return doc;
}

const SmsFmtSection *
sms_fmt_find_section(const SmsFmtDoc *doc, const char *name)
{
	size_t		i;

	for (i = 0; doc != NULL && i < doc->nsections; i++)
		if (strcmp(doc->sections[i]->name, name) == 0)
			return doc->sections[i];
	return NULL;
}

const SmsFmtEntry *
sms_fmt_find_entry(const SmsFmtSection *sec, const char *key)
{
	size_t		i;

	for (i = 0; sec != NULL && i < sec->nentries; i++)
		if (strcmp(sec->entries[i].key, key) == 0)
			return &sec->entries[i];
	return NULL;
}

const char *
sms_fmt_get(const SmsFmtSection *sec, const char *key)
{
	const SmsFmtEntry *e = sms_fmt_find_entry(sec, key);

	return e ? e->value : NULL;
}

/* ----------------------------------------------------------------
 * Duplicates: sort pointers, compare neighbours
 * ----------------------------------------------------------------
 */
static int
cmp_section_name(const void *a, const void *b)
{
	const SmsFmtSection *x = *(const SmsFmtSection *const *) a;
	const SmsFmtSection *y = *(const SmsFmtSection *const *) b;

	return strcmp(x->name, y->name);
}

static int
cmp_entry_key(const void *a, const void *b)
{
	const SmsFmtEntry *x = *(const SmsFmtEntry *const *) a;
	const SmsFmtEntry *y = *(const SmsFmtEntry *const *) b;

	return strcmp(x->key, y->key);
}

static bool
check_duplicates(const SmsFmtDoc *doc, char *err, size_t errlen)
{
	const SmsFmtSection **secs;
	const SmsFmtEntry **ents = NULL;
	size_t		maxent = 0;
	size_t		i,
				j;
	bool		ok = true;

	secs = malloc((doc->nsections ? doc->nsections : 1) * sizeof(*secs));
	if (secs == NULL)
		return sms_fmt_oom(err, errlen);
	for (i = 0; i < doc->nsections; i++)
	{
		secs[i] = doc->sections[i];
		if (secs[i]->nentries > maxent)
			maxent = secs[i]->nentries;
	}
	qsort(secs, doc->nsections, sizeof(*secs), cmp_section_name);
	for (i = 1; ok && i < doc->nsections; i++)
		if (strcmp(secs[i - 1]->name, secs[i]->name) == 0)
		{
			int			l1 = secs[i - 1]->line,
						l2 = secs[i]->line;

			if (l1 > l2)
			{
				int			t = l1;

				l1 = l2;
				l2 = t;
			}
			if (l1 > 0)
				sms_fmt_error(err, errlen, "line %d: duplicate section [%s] (first on line %d)",
						l2, secs[i]->name, l1);
			else
				sms_fmt_error(err, errlen, "duplicate section [%s]", secs[i]->name);
			ok = false;
		}

	if (ok && maxent > 1 && (ents = malloc(maxent * sizeof(*ents))) == NULL)
		ok = sms_fmt_oom(err, errlen);
	for (i = 0; ok && maxent > 1 && i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];

		for (j = 0; j < s->nentries; j++)
			ents[j] = &s->entries[j];
		qsort(ents, s->nentries, sizeof(*ents), cmp_entry_key);
		for (j = 1; ok && j < s->nentries; j++)
			if (strcmp(ents[j - 1]->key, ents[j]->key) == 0)
			{
				int			l = ents[j - 1]->line > ents[j]->line ?
					ents[j - 1]->line : ents[j]->line;

				if (l > 0)
					sms_fmt_error(err, errlen, "line %d: duplicate key \"%s\" in section [%s]",
							l, ents[j]->key, s->name);
				else
					sms_fmt_error(err, errlen, "duplicate key \"%s\" in section [%s]",
							ents[j]->key, s->name);
				ok = false;
			}
	}
	free(ents);
	free(secs);
	return ok;
}

/* ----------------------------------------------------------------
 * Serializing
 * ----------------------------------------------------------------
 */
static size_t
encoded_len(const char *v)
{
	size_t		n = 0;
	const unsigned char *p;

	for (p = (const unsigned char *) v; *p; p++)
		n += sms_fmt_needs_escape(*p) ? 3 : 1;
	return n;
}

bool
sms_fmt_serialize(const SmsFmtDoc *doc, char **out, size_t *len,
				  char *err, size_t errlen)
{
	size_t		total = 0;
	size_t		i,
				j;
	char	   *buf;
	char	   *o;
	const SmsFmtSection *h = sms_fmt_header(doc);

	*out = NULL;
	*len = 0;
	if (h == NULL || strcmp(h->name, "smsdist") != 0 ||
		sms_fmt_get(h, "format") == NULL || sms_fmt_get(h, "version") == NULL)
	{
		sms_fmt_error(err, errlen, "a document must begin with [smsdist] holding format and version");
		return false;
	}
	if (!check_duplicates(doc, err, errlen))
		return false;

	/* measure first: the limits are checked before anything is built */
	for (i = 0; i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];

		total += (i > 0 ? 1 : 0) + strlen(s->name) + 3;
		for (j = 0; j < s->nentries; j++)
		{
			size_t		l = strlen(s->entries[j].key) + 1 + encoded_len(s->entries[j].value);

			if (l > SMS_FMT_MAX_LINE)
			{
				sms_fmt_error(err, errlen, "[%s] %s: the line would be %zu bytes, more than the %d a reader accepts",
						s->name, s->entries[j].key, l, SMS_FMT_MAX_LINE);
				return false;
			}
			total += l + 1;
		}
		if (total > SMS_FMT_MAX_FILE)
			break;
	}
	if (total > SMS_FMT_MAX_FILE)
	{
		sms_fmt_error(err, errlen, "the file would be larger than the %d bytes a reader accepts",
				SMS_FMT_MAX_FILE);
		return false;
	}

	buf = malloc(total + 1);
	if (buf == NULL)
		return sms_fmt_oom(err, errlen);
	o = buf;
	for (i = 0; i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];
		size_t		l = strlen(s->name);

		if (i > 0)
			*o++ = '\n';
		*o++ = '[';
		memcpy(o, s->name, l);
		o += l;
		*o++ = ']';
		*o++ = '\n';
		for (j = 0; j < s->nentries; j++)
		{
			const unsigned char *p;

			l = strlen(s->entries[j].key);
			memcpy(o, s->entries[j].key, l);
			o += l;
			*o++ = '=';
			for (p = (const unsigned char *) s->entries[j].value; *p; p++)
			{
				if (sms_fmt_needs_escape(*p))
					o = sms_fmt_put_escape(o, *p);
				else
					*o++ = (char) *p;
			}
			*o++ = '\n';
		}
	}
	*o = '\0';
	*out = buf;
	*len = (size_t) (o - buf);
	return true;
}

/* ----------------------------------------------------------------
 * Parsing
 * ----------------------------------------------------------------
 */

/*
 * The header decides whether the rest can be read at all, so it is checked
 * as soon as it is complete: a file from a newer major version is reported
 * as such, not as whatever syntax error its new features would cause.
 * (The header section's own syntax is therefore frozen.)
 */
static bool
check_header(const SmsFmtSection *h, const char *format, char *err, size_t errlen)
{
	const char *f = sms_fmt_get(h, "format");
	const char *v = sms_fmt_get(h, "version");
	char		q[100];
	char		q2[100];
	int64_t		major = 0;
	const char *dot;
	char		majbuf[24];

	if (f == NULL || v == NULL)
	{
		sms_fmt_error(err, errlen, "the [smsdist] header has no %s key",
				f == NULL ? "format" : "version");
		return false;
	}
	if (format != NULL && strcmp(f, format) != 0)
	{
		sms_fmt_error(err, errlen, "this is a \"%s\" file, not a \"%s\" file",
				sms_fmt_quote(f, q, sizeof(q)), format);
		return false;
	}
	/* version: <major>[.<minor>], decimal */
	dot = strchr(v, '.');
	if (dot != NULL)
	{
		int64_t		minor;

		if ((size_t) (dot - v) >= sizeof(majbuf) || !sms_fmt_parse_uint(dot + 1, &minor))
			major = 0;
		else
		{
			memcpy(majbuf, v, (size_t) (dot - v));
			majbuf[dot - v] = '\0';
			if (!sms_fmt_parse_uint(majbuf, &major))
				major = 0;
		}
	}
	else if (!sms_fmt_parse_uint(v, &major))
		major = 0;
	if (major == 0)
	{
		sms_fmt_error(err, errlen, "malformed version \"%s\" in the [smsdist] header",
				sms_fmt_quote(v, q, sizeof(q)));
		return false;
	}
	if (major != SMS_FMT_VERSION)
	{
		sms_fmt_error(err, errlen, "the %s file is in version %s of its format; this reader understands version %d only (a newer smsdist wrote it)",
				sms_fmt_quote(f, q2, sizeof(q2)), sms_fmt_quote(v, q, sizeof(q)), SMS_FMT_VERSION);
		return false;
	}
	return true;
}

/* Decode a raw value into a new string; NULL with err set on failure. */
static char *
decode_value(const char *raw, size_t len, int line, char *err, size_t errlen)
{
	char	   *v = malloc(len + 1);
	size_t		i,
				o = 0;

	if (v == NULL)
	{
		sms_fmt_oom(err, errlen);
		return NULL;
	}
	for (i = 0; i < len; i++)
	{
		if (raw[i] == '%')
		{
			int			hi = i + 2 < len ? hex_value(raw[i + 1]) : -1;
			int			lo = i + 2 < len ? hex_value(raw[i + 2]) : -1;

			if (hi < 0 || lo < 0)
			{
				sms_fmt_error(err, errlen, "line %d: malformed escape: %% must be followed by two hexadecimal digits",
						line);
				free(v);
				return NULL;
			}
			if (hi == 0 && lo == 0)
			{
				sms_fmt_error(err, errlen, "line %d: a value may not contain NUL (%%00)", line);
				free(v);
				return NULL;
			}
			v[o++] = (char) (hi * 16 + lo);
			i += 2;
		}
		else
			v[o++] = raw[i];
	}
	v[o] = '\0';
	if (!sms_fmt_valid_utf8(v, o))
	{
		sms_fmt_error(err, errlen, "line %d: the value is not valid UTF-8", line);
		free(v);
		return NULL;
	}
	return v;
}

bool
sms_fmt_parse(const char *buf, size_t len, const char *format,
			  SmsFmtDoc **out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	size_t		pos = 0;
	int			lineno = 0;
	bool		header_checked = false;

	*out = NULL;
	if (len > SMS_FMT_MAX_FILE)
	{
		sms_fmt_error(err, errlen, "the file is larger than %d bytes", SMS_FMT_MAX_FILE);
		return false;
	}
	if (len == 0)
	{
		sms_fmt_error(err, errlen, "the file is empty");
		return false;
	}
	if (buf[len - 1] != '\n')
	{
		/* writers always end with LF: anything else was cut short */
		sms_fmt_error(err, errlen, "the file does not end with a line feed (truncated?)");
		return false;
	}
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL)
		return sms_fmt_oom(err, errlen);

	while (pos < len)
	{
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t		ll = (size_t) (nl - line);
		size_t		i;
		const char *eq;
		char	   *key;
		char	   *value;

		pos += ll + 1;
		lineno++;
		if (ll > SMS_FMT_MAX_LINE)
		{
			sms_fmt_error(err, errlen, "line %d is longer than %d bytes", lineno, SMS_FMT_MAX_LINE);
			goto fail;
		}
		for (i = 0; i < ll; i++)
		{
			unsigned char c = (unsigned char) line[i];

			if (c < 0x20 || c == 0x7f)
			{
				if (c == '\r')
					sms_fmt_error(err, errlen, "line %d ends with CR: lines must end with LF alone", lineno);
				else
					sms_fmt_error(err, errlen, "line %d contains control character 0x%02X (values must encode it as %%%02X)",
							lineno, c, c);
				goto fail;
			}
		}
		if (ll == 0 || line[0] == ';')
			continue;

		if (line[0] == '[')
		{
			if (ll < 2 || line[ll - 1] != ']' || !valid_section_name(line + 1, ll - 2))
			{
				sms_fmt_error(err, errlen, "line %d: malformed section header: expected [name], name 1 to %d of A-Z a-z 0-9 _ . - and space",
						lineno, SMS_FMT_MAX_SECTION_NAME);
				goto fail;
			}
			if (doc->nsections == 0 && (ll != 9 || memcmp(line, "[smsdist]", 9) != 0))
			{
				sms_fmt_error(err, errlen, "not an smsdist instruction file: the first section must be [smsdist]");
				goto fail;
			}
			if (doc->nsections == 1 && !header_checked)
			{
				if (!check_header(doc->sections[0], format, err, errlen))
					goto fail;
				header_checked = true;
			}
			if (add_section_len(doc, line + 1, ll - 2, lineno, err, errlen) == NULL)
				goto fail;
			continue;
		}

		if (doc->nsections == 0)
		{
			sms_fmt_error(err, errlen, "not an smsdist instruction file: it must begin with [smsdist]");
			goto fail;
		}
		eq = memchr(line, '=', ll);
		if (eq == NULL || !valid_key(line, (size_t) (eq - line)))
		{
			sms_fmt_error(err, errlen, "line %d: expected key=value (key 1 to %d of a-z 0-9 _), [section] or a ; comment",
					lineno, SMS_FMT_MAX_KEY);
			goto fail;
		}
		key = malloc((size_t) (eq - line) + 1);
		if (key == NULL)
		{
			sms_fmt_oom(err, errlen);
			goto fail;
		}
		memcpy(key, line, (size_t) (eq - line));
		key[eq - line] = '\0';
		value = decode_value(eq + 1, ll - (size_t) (eq - line) - 1, lineno, err, errlen);
		if (value == NULL)
		{
			free(key);
			goto fail;
		}
		if (!add_entry(doc->sections[doc->nsections - 1], key, value, lineno, err, errlen))
			goto fail;
	}

	if (doc->nsections == 0)
	{
		sms_fmt_error(err, errlen, "not an smsdist instruction file: it has no [smsdist] section");
		goto fail;
	}
	if (!header_checked && !check_header(doc->sections[0], format, err, errlen))
		goto fail;
	if (!check_duplicates(doc, err, errlen))
		goto fail;
	*out = doc;
	return true;

fail:
	sms_fmt_doc_free(doc);
	return false;
}
