/*-------------------------------------------------------------------------
 *
 * downloads.c
 *	  The agent's download cache: where it is, and the offers' packages
 *	  downloaded into it.
 *
 * Terms:
 *	outcome		what a download of a package version came to: "downloaded",
 *				"present", "too-large", "full", "unavailable" or "error".
 *				The last outcome of each version is kept in <state
 *				dir>/downloads, lines "<PACKAGE>.<VERSION> <outcome>", so
 *				that a status message says each new outcome once: a full
 *				cache is reported once, not at every poll.
 *
 * The cache itself is download_cache.h and the files it names.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_util.h"
#include "cache_fetch.h"
#include "downloads.h"
#include "state_files.h"
#include "status_report.h"

char *
cache_location(const Config *c)
{
	size_t		len;
	char	   *buf = state_read(c, "cache.location", &len);

	if (buf != NULL)
	{
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		if (len > 0 && buf[0] == '/')
			return buf;
		free(buf);
	}
	return c->cache_dir ? xstrdup(c->cache_dir) : xpath_join(c->state_dir, "cache");
}

bool
agent_cache_open(const Config *c, Cache *cache, bool say)
{
	char		err[512];
	char	   *dir = cache_location(c);
	bool		ok = cache_open(cache, dir, c->cache_size, err, sizeof(err));

	if (!ok && say)
		agent_warn("%s", err);
	free(dir);
	return ok;
}

static const char *
outcome_name(CacheResult r)
{
	switch (r)
	{
		case CACHE_DOWNLOADED:
			return "downloaded";
		case CACHE_PRESENT:
			return "present";
		case CACHE_TOO_LARGE:
			return "too-large";
		case CACHE_FULL:
			return "full";
		case CACHE_UNAVAILABLE:
			return "unavailable";
		case CACHE_ERROR:
			break;
	}
	return "error";
}

/* Status message about the download of x's package that came to r (msg says how). */
static void
report_download(const Config *c, int64_t now, const Offer *x, CacheResult r, const char *msg)
{
	char		text[1400];

	snprintf(text, sizeof(text), "Package %s version %lld %s: %s", x->package_id, (long long) x->version,
			 r == CACHE_DOWNLOADED ? "downloaded into the cache" : "not downloaded", msg);
	status_message_about(c, now,
						 r == CACHE_DOWNLOADED ? MSG_DOWNLOADED :
						 (r == CACHE_FULL || r == CACHE_TOO_LARGE) ? MSG_CACHE_FULL : MSG_NOT_DOWNLOADED,
						 r == CACHE_DOWNLOADED ? SMS_STATUS_INFO : SMS_STATUS_WARNING,
						 x->kind, x->id, x->package_id, text, NO_EXIT_CODE);
}

void
download_offers(const Config *c, int64_t now, const Offers *o)
{
	Cache		cache;
	char	   *last;
	TextBuf		out;

	if (!agent_cache_open(c, &cache, true))
		return;
	last = state_read(c, "downloads", NULL);
	textbuf_init(&out, 256);
	for (size_t i = 0; i < o->n; i++)
	{
		const Offer *x = &o->items[i];
		char		msg[1024];
		char		key[64];
		char		line[128];
		const char *pos = NULL;
		CacheResult r;

		if (x->waiting || x->sha256[0] == '\0' || x->nlocations == 0)
			continue;
		snprintf(key, sizeof(key), "%s.%lld ", x->package_id, (long long) x->version);
		if (next_line_with(out.data, &pos, key) != NULL)
			continue;			/* another offer of the same package, handled above */
		r = cache_fetch(&cache, x->package_id, x->version, x->sha256, x->locations, x->nlocations,
						now, msg, sizeof(msg));
		agent_info("%s %s version %lld: %s",
			   r == CACHE_DOWNLOADED || r == CACHE_PRESENT ? "cached" : "not downloaded",
			   x->package_id, (long long) x->version, msg);
		snprintf(line, sizeof(line), "%s%s\n", key, outcome_name(r));
		textbuf_append(&out, "%s", line);
		if (!has_line(last, line) && r != CACHE_PRESENT)
			report_download(c, now, x, r, msg);
	}
	state_write(c, "downloads", out.data, out.len);
	fflush(stdout);
	free(out.data);
	free(last);
	cache_close(&cache);
}
