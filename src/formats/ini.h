/*-------------------------------------------------------------------------
 *
 * ini.h
 *	  The INI-like layer under every instruction-file format: documents of
 *	  sections of key=value entries, their text form, and its parser.
 *
 * Terms (docs/formats.md is the user documentation):
 *	document	an ordered list of sections; the text form is UTF-8 with
 *				LF line endings, at most SMS_FMT_MAX_FILE bytes and lines
 *				of at most SMS_FMT_MAX_LINE bytes.
 *	section		a header line "[name]" followed by "key=value" lines, in
 *				order.  Names: 1-128 of A-Z a-z 0-9 _ space . -; keys:
 *				1-64 of a-z 0-9 _; a key appears at most once per section
 *				and a name at most once per document.
 *	value		any UTF-8 text without NUL.  In the file '%', and every
 *				byte below 0x20 or equal to 0x7f, is written as %XX
 *				(upper-case hex), so a value can never end a line or start
 *				a section; readers refuse malformed escapes and values
 *				that are not valid UTF-8 once decoded.
 *	comment		an empty line, or one that starts with ';'.
 *	header		the first section of every file: [smsdist] with
 *				format=<format name> and version=<major>[.<minor>],
 *				followed by the format's top-level keys.  A reader refuses
 *				another format and a major version other than 1, and
 *				ignores keys and sections it does not know, so that a
 *				newer writer can add optional keys without a new major
 *				version.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_INI_H
#define SMS_FMT_INI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits a reader enforces and a writer respects (bytes). */
#define SMS_FMT_MAX_FILE		(64 * 1024 * 1024)
#define SMS_FMT_MAX_LINE		(1024 * 1024)	/* without its LF */
#define SMS_FMT_MAX_KEY			64
#define SMS_FMT_MAX_SECTION_NAME 128
#define SMS_FMT_VERSION			1	/* the major version written and read */

typedef struct SmsFmtEntry
{
	char	   *key;
	char	   *value;			/* decoded */
	int			line;			/* line number when parsed, else 0 */
} SmsFmtEntry;

typedef struct SmsFmtSection
{
	char	   *name;
	SmsFmtEntry *entries;		/* in file order */
	size_t		nentries;
	size_t		capacity;
	int			line;
} SmsFmtSection;

typedef struct SmsFmtDoc
{
	SmsFmtSection **sections;	/* in file order; [0] is the header */
	size_t		nsections;
	size_t		capacity;
} SmsFmtDoc;

/* A new document whose header says format=<format>, version=1. */
extern SmsFmtDoc *sms_fmt_doc_new(const char *format, char *err, size_t errlen);
extern void sms_fmt_doc_free(SmsFmtDoc *doc);

/* Append a section; the pointer stays valid until the document is freed. */
extern SmsFmtSection *sms_fmt_add_section(SmsFmtDoc *doc, const char *name,
										  char *err, size_t errlen);
/* The header section ([smsdist]), to add a format's top-level keys to. */
extern SmsFmtSection *sms_fmt_header(const SmsFmtDoc *doc);

/*
 * Append key=value to a section.  The key and the value's UTF-8 are checked
 * here; duplicate keys and sections are found by sms_fmt_serialize (a sort
 * rather than a search per key, so large documents stay fast).
 */
extern bool sms_fmt_set(SmsFmtSection *sec, const char *key, const char *value,
						char *err, size_t errlen);
extern bool sms_fmt_set_int(SmsFmtSection *sec, const char *key, int64_t value,
							char *err, size_t errlen);
extern bool sms_fmt_set_bool(SmsFmtSection *sec, const char *key, bool value,
							 char *err, size_t errlen);
/* secs as UTC or local (see "local time" in values.h) */
extern bool sms_fmt_set_time(SmsFmtSection *sec, const char *key, int64_t secs,
							 bool utc, char *err, size_t errlen);

/*
 * The text form of a document in a malloc'd, NUL-terminated buffer (*len
 * excludes the NUL).  Refuses what a reader would refuse: duplicates, a
 * line or a file over the limits.
 */
extern bool sms_fmt_serialize(const SmsFmtDoc *doc, char **out, size_t *len,
							  char *err, size_t errlen);

/*
 * Parse a buffer (need not be NUL-terminated).  format: the format name the
 * caller expects, or NULL to accept any (the header and its version are
 * checked either way).  On failure *out is NULL.
 */
extern bool sms_fmt_parse(const char *buf, size_t len, const char *format,
						  SmsFmtDoc **out, char *err, size_t errlen);

/* Look-ups: NULL when absent. */
extern const SmsFmtSection *sms_fmt_find_section(const SmsFmtDoc *doc, const char *name);
extern const SmsFmtEntry *sms_fmt_find_entry(const SmsFmtSection *sec, const char *key);
extern const char *sms_fmt_get(const SmsFmtSection *sec, const char *key);

#endif							/* SMS_FMT_INI_H */
