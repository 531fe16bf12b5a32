/*-------------------------------------------------------------------------
 *
 * fuzz_query_rule.c
 *	  libFuzzer target for the collection query-rule compiler
 *	  (src/core/query_rule.c, sms_compile_query_rule), run outside the server
 *	  over pg_shim.c.
 *
 * An operator writes the rule; the Collection Evaluator, with the rights of
 * the extension's owner, runs the SQL condition it compiles to.  The input
 * is taken as a text value of a UTF-8 database would be: up to its first
 * NUL, and only if it is valid UTF-8 (anything else cannot reach the
 * compiler).  Properties checked:
 *
 *	errors	a rule is compiled or refused with ERRCODE_SYNTAX_ERROR and a
 *			message beginning "invalid query rule: " -- never another
 *			error, a crash or a sanitizer report.
 *	shape	the compiled condition, read with PostgreSQL's lexical rules
 *			(standard_conforming_strings on or off: a literal with a
 *			backslash is always written E'...'), consists only of:
 *			string literals; the words r, the attribute columns, the cast
 *			types and AND OR NOT IN IS NULL LIKE ILIKE; the operators
 *			= <> < <= > >= <<=; "::" before a cast type, "." between r and a
 *			column; parentheses (balanced, the whole condition in one pair),
 *			commas and spaces.  So no ';', no comment, no quoted
 *			identifier, no dollar quote, no function call and no number
 *			outside a literal: the rule cannot add a statement or call
 *			anything.
 *	LIKE	unless SMSDIST_FUZZ_LIKE=0 in the environment, also: a LIKE or
 *			ILIKE pattern does not end with an unescaped backslash (the
 *			default escape character), which compiles but fails at every
 *			evaluation.  Off by default: see README.md.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "pg_shim.h"

#include <stdio.h>
#include <stdlib.h>

#include "mb/pg_wchar.h"
#include "utils/elog.h"

extern char *sms_compile_query_rule(const char *rule);

static bool check_like = false;

#define FAIL(...) \
	do { \
		fprintf(stderr, "fuzz property failed for rule \"%s\" -> %s\n", rule, sql); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} while (0)

static const char *const words[] = {
	"r", "sms_id", "name", "domain", "site_code", "platform", "os_version",
	"ip_address", "memory_mb", "free_disk_mb", "last_seen",
	"text", "inet", "integer", "bigint", "timestamptz",
	"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE",
};
static const char *const types[] = {"text", "inet", "integer", "bigint", "timestamptz"};
static const char *const ops[] = {"=", "<>", "<", "<=", ">", ">=", "<<="};

static bool
in_list(const char *s, size_t n, const char *const *list, size_t nlist)
{
	for (size_t i = 0; i < nlist; i++)
		if (strlen(list[i]) == n && strncmp(list[i], s, n) == 0)
			return true;
	return false;
}

static bool
word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9');
}

static void
check_sql(const char *rule, const char *sql)
{
	size_t		n = strlen(sql);
	int			depth = 0;
	char		prev_word[16] = "";

	if (n < 2 || sql[0] != '(' || sql[n - 1] != ')')
		FAIL("the condition is not in parentheses");
	for (size_t i = 0; i < n;)
	{
		char		c = sql[i];

		if (c == '\'' || (c == 'E' && sql[i + 1] == '\''))
		{
			bool		escape = (c == 'E');

			i += escape ? 2 : 1;
			for (;;)
			{
				if (sql[i] == '\0')
					FAIL("unterminated literal");
				if (escape && sql[i] == '\\')
				{
					/* quote_literal_cstr writes only \\ in an E'' literal */
					if (sql[i + 1] != '\\')
						FAIL("a backslash escape other than \\\\ at %zu", i);
					i += 2;
					continue;
				}
				if (sql[i] == '\'' && sql[i + 1] == '\'')
				{
					i += 2;
					continue;
				}
				if (sql[i] == '\'')
				{
					i++;
					break;
				}
				i++;
			}
			if (check_like && (strcmp(prev_word, "LIKE") == 0 || strcmp(prev_word, "ILIKE") == 0))
			{
				/*
				 * The decoded pattern ends in a backslash that escapes
				 * nothing when its run of final backslashes is odd.
				 */
				size_t		nb = 0;
				size_t		j = i - 2;	/* the last character inside */

				while (j > 0 && sql[j] == '\\')
				{
					nb++;
					j--;
				}
				/* each decoded backslash is two in the literal */
				if (escape && (nb / 2) % 2 == 1)
					FAIL("a LIKE pattern ends with an escape character");
			}
			prev_word[0] = '\0';
		}
		else if (word_char(c))
		{
			size_t		s = i;

			if (c >= '0' && c <= '9')
				FAIL("a number outside a literal at %zu", i);
			while (word_char(sql[i]))
				i++;
			if (!in_list(sql + s, i - s, words, lengthof(words)))
				FAIL("unexpected word \"%.*s\" at %zu", (int) (i - s), sql + s, s);
			snprintf(prev_word, sizeof(prev_word), "%.*s", (int) (i - s), sql + s);
		}
		else if (c == '(' || c == ')')
		{
			depth += (c == '(') ? 1 : -1;
			if (depth < 0 || (depth == 0 && i != n - 1))
				FAIL("unbalanced parenthesis at %zu", i);
			i++;
		}
		else if (c == ' ' || c == ',')
			i++;
		else if (c == '.')
		{
			if (strcmp(prev_word, "r") != 0 || i == 0 || sql[i - 1] != 'r')
				FAIL("'.' not after the alias r at %zu", i);
			i++;
		}
		else if (c == ':')
		{
			size_t		s;

			if (sql[i + 1] != ':')
				FAIL("a single ':' at %zu", i);
			i += 2;
			s = i;
			while (word_char(sql[i]))
				i++;
			if (!in_list(sql + s, i - s, types, lengthof(types)))
				FAIL("a cast to \"%.*s\"", (int) (i - s), sql + s);
		}
		else if (c == '<' || c == '>' || c == '=')
		{
			size_t		s = i;

			while (sql[i] == '<' || sql[i] == '>' || sql[i] == '=')
				i++;
			if (!in_list(sql + s, i - s, ops, lengthof(ops)))
				FAIL("operator \"%.*s\" at %zu", (int) (i - s), sql + s, s);
		}
		else
			FAIL("character '%c' (0x%02x) outside a literal at %zu", c, (unsigned char) c, i);
	}
	if (depth != 0)
		FAIL("unbalanced parentheses");
}

static const char *
sqlstate(int code)
{
	static char buf[6];

	for (int i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(code);
		code >>= 6;
	}
	buf[5] = '\0';
	return buf;
}

typedef struct Call
{
	const char *rule;
	char	   *sql;
} Call;

static void
compile(void *arg)
{
	Call	   *call = arg;

	call->sql = sms_compile_query_rule(call->rule);
}

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *v = getenv("SMSDIST_FUZZ_LIKE");

	/* on unless SMSDIST_FUZZ_LIKE=0: the compiler refuses such patterns */
	check_like = !(v != NULL && strcmp(v, "0") == 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *rule;
	size_t		len = strnlen((const char *) data, size);
	Call		call;

	if (pg_encoding_verifymbstr(PG_UTF8, (const char *) data, len) != (int) len)
		return 0;
	rule = malloc(len + 1);
	memcpy(rule, data, len);
	rule[len] = '\0';
	call.rule = rule;
	call.sql = NULL;
	if (shim_try(compile, &call))
	{
		const char *sql = call.sql;

		if (sql == NULL)
			FAIL("no condition and no error");
		check_sql(rule, sql);
	}
	else if (shim_error_code != ERRCODE_SYNTAX_ERROR ||
			 strncmp(shim_error_message, "invalid query rule: ", 20) != 0)
	{
		const char *sql = "(error)";

		FAIL("refused with SQLSTATE %s: %s", sqlstate(shim_error_code),
			 shim_error_message);
	}
	if (getenv("SMSDIST_FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", shim_error_message[0] ? shim_error_message : "accepted");
	shim_reset_memory();
	free(rule);
	return 0;
}
