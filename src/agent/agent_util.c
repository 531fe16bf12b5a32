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
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_util.h"
#include "file_tree.h"

void
agent_warn(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", AGENT_PROGNAME);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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
