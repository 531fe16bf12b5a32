/*-------------------------------------------------------------------------
 *
 * values.h
 *	  The values the instruction-file formats are made of, and the rules a
 *	  writer and a reader both apply to them.
 *
 * Plain C99 + POSIX, like every file of src/formats: no PostgreSQL header,
 * memory from malloc, and every function that can fail returns false (or
 * NULL) and writes a one-line message into the caller's err[errlen]
 * (which may be NULL).
 *
 * Terms:
 *	SMS ID		three-character site code + five upper-case hexadecimal
 *				digits (CEN0001A): packages, jobs, collections,
 *				advertisements, systems.
 *	site code	three characters A-Z 0-9 (CEN).
 *	UTC time	YYYY-MM-DDTHH:MM:SSZ; held in memory as seconds since
 *				1970-01-01T00:00:00Z (int64_t).  SMS_TIME_NONE marks an
 *				optional time that is absent.
 *	local time	YYYY-MM-DDTHH:MM:SS without a zone: the wall-clock time of
 *				each client.  Held as the seconds from 1970-01-01T00:00:00
 *				to that wall-clock reading, computed as if it were UTC:
 *				gmtime_r() gives back the fields, mktime() on the client
 *				turns them into an instant.  Fields that may be local are
 *				SmsWhen values and have a companion key <name>_utc.
 *	check		a function that returns NULL when a string value is
 *				valid, else a phrase saying what a valid one looks like;
 *				the same phrase ends up in the writer's and the reader's
 *				error message.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_VALUES_H
#define SMS_FMT_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define SMS_FMT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SMS_FMT_PRINTF(f, a)
#endif

#define SMS_TIME_NONE			INT64_MIN
#define SMS_FMT_TIME_BUFLEN		21	/* "YYYY-MM-DDTHH:MM:SSZ" + NUL */
#define SMS_FMT_QUOTE_BUFLEN	100 /* what sms_fmt_quote is given */
#define SMS_FMT_MAX_RUN_MINUTES 10080	/* a week: run limits, windows */

/* An instant (utc) or a wall-clock reading of each client (!utc). */
typedef struct SmsWhen
{
	int64_t		secs;			/* SMS_TIME_NONE: absent */
	bool		utc;
} SmsWhen;

/* See "check" above. */
typedef const char *(*SmsCheck) (const char *v);

/* Errors: err may be NULL; both return false for "return sms_fmt_oom(...)" */
extern bool sms_fmt_error(char *err, size_t errlen, const char *fmt,...) SMS_FMT_PRINTF(3, 4);
extern bool sms_fmt_oom(char *err, size_t errlen);

/*
 * A value for an error message in buf (SMS_FMT_QUOTE_BUFLEN bytes or
 * more): escaped as in a file, so that hostile input never puts a line
 * break into a message, and cut at a character boundary.
 */
extern const char *sms_fmt_quote(const char *v, char *buf, size_t buflen);

/* '%' and the control bytes are written %XX in a file; o gets 3 bytes */
extern bool sms_fmt_needs_escape(unsigned char c);
extern char *sms_fmt_put_escape(char *o, unsigned char c);

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
extern bool sms_fmt_valid_utf8(const char *s, size_t len);
/* C0, DEL, C1 and U+2028/U+2029 in a valid UTF-8 string */
extern bool sms_fmt_has_control_char(const char *s);
extern bool sms_fmt_valid_site_code(const char *s);
extern bool sms_fmt_valid_sms_id(const char *s);

/* Non-negative decimal without sign or leading zeros, no overflow. */
extern bool sms_fmt_parse_uint(const char *s, int64_t *out);
/* Exactly n decimal digits at s. */
extern bool sms_fmt_parse_digits(const char *s, int n, int *out);

/* buf must hold SMS_FMT_TIME_BUFLEN bytes; years 0001-9999 */
extern bool sms_fmt_format_time(int64_t secs, bool utc, char *buf);
/* utc: whether s must be the UTC form (with Z) or the local one (without) */
extern bool sms_fmt_parse_time(const char *s, bool utc, int64_t *secs);

/*
 * Split s at sep into a malloc'd array of malloc'd strings (*n of them; NULL
 * and 0 for NULL or ""), as the typed formats take lists.  Returns false
 * when out of memory.  sms_fmt_free_list releases what it made.
 */
extern bool sms_fmt_split(const char *s, char sep, char ***out, size_t *n);
extern void sms_fmt_free_list(char **list, size_t n);

/* Checks of the values more than one format holds. */
extern const char *sms_check_sms_id(const char *v);
extern const char *sms_check_site(const char *v);
extern const char *sms_check_name(const char *v);	/* display names */
extern const char *sms_check_command_line(const char *v);
extern const char *sms_check_platform(const char *v);
extern const char *sms_check_path(const char *v);	/* absolute, canonical */
extern const char *sms_check_sha256(const char *v);

#endif							/* SMS_FMT_VALUES_H */
