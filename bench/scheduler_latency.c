/*-------------------------------------------------------------------------
 *
 * scheduler_latency.c
 *	  Benchmark: how long after a job's commit does the SMS Scheduler pick
 *	  it up (smsdist.jobs.state 'pending' -> 'active')?
 *
 * Run by bench/run-all against a throwaway cluster; not a test (it asserts
 * nothing, it prints figures).  Usage:
 *
 *	scheduler_latency CONNINFO [JOBS [MAX_PAUSE_US [POLL_BASELINE_S]]]
 *
 * Two connections to the site database:
 *
 *	inserter  inserts JOBS run-command jobs, one per transaction (autocommit),
 *			  each due at once (start_after = clock_timestamp()), with a
 *			  random pause of 0..MAX_PAUSE_US microseconds between them, and
 *			  notes the client's CLOCK_REALTIME when each INSERT's reply (sent
 *			  after the commit) has arrived;
 *	listener  LISTENs on smsdist_scheduler, on which the jobs trigger
 *			  NOTIFYs the job ID at every commit that inserts or updates a job,
 *			  and notes CLOCK_REALTIME when each notification arrives.
 *
 * One thread serves both connections with poll(), so a notification is
 * time-stamped as soon as it is readable, also during the pauses.
 *
 * After WARMUP_JOBS jobs that are not counted, figures in ms (client and
 * server read the same machine clock, CLOCK_REALTIME; "commit returned" is
 * the client's time when the INSERT's reply, which the server sends after
 * the commit, had arrived):
 *
 *	Scheduler   jobs.activated_at - commit returned
 *	NOTIFY      arrival of the inserting backend's notification at the
 *				listener - commit returned: how soon an ordinary outside
 *				client hears of the same commit (the baseline).  About 0:
 *				the server signals listeners and replies to the inserter at
 *				the same moment, so it may be negative.
 *	server      jobs.activated_at - jobs.created_at (both clock_timestamp()
 *				on the server; includes the INSERT and its commit)
 *	seen        arrival of the Scheduler's own notification (from its UPDATE
 *				that activates the job) - commit returned: when an outside
 *				client can know the job is active, i.e. when the Scheduler's
 *				step has committed
 *	from INSERT sent: the Scheduler and NOTIFY figures again, measured from
 *				the client's time just before it sent the INSERT
 *
 * with p50, p90, p99, max and min, the ratios Scheduler/NOTIFY at p50 and
 * p99 (from commit returned, and from INSERT sent), the slowest jobs, and a
 * polling baseline given as arithmetic, not measured (a job that falls due at
 * a random moment waits T/2 at the median for a poll every T seconds).
 *
 * Then a burst: JOBS due jobs inserted in one transaction; time from the
 * COMMIT's return to the first and the last activated_at, and to the arrival
 * of the last activation's notification (its step committed), in jobs/s.
 *
 * Copyright (c) 2026, the smsdist developers
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define WARMUP_JOBS 20
#define JOB_ID_LEN	16

#define INSERT_ONE \
	"INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type," \
	"                          target_machines, start_after)" \
	" VALUES ('run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}', clock_timestamp())" \
	" RETURNING job_id"

typedef struct Job
{
	char		id[JOB_ID_LEN];
	int64_t		sent_us;		/* client: INSERT sent */
	int64_t		commit_us;		/* client: INSERT's reply (after commit) arrived */
	int64_t		notify_us;		/* client: the insert's NOTIFY arrived (0: not yet) */
	int64_t		seen_us;		/* client: the Scheduler's NOTIFY arrived (0: not yet) */
	int64_t		created_us;		/* server: created_at */
	int64_t		activated_us;	/* server: activated_at (0: not active) */
} Job;

static PGconn *ins;				/* inserter */
static PGconn *lis;				/* listener */
static int	ins_pid;			/* backend PID of the inserter */

static Job *jobs;				/* the jobs of the phase being measured */
static int	njobs;

/*
 * Every notification, as it arrives.  They are matched to jobs only after a
 * phase: an insert's notification may arrive before the INSERT's reply.
 */
typedef struct Heard
{
	char		id[JOB_ID_LEN];
	int			pid;			/* backend that sent it */
	int64_t		at;				/* client time of arrival */
} Heard;

static Heard *heard;
static int	nheard;
static int	heard_cap;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die(const char *what, PGconn *conn)
{
	fprintf(stderr, "scheduler_latency: %s%s%s\n", what,
			conn ? ": " : "", conn ? PQerrorMessage(conn) : "");
	exit(1);
}

/* Run a query on the inserter synchronously; the result must be ok. */
static PGresult *
run(const char *sql)
{
	PGresult   *res = PQexec(ins, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "scheduler_latency: query failed: %s\n%s\n", PQerrorMessage(ins), sql);
		exit(1);
	}
	return res;
}

static int
cmp_job_id(const void *key, const void *elem)
{
	return strcmp((const char *) key, ((const Job *) elem)->id);
}

/* The phase's jobs are in ID order (one inserter, one sequence). */
static Job *
find_job(const char *id)
{
	return bsearch(id, jobs, njobs, sizeof(Job), cmp_job_id);
}

static void
check_sorted(void)
{
	for (int i = 1; i < njobs; i++)
		if (strcmp(jobs[i - 1].id, jobs[i].id) >= 0)
			die("job IDs are not increasing in insertion order", NULL);
}

/* Take in and time-stamp every notification that has arrived. */
static void
drain_notifications(int64_t t)
{
	PGnotify   *n;

	if (!PQconsumeInput(lis))
		die("listener connection lost", lis);
	while ((n = PQnotifies(lis)) != NULL)
	{
		if (nheard == heard_cap)
		{
			heard_cap = heard_cap ? heard_cap * 2 : 4096;
			heard = realloc(heard, heard_cap * sizeof(Heard));
			if (heard == NULL)
				die("out of memory", NULL);
		}
		snprintf(heard[nheard].id, JOB_ID_LEN, "%s", n->extra);
		heard[nheard].pid = n->be_pid;
		heard[nheard].at = t;
		nheard++;
		PQfreemem(n);
	}
}

/* How many notifications since `from` came from the Scheduler (not us). */
static int
heard_from_scheduler(int from)
{
	int			k = 0;

	for (int i = from; i < nheard; i++)
		k += heard[i].pid != ins_pid;
	return k;
}

/*
 * Match the notifications heard since `from` to the phase's jobs: the first
 * from the inserter is the insert's, the first from another backend the
 * Scheduler's activating UPDATE.  Returns how many matched no job.
 */
static int
match_notifications(int from)
{
	int			other = 0;

	for (int i = from; i < nheard; i++)
	{
		Job		   *j = find_job(heard[i].id);

		if (j == NULL)
			other++;
		else if (heard[i].pid == ins_pid)
		{
			if (j->notify_us == 0)
				j->notify_us = heard[i].at;
		}
		else if (j->seen_us == 0)
			j->seen_us = heard[i].at;
	}
	return other;
}

/*
 * Serve the listener until `until` (client µs), or -- when wait_ins is set --
 * until the inserter's pending query has its reply; returns the client time
 * the reply was complete (or 0).
 */
static int64_t
pump(int64_t until, bool wait_ins)
{
	for (;;)
	{
		struct pollfd fds[2];
		int			nfds = 1;
		int			timeout_ms = -1;
		int64_t		t;

		if (wait_ins)
		{
			if (!PQconsumeInput(ins))
				die("inserter connection lost", ins);
			if (!PQisBusy(ins))
				return now_us();
		}
		else
		{
			t = now_us();
			if (t >= until)
				return 0;
			timeout_ms = (int) ((until - t) / 1000);
		}

		fds[0].fd = PQsocket(lis);
		fds[0].events = POLLIN;
		if (wait_ins)
		{
			fds[1].fd = PQsocket(ins);
			fds[1].events = POLLIN;
			nfds = 2;
		}
		if (!wait_ins && until - now_us() < 1000)
		{
			/* poll() has ms resolution: sleep off a sub-ms remainder */
			int64_t		rest = until - now_us();

			if (rest > 0)
				usleep((useconds_t) rest);
			drain_notifications(now_us());
			continue;
		}
		if (poll(fds, nfds, timeout_ms) < 0 && errno != EINTR)
		{
			perror("poll");
			exit(1);
		}
		/* one time stamp for both: draining many notifications takes time */
		t = now_us();
		if (wait_ins && fds[1].revents)
		{
			if (!PQconsumeInput(ins))
				die("inserter connection lost", ins);
			if (!PQisBusy(ins))
			{
				if (fds[0].revents)
					drain_notifications(t);
				return t;
			}
		}
		if (fds[0].revents)
			drain_notifications(t);
	}
}

/* Send one INSERT, serve the listener until its reply, note the commit. */
static void
insert_one(Job *j)
{
	PGresult   *res;
	int64_t		t;

	j->sent_us = now_us();
	if (!PQsendQuery(ins, INSERT_ONE))
		die("sending INSERT failed", ins);
	t = pump(0, true);
	res = PQgetResult(ins);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		die("INSERT failed", ins);
	snprintf(j->id, sizeof(j->id), "%s", PQgetvalue(res, 0, 0));
	j->commit_us = t;
	PQclear(res);
	while ((res = PQgetResult(ins)) != NULL)
		PQclear(res);
}

/* Read created_at and activated_at of the phase's jobs from the server. */
static int
fetch_server_times(void)
{
	PGresult   *res;
	int			active = 0;

	res = run("SELECT job_id, state,"
			  "       (extract(epoch FROM created_at) * 1000000)::bigint,"
			  "       (extract(epoch FROM activated_at) * 1000000)::bigint"
			  "  FROM smsdist.jobs");
	for (int r = 0; r < PQntuples(res); r++)
	{
		Job		   *j = find_job(PQgetvalue(res, r, 0));

		if (j == NULL)
			continue;
		j->created_us = strtoll(PQgetvalue(res, r, 2), NULL, 10);
		j->activated_us = PQgetisnull(res, r, 3) ? 0 : strtoll(PQgetvalue(res, r, 3), NULL, 10);
		if (strcmp(PQgetvalue(res, r, 1), "active") == 0 && j->activated_us != 0)
			active++;
	}
	PQclear(res);
	return active;
}

/*
 * Wait (serving the listener) until every job of the phase is active and its
 * activation has been heard, or -- should some Scheduler notification not
 * come -- until the server says all are active.
 */
static bool
wait_all_active(int from, int timeout_s)
{
	int64_t		deadline = now_us() + (int64_t) timeout_s * 1000000;
	int64_t		next_check = now_us() + 500000;

	check_sorted();
	while (now_us() < deadline)
	{
		if (heard_from_scheduler(from) >= njobs && fetch_server_times() == njobs)
			return true;
		pump(now_us() + 20000, false);
		if (now_us() >= next_check)
		{
			if (fetch_server_times() == njobs)
			{
				pump(now_us() + 200000, false);		/* late notifications */
				return true;
			}
			next_check = now_us() + 500000;
		}
	}
	return fetch_server_times() == njobs;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a;
	int64_t		y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

/* nearest-rank percentile of a sorted array */
static int64_t
pct(const int64_t *v, int n, double q)
{
	int			k = (int) (q * n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

typedef struct Stats
{
	int			n;
	int64_t		p50, p90, p99, max, min;
} Stats;

static Stats
stats(int64_t *v, int n)
{
	Stats		s = {0};

	s.n = n;
	if (n == 0)
		return s;
	qsort(v, n, sizeof(int64_t), cmp_i64);
	s.p50 = pct(v, n, 0.50);
	s.p90 = pct(v, n, 0.90);
	s.p99 = pct(v, n, 0.99);
	s.max = v[n - 1];
	s.min = v[0];
	return s;
}

/* "x.yzx", or why there is no ratio */
static const char *
ratio(int64_t num, int64_t den)
{
	static char buf[4][48];
	static int	k;

	k = (k + 1) % 4;
	if (den <= 0)
		snprintf(buf[k], sizeof(buf[k]), "n/a (NOTIFY %.3f ms <= 0)", den / 1000.0);
	else
		snprintf(buf[k], sizeof(buf[k]), "%.2fx", (double) num / den);
	return buf[k];
}

static void
print_stats(const char *label, Stats s)
{
	if (s.n == 0)
	{
		printf("  %-46s  (no samples)\n", label);
		return;
	}
	printf("  %-46s %9.3f %9.3f %9.3f %9.3f %9.3f  n=%d\n", label,
		   s.p50 / 1000.0, s.p90 / 1000.0, s.p99 / 1000.0, s.max / 1000.0, s.min / 1000.0, s.n);
}

static void
scheduler_counters(long long *steps, long long *wakes)
{
	PGresult   *res = run("SELECT steps, wake_requests FROM smsdist.workers WHERE component = 'scheduler'");

	*steps = PQntuples(res) == 1 ? atoll(PQgetvalue(res, 0, 0)) : -1;
	*wakes = PQntuples(res) == 1 ? atoll(PQgetvalue(res, 0, 1)) : -1;
	PQclear(res);
}

/* Wait until the Scheduler runs and is idle (it may still be starting). */
static void
wait_scheduler_idle(void)
{
	for (int i = 0; i < 600; i++)
	{
		PGresult   *res = run("SELECT pid IS NOT NULL AND state = 'idle'"
							  "  FROM smsdist.workers WHERE component = 'scheduler'");
		bool		ok = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

		PQclear(res);
		if (ok)
			return;
		usleep(50000);
	}
	fprintf(stderr, "scheduler_latency: the Scheduler is not running and idle after 30 s\n");
	exit(1);
}

/*
 * The slowest jobs of the phase, with what preceded them: the gap since the
 * previous job's commit, how late the previous job was itself, and for how
 * long after this job's commit an earlier job's activation had still not
 * committed (its notification not yet heard): the Scheduler was then busy
 * with an earlier step, so this job waited for it.
 */
static void
print_worst(int k)
{
	bool	   *shown = calloc(njobs, sizeof(bool));

	printf("  slowest jobs (ms):        Scheduler    NOTIFY  gap since  previous job's  earlier step still  next job's commit\n"
		   "                          commit->active        previous    latency       running after commit  -> this active\n");
	for (int r = 0; r < k && r < njobs; r++)
	{
		int			w = -1;
		int64_t		busy = 0;

		for (int i = 0; i < njobs; i++)
			if (!shown[i] && jobs[i].activated_us &&
				(w < 0 || jobs[i].activated_us - jobs[i].commit_us >
				 jobs[w].activated_us - jobs[w].commit_us))
				w = i;
		if (w < 0)
			break;
		shown[w] = true;
		for (int i = w - 1; i >= 0 && i >= w - 20; i--)
			if (jobs[i].seen_us - jobs[w].commit_us > busy)
				busy = jobs[i].seen_us - jobs[w].commit_us;
		printf("    #%-4d %s  %9.3f  %9.3f  %9.3f  %9.3f  %9.3f  %9.3f\n", w, jobs[w].id,
			   (jobs[w].activated_us - jobs[w].commit_us) / 1000.0,
			   jobs[w].notify_us ? (jobs[w].notify_us - jobs[w].commit_us) / 1000.0 : -1.0,
			   w > 0 ? (jobs[w].commit_us - jobs[w - 1].commit_us) / 1000.0 : 0.0,
			   w > 0 && jobs[w - 1].activated_us ?
			   (jobs[w - 1].activated_us - jobs[w - 1].commit_us) / 1000.0 : 0.0,
			   busy / 1000.0,
			   w + 1 < njobs ? (jobs[w].activated_us - jobs[w + 1].commit_us) / 1000.0 : 0.0);
	}
	free(shown);
}

int
main(int argc, char **argv)
{
	const char *conninfo;
	int			n = 1000;
	int			max_pause_us = 5000;
	int			poll_s = 60;
	int64_t    *v[7];
	int			nv[7] = {0};
	Stats		st[7];
	long long	steps0, wakes0, steps1, wakes1;
	int64_t		t0, t_run;
	int			from, other;
	PGresult   *res;

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s CONNINFO [JOBS [MAX_PAUSE_US [POLL_BASELINE_S]]]\n", argv[0]);
		return 2;
	}
	conninfo = argv[1];
	if (argc > 2)
		n = atoi(argv[2]);
	if (argc > 3)
		max_pause_us = atoi(argv[3]);
	if (argc > 4)
		poll_s = atoi(argv[4]);
	if (n < 1 || max_pause_us < 0 || poll_s < 1)
	{
		fprintf(stderr, "scheduler_latency: bad arguments\n");
		return 2;
	}
	srandom((unsigned) now_us());

	ins = PQconnectdb(conninfo);
	if (PQstatus(ins) != CONNECTION_OK)
		die("inserter cannot connect", ins);
	lis = PQconnectdb(conninfo);
	if (PQstatus(lis) != CONNECTION_OK)
		die("listener cannot connect", lis);
	ins_pid = PQbackendPID(ins);
	res = PQexec(lis, "LISTEN smsdist_scheduler");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die("LISTEN failed", lis);
	PQclear(res);
	PQclear(run("SET application_name = 'scheduler_latency'"));

	wait_scheduler_idle();

	/* ---- warm-up: caches, plans, the Scheduler's first steps (not counted) */
	njobs = WARMUP_JOBS;
	jobs = calloc(njobs, sizeof(Job));
	from = nheard;
	for (int i = 0; i < njobs; i++)
	{
		insert_one(&jobs[i]);
		pump(now_us() + (max_pause_us ? random() % (max_pause_us + 1) : 0), false);
	}
	if (!wait_all_active(from, 30))
		die("warm-up jobs were not all activated within 30 s", NULL);
	free(jobs);

	/* ---- one job per transaction */
	njobs = n;
	jobs = calloc(njobs, sizeof(Job));
	pump(now_us() + 200000, false);		/* let stragglers of the warm-up go by */
	scheduler_counters(&steps0, &wakes0);
	from = nheard;
	t0 = now_us();
	for (int i = 0; i < njobs; i++)
	{
		insert_one(&jobs[i]);
		pump(now_us() + (max_pause_us ? random() % (max_pause_us + 1) : 0), false);
	}
	t_run = now_us() - t0;
	if (!wait_all_active(from, 60))
		fprintf(stderr, "scheduler_latency: WARNING: not every job active after 60 s\n");
	fetch_server_times();
	other = match_notifications(from);
	scheduler_counters(&steps1, &wakes1);

	for (int k = 0; k < 7; k++)
		v[k] = calloc(n, sizeof(int64_t));
	for (int i = 0; i < n; i++)
	{
		Job		   *j = &jobs[i];

		if (j->activated_us)
		{
			v[0][nv[0]++] = j->activated_us - j->commit_us;
			v[1][nv[1]++] = j->activated_us - j->created_us;
			v[5][nv[5]++] = j->activated_us - j->sent_us;
		}
		if (j->notify_us)
		{
			v[2][nv[2]++] = j->notify_us - j->commit_us;
			v[6][nv[6]++] = j->notify_us - j->sent_us;
		}
		if (j->seen_us)
			v[3][nv[3]++] = j->seen_us - j->commit_us;
		v[4][nv[4]++] = j->commit_us - j->sent_us;
	}
	for (int k = 0; k < 7; k++)
		st[k] = stats(v[k], nv[k]);

	printf("Scheduler commit-to-pickup latency: %d jobs, one per transaction (autocommit),\n"
		   "each due at once, 0-%d us random pause between inserts (%.2f s in all),\n"
		   "after %d warm-up jobs.  Times in ms, client and server on one clock;\n"
		   "negative = before the client had the INSERT's reply.\n\n",
		   n, max_pause_us, t_run / 1e6, WARMUP_JOBS);
	printf("  %-46s %9s %9s %9s %9s %9s\n", "", "p50", "p90", "p99", "max", "min");
	print_stats("Scheduler: commit returned -> activated_at", st[0]);
	print_stats("baseline:  commit returned -> NOTIFY arrives", st[2]);
	print_stats("server:    created_at -> activated_at", st[1]);
	print_stats("client sees it active (Scheduler's NOTIFY)", st[3]);
	print_stats("INSERT round trip (sent -> commit returned)", st[4]);
	print_stats("Scheduler: INSERT sent -> activated_at", st[5]);
	print_stats("baseline:  INSERT sent -> NOTIFY arrives", st[6]);
	printf("\n");
	if (st[0].n && st[2].n)
	{
		printf("  Scheduler vs NOTIFY, from commit returned:  p50 %s   p99 %s\n",
			   ratio(st[0].p50, st[2].p50), ratio(st[0].p99, st[2].p99));
		if (st[2].p50 < 100)
			printf("    (the p50 ratio is unstable: NOTIFY p50 is within 0.1 ms of the commit reply)\n");
		printf("    difference (Scheduler - NOTIFY):          p50 %+.3f ms   p99 %+.3f ms\n",
			   (st[0].p50 - st[2].p50) / 1000.0, (st[0].p99 - st[2].p99) / 1000.0);
		printf("  Scheduler vs NOTIFY, from INSERT sent:      p50 %s   p99 %s\n",
			   ratio(st[5].p50, st[6].p50), ratio(st[5].p99, st[6].p99));
	}
	printf("  polling baseline (arithmetic, not measured): a scheduler that polls every %d s\n"
		   "    finds a job that falls due at a random moment after %d/2 s at the median:\n"
		   "    p50 = %d ms, p99 = %d ms, max = %d ms",
		   poll_s, poll_s, poll_s * 500, poll_s * 990, poll_s * 1000);
	if (st[0].n && st[0].p50 > 0)
		printf(" (p50 %.0fx the measured Scheduler p50)", (poll_s * 500.0 * 1000) / st[0].p50);
	printf("\n");
	printf("  Scheduler: %lld steps and %lld wake-up requests for %d jobs (%d not activated;\n"
		   "    %d notifications not of these jobs)\n",
		   steps1 - steps0, wakes1 - wakes0, n, n - nv[0], other);
	print_worst(5);
	fflush(stdout);

	/* ---- burst: n due jobs in one transaction */
	{
		int64_t		t_commit, first = INT64_MAX, last = 0, notify_last = 0, seen_last = 0;
		char		sql[1024];
		int			nseen = 0;

		free(jobs);
		njobs = 0;
		jobs = NULL;
		pump(now_us() + 200000, false);
		scheduler_counters(&steps0, &wakes0);
		from = nheard;
		PQclear(run("BEGIN"));
		snprintf(sql, sizeof(sql),
				 "INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type,"
				 "                          target_machines, start_after)"
				 " SELECT 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}', clock_timestamp()"
				 "   FROM generate_series(1, %d)"
				 " RETURNING job_id", n);
		res = run(sql);
		njobs = PQntuples(res);
		jobs = calloc(njobs, sizeof(Job));
		for (int i = 0; i < njobs; i++)
			snprintf(jobs[i].id, sizeof(jobs[i].id), "%s", PQgetvalue(res, i, 0));
		PQclear(res);
		if (!PQsendQuery(ins, "COMMIT"))
			die("sending COMMIT failed", ins);
		t_commit = pump(0, true);
		while ((res = PQgetResult(ins)) != NULL)
		{
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				die("COMMIT failed", ins);
			PQclear(res);
		}
		for (int i = 0; i < njobs; i++)
			jobs[i].commit_us = t_commit;
		if (!wait_all_active(from, 120))
			fprintf(stderr, "scheduler_latency: WARNING: burst not all active after 120 s\n");
		fetch_server_times();
		match_notifications(from);
		scheduler_counters(&steps1, &wakes1);
		for (int i = 0; i < njobs; i++)
		{
			if (jobs[i].activated_us)
			{
				if (jobs[i].activated_us < first)
					first = jobs[i].activated_us;
				if (jobs[i].activated_us > last)
					last = jobs[i].activated_us;
			}
			if (jobs[i].notify_us > notify_last)
				notify_last = jobs[i].notify_us;
			if (jobs[i].seen_us > seen_last)
				seen_last = jobs[i].seen_us;
			nseen += jobs[i].seen_us != 0;
		}
		printf("\nBurst: %d due jobs inserted in one transaction.\n", njobs);
		if (last)
		{
			printf("  commit returned -> first active   %9.3f ms\n", (first - t_commit) / 1000.0);
			printf("  commit returned -> last active    %9.3f ms   = %.0f jobs/s\n",
				   (last - t_commit) / 1000.0, njobs / ((last - t_commit) / 1e6));
			printf("  first active -> last active       %9.3f ms   = %.0f jobs/s (activation rate alone)\n",
				   (last - first) / 1000.0, last > first ? (njobs - 1) / ((last - first) / 1e6) : 0.0);
		}
		if (seen_last && nseen == njobs)
			printf("  commit returned -> last activation committed (its NOTIFY heard)\n"
				   "                                    %9.3f ms   = %.0f jobs/s\n",
				   (seen_last - t_commit) / 1000.0, njobs / ((seen_last - t_commit) / 1e6));
		if (notify_last)
			printf("  baseline: commit returned -> last of its %d NOTIFYs arrives  %9.3f ms\n",
				   njobs, (notify_last - t_commit) / 1000.0);
		printf("  Scheduler: %lld steps, %lld wake-up requests (%d of %d jobs active; %d activations heard by NOTIFY)\n",
			   steps1 - steps0, wakes1 - wakes0, fetch_server_times(), njobs, nseen);
	}

	PQfinish(lis);
	PQfinish(ins);
	return 0;
}
