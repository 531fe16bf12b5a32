/*-------------------------------------------------------------------------
 *
 * cache_command.c
 *	  "smsdist-agent cache ...": the download cache's administration.
 *
 * Each command needs --state-dir (made if missing), opens the agent's
 * cache where it is now (downloads.h), brings its locks up to date, and
 * prints one line about what it did (or one per package for "show").  The
 * new place of a moved cache is kept in <state dir>/cache.location, so
 * that later runs find it whatever --cache-dir says.  Exit status: 0 done,
 * 1 it could not be done, 2 bad usage.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_util.h"
#include "cache_command.h"
#include "cache_move.h"
#include "cache_verify.h"
#include "downloads.h"
#include "state_files.h"

static void
show_cache(const Cache *cache)
{
	printf("cache %s: %lld of %lld bytes used, %zu package%s\n", cache->dir, (long long) cache_used(cache),
		   (long long) cache->limit, cache->n, cache->n == 1 ? "" : "s");
	for (size_t i = 0; i < cache->n; i++)
	{
		const CacheEntry *e = &cache->entries[i];
		char		dl[32],
					un[32];

		sms_fmt_format_time(e->downloaded_at, true, dl);
		sms_fmt_format_time(cache_unlock_at(e), true, un);
		printf("%s version %lld: %lld bytes, downloaded %s, %s %s%s\n", e->package_id, (long long) e->version,
			   (long long) e->bytes, dl, e->locked ? "locked until" : "unlocked since", un,
			   e->ran_at ? " (its program ran)" : "");
	}
}

static int
resize_cache(Cache *cache, const char *megabytes, int64_t now)
{
	char		err[512];
	char	   *end;
	long long	mb = strtoll(megabytes, &end, 10);

	if (*end != '\0' || mb < 1)
	{
		agent_error("cache size wants a whole number of megabytes, at least 1");
		return 2;
	}
	if (!cache_resize(cache, (int64_t) mb * 1024 * 1024, now, err, sizeof(err)))
	{
		agent_error("%s", err);
		return 1;
	}
	printf("cache %s: %lld bytes\n", cache->dir, (long long) cache->limit);
	return 0;
}

static int
move_cache(const Config *c, Cache *cache, const char *dir)
{
	char		err[512];

	if (dir[0] != '/')
	{
		agent_error("cache move wants an absolute directory");
		return 2;
	}
	if (!cache_move(cache, dir, err, sizeof(err)) ||
		!sms_fmt_write_file(c->state_dir, "cache.location", dir, strlen(dir), err, sizeof(err)))
	{
		agent_error("%s", err);
		return 1;
	}
	printf("cache moved to %s with its %zu package%s\n", dir, cache->n, cache->n == 1 ? "" : "s");
	return 0;
}

static int
clear_cache(Cache *cache)
{
	char		err[512];

	if (!cache_clear(cache, err, sizeof(err)))
	{
		agent_error("%s", err);
		return 1;
	}
	printf("cache %s emptied\n", cache->dir);
	return 0;
}

/*
 * Every entry checked as before a run (cache_verify.c): one line per
 * package, and status 1 if any differs from its manifest.  Nothing is
 * changed: a damaged entry is fetched again by the next download of it.
 */
static int
verify_cache(const Cache *cache)
{
	int			rc = 0;

	for (size_t i = 0; i < cache->n; i++)
	{
		const CacheEntry *e = &cache->entries[i];
		char		msg[512];

		if (cache_verify(cache, e, msg, sizeof(msg)))
			printf("%s version %lld: verified\n", e->package_id, (long long) e->version);
		else
		{
			printf("%s version %lld: differs: %s\n", e->package_id, (long long) e->version, msg);
			rc = 1;
		}
	}
	printf("cache %s: %zu package%s checked\n", cache->dir, cache->n, cache->n == 1 ? "" : "s");
	return rc;
}

int
cache_command(const Config *c, int argc, char **argv)
{
	Cache		cache;
	int64_t		now = c->now != SMS_TIME_NONE ? c->now : (int64_t) time(NULL);
	const char *what = argc > 0 ? argv[0] : "show";
	int			rc = 0;

	if (!c->state_dir)
	{
		agent_error("cache commands need --state-dir");
		return 2;
	}
	if (!make_state_dir(c) || !agent_cache_open(c, &cache, true))
		return 1;
	cache_update_locks(&cache, now);
	if (strcmp(what, "show") == 0 && argc <= 1)
		show_cache(&cache);
	else if (strcmp(what, "size") == 0 && argc == 2)
		rc = resize_cache(&cache, argv[1], now);
	else if (strcmp(what, "move") == 0 && argc == 2)
		rc = move_cache(c, &cache, argv[1]);
	else if (strcmp(what, "clear") == 0 && argc == 1)
		rc = clear_cache(&cache);
	else if (strcmp(what, "verify") == 0 && argc == 1)
		rc = verify_cache(&cache);
	else
	{
		agent_error("cache commands: show, size MEGABYTES, move DIRECTORY, clear, verify");
		rc = 2;
	}
	cache_close(&cache);
	return rc;
}
