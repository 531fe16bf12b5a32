/*-------------------------------------------------------------------------
 *
 * query_rule.c
 *	  Collection query rules: a small predicate language over the attributes
 *	  of system resources, compiled to a SQL condition.
 *
 * A query rule is written by an operator and evaluated by the Collection
 * Evaluator, a background worker with the rights of the extension's owner.
 * So the rule must not be able to run other SQL, call functions or read
 * anything but the attributes of smsdist.system_resources that every
 * reader may read.  It is therefore never pasted into SQL: it is parsed
 * here, and the SQL is generated from the parse -- column names from a
 * fixed list, every value a quoted literal cast to the column's type and
 * checked by that type's input function at compile time.  Whatever the
 * text, the output is one of the shapes below, or an ERROR that says what
 * is wrong and where.
 *
 * Terms:
 *	attribute	one of the columns in "attributes" below.
 *	predicate	attribute op value | attribute [NOT] IN (value, ...) |
 *				attribute IS [NOT] NULL | attribute [NOT] LIKE 'pattern' |
 *				attribute [NOT] ILIKE 'pattern' | ip_address IN SUBNET 'cidr'
 *	rule		predicates combined with AND, OR, NOT and parentheses.
 *	value		a 'single-quoted string' ('' for a quote) or a number.
 *
 * The generated condition refers to the table alias "r" (system_resources).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "smsdist.h"
#include "query_rule.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "miscadmin.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#define MAX_DEPTH	64

typedef struct Attribute
{
	const char *name;			/* as written in a rule (lower case) */
	const char *column;			/* the SQL expression over alias r */
	Oid			type;			/* the type values are cast to */
	const char *type_name;		/* for the cast in the generated SQL */
	bool		is_text;		/* LIKE and ILIKE allowed */
} Attribute;

static const Attribute attributes[] = {
	{"sms_id", "r.sms_id::text", TEXTOID, "text", true},
	{"name", "r.name::text", TEXTOID, "text", true},
	{"domain", "r.domain::text", TEXTOID, "text", true},
	{"site_code", "r.site_code::text", TEXTOID, "text", true},
	{"platform", "r.platform::text", TEXTOID, "text", true},
	{"os_version", "r.os_version", TEXTOID, "text", true},
	{"ip_address", "r.ip_address", INETOID, "inet", false},
	{"memory_mb", "r.memory_mb", INT4OID, "integer", false},
	{"free_disk_mb", "r.free_disk_mb", INT8OID, "bigint", false},
	{"last_seen", "r.last_seen", TIMESTAMPTZOID, "timestamptz", false},
};

typedef enum TokenKind
{
	T_END, T_WORD, T_STRING, T_NUMBER, T_LPAREN, T_RPAREN, T_COMMA, T_OP
} TokenKind;

typedef struct Parser
{
	const char *text;
	const char *p;
	TokenKind	kind;
	char	   *tok;			/* word (lower case), string, number or operator */
	int			tok_pos;		/* 1-based character position, for messages */
	int			depth;
	StringInfoData out;
} Parser;

static void
pg_attribute_noreturn()
pg_attribute_printf(2, 3)
rule_error(Parser *ps, const char *fmt,...)
{
	va_list		ap;
	char		buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("invalid query rule: %s at character %d", buf, ps->tok_pos),
			 errdetail("Query rules are conditions on the attributes sms_id, name, domain, site_code, platform, os_version, ip_address, memory_mb, free_disk_mb and last_seen, with = <> < <= > >=, [NOT] IN (...), IS [NOT] NULL, [NOT] LIKE, [NOT] ILIKE, ip_address IN SUBNET '...', AND, OR, NOT and parentheses."),
			 errhint("Write values as 'quoted strings' or numbers, for example: platform = 'win32' AND memory_mb >= 512.")));
}

static void
next_token(Parser *ps)
{
	const char *p = ps->p;

	while (*p && isspace((unsigned char) *p))
		p++;
	ps->tok_pos = (int) (p - ps->text) + 1;
	if (*p == '\0')
	{
		ps->kind = T_END;
		ps->tok = "end of rule";
	}
	else if (*p == '(' || *p == ')' || *p == ',')
	{
		ps->kind = *p == '(' ? T_LPAREN : *p == ')' ? T_RPAREN : T_COMMA;
		ps->tok = pnstrdup(p, 1);
		p++;
	}
	else if (*p == '\'')
	{
		StringInfoData s;

		initStringInfo(&s);
		p++;
		for (;;)
		{
			if (*p == '\0')
				rule_error(ps, "unterminated string");
			if (*p == '\'' && p[1] == '\'')
			{
				appendStringInfoChar(&s, '\'');
				p += 2;
			}
			else if (*p == '\'')
			{
				p++;
				break;
			}
			else
				appendStringInfoChar(&s, *p++);
		}
		ps->kind = T_STRING;
		ps->tok = s.data;
	}
	else if (isdigit((unsigned char) *p) || (*p == '-' && isdigit((unsigned char) p[1])))
	{
		const char *start = p;

		p++;
		while (isdigit((unsigned char) *p) || *p == '.')
			p++;
		ps->kind = T_NUMBER;
		ps->tok = pnstrdup(start, p - start);
	}
	else if (isalpha((unsigned char) *p) || *p == '_')
	{
		const char *start = p;
		char	   *w;

		while (isalnum((unsigned char) *p) || *p == '_')
			p++;
		w = pnstrdup(start, p - start);
		for (char *c = w; *c; c++)
			*c = pg_tolower((unsigned char) *c);
		ps->kind = T_WORD;
		ps->tok = w;
	}
	else if (strncmp(p, "<=", 2) == 0 || strncmp(p, ">=", 2) == 0 ||
			 strncmp(p, "<>", 2) == 0 || strncmp(p, "!=", 2) == 0)
	{
		ps->kind = T_OP;
		ps->tok = pnstrdup(p, 2);
		if (strcmp(ps->tok, "!=") == 0)
			ps->tok = "<>";
		p += 2;
	}
	else if (*p == '=' || *p == '<' || *p == '>')
	{
		ps->kind = T_OP;
		ps->tok = pnstrdup(p, 1);
		p++;
	}
	else
	{
		ps->tok = pnstrdup(p, pg_mblen(p));
		rule_error(ps, "unexpected \"%s\"", ps->tok);
	}
	ps->p = p;
}

static bool
is_word(Parser *ps, const char *w)
{
	return ps->kind == T_WORD && strcmp(ps->tok, w) == 0;
}

static void
expect_word(Parser *ps, const char *w)
{
	if (!is_word(ps, w))
		rule_error(ps, "expected %s, found \"%s\"", w, ps->tok);
	next_token(ps);
}

/* A value for attribute a: checked by the type's input function now. */
static void
append_value(Parser *ps, const Attribute *a)
{
	Oid			infunc;
	Oid			ioparam;
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile Datum value = (Datum) 0;
	const char *literal;

	if (ps->kind != T_STRING && ps->kind != T_NUMBER)
		rule_error(ps, "expected a value for %s, found \"%s\"", a->name, ps->tok);
	getTypeInputInfo(a->type, &infunc, &ioparam);
	PG_TRY();
	{
		value = OidInputFunctionCall(infunc, ps->tok, ioparam, -1);
	}
	PG_CATCH();
	{
		/* an ERROR follows at once, so no subtransaction is needed */
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		rule_error(ps, "\"%s\" is not a valid %s for %s", ps->tok, a->type_name, a->name);
	}
	PG_END_TRY();

	/*
	 * A time is read under the writer's DateStyle and TimeZone, which the
	 * evaluator does not share ('01/02/2026' is another day, '13/01/2026'
	 * no day at all, under another DateStyle): the rule keeps the instant
	 * the writer meant, in ISO form, which every DateStyle reads alike.
	 */
	literal = ps->tok;
	if (a->type == TIMESTAMPTZOID)
	{
		TimestampTz ts = DatumGetTimestampTz(value);
		char		buf[MAXDATELEN + 1];

		if (TIMESTAMP_NOT_FINITE(ts))
			EncodeSpecialTimestamp(ts, buf);
		else
		{
			struct pg_tm tm;
			fsec_t		fsec;
			int			tz;
			const char *tzn;

			if (timestamp2tm(ts, &tz, &tm, &fsec, &tzn, NULL) != 0)
				rule_error(ps, "\"%s\" is not a valid %s for %s", ps->tok, a->type_name, a->name);
			EncodeDateTime(&tm, fsec, true, tz, NULL, USE_ISO_DATES, buf);
		}
		literal = pstrdup(buf);
	}
	appendStringInfo(&ps->out, "%s::%s", quote_literal_cstr(literal), a->type_name);
	next_token(ps);
}

/*
 * A LIKE or ILIKE pattern must be one that the matcher accepts whatever it
 * is matched against: PostgreSQL finds a pattern's faults only when the
 * match reaches them (a trailing escape, "LIKE pattern must not end with
 * escape character"), so a rule that passed one evaluation could fail the
 * next.  The default escape is the backslash; an escape takes the next
 * character, whatever it is.
 */
static void
check_like_pattern(Parser *ps, const char *op)
{
	const char *p = ps->tok;

	while (*p)
	{
		if (*p == '\\')
		{
			p++;
			if (*p == '\0')
				rule_error(ps, "the %s pattern '%s' ends with the escape character \\ (write \\\\ for a backslash)",
						   op, ps->tok);
		}
		p += pg_mblen(p);
	}
}

static void parse_or(Parser *ps);

static void
parse_predicate(Parser *ps)
{
	const Attribute *a = NULL;
	bool		negate = false;

	if (ps->kind != T_WORD)
		rule_error(ps, "expected an attribute, found \"%s\"", ps->tok);
	for (size_t i = 0; i < lengthof(attributes); i++)
		if (strcmp(attributes[i].name, ps->tok) == 0)
			a = &attributes[i];
	if (a == NULL)
		rule_error(ps, "unknown attribute \"%s\"", ps->tok);
	next_token(ps);

	if (ps->kind == T_OP)
	{
		appendStringInfo(&ps->out, "(%s %s ", a->column, ps->tok);
		next_token(ps);
		append_value(ps, a);
		appendStringInfoChar(&ps->out, ')');
		return;
	}
	if (is_word(ps, "is"))
	{
		next_token(ps);
		if (is_word(ps, "not"))
		{
			negate = true;
			next_token(ps);
		}
		expect_word(ps, "null");
		appendStringInfo(&ps->out, "(%s IS %sNULL)", a->column, negate ? "NOT " : "");
		return;
	}
	if (is_word(ps, "not"))
	{
		negate = true;
		next_token(ps);
	}
	if (is_word(ps, "like") || is_word(ps, "ilike"))
	{
		const char *op = is_word(ps, "like") ? "LIKE" : "ILIKE";

		if (!a->is_text)
			rule_error(ps, "%s is not text: %s cannot be used with it", a->name, op);
		next_token(ps);
		if (ps->kind != T_STRING)
			rule_error(ps, "expected a 'quoted pattern' after %s", op);
		check_like_pattern(ps, op);
		appendStringInfo(&ps->out, "(%s %s%s %s)", a->column, negate ? "NOT " : "", op,
						 quote_literal_cstr(ps->tok));
		next_token(ps);
		return;
	}
	if (is_word(ps, "in"))
	{
		next_token(ps);
		if (is_word(ps, "subnet"))
		{
			if (a->type != INETOID)
				rule_error(ps, "IN SUBNET applies to ip_address only");
			next_token(ps);
			appendStringInfo(&ps->out, "(%s(%s <<= ", negate ? "NOT " : "", a->column);
			append_value(ps, a);
			appendStringInfoString(&ps->out, "))");
			return;
		}
		if (ps->kind != T_LPAREN)
			rule_error(ps, "expected ( after IN");
		next_token(ps);
		appendStringInfo(&ps->out, "(%s %sIN (", a->column, negate ? "NOT " : "");
		for (;;)
		{
			append_value(ps, a);
			if (ps->kind == T_COMMA)
			{
				appendStringInfoString(&ps->out, ", ");
				next_token(ps);
				continue;
			}
			if (ps->kind != T_RPAREN)
				rule_error(ps, "expected , or ) in the IN list, found \"%s\"", ps->tok);
			next_token(ps);
			break;
		}
		appendStringInfoString(&ps->out, "))");
		return;
	}
	rule_error(ps, "expected an operator after %s, found \"%s\"", a->name, ps->tok);
}

static void
parse_not(Parser *ps)
{
	if (++ps->depth > MAX_DEPTH)
		rule_error(ps, "the rule is nested more than %d levels deep", MAX_DEPTH);
	if (is_word(ps, "not"))
	{
		next_token(ps);
		appendStringInfoString(&ps->out, "(NOT ");
		parse_not(ps);
		appendStringInfoChar(&ps->out, ')');
	}
	else if (ps->kind == T_LPAREN)
	{
		next_token(ps);
		appendStringInfoChar(&ps->out, '(');
		parse_or(ps);
		if (ps->kind != T_RPAREN)
			rule_error(ps, "expected ), found \"%s\"", ps->tok);
		next_token(ps);
		appendStringInfoChar(&ps->out, ')');
	}
	else
		parse_predicate(ps);
	ps->depth--;
}

static void
parse_and(Parser *ps)
{
	parse_not(ps);
	while (is_word(ps, "and"))
	{
		next_token(ps);
		appendStringInfoString(&ps->out, " AND ");
		parse_not(ps);
	}
}

static void
parse_or(Parser *ps)
{
	parse_and(ps);
	while (is_word(ps, "or"))
	{
		next_token(ps);
		appendStringInfoString(&ps->out, " OR ");
		parse_and(ps);
	}
}

/* Compile a rule to a SQL condition over alias r; ERROR if it is not valid. */
char *
sms_compile_query_rule(const char *rule)
{
	Parser		ps = {0};

	ps.text = ps.p = rule;
	initStringInfo(&ps.out);
	appendStringInfoChar(&ps.out, '(');
	next_token(&ps);
	if (ps.kind == T_END)
		rule_error(&ps, "the rule is empty");
	parse_or(&ps);
	if (ps.kind != T_END)
		rule_error(&ps, "unexpected \"%s\" after a complete condition", ps.tok);
	appendStringInfoChar(&ps.out, ')');
	return ps.out.data;
}

/* smsdist.compile_query_rule(text) RETURNS text */
PG_FUNCTION_INFO_V1(smsdist_compile_query_rule);
Datum
smsdist_compile_query_rule(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(sms_compile_query_rule(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}
