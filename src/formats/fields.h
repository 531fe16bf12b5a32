/*-------------------------------------------------------------------------
 *
 * fields.h
 *	  Typed formats as tables: each section of a format is described once,
 *	  as a static table of fields, and one routine writes a C struct from
 *	  the table while another parses a section back into it.  Writing and
 *	  reading therefore cannot drift apart, and a new key is one line.
 *
 * Terms:
 *	field		one key of a section, tied to a member of a C struct by
 *				its offset: its type (SmsFieldType), whether it is
 *				required, and the rule its value follows (a check, a
 *				range, a list separator, a list of names).
 *	required	a reader refuses the section without the key, and a writer
 *				refuses a struct whose member is absent (NULL, or
 *				SMS_TIME_NONE).  An optional field is left out of the file
 *				when its member holds the absent value (NULL, SMS_TIME_NONE,
 *				0, false, the first name of an enum), and reads back as
 *				that value when the key is absent.
 *	repeated	sections "[<type> <arg>]" that each fill one element of an
 *	section		array: arg is 1, 2, ... (numbered) or a member of the
 *				element (the job ID of "[job CEN00012]").  Writers emit
 *				them in a fixed order (cmp), so that the same rows give
 *				the same bytes, and number them in that order.
 *	bare		a section named only "<type>", without its argument: a
 *	section		mistake, which a reader refuses rather than ignores.
 *	format spec	the header's table, the repeated sections, and the few
 *				steps of a format that a table cannot say (cross-field
 *				rules), run at fixed points of the generic routines.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_FIELDS_H
#define SMS_FMT_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ini.h"
#include "values.h"

typedef enum SmsFieldType
{
	SMS_FIELD_STRING,			/* char *, valid by check (none: NULL) */
	SMS_FIELD_INT,				/* int32_t or int64_t, from min to max */
	SMS_FIELD_BOOL,				/* bool, "true" or "false" */
	SMS_FIELD_UTC,				/* int64_t, a UTC time */
	SMS_FIELD_WHEN,				/* SmsWhen, with the key <key>_utc */
	SMS_FIELD_LIST,				/* char ** and its size_t count, joined by sep */
	SMS_FIELD_ENUM,				/* an enum or a bool: the index of its name */
	SMS_FIELD_CUSTOM			/* written and read by functions of the format */
} SmsFieldType;

/* SmsField.flags */
#define SMS_OPTIONAL		0x00
#define SMS_REQUIRED		0x01
#define SMS_SORTED			0x02	/* LIST: written and read back sorted */
#define SMS_WRITE_DEFAULT	0x04	/* optional ENUM: its first name is written too */
#define SMS_HAS_PRESENCE	0x08	/* INT: a bool member says whether it is there */

typedef struct SmsField SmsField;

/* CUSTOM fields: obj is the struct the table describes */
typedef bool (*SmsFieldWriter) (SmsFmtSection *s, const SmsField *field,
								const void *obj, char *err, size_t errlen);
typedef bool (*SmsFieldReader) (const SmsFmtSection *s, const SmsField *field,
								void *obj, char *err, size_t errlen);

struct SmsField
{
	const char *key;
	SmsFieldType type;
	unsigned	flags;
	size_t		offset;			/* of the member */
	size_t		size;			/* of the member: INT, ENUM */
	SmsCheck	check;			/* STRING; LIST: each item */
	int64_t		min;			/* INT */
	int64_t		max;
	size_t		aux_offset;		/* LIST: the count; INT: the presence bool */
	char		sep;			/* LIST */
	size_t		min_items;		/* LIST */
	const char *const *names;	/* ENUM: indexed by value */
	size_t		nnames;
	const char *what;			/* ENUM: "unknown <what> <value>" */
	const char *problem;		/* ENUM: what a reader says of another name */
	SmsFieldWriter write;		/* CUSTOM */
	SmsFieldReader read;
};

/*
 * One table line per field.  The key is the member's name, except for
 * ENUM and CUSTOM fields, whose key is given.  Macro parameters do not use
 * the names of SmsField's members, which the designators need.
 */
#define SMS_MEMBER_SIZE(T, m)	sizeof(((T *) 0)->m)
#define SMS_STRING(T, m, fl, chk) \
	{.key = #m, .type = SMS_FIELD_STRING, .flags = (fl), .offset = offsetof(T, m), \
	 .check = (chk)}
#define SMS_INT(T, m, fl, lo, hi) \
	{.key = #m, .type = SMS_FIELD_INT, .flags = (fl), .offset = offsetof(T, m), \
	 .size = SMS_MEMBER_SIZE(T, m), .min = (lo), .max = (hi)}
#define SMS_INT_IF(T, m, present, lo, hi) \
	{.key = #m, .type = SMS_FIELD_INT, .flags = SMS_HAS_PRESENCE, .offset = offsetof(T, m), \
	 .size = SMS_MEMBER_SIZE(T, m), .min = (lo), .max = (hi), .aux_offset = offsetof(T, present)}
#define SMS_BOOL(T, m, fl) \
	{.key = #m, .type = SMS_FIELD_BOOL, .flags = (fl), .offset = offsetof(T, m)}
#define SMS_UTC(T, m, fl) \
	{.key = #m, .type = SMS_FIELD_UTC, .flags = (fl), .offset = offsetof(T, m)}
#define SMS_WHEN(T, m, fl) \
	{.key = #m, .type = SMS_FIELD_WHEN, .flags = (fl), .offset = offsetof(T, m)}
/* the count is the member n<m>; a list is always written, maybe empty */
#define SMS_LIST(T, m, fl, separator, least, chk) \
	{.key = #m, .type = SMS_FIELD_LIST, .flags = (fl), .offset = offsetof(T, m), \
	 .aux_offset = offsetof(T, n##m), .sep = (separator), .min_items = (least), .check = (chk)}
#define SMS_ENUM(T, m, k, fl, namelist, whatname, wrong) \
	{.key = (k), .type = SMS_FIELD_ENUM, .flags = (fl), .offset = offsetof(T, m), \
	 .size = SMS_MEMBER_SIZE(T, m), .names = (namelist), \
	 .nnames = sizeof(namelist) / sizeof((namelist)[0]), .what = (whatname), .problem = (wrong)}
#define SMS_CUSTOM(T, m, k, writer, reader) \
	{.key = (k), .type = SMS_FIELD_CUSTOM, .offset = offsetof(T, m), \
	 .write = (writer), .read = (reader)}
#define SMS_NFIELDS(table)		(sizeof(table) / sizeof((table)[0]))

/*
 * A program's run mode (SMS's "Run with administrative rights" / "Run with
 * user's rights") held in a bool: run_with=user_rights, or absent
 * (administrative rights, the agent's own account), so that files written
 * before the key existed keep their meaning.
 */
extern const char *const sms_run_with_names[2];
#define SMS_RUN_WITH(T, m) \
	SMS_ENUM(T, m, "run_with", SMS_OPTIONAL, sms_run_with_names, "run mode", \
			 "must be administrative_rights or user_rights")

/* Write, read and free the fields of one section (obj: its struct). */
extern bool sms_fields_write(SmsFmtSection *s, const SmsField *fields, size_t n,
							 const void *obj, char *err, size_t errlen);
extern bool sms_fields_read(const SmsFmtSection *s, const SmsField *fields, size_t n,
							void *obj, char *err, size_t errlen);
extern void sms_fields_free(const SmsField *fields, size_t n, void *obj);

/* The messages of a field that is wrong: false, with err written. */
extern bool sms_field_read_problem(const SmsFmtSection *s, const char *key,
								   const char *problem, const char *value,
								   char *err, size_t errlen);
extern bool sms_field_write_problem(const SmsFmtSection *s, const char *key,
									const char *problem, const char *value,
									char *err, size_t errlen);

typedef struct SmsSectionSpec
{
	const char *type;			/* "[<type> <arg>]" */
	const SmsField *fields;
	size_t		nfields;
	size_t		elem_size;
	size_t		array_offset;	/* in the parent struct: the elements */
	size_t		count_offset;	/* and their size_t count */
	/* numbered when arg_what is NULL; else the arg is a string member */
	const char *arg_what;		/* for messages: "job ID" */
	size_t		arg_offset;
	SmsCheck	arg_check;
	/* on pointers to elements: the order of the sections in a file */
	int			(*cmp) (const void *a, const void *b);
	/* if set, two elements cmp finds equal are refused, and this says so */
	void		(*duplicate) (const void *elem, char *err, size_t errlen);
	/* if set, a writer's rule across the element's fields, before any is written */
	bool		(*write_check) (const SmsFmtSection *s, const void *elem,
								char *err, size_t errlen);
} SmsSectionSpec;

extern size_t sms_fields_count_sections(const SmsFmtDoc *doc, const char *type);
/* Refuse a bare section of any of the specs. */
extern bool sms_fields_check_bare(const SmsFmtDoc *doc, const SmsSectionSpec *specs,
								  size_t n, char *err, size_t errlen);
/* Append the sections of spec's elements, sorted, to doc. */
extern bool sms_fields_write_sections(SmsFmtDoc *doc, const SmsSectionSpec *spec,
									  const void *parent, char *err, size_t errlen);
/*
 * Fill the arrays of parent from doc's sections of the specs' types, in
 * one pass in file order; sections of other types are a newer writer's
 * and are skipped.
 */
extern bool sms_fields_read_sections(const SmsFmtDoc *doc, const SmsSectionSpec *specs,
									 size_t n, void *parent, char *err, size_t errlen);
extern void sms_fields_free_sections(const SmsSectionSpec *spec, void *parent);

/* An array of pointers to the elements of base, sorted by cmp; NULL: no memory. */
extern const void **sms_fields_sorted(const void *base, size_t n, size_t size,
									  int (*cmp) (const void *, const void *));

typedef struct SmsFormatSpec
{
	const char *format;			/* format= of the header */
	size_t		size;			/* of the file's struct */
	const SmsField *header;		/* the header's own keys */
	size_t		nheader;
	const SmsSectionSpec *sections;	/* written in this order */
	size_t		nsections;
	/* optional: after the header's fields are written */
	bool		(*write_extra) (SmsFmtSection *h, const void *obj, char *err, size_t errlen);
	/* optional: after the header's fields are read and bare sections refused */
	bool		(*read_extra) (const SmsFmtDoc *doc, void *obj, char *err, size_t errlen);
} SmsFormatSpec;

/*
 * The typed-format functions of sms_formats.h, for formats a spec says
 * entirely: to_text writes the header's fields, write_extra and the
 * sections; parse fills a zeroed struct, or leaves it zeroed on failure;
 * free releases what parse allocated and zeroes the struct.
 */
extern bool sms_format_to_text(const SmsFormatSpec *spec, const void *obj,
							   char **out, size_t *len, char *err, size_t errlen);
extern bool sms_format_parse(const SmsFormatSpec *spec, const char *buf, size_t len,
							 void *obj, char *err, size_t errlen);
extern void sms_format_free(const SmsFormatSpec *spec, void *obj);
/* Serialize doc into *out unless ok is false; doc is freed either way. */
extern bool sms_format_finish(SmsFmtDoc *doc, bool ok, char **out, size_t *len,
							  char *err, size_t errlen);

#endif							/* SMS_FMT_FIELDS_H */
