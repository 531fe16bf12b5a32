/*-------------------------------------------------------------------------
 *
 * link_rule.h
 *	  The rule a symbolic link in a package must obey (docs/packages.md,
 *	  "What a source may hold"), applied alike by the server (the build,
 *	  every extraction: src/package/package_manifest.c) and by the agent's
 *	  cache (src/agent/cache_manifest.c), so the two cannot drift.
 *
 * Plain C99, like every file of src/formats.
 *
 * Terms:
 *	link path	the link's own path in the package, relative, '/'-separated
 *	target		what the link points to, as stored in the package
 *	resolved	the target resolved on names only, component by component
 *				from the link's directory: nothing on disk is looked at, so
 *				the answer is the same at the build, at every extraction
 *				and on a client
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SMS_FMT_LINK_RULE_H
#define SMS_FMT_LINK_RULE_H

#include <stdbool.h>
#include <stddef.h>

/* Is path (a directory reached on the way) itself a link of the package? */
typedef bool (*SmsFmtIsLinkFn) (void *arg, const char *path);

/*
 * Resolve target from the directory of the link at linkpath and check the
 * rule's walk: it stays inside the package, names neither the top
 * directory nor the link nor a directory that holds it, and passes through
 * no directory that is_link says is a link.  res must hold
 * strlen(linkpath) + strlen(target) + 2 bytes; when the answer is that the
 * target passes through a link, res names that link.  The caller checks
 * first what is about the target's text (empty, absolute, length, names).
 * NULL if the walk obeys the rule, else why not (a static phrase).
 */
extern const char *sms_fmt_link_walk_problem(const char *linkpath, const char *target,
											 char *res, SmsFmtIsLinkFn is_link,
											 void *arg);

/*
 * The phrase sms_fmt_link_walk_problem returns for a link on the way (the
 * same pointer, so a caller may compare it and name the link from res).
 */
extern const char sms_fmt_link_through_link[];

#endif							/* SMS_FMT_LINK_RULE_H */
