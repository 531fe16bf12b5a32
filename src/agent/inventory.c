/*-------------------------------------------------------------------------
 *
 * inventory.c
 *	  The cache inventory the agent reports to its site.
 *
 * Terms:
 *	inventory	what the download cache holds, as the site takes it (a
 *				JSON object: the cache's size, use and locked bytes, this
 *				machine's UTC offset, and each package version with its
 *				download, lock and last run), so that the site can preview
 *				what a distribution will do (preview()).
 *	report		legacy mode: <MACHINE>.INV in the CAP's status inbox,
 *				replaced by each report and signed like a status file;
 *				advanced mode: client_cache_inventory() on the management
 *				point.
 *
 * <state dir>/inventory keeps the polls since the last report and what it
 * said; a report that could not be made is tried again at the next poll.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_util.h"
#include "download_cache.h"
#include "downloads.h"
#include "inventory.h"
#include "management_point.h"
#include "schedule.h"
#include "state_files.h"
#include "status_report.h"

#define INVENTORY_MAX_PACKAGES	1000	/* what the site takes in one report */

/* One package of the inventory: a JSON object after sep. */
static void
append_package(TextBuf *out, const char *sep, const CacheEntry *e)
{
	char		dl[32],
				un[32],
				ran[32];

	sms_fmt_format_time(e->downloaded_at, true, dl);
	sms_fmt_format_time(cache_unlock_at(e), true, un);
	if (e->ran_at)
		sms_fmt_format_time(e->ran_at, true, ran);
	textbuf_append(out, "%s{\"package_id\": \"%s\", \"source_version\": %lld, \"bytes\": %lld, "
				   "\"downloaded_at\": \"%s\", \"locked_until\": %s%s%s, \"last_run_at\": %s%s%s}",
				   sep, e->package_id, (long long) e->version, (long long) e->bytes, dl,
				   e->locked ? "\"" : "", e->locked ? un : "null", e->locked ? "\"" : "",
				   e->ran_at ? "\"" : "", e->ran_at ? ran : "null", e->ran_at ? "\"" : "");
}

/* The inventory as the site takes it (a JSON object), malloc'd; NULL: no cache. */
static char *
inventory_json(const Config *c, int64_t now, size_t *npackages)
{
	Cache		cache;
	TextBuf		out;
	int64_t		locked = 0;

	/* a cache that does not open was said already by the poll's downloads */
	if (!agent_cache_open(c, &cache, false))
		return NULL;
	cache_update_locks(&cache, now);
	textbuf_init(&out, 1024);
	for (size_t i = 0; i < cache.n; i++)
		if (cache.entries[i].locked)
			locked += cache.entries[i].bytes;
	textbuf_append(&out, "{\"size_limit_bytes\": %lld, \"used_bytes\": %lld, \"locked_bytes\": %lld, "
				   "\"utc_offset_seconds\": %d, \"packages\": [",
				   (long long) cache.limit, (long long) cache_used(&cache), (long long) locked, (int) utc_offset(now));
	for (size_t i = 0; i < cache.n; i++)
		append_package(&out, i ? ", " : "", &cache.entries[i]);
	textbuf_append(&out, "]}");
	*npackages = cache.n;
	cache_close(&cache);
	return out.data;
}

/* <state dir>/inventory: polls since the last report, and what it said */
static void
save_inventory_state(const Config *c, long polls, const char *json)
{
	char	   *keep = xmalloc(strlen(json) + 32);

	snprintf(keep, strlen(json) + 32, "%ld\n%s", polls, json);
	state_write(c, "inventory", keep, strlen(keep));
	free(keep);
}

/* Is json what the last report said, and not yet due again? Then this poll is counted. */
static bool
inventory_unchanged(const Config *c, const char *json)
{
	char	   *last = state_read(c, "inventory", NULL);
	long		polls = 0;
	const char *said = NULL;
	bool		unchanged;

	if (last != NULL)
	{
		polls = strtol(last, NULL, 10);
		said = strchr(last, '\n');
		said = said ? said + 1 : NULL;
	}
	unchanged = said != NULL && polls + 1 < c->inventory_every && strcmp(said, json) == 0;
	if (unchanged)
		save_inventory_state(c, polls + 1, json);
	free(last);
	return unchanged;
}

/* Legacy mode: the inventory as <MACHINE>.INV in the CAP's status inbox. */
static bool
write_inventory_file(const Config *c, int64_t now, const char *json, size_t npackages)
{
	static bool said_no_key = false;	/* or no inbox: said once a run */
	SmsStatusFile m = {0};
	char	   *buf;
	size_t		len;
	char		err[512];
	char		text[256];
	char		name[SMS_FMT_NAME_BUFLEN];
	char	   *box;
	bool		ok = false;

	if (!c->have_key)
	{
		if (!said_no_key)
			agent_warn("cache inventory not written: no --machine-key (the site would refuse it)");
		said_no_key = true;
		return false;
	}
	snprintf(text, sizeof(text), "Download cache inventory: %zu package%s", npackages, npackages == 1 ? "" : "s");
	m.machine = (char *) c->sms_id;
	m.site = (char *) c->site;
	m.sequence = 0;
	m.at = now;
	m.message_id = SMS_STATUS_CACHE_INVENTORY;
	m.severity = SMS_STATUS_INFO;
	m.component = AGENT_COMPONENT;
	m.text = text;
	m.inventory = (char *) json;
	m.key = c->machine_key;
	box = xpath_join(c->cap_dir, SMS_FMT_DIR_STATUS);
	if (access(box, F_OK) != 0)
	{
		if (!said_no_key)
			agent_warn("cache inventory not written: the CAP has no status inbox \"%s\" (%s; the site's Status Manager creates it)",
					   box, strerror(errno));
		said_no_key = true;		/* once a run, as for the key */
	}
	else if (!sms_status_to_text(&m, &buf, &len, err, sizeof(err)))
		agent_warn("could not make the cache inventory: %s", err);
	else
	{
		if (!tidy_status_inbox(c, box) ||
			!sms_fmt_file_name(SMS_FILE_INVENTORY, c->sms_id, 0, name, sizeof(name), err, sizeof(err)) ||
			!sms_fmt_write_file(box, name, buf, len, err, sizeof(err)))
			agent_warn("could not write the cache inventory to \"%s\": %s", box, err);
		else
			ok = true;
		free(buf);
	}
	free(box);
	return ok;
}

void
report_inventory(const Config *c, int64_t now)
{
	static bool site_lacks_it = false;
	char	   *json;
	size_t		npackages = 0;
	bool		ok;

	if (site_lacks_it)
		return;
	json = inventory_json(c, now, &npackages);
	if (json == NULL)
		return;
	if (inventory_unchanged(c, json))
	{
		free(json);
		return;					/* nothing new: the poll is counted */
	}
	if (npackages > INVENTORY_MAX_PACKAGES)
		agent_warn("the cache holds %zu packages; the site takes an inventory of at most %d: it will refuse this one",
				   npackages, INVENTORY_MAX_PACKAGES);
	if (c->conninfo != NULL)
		ok = mp_send_inventory(c, now, json, &site_lacks_it);
	else
		ok = write_inventory_file(c, now, json, npackages);
	if (ok)
		save_inventory_state(c, 0, json);
	free(json);
}
