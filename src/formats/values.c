/*-------------------------------------------------------------------------
 *
 * values.c
 *	  The values of the instruction files: error messages, UTF-8, IDs,
 *	  integers, times, lists, and the checks the formats share.
 *
 * Terms are defined in values.h.  A check is the one place a rule is
 * written: the writer of a format refuses what the check refuses before it
 * writes a file, and the reader refuses the same with the same phrase, so
 * a writer can never produce a file its reader rejects.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "values.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME_CHARS		128 /* display names: package, program, advert */
#define MAX_COMMAND_LINE	4096
#define MAX_PATH_BYTES		1024
#define MAX_PLATFORM		32
/* 0001-01-01T00:00:00 and 9999-12-31T23:59:59, in seconds from 1970 */
#define MIN_TIME			INT64_C(-62135596800)
#define MAX_TIME			INT64_C(253402300799)

static const char hexdigits[] = "0123456789ABCDEF";

/* ----------------------------------------------------------------
 * Errors
 * ----------------------------------------------------------------
 */
bool
sms_fmt_error(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return false;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return false;
}

bool
sms_fmt_oom(char *err, size_t errlen)
{
	return sms_fmt_error(err, errlen, "out of memory");
}

bool
sms_fmt_needs_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '%';
}

char *
sms_fmt_put_escape(char *o, unsigned char c)
{
	*o++ = '%';
	*o++ = hexdigits[c >> 4];
	*o++ = hexdigits[c & 0xF];
	return o;
}

const char *
sms_fmt_quote(const char *v, char *buf, size_t buflen)
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
		if (sms_fmt_needs_escape(*p))
			o = (size_t) (sms_fmt_put_escape(buf + o, *p) - buf);
		else
			buf[o++] = (char) *p;
	}
	buf[o] = '\0';
	return buf;
}

/* ----------------------------------------------------------------
 * Characters
 * ----------------------------------------------------------------
 */
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
 * Besides C0 and DEL, the C1 controls (U+0080-U+009F) and U+2028/U+2029
 * count: some readers treat them as line breaks.  The same rule as the SQL
 * domains (validate.c).
 */
bool
sms_fmt_has_control_char(const char *s)
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

/* ----------------------------------------------------------------
 * Numbers and times
 * ----------------------------------------------------------------
 */
bool
sms_fmt_parse_uint(const char *s, int64_t *out)
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

bool
sms_fmt_parse_digits(const char *s, int n, int *out)
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
	if (!sms_fmt_parse_digits(s, 4, &y) || !sms_fmt_parse_digits(s + 5, 2, &mo) ||
		!sms_fmt_parse_digits(s + 8, 2, &d) || !sms_fmt_parse_digits(s + 11, 2, &h) ||
		!sms_fmt_parse_digits(s + 14, 2, &mi) || !sms_fmt_parse_digits(s + 17, 2, &se))
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

/* ----------------------------------------------------------------
 * Lists
 * ----------------------------------------------------------------
 */
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
	for (size_t i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
}

/* ----------------------------------------------------------------
 * Checks
 * ----------------------------------------------------------------
 */
const char *
sms_check_sms_id(const char *v)
{
	return sms_fmt_valid_sms_id(v) ? NULL :
		"not an SMS ID (a site code and five upper-case hexadecimal digits, e.g. CEN0001A)";
}

const char *
sms_check_site(const char *v)
{
	return sms_fmt_valid_site_code(v) ? NULL :
		"not a site code (three of A-Z 0-9, e.g. CEN)";
}

const char *
sms_check_name(const char *v)
{
	if (v[0] == '\0' || utf8_chars(v) > MAX_NAME_CHARS || sms_fmt_has_control_char(v))
		return "a name is 1 to 128 characters without control characters";
	return NULL;
}

const char *
sms_check_command_line(const char *v)
{
	if (v[0] == '\0' || strlen(v) > MAX_COMMAND_LINE || sms_fmt_has_control_char(v))
		return "a command line is 1 to 4096 bytes without control characters";
	return NULL;
}

const char *
sms_check_platform(const char *v)
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

/* The server-path rule of validate.c. */
const char *
sms_check_path(const char *v)
{
	size_t		len = strlen(v);
	const char *comp;

	if (len == 0 || v[0] != '/')
		return "not an absolute path";
	if (len > MAX_PATH_BYTES)
		return "a path is at most 1024 bytes";
	if (sms_fmt_has_control_char(v))
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

const char *
sms_check_sha256(const char *v)
{
	size_t		i;

	for (i = 0; v[i]; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
			break;
	if (i != 64 || v[i] != '\0')
		return "a SHA-256 is 64 lower-case hexadecimal digits";
	return NULL;
}
