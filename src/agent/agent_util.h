/*-------------------------------------------------------------------------
 *
 * agent_util.h
 *	  Output, memory and text helpers of the client agent (agent_util.c).
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMSDIST_AGENT_UTIL_H
#define SMSDIST_AGENT_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define AGENT_PROGNAME		"smsdist-agent"

/* "smsdist-agent: <message>\n" on standard error */
extern void agent_warn(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* Zeroed memory, a copy of s, "dir/sub": each exits (status 1) when out of memory. */
extern void *xmalloc(size_t n);
extern char *xstrdup(const char *s);
extern char *xpath_join(const char *dir, const char *sub);

/*
 * A text that grows as lines are appended; data is always NUL-terminated
 * (empty after textbuf_init), so it can be searched while it grows.
 */
typedef struct TextBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} TextBuf;

extern void textbuf_init(TextBuf *b, size_t cap);
extern void textbuf_append(TextBuf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#endif							/* SMSDIST_AGENT_UTIL_H */
