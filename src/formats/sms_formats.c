/*-------------------------------------------------------------------------
 *
 * sms_formats.c
 *	  The instruction-file formats: the common INI-like layer, atomic file
 *	  writing and safe reading, and the seven typed formats on top.
 *
 * Terms are defined in sms_formats.h; docs/formats.md documents each
 * format for its users.  The rules that matter here:
 *
 *	- A writer must never produce a file that a reader refuses.  So every
 *	  typed field goes through the same check function on both sides, and
 *	  the generic serializer enforces the same limits (line, file size,
 *	  duplicates) that the parser does.
 *	- The same input gives the same bytes.  Writers sort whatever the
 *	  format says is sorted, so re-running a step after a crash writes
 *	  identical files, and golden files can pin the output.
 *	- Nothing read from a file is trusted: the client agent reads files
 *	  from a network share that anyone with write access to it could have
 *	  put there.  Every limit is enforced before memory is committed to it,
 *	  and duplicate detection sorts rather than searching, so a hostile
 *	  64 MB file costs O(n log n), not O(n^2).
 *
 * Plain C99 + POSIX (no PostgreSQL headers): this file is compiled into the
 * extension and into the client agent.  Declarations stay at the top of
 * their blocks because the extension is built with
 * -Wdeclaration-after-statement -Werror.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "sms_formats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#if defined(__GNUC__) || defined(__clang__)
#define SMS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SMS_PRINTF(f, a)
#endif

#define MAX_KEY				64
#define MAX_SECTION_NAME	128
#define MAX_FILE_NAME		200 /* leaves room for ".<name>.tmp.<pid>" */
#define MAX_NAME_CHARS		128 /* display names: package, program, advert */
#define MAX_COMMAND_LINE	4096
#define MAX_PATH_BYTES		1024
#define MAX_PLATFORM		32
#define MAX_COMPONENT		64
#define MAX_LOOKUP_NAME		256
#define MAX_RUN_MINUTES		10080	/* a week */
#define MAX_SEQUENCE		INT64_C(9999999999)
/* 0001-01-01T00:00:00 and 9999-12-31T23:59:59, in seconds from 1970 */
#define MIN_TIME			INT64_C(-62135596800)
#define MAX_TIME			INT64_C(253402300799)

static const char hexdigits[] = "0123456789ABCDEF";

/* ----------------------------------------------------------------
 * Errors
 * ----------------------------------------------------------------
 */
static void set_err(char *err, size_t errlen, const char *fmt,...) SMS_PRINTF(3, 4);

static void
set_err(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
oom(char *err, size_t errlen)
{
	set_err(err, errlen, "out of memory");
	return false;
}

/*
 * A value for an error message: percent-encoded like in a file (so a
 * message never contains a line break from hostile input) and cut to a
 * readable length at a character boundary.
 */
static const char *
quoted(const char *v, char *buf, size_t buflen)
{
	size_t		o = 0;
	const unsigned char *p;

	if (v == NULL)
		return "(null)";
	for (p = (const unsigned char *) v; *p; p++)
	{
		if (o + 7 >= buflen)
		{
			while (o > 0 && (buf[o - 1] & 0xC0) == 0x80)
				o--;
			if (o > 0 && (unsigned char) buf[o - 1] >= 0xC0)
				o--;
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (*p < 0x20 || *p == 0x7f || *p == '%')
		{
			buf[o++] = '%';
			buf[o++] = hexdigits[*p >> 4];
			buf[o++] = hexdigits[*p & 0xF];
		}
		else
			buf[o++] = (char) *p;
	}
	buf[o] = '\0';
	return buf;
}

/* ----------------------------------------------------------------
 * Character-level checks
 * ----------------------------------------------------------------
 */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool
sms_fmt_valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;

	while (p < end)
	{
		unsigned char c = *p;
		int			n;
		uint32_t	cp;
		int			i;

		if (c < 0x80)
		{
			p++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
		{
			n = 1;
			cp = c & 0x1F;
		}
		else if (c >= 0xE0 && c <= 0xEF)
		{
			n = 2;
			cp = c & 0x0F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			n = 3;
			cp = c & 0x07;
		}
		else
			return false;
		if (end - p <= n)
			return false;
		for (i = 1; i <= n; i++)
		{
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += n + 1;
	}
	return true;
}

/*
 * Control characters in a valid UTF-8 string: C0 and DEL, and also the C1
 * controls (U+0080-U+009F) and U+2028/U+2029, which some readers treat as
 * line breaks -- the same rule as the SQL domains (validate.c).
 */
static bool
has_control_char(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *) s; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			return true;
		if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
			return true;
		if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
			return true;
	}
	return false;
}

static size_t
utf8_chars(const char *s)
{
	size_t		n = 0;

	for (; *s; s++)
		if ((*s & 0xC0) != 0x80)
			n++;
	return n;
}

static bool
is_upper_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
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

bool
sms_fmt_valid_site_code(const char *s)
{
	return s != NULL && strlen(s) == 3 &&
		is_upper_alnum(s[0]) && is_upper_alnum(s[1]) && is_upper_alnum(s[2]);
}

bool
sms_fmt_valid_sms_id(const char *s)
{
	int			i;

	if (s == NULL || strlen(s) != 8)
		return false;
	for (i = 0; i < 8; i++)
		if (!(i < 3 ? is_upper_alnum(s[i]) : is_upper_hex(s[i])))
			return false;
	return true;
}

static bool
valid_key(const char *s, size_t len)
{
	size_t		i;

	if (len == 0 || len > MAX_KEY)
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

	if (len == 0 || len > MAX_SECTION_NAME)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			  (s[i] >= '0' && s[i] <= '9') ||
			  s[i] == '_' || s[i] == ' ' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/*
 * A file name in a box directory: one component that cannot climb out
 * (no '/', no ".."), is not hidden (the leading dot is how our temporary
 * files are told apart) and cannot break a log line.
 */
bool
sms_fmt_valid_file_name(const char *name)
{
	const unsigned char *p;

	if (name == NULL || name[0] == '\0' || name[0] == '.' ||
		strlen(name) > MAX_FILE_NAME || strchr(name, '/') != NULL ||
		strstr(name, "..") != NULL)
		return false;
	for (p = (const unsigned char *) name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* ----------------------------------------------------------------
 * Times
 * ----------------------------------------------------------------
 */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era;
	int64_t		doe;
	int64_t		yoe;
	int64_t		doy;
	int64_t		mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

bool
sms_fmt_format_time(int64_t secs, bool utc, char *buf)
{
	int64_t		days;
	int64_t		rem;
	int64_t		y;
	int			m;
	int			d;

	if (secs < MIN_TIME || secs > MAX_TIME)
		return false;
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0)
	{
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, SMS_FMT_TIME_BUFLEN, "%04d-%02d-%02dT%02d:%02d:%02d%s",
			 (int) y, m, d, (int) (rem / 3600), (int) (rem / 60 % 60),
			 (int) (rem % 60), utc ? "Z" : "");
	return true;
}

static bool
digits(const char *s, int n, int *out)
{
	int			v = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool
sms_fmt_parse_time(const char *s, bool utc, int64_t *secs)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				mo,
				d,
				h,
				mi,
				se,
				dim;

	if (strlen(s) != (utc ? 20u : 19u) || (utc && s[19] != 'Z'))
		return false;
	if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
		!digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return false;
	if (y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59)
		return false;
	dim = mdays[mo - 1];
	if (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		dim = 29;
	if (d < 1 || d > dim)
		return false;
	*secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return true;
}

/* Non-negative decimal without sign or leading zeros, no overflow. */
static bool
parse_uint(const char *s, int64_t *out)
{
	int64_t		v = 0;
	const char *p;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return false;
	for (p = s; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return false;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return true;
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
			oom(err, errlen);
			return NULL;
		}
		doc->sections = n;
		doc->capacity = ncap;
	}
	sec = calloc(1, sizeof(*sec));
	if (sec == NULL || (sec->name = malloc(len + 1)) == NULL)
	{
		free(sec);
		oom(err, errlen);
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
			return oom(err, errlen);
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
		set_err(err, errlen, "invalid section name \"%s\": a section name is 1 to %d of A-Z a-z 0-9 _ . - and space",
				quoted(name, q, sizeof(q)), MAX_SECTION_NAME);
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
		set_err(err, errlen, "[%s] invalid key \"%s\": a key is 1 to %d of a-z 0-9 _",
				sec->name, quoted(key, q, sizeof(q)), MAX_KEY);
		return false;
	}
	if (value == NULL || !sms_fmt_valid_utf8(value, strlen(value)))
	{
		set_err(err, errlen, "[%s] %s: the value is %s", sec->name, key,
				value == NULL ? "missing" : "not valid UTF-8");
		return false;
	}
	k = strdup(key);
	v = strdup(value);
	if (k == NULL || v == NULL)
	{
		free(k);
		free(v);
		return oom(err, errlen);
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
		set_err(err, errlen, "[%s] %s: time out of range (years 0001 to 9999)",
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
		set_err(err, errlen, "invalid format name");
		return NULL;
	}
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL)
	{
		oom(err, errlen);
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

static const SmsFmtEntry *
find_entry(const SmsFmtSection *sec, const char *key)
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
	const SmsFmtEntry *e = find_entry(sec, key);

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
		return oom(err, errlen);
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
				set_err(err, errlen, "line %d: duplicate section [%s] (first on line %d)",
						l2, secs[i]->name, l1);
			else
				set_err(err, errlen, "duplicate section [%s]", secs[i]->name);
			ok = false;
		}

	if (ok && maxent > 1 && (ents = malloc(maxent * sizeof(*ents))) == NULL)
		ok = oom(err, errlen);
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
					set_err(err, errlen, "line %d: duplicate key \"%s\" in section [%s]",
							l, ents[j]->key, s->name);
				else
					set_err(err, errlen, "duplicate key \"%s\" in section [%s]",
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
static bool
needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '%';
}

static size_t
encoded_len(const char *v)
{
	size_t		n = 0;
	const unsigned char *p;

	for (p = (const unsigned char *) v; *p; p++)
		n += needs_escape(*p) ? 3 : 1;
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
		set_err(err, errlen, "a document must begin with [smsdist] holding format and version");
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
				set_err(err, errlen, "[%s] %s: the line would be %zu bytes, more than the %d a reader accepts",
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
		set_err(err, errlen, "the file would be larger than the %d bytes a reader accepts",
				SMS_FMT_MAX_FILE);
		return false;
	}

	buf = malloc(total + 1);
	if (buf == NULL)
		return oom(err, errlen);
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
				if (needs_escape(*p))
				{
					*o++ = '%';
					*o++ = hexdigits[*p >> 4];
					*o++ = hexdigits[*p & 0xF];
				}
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
		set_err(err, errlen, "the [smsdist] header has no %s key",
				f == NULL ? "format" : "version");
		return false;
	}
	if (format != NULL && strcmp(f, format) != 0)
	{
		set_err(err, errlen, "this is a \"%s\" file, not a \"%s\" file",
				quoted(f, q, sizeof(q)), format);
		return false;
	}
	/* version: <major>[.<minor>], decimal */
	dot = strchr(v, '.');
	if (dot != NULL)
	{
		int64_t		minor;

		if ((size_t) (dot - v) >= sizeof(majbuf) || !parse_uint(dot + 1, &minor))
			major = 0;
		else
		{
			memcpy(majbuf, v, (size_t) (dot - v));
			majbuf[dot - v] = '\0';
			if (!parse_uint(majbuf, &major))
				major = 0;
		}
	}
	else if (!parse_uint(v, &major))
		major = 0;
	if (major == 0)
	{
		set_err(err, errlen, "malformed version \"%s\" in the [smsdist] header",
				quoted(v, q, sizeof(q)));
		return false;
	}
	if (major != SMS_FMT_VERSION)
	{
		set_err(err, errlen, "the %s file is in version %s of its format; this reader understands version %d only (a newer smsdist wrote it)",
				quoted(f, q2, sizeof(q2)), quoted(v, q, sizeof(q)), SMS_FMT_VERSION);
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
		oom(err, errlen);
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
				set_err(err, errlen, "line %d: malformed escape: %% must be followed by two hexadecimal digits",
						line);
				free(v);
				return NULL;
			}
			if (hi == 0 && lo == 0)
			{
				set_err(err, errlen, "line %d: a value may not contain NUL (%%00)", line);
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
		set_err(err, errlen, "line %d: the value is not valid UTF-8", line);
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
		set_err(err, errlen, "the file is larger than %d bytes", SMS_FMT_MAX_FILE);
		return false;
	}
	if (len == 0)
	{
		set_err(err, errlen, "the file is empty");
		return false;
	}
	if (buf[len - 1] != '\n')
	{
		/* writers always end with LF: anything else was cut short */
		set_err(err, errlen, "the file does not end with a line feed (truncated?)");
		return false;
	}
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL)
		return oom(err, errlen);

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
			set_err(err, errlen, "line %d is longer than %d bytes", lineno, SMS_FMT_MAX_LINE);
			goto fail;
		}
		for (i = 0; i < ll; i++)
		{
			unsigned char c = (unsigned char) line[i];

			if (c < 0x20 || c == 0x7f)
			{
				if (c == '\r')
					set_err(err, errlen, "line %d ends with CR: lines must end with LF alone", lineno);
				else
					set_err(err, errlen, "line %d contains control character 0x%02X (values must encode it as %%%02X)",
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
				set_err(err, errlen, "line %d: malformed section header: expected [name], name 1 to %d of A-Z a-z 0-9 _ . - and space",
						lineno, MAX_SECTION_NAME);
				goto fail;
			}
			if (doc->nsections == 0 && (ll != 9 || memcmp(line, "[smsdist]", 9) != 0))
			{
				set_err(err, errlen, "not an smsdist instruction file: the first section must be [smsdist]");
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
			set_err(err, errlen, "not an smsdist instruction file: it must begin with [smsdist]");
			goto fail;
		}
		eq = memchr(line, '=', ll);
		if (eq == NULL || !valid_key(line, (size_t) (eq - line)))
		{
			set_err(err, errlen, "line %d: expected key=value (key 1 to %d of a-z 0-9 _), [section] or a ; comment",
					lineno, MAX_KEY);
			goto fail;
		}
		key = malloc((size_t) (eq - line) + 1);
		if (key == NULL)
		{
			oom(err, errlen);
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
		set_err(err, errlen, "not an smsdist instruction file: it has no [smsdist] section");
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

/* ----------------------------------------------------------------
 * Files
 * ----------------------------------------------------------------
 */
static bool
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			if (n == 0)
				errno = EIO;
			return false;
		}
		buf += n;
		len -= (size_t) n;
	}
	return true;
}

static bool
check_file_name(const char *name, char *err, size_t errlen)
{
	char		q[100];

	if (sms_fmt_valid_file_name(name))
		return true;
	set_err(err, errlen, "invalid file name \"%s\": it must be 1 to %d bytes without '/', \"..\" or control characters, and not start with '.'",
			quoted(name, q, sizeof(q)), MAX_FILE_NAME);
	return false;
}

bool
sms_fmt_write_file(const char *dir, const char *name, const char *buf,
				   size_t len, char *err, size_t errlen)
{
	char		tmp[MAX_FILE_NAME + 64];
	int			dfd;
	int			fd = -1;
	int			save;
	const char *what;

	if (!check_file_name(name, err, errlen))
		return false;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
	{
		set_err(err, errlen, "could not open directory \"%s\": %s", dir, strerror(errno));
		return false;
	}
	snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld", name, (long) getpid());

	/* a leftover of a crashed process that had our pid is ours to replace */
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
	{
		what = "remove the old temporary file";
		goto fail;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		what = "create";
		goto fail;
	}
	/* the backend's umask is 077, and clients must be able to read it */
	if (fchmod(fd, 0644) < 0)
	{
		what = "chmod";
		goto fail_unlink;
	}
	if (!write_all(fd, buf, len))
	{
		what = "write";
		goto fail_unlink;
	}
	if (fsync(fd) < 0)
	{
		what = "fsync";
		goto fail_unlink;
	}
	if (close(fd) < 0)
	{
		fd = -1;
		what = "close";
		goto fail_unlink;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, name) < 0)
	{
		what = "rename";
		goto fail_unlink;
	}
	/*
	 * Make the rename itself durable.  Some file systems cannot fsync a
	 * directory (EINVAL, EBADF); like PostgreSQL's fsync_fname, accept that.
	 */
	if (fsync(dfd) < 0 && errno != EINVAL && errno != EBADF)
	{
		save = errno;
		close(dfd);
		set_err(err, errlen, "could not fsync directory \"%s\": %s", dir, strerror(save));
		return false;
	}
	close(dfd);
	return true;

fail_unlink:
	save = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
	close(dfd);
	if (strcmp(what, "rename") == 0)
		set_err(err, errlen, "could not rename \"%s/%s\" to \"%s\": %s", dir, tmp, name,
				strerror(save));
	else
		set_err(err, errlen, "could not %s \"%s/%s\": %s", what, dir, tmp, strerror(save));
	return false;

fail:
	save = errno;
	close(dfd);
	set_err(err, errlen, "could not %s \"%s/%s\": %s", what, dir, tmp, strerror(save));
	return false;
}

bool
sms_fmt_read_file(const char *dir, const char *name, char **out, size_t *len,
				  char *err, size_t errlen)
{
	int			dfd;
	int			fd;
	struct stat st;
	struct stat st2;
	char	   *buf = NULL;
	size_t		cap;
	size_t		n = 0;
	int			save;

	*out = NULL;
	*len = 0;
	if (!check_file_name(name, err, errlen))
		return false;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
	{
		set_err(err, errlen, "could not open directory \"%s\": %s", dir, strerror(errno));
		return false;
	}
	/* look before opening, so that a device or FIFO is never opened */
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
	{
		save = errno;
		close(dfd);
		set_err(err, errlen, "could not stat \"%s/%s\": %s", dir, name, strerror(save));
		return false;
	}
	if (!S_ISREG(st.st_mode))
	{
		close(dfd);
		set_err(err, errlen, "\"%s/%s\" is %s, not a regular file", dir, name,
				S_ISLNK(st.st_mode) ? "a symbolic link" :
				S_ISDIR(st.st_mode) ? "a directory" : "a special file");
		return false;
	}
	/* O_NOFOLLOW and the fstat below close the window after fstatat */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	save = errno;
	close(dfd);
	if (fd < 0)
	{
		set_err(err, errlen, "could not open \"%s/%s\": %s", dir, name,
				save == ELOOP ? "it is a symbolic link" : strerror(save));
		return false;
	}
	if (fstat(fd, &st2) < 0 || !S_ISREG(st2.st_mode) ||
		st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
	{
		close(fd);
		set_err(err, errlen, "\"%s/%s\" was replaced while it was opened", dir, name);
		return false;
	}
	if (st2.st_size > SMS_FMT_MAX_FILE)
	{
		close(fd);
		set_err(err, errlen, "\"%s/%s\" is larger than %d bytes", dir, name, SMS_FMT_MAX_FILE);
		return false;
	}
	cap = (size_t) st2.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL)
	{
		close(fd);
		return oom(err, errlen);
	}
	for (;;)
	{
		ssize_t		r;

		if (n + 1 >= cap)
		{
			/* it grew while we read: allow up to the limit, plus one to tell */
			size_t		ncap = cap * 2 > (size_t) SMS_FMT_MAX_FILE + 2 ?
				(size_t) SMS_FMT_MAX_FILE + 2 : cap * 2;
			char	   *nb;

			if (n > SMS_FMT_MAX_FILE)
			{
				free(buf);
				close(fd);
				set_err(err, errlen, "\"%s/%s\" is larger than %d bytes", dir, name, SMS_FMT_MAX_FILE);
				return false;
			}
			nb = realloc(buf, ncap);
			if (nb == NULL)
			{
				free(buf);
				close(fd);
				return oom(err, errlen);
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			save = errno;
			free(buf);
			close(fd);
			set_err(err, errlen, "could not read \"%s/%s\": %s", dir, name, strerror(save));
			return false;
		}
		if (r == 0)
			break;
		n += (size_t) r;
	}
	close(fd);
	if (n > SMS_FMT_MAX_FILE)
	{
		free(buf);
		set_err(err, errlen, "\"%s/%s\" is larger than %d bytes", dir, name, SMS_FMT_MAX_FILE);
		return false;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return true;
}

/* ----------------------------------------------------------------
 * File names
 * ----------------------------------------------------------------
 */
bool
sms_fmt_file_name(SmsFmtFileKind kind, const char *id, int64_t seq,
				  char *buf, size_t buflen, char *err, size_t errlen)
{
	bool		site = (kind == SMS_FILE_LOOKUP_SYSTEM || kind == SMS_FILE_LOOKUP_USER ||
						kind == SMS_FILE_LOOKUP_USERGROUP || kind == SMS_FILE_HEARTBEAT);
	const char *suffix;
	char		q[100];
	int			n;

	switch (kind)
	{
		case SMS_FILE_PCM:
			suffix = "";
			break;
		case SMS_FILE_OFFER:
			suffix = ".OFR";
			break;
		case SMS_FILE_INSTALL:
			suffix = ".INS";
			break;
		case SMS_FILE_LOOKUP_SYSTEM:
			suffix = "SYSTM.LKP";
			break;
		case SMS_FILE_LOOKUP_USER:
			suffix = "USR.LKP";
			break;
		case SMS_FILE_LOOKUP_USERGROUP:
			suffix = "USRGRP.LKP";
			break;
		case SMS_FILE_PACKAGE:
			suffix = ".PKG";
			break;
		case SMS_FILE_ICON:
			suffix = ".ICO";
			break;
		case SMS_FILE_NAL:
			suffix = ".NAL";
			break;
		case SMS_FILE_STATUS:
			suffix = ".SMS";
			break;
		case SMS_FILE_HEARTBEAT:
			suffix = ".HBT";
			break;
		case SMS_FILE_INVENTORY:
			suffix = ".INV";
			break;
		default:
			set_err(err, errlen, "unknown file kind %d", (int) kind);
			return false;
	}
	if (site ? !sms_fmt_valid_site_code(id) : !sms_fmt_valid_sms_id(id))
	{
		set_err(err, errlen, "invalid %s \"%s\" for a file name", site ? "site code" : "SMS ID",
				quoted(id, q, sizeof(q)));
		return false;
	}
	if (kind == SMS_FILE_STATUS)
	{
		/* zero-padded, so that names sort in sequence order */
		if (seq < 0 || seq > MAX_SEQUENCE)
		{
			set_err(err, errlen, "status sequence %" PRId64 " out of range (0 to 9999999999)", seq);
			return false;
		}
		n = snprintf(buf, buflen, "%s.%010" PRId64 "%s", id, seq, suffix);
	}
	else
		n = snprintf(buf, buflen, "%s%s", id, suffix);
	if (n < 0 || (size_t) n >= buflen)
	{
		set_err(err, errlen, "file name buffer too small");
		return false;
	}
	return true;
}

bool
sms_fmt_parse_status_name(const char *name, char *machine, int64_t *seq)
{
	int64_t		v = 0;
	int			i;

	if (strlen(name) != 23 || name[8] != '.' || strcmp(name + 19, ".SMS") != 0)
		return false;
	memcpy(machine, name, 8);
	machine[8] = '\0';
	if (!sms_fmt_valid_sms_id(machine))
		return false;
	for (i = 9; i < 19; i++)
	{
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (name[i] - '0');
	}
	*seq = v;
	return true;
}

bool
sms_fmt_parse_inventory_name(const char *name, char *machine)
{
	if (strlen(name) != 12 || strcmp(name + 8, ".INV") != 0)
		return false;
	memcpy(machine, name, 8);
	machine[8] = '\0';
	return sms_fmt_valid_sms_id(machine);
}

/* ----------------------------------------------------------------
 * Field checks, shared by writers and readers.  Each returns NULL when
 * the value is fine, else what a valid value looks like.
 * ----------------------------------------------------------------
 */
typedef const char *(*SmsCheck) (const char *v);

static const char *
chk_sms_id(const char *v)
{
	return sms_fmt_valid_sms_id(v) ? NULL :
		"not an SMS ID (a site code and five upper-case hexadecimal digits, e.g. CEN0001A)";
}

static const char *
chk_site(const char *v)
{
	return sms_fmt_valid_site_code(v) ? NULL :
		"not a site code (three of A-Z 0-9, e.g. CEN)";
}

static const char *
chk_name(const char *v)
{
	if (v[0] == '\0' || utf8_chars(v) > MAX_NAME_CHARS || has_control_char(v))
		return "a name is 1 to 128 characters without control characters";
	return NULL;
}

static const char *
chk_command_line(const char *v)
{
	if (v[0] == '\0' || strlen(v) > MAX_COMMAND_LINE || has_control_char(v))
		return "a command line is 1 to 4096 bytes without control characters";
	return NULL;
}

static const char *
chk_platform(const char *v)
{
	size_t		i,
				l = strlen(v);

	for (i = 0; i < l; i++)
		if (!is_upper_alnum(v[i]) && v[i] != '_')
			break;
	if (l == 0 || l > MAX_PLATFORM || i < l)
		return "a platform is 1 to 32 of A-Z 0-9 _ (e.g. WINNT_X86)";
	return NULL;
}

/* Absolute and canonical: the server-path rule of validate.c. */
static const char *
chk_path(const char *v)
{
	size_t		len = strlen(v);
	const char *comp;

	if (len == 0 || v[0] != '/')
		return "not an absolute path";
	if (len > MAX_PATH_BYTES)
		return "a path is at most 1024 bytes";
	if (has_control_char(v))
		return "a path may not contain control characters";
	if (strchr(v, ';') != NULL)
		return "a path may not contain ';' (the list separator)";
	if (len > 1 && v[len - 1] == '/')
		return "a path may not end with /";
	for (comp = v + 1; len > 1;)
	{
		const char *slash = strchr(comp, '/');
		size_t		cl = slash ? (size_t) (slash - comp) : strlen(comp);

		if (cl == 0)
			return "a path may not contain //";
		if ((cl == 1 && comp[0] == '.') || (cl == 2 && comp[0] == '.' && comp[1] == '.'))
			return "a path may not contain . or .. components";
		if (slash == NULL)
			break;
		comp = slash + 1;
	}
	return NULL;
}

static const char *
chk_sha256(const char *v)
{
	size_t		i;

	for (i = 0; v[i]; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			break;
	if (i != 64 || v[i] != '\0')
		return "a SHA-256 is 64 lower-case hexadecimal digits";
	return NULL;
}

static const char *
chk_server(const char *v)
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

static const char *
chk_component(const char *v)
{
	size_t		i,
				l = strlen(v);

	for (i = 0; i < l; i++)
		if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
			  (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' ||
			  v[i] == '-' || v[i] == ' '))
			break;
	if (l == 0 || l > MAX_COMPONENT || i < l)
		return "a component is 1 to 64 of A-Z a-z 0-9 _ . - and space";
	return NULL;
}

/*
 * An inventory: a JSON object of printable ASCII, at most
 * SMS_STATUS_INVENTORY_MAX bytes; the site checks what it says.
 */
static const char *
chk_inventory(const char *v)
{
	size_t		l = strlen(v);

	if (l < 2 || l > SMS_STATUS_INVENTORY_MAX || v[0] != '{' || v[l - 1] != '}')
		return "an inventory is a JSON object of at most 262144 bytes";
	for (size_t i = 0; i < l; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return "an inventory holds printable ASCII only";
	return NULL;
}

/* user and group names can be anything the directory allows, DOMAIN\name */
static const char *
chk_lookup_name(const char *v)
{
	size_t		l = strlen(v);

	if (l == 0 || l > MAX_LOOKUP_NAME || has_control_char(v) ||
		v[0] == ' ' || v[l - 1] == ' ')
		return "a lookup name is 1 to 256 bytes without control characters or leading or trailing spaces";
	return NULL;
}

/* ----------------------------------------------------------------
 * Reading typed fields from a section
 * ----------------------------------------------------------------
 */
static bool
key_problem(const SmsFmtSection *s, const char *key, const char *problem,
			const char *value, char *err, size_t errlen)
{
	const SmsFmtEntry *e = find_entry(s, key);
	char		q[100];

	if (e == NULL)
		set_err(err, errlen, "line %d: [%s] has no %s key", s->line, s->name, key);
	else if (value != NULL)
		set_err(err, errlen, "line %d: [%s] %s: %s (\"%s\")", e->line, s->name, key,
				problem, quoted(value, q, sizeof(q)));
	else
		set_err(err, errlen, "line %d: [%s] %s: %s", e->line, s->name, key, problem);
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
		return required ? key_problem(s, key, NULL, NULL, err, errlen) : true;
	if (check != NULL && (problem = check(v)) != NULL)
		return key_problem(s, key, problem, v, err, errlen);
	if ((*out = strdup(v)) == NULL)
		return oom(err, errlen);
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
		return required ? key_problem(s, key, NULL, NULL, err, errlen) : true;
	if (!parse_uint(v, out) || *out < min || *out > max)
	{
		*out = 0;
		snprintf(problem, sizeof(problem), "not an integer from %" PRId64 " to %" PRId64,
				 min, max);
		return key_problem(s, key, problem, v, err, errlen);
	}
	return true;
}

static bool
rd_int32(const SmsFmtSection *s, const char *key, bool required, int64_t min,
		 int64_t max, int32_t *out, char *err, size_t errlen)
{
	int64_t		v;
	bool		ok = rd_int(s, key, required, min, max, &v, err, errlen);

	*out = (int32_t) v;
	return ok;
}

static bool
rd_bool(const SmsFmtSection *s, const char *key, bool *out, char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);

	if (v == NULL)
		return key_problem(s, key, NULL, NULL, err, errlen);
	if (strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0)
		*out = false;
	else
		return key_problem(s, key, "must be true or false", v, err, errlen);
	return true;
}

/*
 * A program's run mode (SMS's "Run with administrative rights" / "Run with
 * user's rights"): run_with=user_rights, or absent (administrative rights,
 * the agent's own account) -- so files written before the key existed keep
 * their meaning.
 */
static bool
rd_run_with(const SmsFmtSection *s, bool *user_rights, char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, "run_with");

	*user_rights = false;
	if (v == NULL || strcmp(v, "administrative_rights") == 0)
		return true;
	if (strcmp(v, "user_rights") == 0)
	{
		*user_rights = true;
		return true;
	}
	return key_problem(s, "run_with", "must be administrative_rights or user_rights", v, err, errlen);
}

/* A UTC time; absent and optional: SMS_TIME_NONE. */
static bool
rd_utc(const SmsFmtSection *s, const char *key, bool required, int64_t *out,
	   char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);

	*out = SMS_TIME_NONE;
	if (v == NULL)
		return required ? key_problem(s, key, NULL, NULL, err, errlen) : true;
	if (!sms_fmt_parse_time(v, true, out))
	{
		*out = SMS_TIME_NONE;
		return key_problem(s, key, "not a UTC time YYYY-MM-DDTHH:MM:SSZ", v, err, errlen);
	}
	return true;
}

/* A time that may be local: key plus key_utc; the form must match. */
static bool
rd_when(const SmsFmtSection *s, const char *key, bool required, SmsWhen *out,
		char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);
	char		ukey[MAX_KEY + 8];

	out->secs = SMS_TIME_NONE;
	out->utc = true;
	if (v == NULL)
		return required ? key_problem(s, key, NULL, NULL, err, errlen) : true;
	snprintf(ukey, sizeof(ukey), "%s_utc", key);
	if (!rd_bool(s, ukey, &out->utc, err, errlen))
		return false;
	if (!sms_fmt_parse_time(v, out->utc, &out->secs))
	{
		out->secs = SMS_TIME_NONE;
		return key_problem(s, key, out->utc ?
						   "not a UTC time YYYY-MM-DDTHH:MM:SSZ (the _utc key is true)" :
						   "not a local time YYYY-MM-DDTHH:MM:SS (the _utc key is false)",
						   v, err, errlen);
	}
	return true;
}

static void
free_list(char **items, size_t n)
{
	size_t		i;

	for (i = 0; items != NULL && i < n; i++)
		free(items[i]);
	free(items);
}

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

/*
 * A list: items separated by sep, none empty, none twice.  An empty value
 * is an empty list.  sorted: the reader sorts the items (the writer wrote
 * them sorted anyway); otherwise their order means something.
 */
static bool
rd_list(const SmsFmtSection *s, const char *key, char sep, size_t min_items,
		SmsCheck check, bool sorted, char ***out, size_t *nout,
		char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, key);
	const char *p;
	size_t		n = 0;
	size_t		i;
	char	  **items;
	const char *dup;
	bool		nomem;

	*out = NULL;
	*nout = 0;
	if (v == NULL)
		return key_problem(s, key, NULL, NULL, err, errlen);
	if (v[0] != '\0')
		for (n = 1, p = v; *p; p++)
			n += *p == sep;
	if (n < min_items)
		return key_problem(s, key, "the list may not be empty", v, err, errlen);
	if (n == 0)
		return true;
	items = calloc(n, sizeof(*items));
	if (items == NULL)
		return oom(err, errlen);
	for (i = 0, p = v; i < n; i++)
	{
		const char *end = strchr(p, sep);
		size_t		l = end ? (size_t) (end - p) : strlen(p);
		const char *problem;

		items[i] = malloc(l + 1);
		if (items[i] == NULL)
		{
			free_list(items, n);
			return oom(err, errlen);
		}
		memcpy(items[i], p, l);
		items[i][l] = '\0';
		problem = l == 0 ? "the list has an empty item" : check(items[i]);
		if (problem != NULL)
		{
			char		q[100];
			char		msg[300];

			snprintf(msg, sizeof(msg), "%s (item \"%s\")", problem,
					 quoted(items[i], q, sizeof(q)));
			free_list(items, n);
			return key_problem(s, key, msg, NULL, err, errlen);
		}
		p = end ? end + 1 : p + l;
	}
	if ((dup = list_duplicate(items, n, &nomem)) != NULL || nomem)
	{
		char		q[100];
		char		msg[200];

		if (nomem)
		{
			free_list(items, n);
			return oom(err, errlen);
		}
		snprintf(msg, sizeof(msg), "\"%s\" appears twice", quoted(dup, q, sizeof(q)));
		free_list(items, n);
		return key_problem(s, key, msg, NULL, err, errlen);
	}
	if (sorted)
		qsort(items, n, sizeof(*items), cmp_str_ptr);
	*out = items;
	*nout = n;
	return true;
}

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

static size_t
count_sections(const SmsFmtDoc *doc, const char *type)
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

	if (!parse_uint(arg, &n) || n < 1 || n > 999999999)
	{
		set_err(err, errlen, "line %d: section [%s]: expected a number from 1 after the section type",
				s->line, s->name);
		return false;
	}
	return true;
}

/* A bare "[job]" or "[program]" is a mistake, not an unknown section. */
static bool
check_no_bare(const SmsFmtDoc *doc, const char *type, char *err, size_t errlen)
{
	size_t		i;

	for (i = 1; i < doc->nsections; i++)
		if (strcmp(doc->sections[i]->name, type) == 0)
		{
			set_err(err, errlen, "line %d: section [%s] needs an argument after the type",
					doc->sections[i]->line, type);
			return false;
		}
	return true;
}

/* ----------------------------------------------------------------
 * Writing typed fields to a section
 * ----------------------------------------------------------------
 */
static bool
wr_problem(const SmsFmtSection *s, const char *key, const char *problem,
		   const char *value, char *err, size_t errlen)
{
	char		q[100];

	if (value == NULL)
		set_err(err, errlen, "[%s] %s: %s", s->name, key, problem);
	else
		set_err(err, errlen, "[%s] %s: %s (\"%s\")", s->name, key, problem,
				quoted(value, q, sizeof(q)));
	return false;
}

static bool
wr_str(SmsFmtSection *s, const char *key, const char *v, bool required,
	   SmsCheck check, char *err, size_t errlen)
{
	const char *problem;

	if (v == NULL)
		return required ? wr_problem(s, key, "missing", NULL, err, errlen) : true;
	if (!sms_fmt_valid_utf8(v, strlen(v)))
		return wr_problem(s, key, "not valid UTF-8", NULL, err, errlen);
	if (check != NULL && (problem = check(v)) != NULL)
		return wr_problem(s, key, problem, v, err, errlen);
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
		return wr_problem(s, key, problem, NULL, err, errlen);
	}
	return sms_fmt_set_int(s, key, v, err, errlen);
}

static bool
wr_utc(SmsFmtSection *s, const char *key, int64_t secs, bool required,
	   char *err, size_t errlen)
{
	if (secs == SMS_TIME_NONE)
		return required ? wr_problem(s, key, "missing", NULL, err, errlen) : true;
	return sms_fmt_set_time(s, key, secs, true, err, errlen);
}

static bool
wr_when(SmsFmtSection *s, const char *key, SmsWhen w, bool required,
		char *err, size_t errlen)
{
	char		ukey[MAX_KEY + 8];

	if (w.secs == SMS_TIME_NONE)
		return required ? wr_problem(s, key, "missing", NULL, err, errlen) : true;
	snprintf(ukey, sizeof(ukey), "%s_utc", key);
	return sms_fmt_set_time(s, key, w.secs, w.utc, err, errlen) &&
		sms_fmt_set_bool(s, ukey, w.utc, err, errlen);
}

static bool
wr_list(SmsFmtSection *s, const char *key, char sep, char *const *items,
		size_t n, size_t min_items, SmsCheck check, bool sort,
		char *err, size_t errlen)
{
	size_t		total = 1;
	size_t		i;
	char	  **order;
	char	   *v;
	char	   *o;
	const char *dup;
	bool		nomem;
	bool		ok;

	if (n < min_items)
		return wr_problem(s, key, "the list may not be empty", NULL, err, errlen);
	for (i = 0; i < n; i++)
	{
		const char *problem;

		if (items[i] == NULL)
			return wr_problem(s, key, "an item is missing (NULL)", NULL, err, errlen);
		if (!sms_fmt_valid_utf8(items[i], strlen(items[i])))
			return wr_problem(s, key, "an item is not valid UTF-8", NULL, err, errlen);
		/* the checks refuse sep, but say so plainly if one ever does not */
		problem = items[i][0] == '\0' ? "an item is empty" :
			strchr(items[i], sep) ? "an item contains the list separator" : check(items[i]);
		if (problem != NULL)
			return wr_problem(s, key, problem, items[i], err, errlen);
		total += strlen(items[i]) + 1;
	}
	dup = list_duplicate(items, n, &nomem);
	if (nomem)
		return oom(err, errlen);
	if (dup != NULL)
		return wr_problem(s, key, "an item appears twice", dup, err, errlen);

	order = malloc((n ? n : 1) * sizeof(*order));
	v = malloc(total);
	if (order == NULL || v == NULL)
	{
		free(order);
		free(v);
		return oom(err, errlen);
	}
	if (n > 0)
		memcpy(order, items, n * sizeof(*order));
	if (sort)
		qsort(order, n, sizeof(*order), cmp_str_ptr);
	o = v;
	for (i = 0; i < n; i++)
	{
		size_t		l = strlen(order[i]);

		if (i > 0)
			*o++ = sep;
		memcpy(o, order[i], l);
		o += l;
	}
	*o = '\0';
	ok = sms_fmt_set(s, key, v, err, errlen);
	free(order);
	free(v);
	return ok;
}

/* A section "<type> <arg>" for a writer. */
static SmsFmtSection *
wr_section(SmsFmtDoc *doc, const char *type, const char *arg, char *err, size_t errlen)
{
	char		name[MAX_SECTION_NAME + 1];

	snprintf(name, sizeof(name), "%s %s", type, arg);
	return sms_fmt_add_section(doc, name, err, errlen);
}

static SmsFmtSection *
wr_numbered(SmsFmtDoc *doc, const char *type, size_t n, char *err, size_t errlen)
{
	char		num[24];

	snprintf(num, sizeof(num), "%zu", n);
	return wr_section(doc, type, num, err, errlen);
}

static bool
finish(SmsFmtDoc *doc, bool ok, char **out, size_t *len, char *err, size_t errlen)
{
	if (ok)
		ok = sms_fmt_serialize(doc, out, len, err, errlen);
	sms_fmt_doc_free(doc);
	return ok;
}

/* Sort an array of pointers to the elements of an array. */
static const void **
sorted_ptrs(const void *base, size_t n, size_t size,
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
 * 1. PCM instruction file
 * ----------------------------------------------------------------
 */
static int
cmp_pcm_job(const void *a, const void *b)
{
	return strcmp((*(const SmsPcmJob *const *) a)->job_id,
				  (*(const SmsPcmJob *const *) b)->job_id);
}

static bool
pcm_write_job(SmsFmtDoc *doc, const SmsPcmJob *j, char *err, size_t errlen)
{
	SmsFmtSection *s = wr_section(doc, "job", j->job_id, err, errlen);

	return s != NULL &&
		wr_str(s, "package_id", j->package_id, true, chk_sms_id, err, errlen) &&
		wr_str(s, "package_name", j->package_name, true, chk_name, err, errlen) &&
		wr_int(s, "package_version", j->package_version, 1, INT32_MAX, err, errlen) &&
		wr_str(s, "program", j->program, true, chk_name, err, errlen) &&
		wr_str(s, "command_line", j->command_line, true, chk_command_line, err, errlen) &&
		wr_list(s, "platforms", ',', j->platforms, j->nplatforms, 0, chk_platform, false, err, errlen) &&
		wr_utc(s, "offer_after", j->offer_after, true, err, errlen) &&
		wr_utc(s, "mandatory_at", j->mandatory_at, false, err, errlen) &&
		wr_utc(s, "expires_at", j->expires_at, false, err, errlen) &&
		(j->max_run_minutes == 0 ||
		 wr_int(s, "max_run_minutes", j->max_run_minutes, 1, MAX_RUN_MINUTES, err, errlen)) &&
		(!j->user_rights || sms_fmt_set(s, "run_with", "user_rights", err, errlen)) &&
		wr_list(s, "locations", ';', j->locations, j->nlocations, 1, chk_path, false, err, errlen) &&
		wr_str(s, "package_sha256", j->package_sha256, true, chk_sha256, err, errlen);
}

bool
sms_pcm_to_text(const SmsPcmFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	const void **order = NULL;
	size_t		i;
	bool		ok;

	*out = NULL;
	*len = 0;
	for (i = 0; i < f->njobs; i++)
		if (!sms_fmt_valid_sms_id(f->jobs[i].job_id))
		{
			char		q[100];

			set_err(err, errlen, "job %zu: invalid job ID \"%s\"", i + 1,
					quoted(f->jobs[i].job_id, q, sizeof(q)));
			return false;
		}
	if ((doc = sms_fmt_doc_new(SMS_FMT_PCM, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = wr_str(h, "machine", f->machine, true, chk_sms_id, err, errlen) &&
		wr_str(h, "site", f->site, true, chk_site, err, errlen) &&
		wr_utc(h, "generated", f->generated, true, err, errlen);
	if (ok && (order = sorted_ptrs(f->jobs, f->njobs, sizeof(SmsPcmJob), cmp_pcm_job)) == NULL)
		ok = oom(err, errlen);
	for (i = 0; ok && i < f->njobs; i++)
		ok = pcm_write_job(doc, order[i], err, errlen);
	free(order);
	return finish(doc, ok, out, len, err, errlen);
}

static void
pcm_job_free(SmsPcmJob *j)
{
	free(j->job_id);
	free(j->package_id);
	free(j->package_name);
	free(j->program);
	free(j->command_line);
	free_list(j->platforms, j->nplatforms);
	free_list(j->locations, j->nlocations);
	free(j->package_sha256);
}

void
sms_pcm_free(SmsPcmFile *f)
{
	size_t		i;

	if (f == NULL)
		return;
	free(f->machine);
	free(f->site);
	for (i = 0; i < f->njobs; i++)
		pcm_job_free(&f->jobs[i]);
	free(f->jobs);
	memset(f, 0, sizeof(*f));
}

bool
sms_pcm_parse(const char *buf, size_t len, SmsPcmFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	const SmsFmtSection *h;
	size_t		i,
				n;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_PCM, &doc, err, errlen))
		return false;
	h = doc->sections[0];
	ok = rd_str(h, "machine", true, chk_sms_id, &out->machine, err, errlen) &&
		rd_str(h, "site", true, chk_site, &out->site, err, errlen) &&
		rd_utc(h, "generated", true, &out->generated, err, errlen) &&
		check_no_bare(doc, "job", err, errlen);
	n = count_sections(doc, "job");
	if (ok && n > 0 && (out->jobs = calloc(n, sizeof(SmsPcmJob))) == NULL)
		ok = oom(err, errlen);
	for (i = 1; ok && i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];
		const char *id = section_arg(s, "job");
		SmsPcmJob  *j;

		if (id == NULL)
			continue;			/* a section a newer writer added */
		j = &out->jobs[out->njobs++];
		if (!sms_fmt_valid_sms_id(id))
		{
			set_err(err, errlen, "line %d: section [%s]: the job ID is %s", s->line, s->name,
					chk_sms_id(id));
			ok = false;
			break;
		}
		ok = (j->job_id = strdup(id)) != NULL ? true : oom(err, errlen);
		ok = ok &&
			rd_str(s, "package_id", true, chk_sms_id, &j->package_id, err, errlen) &&
			rd_str(s, "package_name", true, chk_name, &j->package_name, err, errlen) &&
			rd_int(s, "package_version", true, 1, INT32_MAX, &j->package_version, err, errlen) &&
			rd_str(s, "program", true, chk_name, &j->program, err, errlen) &&
			rd_str(s, "command_line", true, chk_command_line, &j->command_line, err, errlen) &&
			rd_list(s, "platforms", ',', 0, chk_platform, false, &j->platforms, &j->nplatforms, err, errlen) &&
			rd_utc(s, "offer_after", true, &j->offer_after, err, errlen) &&
			rd_utc(s, "mandatory_at", false, &j->mandatory_at, err, errlen) &&
			rd_utc(s, "expires_at", false, &j->expires_at, err, errlen) &&
			rd_int32(s, "max_run_minutes", false, 1, MAX_RUN_MINUTES, &j->max_run_minutes, err, errlen) &&
			rd_run_with(s, &j->user_rights, err, errlen) &&
			rd_list(s, "locations", ';', 1, chk_path, false, &j->locations, &j->nlocations, err, errlen) &&
			rd_str(s, "package_sha256", true, chk_sha256, &j->package_sha256, err, errlen);
	}
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_pcm_free(out);
	return ok;
}

/* ----------------------------------------------------------------
 * 2. Offer (.OFR)
 * ----------------------------------------------------------------
 */
static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

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

static bool
offer_write_window(SmsFmtDoc *doc, size_t n, const SmsOfferWindow *w,
				   char *err, size_t errlen)
{
	SmsFmtSection *s = wr_numbered(doc, "window", n, err, errlen);
	char		start[16];
	char		days[32];
	int			d;

	if (s == NULL)
		return false;
	if (w->start_minute < 0 || w->start_minute > 1439)
		return wr_problem(s, "start", "the start is a time of day from 00:00 to 23:59", NULL, err, errlen);
	if (w->days == 0 || (w->days & ~0x7Fu) != 0)
		return wr_problem(s, "days", "at least one day, and only SMS_DAY_* bits", NULL, err, errlen);
	snprintf(start, sizeof(start), "%02d:%02d", w->start_minute / 60, w->start_minute % 60);
	days[0] = '\0';
	for (d = 0; d < 7; d++)
		if (w->days & (1u << d))
		{
			if (days[0] != '\0')
				strcat(days, ",");
			strcat(days, day_names[d]);
		}
	return sms_fmt_set(s, "start", start, err, errlen) &&
		wr_int(s, "duration_minutes", w->duration_minutes, 1, MAX_RUN_MINUTES, err, errlen) &&
		sms_fmt_set(s, "days", days, err, errlen);
}

bool
sms_offer_to_text(const SmsOfferFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	SmsFmtSection *s;
	const void **order = NULL;
	size_t		i;
	bool		ok;

	*out = NULL;
	*len = 0;
	if ((doc = sms_fmt_doc_new(SMS_FMT_OFFER, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = wr_str(h, "advert_id", f->advert_id, true, chk_sms_id, err, errlen) &&
		wr_str(h, "name", f->name, true, chk_name, err, errlen) &&
		wr_str(h, "package_id", f->package_id, true, chk_sms_id, err, errlen) &&
		wr_str(h, "program", f->program, true, chk_name, err, errlen) &&
		wr_str(h, "command_line", f->command_line, true, chk_command_line, err, errlen) &&
		wr_list(h, "platforms", ',', f->platforms, f->nplatforms, 0, chk_platform, false, err, errlen) &&
		wr_when(h, "offer_time", f->offer_time, true, err, errlen) &&
		wr_when(h, "expires_time", f->expires_time, false, err, errlen);
	if (ok && sms_rerun_name(f->rerun) == NULL)
	{
		set_err(err, errlen, "unknown rerun behaviour %d", (int) f->rerun);
		ok = false;
	}
	ok = ok && sms_fmt_set(h, "rerun_behaviour", sms_rerun_name(f->rerun), err, errlen);

	if (ok && (order = sorted_ptrs(f->assignments, f->nassignments,
								   sizeof(SmsOfferAssignment), cmp_assignment)) == NULL)
		ok = oom(err, errlen);
	for (i = 0; ok && i < f->nassignments; i++)
	{
		const SmsOfferAssignment *a = order[i];

		ok = (s = wr_numbered(doc, "assignment", i + 1, err, errlen)) != NULL &&
			wr_when(s, "time", a->time, true, err, errlen) &&
			(a->recur_every_minutes == 0 ||
			 wr_int(s, "recur_every_minutes", a->recur_every_minutes, 1, INT32_MAX, err, errlen));
	}
	free(order);
	order = NULL;
	if (ok && (order = sorted_ptrs(f->windows, f->nwindows,
								   sizeof(SmsOfferWindow), cmp_window)) == NULL)
		ok = oom(err, errlen);
	for (i = 0; ok && i < f->nwindows; i++)
		ok = offer_write_window(doc, i + 1, order[i], err, errlen);
	free(order);
	return finish(doc, ok, out, len, err, errlen);
}

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

/* rerun_behaviour=, optional: absent is rerun_if_failed */
static bool
rd_rerun(const SmsFmtSection *s, SmsRerunBehaviour *out, char *err, size_t errlen)
{
	const char *v = sms_fmt_get(s, "rerun_behaviour");

	*out = SMS_RERUN_IF_FAILED;
	if (v == NULL || sms_rerun_from_name(v, out))
		return true;
	return key_problem(s, "rerun_behaviour",
					   "must be never_rerun, always_rerun, rerun_if_failed or rerun_if_succeeded",
					   v, err, errlen);
}

void
sms_offer_free(SmsOfferFile *f)
{
	if (f == NULL)
		return;
	free(f->advert_id);
	free(f->name);
	free(f->package_id);
	free(f->program);
	free(f->command_line);
	free_list(f->platforms, f->nplatforms);
	free(f->assignments);
	free(f->windows);
	memset(f, 0, sizeof(*f));
}

static bool
offer_read_window(const SmsFmtSection *s, SmsOfferWindow *w, char *err, size_t errlen)
{
	const char *start = sms_fmt_get(s, "start");
	const char *days = sms_fmt_get(s, "days");
	int			hh,
				mm;
	const char *p;

	if (start == NULL)
		return key_problem(s, "start", NULL, NULL, err, errlen);
	if (strlen(start) != 5 || start[2] != ':' || !digits(start, 2, &hh) ||
		!digits(start + 3, 2, &mm) || hh > 23 || mm > 59)
		return key_problem(s, "start", "not a local time of day HH:MM", start, err, errlen);
	w->start_minute = hh * 60 + mm;
	if (!rd_int32(s, "duration_minutes", true, 1, MAX_RUN_MINUTES, &w->duration_minutes, err, errlen))
		return false;
	if (days == NULL)
		return key_problem(s, "days", NULL, NULL, err, errlen);
	w->days = 0;
	for (p = days;;)
	{
		size_t		l = strcspn(p, ",");
		int			d;

		for (d = 0; d < 7; d++)
			if (l == 3 && strncmp(p, day_names[d], 3) == 0)
				break;
		if (d == 7)
			return key_problem(s, "days", "a list of mon tue wed thu fri sat sun", days, err, errlen);
		if (w->days & (1u << d))
			return key_problem(s, "days", "a day appears twice", days, err, errlen);
		w->days |= 1u << d;
		if (p[l] == '\0')
			break;
		p += l + 1;
	}
	return true;
}

bool
sms_offer_parse(const char *buf, size_t len, SmsOfferFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	const SmsFmtSection *h;
	size_t		i;
	size_t		na,
				nw;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_OFFER, &doc, err, errlen))
		return false;
	h = doc->sections[0];
	ok = rd_str(h, "advert_id", true, chk_sms_id, &out->advert_id, err, errlen) &&
		rd_str(h, "name", true, chk_name, &out->name, err, errlen) &&
		rd_str(h, "package_id", true, chk_sms_id, &out->package_id, err, errlen) &&
		rd_str(h, "program", true, chk_name, &out->program, err, errlen) &&
		rd_str(h, "command_line", true, chk_command_line, &out->command_line, err, errlen) &&
		rd_list(h, "platforms", ',', 0, chk_platform, false, &out->platforms, &out->nplatforms, err, errlen) &&
		rd_when(h, "offer_time", true, &out->offer_time, err, errlen) &&
		rd_when(h, "expires_time", false, &out->expires_time, err, errlen) &&
		rd_rerun(h, &out->rerun, err, errlen) &&
		check_no_bare(doc, "assignment", err, errlen) &&
		check_no_bare(doc, "window", err, errlen);

	na = count_sections(doc, "assignment");
	nw = count_sections(doc, "window");
	if (ok && ((na > 0 && (out->assignments = calloc(na, sizeof(SmsOfferAssignment))) == NULL) ||
			   (nw > 0 && (out->windows = calloc(nw, sizeof(SmsOfferWindow))) == NULL)))
		ok = oom(err, errlen);
	for (i = 1; ok && i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];
		const char *arg;

		if ((arg = section_arg(s, "assignment")) != NULL)
		{
			SmsOfferAssignment *a = &out->assignments[out->nassignments++];

			ok = check_numbered(s, arg, err, errlen) &&
				rd_when(s, "time", true, &a->time, err, errlen) &&
				rd_int32(s, "recur_every_minutes", false, 1, INT32_MAX, &a->recur_every_minutes, err, errlen);
		}
		else if ((arg = section_arg(s, "window")) != NULL)
			ok = check_numbered(s, arg, err, errlen) &&
				offer_read_window(s, &out->windows[out->nwindows++], err, errlen);
	}
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_offer_free(out);
	return ok;
}

/* ----------------------------------------------------------------
 * 3. Installation file (.INS)
 * ----------------------------------------------------------------
 */
bool
sms_install_to_text(const SmsInstallFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	bool		ok;

	*out = NULL;
	*len = 0;
	if ((doc = sms_fmt_doc_new(SMS_FMT_INSTALL, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = wr_str(h, "advert_id", f->advert_id, true, chk_sms_id, err, errlen) &&
		wr_str(h, "collection_id", f->collection_id, true, chk_sms_id, err, errlen);
	return finish(doc, ok, out, len, err, errlen);
}

void
sms_install_free(SmsInstallFile *f)
{
	if (f == NULL)
		return;
	free(f->advert_id);
	free(f->collection_id);
	memset(f, 0, sizeof(*f));
}

bool
sms_install_parse(const char *buf, size_t len, SmsInstallFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_INSTALL, &doc, err, errlen))
		return false;
	ok = rd_str(doc->sections[0], "advert_id", true, chk_sms_id, &out->advert_id, err, errlen) &&
		rd_str(doc->sections[0], "collection_id", true, chk_sms_id, &out->collection_id, err, errlen);
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_install_free(out);
	return ok;
}

/* ----------------------------------------------------------------
 * 8. Heartbeat (.HBT)
 * ----------------------------------------------------------------
 */
bool
sms_heartbeat_to_text(const SmsHeartbeatFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	bool		ok;

	*out = NULL;
	*len = 0;
	if ((doc = sms_fmt_doc_new(SMS_FMT_HEARTBEAT, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = wr_str(h, "site", f->site, true, chk_site, err, errlen) &&
		wr_utc(h, "site_time", f->site_time, true, err, errlen) &&
		wr_int(h, "interval_seconds", f->interval_seconds, 1, 86400, err, errlen);
	return finish(doc, ok, out, len, err, errlen);
}

void
sms_heartbeat_free(SmsHeartbeatFile *f)
{
	if (f == NULL)
		return;
	free(f->site);
	memset(f, 0, sizeof(*f));
}

bool
sms_heartbeat_parse(const char *buf, size_t len, SmsHeartbeatFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_HEARTBEAT, &doc, err, errlen))
		return false;
	ok = rd_str(doc->sections[0], "site", true, chk_site, &out->site, err, errlen) &&
		rd_utc(doc->sections[0], "site_time", true, &out->site_time, err, errlen) &&
		rd_int32(doc->sections[0], "interval_seconds", true, 1, 86400, &out->interval_seconds, err, errlen);
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_heartbeat_free(out);
	return ok;
}

/* ----------------------------------------------------------------
 * 4. Lookup files (.LKP)
 * ----------------------------------------------------------------
 */
static const char *const lookup_kinds[] = {"system", "user", "usergroup"};

static int
cmp_lookup_entry(const void *a, const void *b)
{
	const SmsLookupEntry *x = *(const SmsLookupEntry *const *) a;
	const SmsLookupEntry *y = *(const SmsLookupEntry *const *) b;
	int			c = ascii_casecmp(x->name, y->name);

	/* equal ignoring case is a duplicate; strcmp only keeps qsort total */
	return c != 0 ? c : strcmp(x->name, y->name);
}

static const char *
lookup_name_problem(SmsLookupKind kind, const char *name)
{
	if (kind == SMS_LOOKUP_SYSTEM)
		return chk_sms_id(name);
	return chk_lookup_name(name);
}

/* Adjacent in an ascii_casecmp-sorted array: the first duplicate, or NULL. */
static const SmsLookupEntry *
lookup_duplicate(const void **sorted, size_t n)
{
	size_t		i;

	for (i = 1; i < n; i++)
		if (ascii_casecmp(((const SmsLookupEntry *) sorted[i - 1])->name,
						  ((const SmsLookupEntry *) sorted[i])->name) == 0)
			return sorted[i];
	return NULL;
}

bool
sms_lookup_to_text(const SmsLookupFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	const void **order = NULL;
	const SmsLookupEntry *dup;
	size_t		i;
	bool		ok;
	char		q[100];

	*out = NULL;
	*len = 0;
	if ((unsigned) f->kind > SMS_LOOKUP_USERGROUP)
	{
		set_err(err, errlen, "unknown lookup kind %d", (int) f->kind);
		return false;
	}
	for (i = 0; i < f->nentries; i++)
	{
		const char *name = f->entries[i].name;
		const char *problem;

		if (name == NULL || !sms_fmt_valid_utf8(name, strlen(name)))
		{
			set_err(err, errlen, "entry %zu: the name is missing or not valid UTF-8", i + 1);
			return false;
		}
		if ((problem = lookup_name_problem(f->kind, name)) != NULL)
		{
			set_err(err, errlen, "entry %zu: %s (\"%s\")", i + 1, problem, quoted(name, q, sizeof(q)));
			return false;
		}
	}
	if ((doc = sms_fmt_doc_new(SMS_FMT_LOOKUP, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = wr_str(h, "site", f->site, true, chk_site, err, errlen) &&
		sms_fmt_set(h, "kind", lookup_kinds[f->kind], err, errlen);
	if (ok && (order = sorted_ptrs(f->entries, f->nentries, sizeof(SmsLookupEntry),
								   cmp_lookup_entry)) == NULL)
		ok = oom(err, errlen);
	if (ok && (dup = lookup_duplicate(order, f->nentries)) != NULL)
	{
		set_err(err, errlen, "the name \"%s\" appears twice (names are compared ignoring case)",
				quoted(dup->name, q, sizeof(q)));
		ok = false;
	}
	for (i = 0; ok && i < f->nentries; i++)
	{
		const SmsLookupEntry *e = order[i];
		SmsFmtSection *s = wr_numbered(doc, "entry", i + 1, err, errlen);

		ok = s != NULL &&
			sms_fmt_set(s, "name", e->name, err, errlen) &&
			wr_list(s, "adverts", ',', e->adverts, e->nadverts, 0, chk_sms_id, true, err, errlen);
	}
	free(order);
	return finish(doc, ok, out, len, err, errlen);
}

void
sms_lookup_free(SmsLookupFile *f)
{
	size_t		i;

	if (f == NULL)
		return;
	free(f->site);
	for (i = 0; i < f->nentries; i++)
	{
		free(f->entries[i].name);
		free_list(f->entries[i].adverts, f->entries[i].nadverts);
	}
	free(f->entries);
	memset(f, 0, sizeof(*f));
}

bool
sms_lookup_parse(const char *buf, size_t len, SmsLookupFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	const SmsFmtSection *h;
	const char *kind;
	const void **order = NULL;
	const SmsLookupEntry *dup;
	size_t		i,
				n;
	bool		ok;
	char		q[100];

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_LOOKUP, &doc, err, errlen))
		return false;
	h = doc->sections[0];
	ok = rd_str(h, "site", true, chk_site, &out->site, err, errlen) &&
		check_no_bare(doc, "entry", err, errlen);
	if (ok)
	{
		kind = sms_fmt_get(h, "kind");
		for (i = 0; kind != NULL && i < 3; i++)
			if (strcmp(kind, lookup_kinds[i]) == 0)
				break;
		if (kind == NULL || i == 3)
			ok = key_problem(h, "kind", "must be system, user or usergroup", kind, err, errlen);
		else
			out->kind = (SmsLookupKind) i;
	}
	n = count_sections(doc, "entry");
	if (ok && n > 0 && (out->entries = calloc(n, sizeof(SmsLookupEntry))) == NULL)
		ok = oom(err, errlen);
	for (i = 1; ok && i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];
		const char *arg = section_arg(s, "entry");
		SmsLookupEntry *e;
		const char *problem;

		if (arg == NULL)
			continue;
		e = &out->entries[out->nentries++];
		ok = check_numbered(s, arg, err, errlen) &&
			rd_str(s, "name", true, NULL, &e->name, err, errlen);
		if (ok && (problem = lookup_name_problem(out->kind, e->name)) != NULL)
			ok = key_problem(s, "name", problem, e->name, err, errlen);
		ok = ok && rd_list(s, "adverts", ',', 0, chk_sms_id, true, &e->adverts, &e->nadverts, err, errlen);
	}
	if (ok && (order = sorted_ptrs(out->entries, out->nentries, sizeof(SmsLookupEntry),
								   cmp_lookup_entry)) == NULL)
		ok = oom(err, errlen);
	if (ok && (dup = lookup_duplicate(order, out->nentries)) != NULL)
	{
		set_err(err, errlen, "the name \"%s\" appears twice (names are compared ignoring case)",
				quoted(dup->name, q, sizeof(q)));
		ok = false;
	}
	free(order);
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

/* ----------------------------------------------------------------
 * 5. Package file (.PKG)
 * ----------------------------------------------------------------
 */
static int
cmp_program(const void *a, const void *b)
{
	return strcmp((*(const SmsPackageProgram *const *) a)->name,
				  (*(const SmsPackageProgram *const *) b)->name);
}

bool
sms_package_to_text(const SmsPackageFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	const void **order = NULL;
	char		icon[SMS_FMT_NAME_BUFLEN];
	size_t		i;
	bool		ok;

	*out = NULL;
	*len = 0;
	for (i = 0; i < f->nprograms; i++)
		if (f->programs[i].name == NULL)
		{
			set_err(err, errlen, "program %zu: the name is missing", i + 1);
			return false;
		}
	if ((doc = sms_fmt_doc_new(SMS_FMT_PACKAGE, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = wr_str(h, "package_id", f->package_id, true, chk_sms_id, err, errlen) &&
		wr_str(h, "name", f->name, true, chk_name, err, errlen) &&
		wr_str(h, "product_version", f->product_version, false, chk_name, err, errlen) &&
		wr_str(h, "manufacturer", f->manufacturer, false, chk_name, err, errlen) &&
		wr_str(h, "language", f->language, false, chk_name, err, errlen) &&
		wr_int(h, "source_version", f->source_version, 1, INT32_MAX, err, errlen) &&
		wr_str(h, "sha256", f->sha256, true, chk_sha256, err, errlen);
	if (ok)
	{
		if (f->has_icon)
			ok = sms_fmt_file_name(SMS_FILE_ICON, f->package_id, 0, icon, sizeof(icon), err, errlen);
		else
			strcpy(icon, "none");
		ok = ok && sms_fmt_set(h, "icon", icon, err, errlen);
	}
	if (ok && (order = sorted_ptrs(f->programs, f->nprograms, sizeof(SmsPackageProgram),
								   cmp_program)) == NULL)
		ok = oom(err, errlen);
	for (i = 0; ok && i < f->nprograms; i++)
	{
		const SmsPackageProgram *p = order[i];
		SmsFmtSection *s;

		if (i > 0 && strcmp(p->name, ((const SmsPackageProgram *) order[i - 1])->name) == 0)
		{
			char		q[100];

			set_err(err, errlen, "program \"%s\" appears twice", quoted(p->name, q, sizeof(q)));
			ok = false;
			break;
		}
		ok = (s = wr_numbered(doc, "program", i + 1, err, errlen)) != NULL &&
			wr_str(s, "name", p->name, true, chk_name, err, errlen) &&
			wr_str(s, "command_line", p->command_line, true, chk_command_line, err, errlen) &&
			wr_list(s, "platforms", ',', p->platforms, p->nplatforms, 0, chk_platform, false, err, errlen) &&
			(p->max_run_minutes == 0 ||
			 wr_int(s, "max_run_minutes", p->max_run_minutes, 1, MAX_RUN_MINUTES, err, errlen)) &&
			(!p->user_rights || sms_fmt_set(s, "run_with", "user_rights", err, errlen));
	}
	free(order);
	return finish(doc, ok, out, len, err, errlen);
}

void
sms_package_free(SmsPackageFile *f)
{
	size_t		i;

	if (f == NULL)
		return;
	free(f->package_id);
	free(f->name);
	free(f->product_version);
	free(f->manufacturer);
	free(f->language);
	free(f->sha256);
	for (i = 0; i < f->nprograms; i++)
	{
		free(f->programs[i].name);
		free(f->programs[i].command_line);
		free_list(f->programs[i].platforms, f->programs[i].nplatforms);
	}
	free(f->programs);
	memset(f, 0, sizeof(*f));
}

bool
sms_package_parse(const char *buf, size_t len, SmsPackageFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	const SmsFmtSection *h;
	const char *icon;
	char		expect[SMS_FMT_NAME_BUFLEN];
	const void **order = NULL;
	size_t		i,
				n;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_PACKAGE, &doc, err, errlen))
		return false;
	h = doc->sections[0];
	ok = rd_str(h, "package_id", true, chk_sms_id, &out->package_id, err, errlen) &&
		rd_str(h, "name", true, chk_name, &out->name, err, errlen) &&
		rd_str(h, "product_version", false, chk_name, &out->product_version, err, errlen) &&
		rd_str(h, "manufacturer", false, chk_name, &out->manufacturer, err, errlen) &&
		rd_str(h, "language", false, chk_name, &out->language, err, errlen) &&
		rd_int(h, "source_version", true, 1, INT32_MAX, &out->source_version, err, errlen) &&
		rd_str(h, "sha256", true, chk_sha256, &out->sha256, err, errlen) &&
		check_no_bare(doc, "program", err, errlen);
	if (ok)
	{
		/* only this package's own icon: a file name from the share is not trusted */
		icon = sms_fmt_get(h, "icon");
		sms_fmt_file_name(SMS_FILE_ICON, out->package_id, 0, expect, sizeof(expect), NULL, 0);
		if (icon != NULL && strcmp(icon, "none") == 0)
			out->has_icon = false;
		else if (icon != NULL && strcmp(icon, expect) == 0)
			out->has_icon = true;
		else
		{
			char		msg[100];

			snprintf(msg, sizeof(msg), "must be none or %s", expect);
			ok = key_problem(h, "icon", msg, icon, err, errlen);
		}
	}
	n = count_sections(doc, "program");
	if (ok && n > 0 && (out->programs = calloc(n, sizeof(SmsPackageProgram))) == NULL)
		ok = oom(err, errlen);
	for (i = 1; ok && i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];
		const char *arg = section_arg(s, "program");
		SmsPackageProgram *p;

		if (arg == NULL)
			continue;
		p = &out->programs[out->nprograms++];
		ok = check_numbered(s, arg, err, errlen) &&
			rd_str(s, "name", true, chk_name, &p->name, err, errlen) &&
			rd_str(s, "command_line", true, chk_command_line, &p->command_line, err, errlen) &&
			rd_list(s, "platforms", ',', 0, chk_platform, false, &p->platforms, &p->nplatforms, err, errlen) &&
			rd_int32(s, "max_run_minutes", false, 1, MAX_RUN_MINUTES, &p->max_run_minutes, err, errlen) &&
			rd_run_with(s, &p->user_rights, err, errlen);
	}
	if (ok && (order = sorted_ptrs(out->programs, out->nprograms, sizeof(SmsPackageProgram),
								   cmp_program)) == NULL)
		ok = oom(err, errlen);
	for (i = 1; ok && i < out->nprograms; i++)
		if (cmp_program(&order[i - 1], &order[i]) == 0)
		{
			char		q[100];

			set_err(err, errlen, "program \"%s\" appears twice",
					quoted(((const SmsPackageProgram *) order[i])->name, q, sizeof(q)));
			ok = false;
		}
	free(order);
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_package_free(out);
	return ok;
}

/* ----------------------------------------------------------------
 * 6. NAL (.NAL)
 * ----------------------------------------------------------------
 */
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

bool
sms_nal_to_text(const SmsNalFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	const void **order = NULL;
	size_t		i;
	bool		ok;

	*out = NULL;
	*len = 0;
	for (i = 0; i < f->nlocations; i++)
		if (f->locations[i].site == NULL || f->locations[i].server == NULL ||
			f->locations[i].path == NULL)
		{
			set_err(err, errlen, "location %zu: site, server and path are required", i + 1);
			return false;
		}
	if ((doc = sms_fmt_doc_new(SMS_FMT_NAL, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	if (f->removed && f->nlocations > 0)
	{
		set_err(err, errlen, "a removed package has no location");
		sms_fmt_doc_free(doc);
		return false;
	}
	ok = wr_str(h, "package_id", f->package_id, true, chk_sms_id, err, errlen) &&
		wr_int(h, "source_version", f->source_version, 1, INT32_MAX, err, errlen);
	/* written only when true: files of packages that are here stay as they were */
	if (ok && f->removed)
		ok = sms_fmt_set_bool(h, "removed", true, err, errlen);
	if (ok && (order = sorted_ptrs(f->locations, f->nlocations, sizeof(SmsNalLocation),
								   cmp_nal_location)) == NULL)
		ok = oom(err, errlen);
	for (i = 0; ok && i < f->nlocations; i++)
	{
		const SmsNalLocation *l = order[i];
		SmsFmtSection *s;

		if (i > 0 && cmp_nal_location(&order[i - 1], &order[i]) == 0)
		{
			set_err(err, errlen, "location %s %s %s appears twice", l->site, l->server, l->path);
			ok = false;
			break;
		}
		ok = (s = wr_numbered(doc, "location", i + 1, err, errlen)) != NULL &&
			wr_str(s, "site", l->site, true, chk_site, err, errlen) &&
			wr_str(s, "server", l->server, true, chk_server, err, errlen) &&
			wr_str(s, "path", l->path, true, chk_path, err, errlen);
	}
	free(order);
	return finish(doc, ok, out, len, err, errlen);
}

void
sms_nal_free(SmsNalFile *f)
{
	size_t		i;

	if (f == NULL)
		return;
	free(f->package_id);
	for (i = 0; i < f->nlocations; i++)
	{
		free(f->locations[i].site);
		free(f->locations[i].server);
		free(f->locations[i].path);
	}
	free(f->locations);
	memset(f, 0, sizeof(*f));
}

bool
sms_nal_parse(const char *buf, size_t len, SmsNalFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	const SmsFmtSection *h;
	const void **order = NULL;
	size_t		i,
				n;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_NAL, &doc, err, errlen))
		return false;
	h = doc->sections[0];
	ok = rd_str(h, "package_id", true, chk_sms_id, &out->package_id, err, errlen) &&
		rd_int(h, "source_version", true, 1, INT32_MAX, &out->source_version, err, errlen) &&
		(sms_fmt_get(h, "removed") == NULL || rd_bool(h, "removed", &out->removed, err, errlen)) &&
		check_no_bare(doc, "location", err, errlen);
	n = count_sections(doc, "location");
	if (ok && out->removed && n > 0)
	{
		set_err(err, errlen, "a removed package has no location, and this file lists %zu", n);
		ok = false;
	}
	if (ok && n > 0 && (out->locations = calloc(n, sizeof(SmsNalLocation))) == NULL)
		ok = oom(err, errlen);
	for (i = 1; ok && i < doc->nsections; i++)
	{
		const SmsFmtSection *s = doc->sections[i];
		const char *arg = section_arg(s, "location");
		SmsNalLocation *l;

		if (arg == NULL)
			continue;
		l = &out->locations[out->nlocations++];
		ok = check_numbered(s, arg, err, errlen) &&
			rd_str(s, "site", true, chk_site, &l->site, err, errlen) &&
			rd_str(s, "server", true, chk_server, &l->server, err, errlen) &&
			rd_str(s, "path", true, chk_path, &l->path, err, errlen);
	}

	/*
	 * A location listed twice is refused, as the writer refuses it (as the
	 * package reader refuses a program listed twice): what a reader accepts
	 * can always be written back.
	 */
	if (ok && (order = sorted_ptrs(out->locations, out->nlocations, sizeof(SmsNalLocation),
								   cmp_nal_location)) == NULL)
		ok = oom(err, errlen);
	for (i = 1; ok && i < out->nlocations; i++)
		if (cmp_nal_location(&order[i - 1], &order[i]) == 0)
		{
			const SmsNalLocation *l = order[i];

			set_err(err, errlen, "location %s %s %s appears twice", l->site, l->server, l->path);
			ok = false;
		}
	free(order);
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_nal_free(out);
	return ok;
}

/* ----------------------------------------------------------------
 * 7. Status message
 * ----------------------------------------------------------------
 */
static const char *const severities[] = {"info", "warning", "error"};

/* "hmac=" + hex + LF */
#define STATUS_HMAC_LINE	(5 + SMS_STATUS_HMAC_HEX + 1)

/* HMAC-SHA256 of buf[0..len) with key, as lower-case hex */
static bool
status_hmac(const char *buf, size_t len, const uint8_t *key,
			char hex[SMS_STATUS_HMAC_HEX + 1], char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (HMAC(EVP_sha256(), key, SMS_STATUS_KEY_LEN, (const unsigned char *) buf, len,
			 md, &mdlen) == NULL || mdlen * 2 != SMS_STATUS_HMAC_HEX)
	{
		set_err(err, errlen, "could not compute HMAC-SHA256");
		return false;
	}
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return true;
}

/*
 * The hmac line, if the file ends with one: its value and the bytes before
 * it.  Anything else (no such line, upper case, another key after it)
 * leaves hmac empty, and sms_status_verify refuses the file.
 */
static void
status_find_hmac(const char *buf, size_t len, SmsStatusFile *out)
{
	const char *line;

	out->hmac[0] = '\0';
	out->signed_len = 0;
	if (len < STATUS_HMAC_LINE)
		return;
	line = buf + len - STATUS_HMAC_LINE;
	if ((line != buf && line[-1] != '\n') || strncmp(line, "hmac=", 5) != 0 ||
		buf[len - 1] != '\n')
		return;
	for (int i = 0; i < SMS_STATUS_HMAC_HEX; i++)
	{
		char		ch = line[5 + i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return;
	}
	memcpy(out->hmac, line + 5, SMS_STATUS_HMAC_HEX);
	out->hmac[SMS_STATUS_HMAC_HEX] = '\0';
	out->signed_len = len - STATUS_HMAC_LINE;
}

bool
sms_status_verify(const char *buf, size_t len, const SmsStatusFile *m,
				  const uint8_t *key, char *err, size_t errlen)
{
	char		hex[SMS_STATUS_HMAC_HEX + 1];

	if (m->hmac[0] == '\0' || m->signed_len > len)
	{
		set_err(err, errlen, "it is not authenticated: no hmac line at its end");
		return false;
	}
	if (!status_hmac(buf, m->signed_len, key, hex, err, errlen))
		return false;
	if (CRYPTO_memcmp(hex, m->hmac, SMS_STATUS_HMAC_HEX) != 0)
	{
		set_err(err, errlen, "its hmac does not verify with the key of machine %s", m->machine);
		return false;
	}
	return true;
}

bool
sms_status_key_from_hex(const char *text, size_t len, uint8_t key[SMS_STATUS_KEY_LEN],
						char *err, size_t errlen)
{
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len != SMS_STATUS_KEY_LEN * 2)
	{
		set_err(err, errlen, "a machine key is %d hexadecimal digits", SMS_STATUS_KEY_LEN * 2);
		return false;
	}
	for (size_t i = 0; i < SMS_STATUS_KEY_LEN; i++)
	{
		int			v = 0;

		for (int j = 0; j < 2; j++)
		{
			char		ch = text[2 * i + j];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				v |= ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				v |= ch - 'A' + 10;
			else
			{
				set_err(err, errlen, "a machine key is %d hexadecimal digits", SMS_STATUS_KEY_LEN * 2);
				return false;
			}
		}
		key[i] = (uint8_t) v;
	}
	return true;
}

bool
sms_status_to_text(const SmsStatusFile *f, char **out, size_t *len, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	SmsFmtSection *h;
	bool		ok;

	*out = NULL;
	*len = 0;
	if ((unsigned) f->severity > SMS_STATUS_ERROR)
	{
		set_err(err, errlen, "unknown severity %d", (int) f->severity);
		return false;
	}
	if ((doc = sms_fmt_doc_new(SMS_FMT_STATUS, err, errlen)) == NULL)
		return false;
	h = sms_fmt_header(doc);
	ok = wr_str(h, "machine", f->machine, true, chk_sms_id, err, errlen) &&
		wr_str(h, "site", f->site, true, chk_site, err, errlen) &&
		wr_int(h, "sequence", f->sequence, 0, MAX_SEQUENCE, err, errlen) &&
		wr_utc(h, "at", f->at, true, err, errlen) &&
		wr_int(h, "message_id", f->message_id, 0, INT32_MAX, err, errlen) &&
		sms_fmt_set(h, "severity", severities[f->severity], err, errlen) &&
		wr_str(h, "component", f->component, true, chk_component, err, errlen) &&
		wr_str(h, "advert_id", f->advert_id, false, chk_sms_id, err, errlen) &&
		wr_str(h, "job_id", f->job_id, false, chk_sms_id, err, errlen) &&
		wr_str(h, "package_id", f->package_id, false, chk_sms_id, err, errlen) &&
		(!f->has_exit_code ||
		 wr_int(h, "exit_code", f->exit_code, 0, INT32_MAX, err, errlen)) &&
		wr_str(h, "inventory", f->inventory, false, chk_inventory, err, errlen) &&
		wr_str(h, "text", f->text, true, NULL, err, errlen);
	if (!finish(doc, ok, out, len, err, errlen))
		return false;
	if (f->key != NULL)
	{
		/* the hmac line comes last and covers every byte before it */
		char		hex[SMS_STATUS_HMAC_HEX + 1] = "";
		char	   *grown;

		grown = status_hmac(*out, *len, f->key, hex, err, errlen) ?
			realloc(*out, *len + STATUS_HMAC_LINE + 1) : NULL;
		if (grown == NULL)
		{
			free(*out);
			*out = NULL;
			*len = 0;
			if (hex[0] != '\0')
				oom(err, errlen);
			return false;
		}
		*out = grown;
		snprintf(*out + *len, STATUS_HMAC_LINE + 1, "hmac=%s\n", hex);
		*len += STATUS_HMAC_LINE;
	}
	return true;
}

void
sms_status_free(SmsStatusFile *f)
{
	if (f == NULL)
		return;
	free(f->machine);
	free(f->site);
	free(f->component);
	free(f->advert_id);
	free(f->job_id);
	free(f->package_id);
	free(f->inventory);
	free(f->text);
	memset(f, 0, sizeof(*f));
}

bool
sms_status_parse(const char *buf, size_t len, SmsStatusFile *out, char *err, size_t errlen)
{
	SmsFmtDoc  *doc;
	const SmsFmtSection *h;
	const char *sev;
	size_t		i;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!sms_fmt_parse(buf, len, SMS_FMT_STATUS, &doc, err, errlen))
		return false;
	h = doc->sections[0];
	ok = rd_str(h, "machine", true, chk_sms_id, &out->machine, err, errlen) &&
		rd_str(h, "site", true, chk_site, &out->site, err, errlen) &&
		rd_int(h, "sequence", true, 0, MAX_SEQUENCE, &out->sequence, err, errlen) &&
		rd_utc(h, "at", true, &out->at, err, errlen) &&
		rd_int32(h, "message_id", true, 0, INT32_MAX, &out->message_id, err, errlen);
	if (ok)
	{
		sev = sms_fmt_get(h, "severity");
		for (i = 0; sev != NULL && i < 3; i++)
			if (strcmp(sev, severities[i]) == 0)
				break;
		if (sev == NULL || i == 3)
			ok = key_problem(h, "severity", "must be info, warning or error", sev, err, errlen);
		else
			out->severity = (SmsStatusLevel) i;
	}
	ok = ok &&
		rd_str(h, "component", true, chk_component, &out->component, err, errlen) &&
		rd_str(h, "advert_id", false, chk_sms_id, &out->advert_id, err, errlen) &&
		rd_str(h, "job_id", false, chk_sms_id, &out->job_id, err, errlen) &&
		rd_str(h, "package_id", false, chk_sms_id, &out->package_id, err, errlen) &&
		rd_int32(h, "exit_code", false, 0, INT32_MAX, &out->exit_code, err, errlen) &&
		rd_str(h, "inventory", false, chk_inventory, &out->inventory, err, errlen) &&
		rd_str(h, "text", true, NULL, &out->text, err, errlen);
	out->has_exit_code = ok && sms_fmt_get(h, "exit_code") != NULL;
	sms_fmt_doc_free(doc);
	if (!ok)
		sms_status_free(out);
	else
		status_find_hmac(buf, len, out);
	return ok;
}

bool
sms_fmt_split(const char *s, char sep, char ***out, size_t *n)
{
	char	  **list = NULL;
	size_t		count = 0;
	const char *p;

	*out = NULL;
	*n = 0;
	if (s == NULL || *s == '\0')
		return true;
	for (p = s;;)
	{
		const char *e = strchr(p, sep);
		size_t		len = e ? (size_t) (e - p) : strlen(p);
		char	  **grown = realloc(list, sizeof(char *) * (count + 1));

		if (grown == NULL)
		{
			sms_fmt_free_list(list, count);
			return false;
		}
		list = grown;
		list[count] = malloc(len + 1);
		if (list[count] == NULL)
		{
			sms_fmt_free_list(list, count);
			return false;
		}
		memcpy(list[count], p, len);
		list[count][len] = '\0';
		count++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	*out = list;
	*n = count;
	return true;
}

void
sms_fmt_free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}
