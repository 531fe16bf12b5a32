/*-------------------------------------------------------------------------
 *
 * link_rule.c
 *	  The walk of the link rule (see link_rule.h for the terms).
 *
 * A directory that is itself a link would make ".." after it mean something
 * else than the lexical parent, hence the refusal of links on the way; the
 * last component may be a link, whose own target is checked in its turn.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include "link_rule.h"

#include <string.h>

const char	sms_fmt_link_through_link[] = "its target passes through a symbolic link";

const char *
sms_fmt_link_walk_problem(const char *linkpath, const char *target, char *res,
						  SmsFmtIsLinkFn is_link, void *arg)
{
	const char *slash = strrchr(linkpath, '/');
	size_t		len = slash ? (size_t) (slash - linkpath) : 0;
	const char *comp = target;

	/* res: the directory reached so far, without a trailing '/' */
	memcpy(res, linkpath, len);
	res[len] = '\0';
	for (;;)
	{
		const char *next = strchr(comp, '/');
		size_t		clen = next ? (size_t) (next - comp) : strlen(comp);

		if (clen == 0 || (clen == 1 && comp[0] == '.'))
		{
			/* "a//b", "a/./b": nothing moves */
		}
		else if (len > 0 && is_link(arg, res))
			return sms_fmt_link_through_link;	/* res names it */
		else if (clen == 2 && comp[0] == '.' && comp[1] == '.')
		{
			char	   *up;

			if (len == 0)
				return "its target leaves the package";
			up = strrchr(res, '/');
			len = up ? (size_t) (up - res) : 0;
			res[len] = '\0';
		}
		else
		{
			if (len > 0)
				res[len++] = '/';
			memcpy(res + len, comp, clen);
			len += clen;
			res[len] = '\0';
		}
		if (next == NULL)
			break;
		comp = next + 1;
	}
	if (len == 0)
		return "its target is the package's top directory";
	if (strncmp(linkpath, res, len) == 0 && (linkpath[len] == '/' || linkpath[len] == '\0'))
		return linkpath[len] == '\0' ? "its target is the link itself"
			: "its target is a directory that holds the link";
	return NULL;
}
