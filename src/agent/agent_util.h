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

/*
 * Log lines: "<time> <level>: <message>\n", the time in ISO 8601 UTC with
 * milliseconds (2026-12-06T04:01:02.123Z), read from the real clock (not
 * --now: a log says when things happened).  Errors and warnings go to
 * standard error, info and debug lines to standard output; lines below
 * agent_log_level are dropped.
 */
typedef enum AgentLogLevel
{
	AGENT_LOG_ERROR,
	AGENT_LOG_WARNING,
	AGENT_LOG_INFO,
	AGENT_LOG_DEBUG
} AgentLogLevel;

extern AgentLogLevel agent_log_level;

/* the level named name (error, warning, info, debug) into *level; false if none */
extern bool agent_log_level_from_name(const char *name, AgentLogLevel *level);

extern void agent_log(AgentLogLevel level, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* what stops the agent or a command: bad usage, a failed poll */
extern void agent_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));
/* what the agent reports and goes on with */
extern void agent_warn(const char *fmt,...) __attribute__((format(printf, 1, 2)));
/* what a poll did: offers, downloads, runs */
extern void agent_info(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void agent_debug(const char *fmt,...) __attribute__((format(printf, 1, 2)));

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
