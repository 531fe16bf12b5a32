/*-------------------------------------------------------------------------
 *
 * agent_util.c
 *	  Output, memory and text helpers of the client agent.
 *
 * The agent is a short-lived command-line program: running out of memory
 * ends it (status 1, said on standard error) rather than being handled at
 * every call; the x-prefixed functions do that.  A TextBuf is the text of
 * a state file or of a report, built a line at a time.
 *
 * Log lines carry their time and level so that a service's log (the
 * journal, a file) can be read without the agent's context; the message
 * text after "<level>: " is what the tests and administrators search for.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE				/* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "agent_util.h"
#include "file_tree.h"

AgentLogLevel agent_log_level = AGENT_LOG_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

bool
agent_log_level_from_name(const char *name, AgentLogLevel *level)
{
	for (int i = 0; i < (int) (sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcmp(name, level_names[i]) == 0)
		{
			*level = (AgentLogLevel) i;
			return true;
		}
	return false;
}

static void
agent_vlog(AgentLogLevel level, const char *fmt, va_list ap)
{
	FILE	   *out = level <= AGENT_LOG_WARNING ? stderr : stdout;
	struct timeval tv;
	struct tm	tm;
	char		stamp[40];
	char	   *text;

	if (level > agent_log_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* the line in one piece: standard error is unbuffered */
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	/* libpq's messages end with a newline: a line ends once */
	if (text != NULL)
	{
		size_t		len = strlen(text);

		while (len > 0 && text[len - 1] == '\n')
			text[--len] = '\0';
	}
	fprintf(out, "%s.%03dZ %s: %s\n", stamp, (int) (tv.tv_usec / 1000), level_names[level],
			text ? text : "(out of memory)");
	free(text);
}

void
agent_log(AgentLogLevel level, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	agent_vlog(level, fmt, ap);
	va_end(ap);
}

void
agent_error(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	agent_vlog(AGENT_LOG_ERROR, fmt, ap);
	va_end(ap);
}

void
agent_warn(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	agent_vlog(AGENT_LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
agent_info(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	agent_vlog(AGENT_LOG_INFO, fmt, ap);
	va_end(ap);
}

void
agent_debug(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	agent_vlog(AGENT_LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void *
xmalloc(size_t n)
{
	void	   *p = calloc(1, n ? n : 1);

	if (p == NULL)
	{
		agent_warn("out of memory");
		exit(1);
	}
	return p;
}

char *
xstrdup(const char *s)
{
	char	   *p = xmalloc(strlen(s) + 1);

	strcpy(p, s);
	return p;
}

char *
xpath_join(const char *dir, const char *sub)
{
	char	   *p = path_join(dir, sub);

	if (p == NULL)
	{
		agent_warn("out of memory");
		exit(1);
	}
	return p;
}

void
textbuf_init(TextBuf *b, size_t cap)
{
	b->cap = cap ? cap : 1;
	b->data = xmalloc(b->cap);
	b->len = 0;
}

void
textbuf_append(TextBuf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < b->cap - b->len)
		{
			b->len += (size_t) n;
			return;
		}
		/* too small: twice as large, and again */
		{
			char	   *more = xmalloc(b->cap * 2);

			memcpy(more, b->data, b->len);
			free(b->data);
			b->data = more;
			b->cap *= 2;
		}
	}
}
