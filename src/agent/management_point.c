/*-------------------------------------------------------------------------
 *
 * management_point.c
 *	  Advanced mode: the agent's client of the site database.
 *
 * SMS's Advanced Client asked a management point for its policy instead
 * of reading the shares; here the management point is the site database,
 * reached over libpq (--management-point CONNINFO, a role in
 * smsdist_client).  The agent needs no file signatures in this mode: the
 * connection says who it is.
 *
 * Terms:
 *	policy		what smsdist.machine_policy() returns: the run-command jobs
 *				and advertisements of this machine (and of its logged-on
 *				user and the user's groups), the same offers a legacy agent
 *				takes from the PCM file and the lookup files, and the
 *				machine's maintenance windows.
 *	site time	the database's clock, read with every policy: schedules
 *				are checked on it, not on this machine's.
 *	channel		smsdist_policy_<sms id in lower case>: the site NOTIFYs it
 *				when the policy changes, so a connected agent polls at
 *				once instead of at the next interval.
 *
 * The connection is kept between polls; one that is lost is made again at
 * the next poll, and until then the agent polls at its interval.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_util.h"
#include "libpq-fe.h"
#include "management_point.h"

/* the connection to the management point, or NULL */
static PGconn *mp_conn = NULL;

/*
 * The policy as rows, one per run-command job or advertisement, after the
 * site's clock; %s is the call of machine_policy().  The columns are
 * PolicyColumn's.
 */
static const char policy_query[] =
	"SELECT extract(epoch FROM clock_timestamp())::bigint, o.* FROM (%s) x LEFT JOIN LATERAL ("
	/* run-command jobs: what the PCM file says, in the same order */
	"SELECT j->>'job_id', j->>'package_id', j->>'program', j->>'command_line',"
	"       coalesce((SELECT string_agg(pl.v, ',') FROM jsonb_array_elements_text("
	"                   CASE WHEN jsonb_typeof(j->'platforms') = 'array' THEN j->'platforms' END) AS pl(v)), ''),"
	"       extract(epoch FROM (j->>'offer_after')::timestamptz)::bigint, true,"
	"       extract(epoch FROM (j->>'expires_at')::timestamptz)::bigint, true,"
	"       jsonb_array_length(coalesce(j->'locations', '[]'::jsonb)),"
	"       j->>'package_version', j->>'package_sha256',"
	"       (SELECT string_agg(l.v, E'\\n') FROM jsonb_array_elements_text("
	"           CASE WHEN jsonb_typeof(j->'locations') = 'array' THEN j->'locations' END) AS l(v)),"
	"       coalesce((j->>'max_run_minutes')::integer, 0),"
	/* the mandatory time: one assignment, UTC, not recurring */
	"       extract(epoch FROM (j->>'mandatory_at')::timestamptz)::bigint || ':true:0',"
	"       NULL::text,"			/* no windows: a PCM job has none */
	"       coalesce(j->>'run_with', '') = 'user_rights', 'job',"
	/* a run-command job runs again only if it failed; it has no icon */
	"       'rerun_if_failed', false, NULL::text, NULL::text"
	"  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x.p->'jobs') = 'array' THEN x.p->'jobs' END) j "
	"UNION ALL "
	"SELECT a->>'advert_id', a->>'package_id', a->>'program', a->>'command_line',"
	"       coalesce((SELECT string_agg(pl.v, ',') FROM jsonb_array_elements_text("
	"                   CASE WHEN jsonb_typeof(a->'platforms') = 'array' THEN a->'platforms' END) AS pl(v)), ''),"
	"       extract(epoch FROM (a->>'offer_time')::timestamp)::bigint, (a->>'offer_time_utc')::boolean,"
	"       extract(epoch FROM (a->>'expires_time')::timestamp)::bigint, (a->>'expires_time_utc')::boolean,"
	"       jsonb_array_length(coalesce(a->'locations', '[]'::jsonb)),"
	"       a->>'package_version', a->>'package_sha256',"
	"       (SELECT string_agg(l.v, E'\\n') FROM jsonb_array_elements_text("
	"           CASE WHEN jsonb_typeof(a->'locations') = 'array' THEN a->'locations' END) AS l(v)),"
	"       coalesce((a->>'max_run_minutes')::integer, 0),"
	/* assignments: epoch:utc:recur minutes, as the offer file has them */
	"       (SELECT string_agg(extract(epoch FROM (s->>'time')::timestamp)::bigint || ':' || (s->>'time_utc')"
	"                          || ':' || coalesce(s->>'recur_every_minutes', '0'), ',')"
	"          FROM jsonb_array_elements(coalesce(a->'assignments', '[]'::jsonb)) s),"
	/* the machine's windows: start minute:duration:days bits (mon = 1) */
	"       (SELECT string_agg(((split_part(w->>'start', ':', 1))::int * 60 + (split_part(w->>'start', ':', 2))::int)"
	"                          || ':' || (w->>'duration_minutes') || ':'"
	"                          || (SELECT sum(1 << (array_position(ARRAY['mon','tue','wed','thu','fri','sat','sun'], d.v) - 1))"
	"                                FROM jsonb_array_elements_text(w->'days') AS d(v)), ',')"
	"          FROM jsonb_array_elements(coalesce(x.p->'maintenance_windows', '[]'::jsonb)) w),"
	"       coalesce(a->>'run_with', '') = 'user_rights', 'advert',"
	"       coalesce(a->>'rerun_behaviour', 'rerun_if_failed'),"
	/* a site before 0.9 does not say: "not here yet" */
	"       coalesce(a->>'package_removed', 'false') = 'true',"
	/* the icon in the published tree: a site before 0.9 has none */
	"       a->'icon'->>'file', a->'icon'->>'sha256'"
	"  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x.p->'advertisements') = 'array'"
	"                                 THEN x.p->'advertisements' END) a"
	") o ON true";

typedef enum PolicyColumn
{
	COL_SITE_CLOCK,				/* epoch seconds */
	COL_ID,						/* NULL: no job or advertisement at all */
	COL_PACKAGE_ID,
	COL_PROGRAM,
	COL_COMMAND_LINE,
	COL_PLATFORMS,				/* comma list; "": any */
	COL_OFFER_TIME,				/* epoch seconds (a reading unless UTC) */
	COL_OFFER_TIME_UTC,
	COL_EXPIRES,
	COL_EXPIRES_UTC,
	COL_NLOCATIONS,
	COL_PACKAGE_VERSION,
	COL_PACKAGE_SHA256,
	COL_LOCATIONS,				/* one a line */
	COL_MAX_RUN_MINUTES,
	COL_ASSIGNMENTS,			/* epoch:utc:recur,... */
	COL_WINDOWS,				/* start:duration:days,... */
	COL_USER_RIGHTS,
	COL_KIND,					/* "job" or "advert" */
	COL_RERUN,
	COL_PACKAGE_REMOVED,
	COL_ICON_FILE,				/* relative to the published tree; NULL: none */
	COL_ICON_SHA256
} PolicyColumn;

static void
mp_drop(void)
{
	if (mp_conn)
		PQfinish(mp_conn);
	mp_conn = NULL;
}

/* Connect and LISTEN, if not connected; false (and a warning) if it fails. */
static bool
mp_connect(const Config *c)
{
	char		sql[128];
	PGresult   *r;

	if (mp_conn != NULL && PQstatus(mp_conn) == CONNECTION_OK)
		return true;
	mp_drop();
	mp_conn = PQconnectdb(c->conninfo);
	if (PQstatus(mp_conn) != CONNECTION_OK)
	{
		agent_warn("could not connect to the management point: %s", PQerrorMessage(mp_conn));
		mp_drop();
		return false;
	}
	/* the channel is the SMS ID in lower case (an SMS ID needs no quoting) */
	snprintf(sql, sizeof(sql), "LISTEN smsdist_policy_%s", c->sms_id);
	for (char *p = sql; *p; p++)
		*p = (*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p;
	r = PQexec(mp_conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		agent_warn("could not listen for policy changes: %s", PQerrorMessage(mp_conn));
		PQclear(r);
		mp_drop();
		return false;
	}
	PQclear(r);
	return true;
}

/* "a:b:c,..." into assignments (epoch:utc:recur) or windows (start:duration:days) */
static void
parse_triples(const char *text, Offer *x, bool assignments)
{
	char	  **parts;
	size_t		n;

	if (!sms_fmt_split(text, ',', &parts, &n) || n == 0)
		return;
	if (assignments)
		x->assignments = xmalloc(sizeof(SmsOfferAssignment) * n);
	else
		x->windows = xmalloc(sizeof(SmsOfferWindow) * n);
	for (size_t k = 0; k < n; k++)
	{
		char	   *p = parts[k];
		long long	a = strtoll(p, &p, 10);

		if (assignments)
		{
			x->assignments[k].time.secs = a;
			x->assignments[k].time.utc = strncmp(p, ":true", 5) == 0;
			p = strchr(p + 1, ':');
			x->assignments[k].recur_every_minutes = p ? (int32_t) strtol(p + 1, NULL, 10) : 0;
		}
		else
		{
			x->windows[k].start_minute = (int) a;
			x->windows[k].duration_minutes = (int32_t) strtol(p + 1, &p, 10);
			x->windows[k].days = (unsigned) strtoul(p + 1, NULL, 10);
		}
	}
	if (assignments)
		x->nassignments = n;
	else
		x->nwindows = n;
	sms_fmt_free_list(parts, n);
}

/*
 * Ask for the policy: the machine alone, or with who is logged on when
 * --user or --group say.  NULL (said) if it could not be read.
 */
static PGresult *
query_policy(const Config *c)
{
	const char *v[3] = {c->sms_id, c->user, NULL};
	char	   *groups = NULL;
	bool		who = c->user != NULL || c->ngroups > 0;
	char		query[8192];
	PGresult   *r;

	if (c->ngroups > 0)
	{
		/* one group a line: a name has no control characters (checked) */
		TextBuf		b;

		textbuf_init(&b, 1);
		for (int g = 0; g < c->ngroups; g++)
			textbuf_append(&b, "%s%s", c->groups[g], g + 1 < c->ngroups ? "\n" : "");
		groups = b.data;
		v[2] = groups;
	}
	/*
	 * Who is logged on only when somebody is: the machine alone is the
	 * one-argument call, which a management point of any version answers.
	 */
	snprintf(query, sizeof(query), policy_query,
			 who ? "SELECT smsdist.machine_policy($1, $2, string_to_array($3, E'\\n')) AS p"
			 : "SELECT smsdist.machine_policy($1) AS p");
	r = PQexecParams(mp_conn, query, who ? 3 : 1, NULL, v, NULL, NULL, 0);
	free(groups);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		agent_warn("could not read the policy: %s", PQerrorMessage(mp_conn));
		PQclear(r);
		if (PQstatus(mp_conn) != CONNECTION_OK)
			mp_drop();
		return NULL;
	}
	return r;
}

/* A time column and the column that says whether it is UTC */
static SmsWhen
when_of(const PGresult *r, int row, int col, int utc_col)
{
	SmsWhen		w;

	w.secs = PQgetisnull(r, row, col) ? SMS_TIME_NONE : strtoll(PQgetvalue(r, row, col), NULL, 10);
	w.utc = PQgetvalue(r, row, utc_col)[0] == 't';
	return w;
}

/* The package of an offer that is not waiting: its locations, or why it waits. */
static void
row_package(const PGresult *r, int i, Offer *x)
{
	char	  **locs;
	size_t		nlocs;

	if (strcmp(PQgetvalue(r, i, COL_NLOCATIONS), "0") == 0)
		offer_wait_for_package(x, PQgetvalue(r, i, COL_PACKAGE_REMOVED)[0] == 't');
	else if (sms_fmt_split(PQgetvalue(r, i, COL_LOCATIONS), '\n', &locs, &nlocs))
	{
		offer_set_package(x, strtoll(PQgetvalue(r, i, COL_PACKAGE_VERSION), NULL, 10),
						  PQgetvalue(r, i, COL_PACKAGE_SHA256), locs, nlocs);
		/* the first location's copy: icons.c checks its hash and its path */
		if (nlocs > 0 && !PQgetisnull(r, i, COL_ICON_FILE) && !PQgetisnull(r, i, COL_ICON_SHA256))
			offer_set_icon(x, locs[0], PQgetvalue(r, i, COL_ICON_FILE), PQgetvalue(r, i, COL_ICON_SHA256));
		sms_fmt_free_list(locs, nlocs);
	}
}

/* Row i of the policy into o, as a target and perhaps an offer. */
static void
add_row(const Config *c, int64_t now, const PGresult *r, int i, Offers *o)
{
	char	  **platforms;
	OfferTerms	t;
	Offer	   *x;

	if (PQgetisnull(r, i, COL_ID))
		return;					/* nothing at all */
	if (!sms_fmt_split(PQgetvalue(r, i, COL_PLATFORMS), ',', &platforms, &t.nplatforms))
		return;
	t.kind = PQgetvalue(r, i, COL_KIND);
	t.id = PQgetvalue(r, i, COL_ID);
	t.package_id = PQgetvalue(r, i, COL_PACKAGE_ID);
	t.program = PQgetvalue(r, i, COL_PROGRAM);
	t.command_line = PQgetvalue(r, i, COL_COMMAND_LINE);
	t.platforms = platforms;
	t.offer_time = when_of(r, i, COL_OFFER_TIME, COL_OFFER_TIME_UTC);
	t.expires = when_of(r, i, COL_EXPIRES, COL_EXPIRES_UTC);
	offers_add_target(o, t.kind, t.id);
	if ((x = offers_add_scheduled(o, &t, c->platform, now)) != NULL)
	{
		if (!sms_rerun_from_name(PQgetvalue(r, i, COL_RERUN), &x->rerun))
			x->rerun = SMS_RERUN_IF_FAILED;
		if (!x->waiting)
			row_package(r, i, x);
		x->max_run_minutes = (int32_t) strtol(PQgetvalue(r, i, COL_MAX_RUN_MINUTES), NULL, 10);
		parse_triples(PQgetvalue(r, i, COL_ASSIGNMENTS), x, true);
		parse_triples(PQgetvalue(r, i, COL_WINDOWS), x, false);
		x->user_rights = strcmp(PQgetvalue(r, i, COL_USER_RIGHTS), "t") == 0;
	}
	sms_fmt_free_list(platforms, t.nplatforms);
}

bool
mp_offers(const Config *c, int64_t *now, Offers *o)
{
	PGresult   *r;

	if (!mp_connect(c) || (r = query_policy(c)) == NULL)
		return false;
	if (PQntuples(r) > 0)
	{
		/* the site's clock, whatever this machine's says (a test clock stands for both) */
		*now = c->now != SMS_TIME_NONE ? c->now : strtoll(PQgetvalue(r, 0, COL_SITE_CLOCK), NULL, 10);
	}
	for (int i = 0; i < PQntuples(r); i++)
		add_row(c, *now, r, i, o);
	PQclear(r);
	return true;
}

bool
mp_check(const Config *c)
{
	PGresult   *r;

	if (!mp_connect(c))
	{
		agent_error("check: the management point cannot be reached or refused this agent");
		return false;
	}
	agent_info("check: connected to the management point as role \"%s\" (database \"%s\" on %s)",
			   PQuser(mp_conn), PQdb(mp_conn), PQhost(mp_conn));
	if ((r = query_policy(c)) == NULL)
	{
		agent_error("check: the management point did not give this machine's policy");
		mp_drop();
		return false;
	}
	agent_info("check: the management point gave this machine's policy (%d row%s)", PQntuples(r),
			   PQntuples(r) == 1 ? "" : "s");
	PQclear(r);
	mp_drop();
	return true;
}

void
mp_wait(const Config *c)
{
	struct pollfd pfd;

	if (mp_conn == NULL || PQstatus(mp_conn) != CONNECTION_OK)
	{
		sleep((unsigned) c->interval);
		return;
	}
	pfd.fd = PQsocket(mp_conn);
	pfd.events = POLLIN;
	if (poll(&pfd, 1, c->interval * 1000) > 0)
	{
		PGnotify   *n;

		if (!PQconsumeInput(mp_conn))
		{
			agent_warn("lost the management point: %s", PQerrorMessage(mp_conn));
			mp_drop();			/* polling from now on, until it is back */
			return;
		}
		while ((n = PQnotifies(mp_conn)) != NULL)
			PQfreemem(n);
	}
}

bool
mp_send_status(const SmsStatusFile *m)
{
	static const char *const sev[] = {"informational", "warning", "error"};
	char		seq[32];
	char		at[32];
	char		mid[16];
	char		code[16];
	const char *v[11];
	PGresult   *r;
	bool		ok;

	if (mp_conn == NULL)
	{
		agent_warn("status message %d not sent: no connection to the management point", m->message_id);
		return false;
	}
	snprintf(seq, sizeof(seq), "%lld", (long long) m->sequence);
	sms_fmt_format_time(m->at, true, at);
	snprintf(mid, sizeof(mid), "%d", m->message_id);
	snprintf(code, sizeof(code), "%d", m->exit_code);
	v[0] = m->machine;
	v[1] = seq;
	v[2] = at;
	v[3] = mid;
	v[4] = sev[m->severity];
	v[5] = m->component;
	v[6] = m->text;
	v[7] = m->advert_id;
	v[8] = m->job_id;
	v[9] = m->package_id;
	v[10] = m->has_exit_code ? code : NULL;
	/*
	 * A deadlock or serialization failure is the site's workers' moment,
	 * not the message's fault: it is sent again (a few times), or it would
	 * be lost -- the agent keeps no copy of a message it could not send.
	 */
	for (int attempt = 0;; attempt++)
	{
		const char *state;

		r = PQexecParams(mp_conn, "SELECT smsdist.client_status($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, p_exit_code => $11::integer)",
						 11, NULL, v, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		state = ok ? NULL : PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (ok || attempt >= 4 || state == NULL ||
			(strcmp(state, "40P01") != 0 && strcmp(state, "40001") != 0))
			break;
		PQclear(r);
	}
	if (!ok)
		agent_warn("status message %d not sent: %s", m->message_id, PQerrorMessage(mp_conn));
	PQclear(r);
	return ok;
}

bool
mp_send_inventory(const Config *c, int64_t now, const char *json, bool *site_lacks_it)
{
	char		at[32];
	const char *v[3];
	PGresult   *r;
	bool		ok;

	if (mp_conn == NULL)
		return false;			/* said by the poll; tried again at the next */
	sms_fmt_format_time(now, true, at);
	v[0] = c->sms_id;
	v[1] = at;
	v[2] = json;
	r = PQexecParams(mp_conn, "SELECT smsdist.client_cache_inventory($1, $2::timestamptz, $3::jsonb)",
					 3, NULL, v, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
	{
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		if (state != NULL && strcmp(state, "42883") == 0)
		{
			/* a site older than 0.9: it takes no inventories */
			agent_warn("the site takes no cache inventory (smsdist before 0.9); not reported again in this run");
			*site_lacks_it = true;
		}
		else
			agent_warn("cache inventory not reported: %s", PQerrorMessage(mp_conn));
	}
	PQclear(r);
	return ok;
}
