/*
 * run_latency: a 1 KB package job, from its INSERT at the central site to
 * its PCM file on a child site's logon server (issue 4, benchmark 4).
 *
 * usage: run_latency CEN-CONNINFO CH1-CONNINFO JOBS WORKDIR
 *
 * For each of JOBS jobs, one after another: make a package source of one
 * 1 KB file, and INSERT the package, its program and a run-command job for
 * one machine of CH1 (its own machine: one job per PCM file) in one
 * statement at CEN; then poll CH1 every millisecond until its pcm_files row
 * for that machine lists the job.  The latency is CH1's written_at minus
 * CEN's created_at: server clocks of one machine, so the polling interval
 * does not enter it.  Everything in between is smsdist's: activation,
 * compression, the transfer, the child's job, despooling, publishing on the
 * distribution point, and the PCM file (written to the site server and the
 * logon server, fsynced, renamed).
 *
 * Baseline, same run, same machine: the same work done by a shell per job
 * (tar -czf, cp to the "child", tar -xzf into the "distribution point",
 * the PCM file written to a temporary name, sync, mv), timed from outside.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, int n, double p)
{
	int			i = (int) (p / 100.0 * (n - 1) + 0.5);

	return v[i];
}

static void
report(const char *what, double *v, int n)
{
	double		sum = 0;

	qsort(v, n, sizeof(double), cmp);
	for (int i = 0; i < n; i++)
		sum += v[i];
	printf("  %-44s p50 %7.1f ms   p90 %7.1f ms   p99 %7.1f ms   max %7.1f ms   mean %7.1f ms\n",
		   what, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99), v[n - 1], sum / n);
}

static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
	{
		fprintf(stderr, "run_latency: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static void
make_source(const char *dir)
{
	char		path[1100];
	char		data[1024];
	FILE	   *f;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
	{
		perror(dir);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/setup.cmd", dir);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = 'a' + (char) ((i * 7 + strlen(dir)) % 26);
	if ((f = fopen(path, "w")) == NULL || fwrite(data, 1, sizeof(data), f) != sizeof(data) || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	PGconn	   *cen,
			   *ch1;
	int			n;
	const char *work;
	double	   *lat,
			   *base;
	int			done = 0;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s CEN-CONNINFO CH1-CONNINFO JOBS WORKDIR\n", argv[0]);
		return 2;
	}
	cen = connect_or_die(argv[1]);
	ch1 = connect_or_die(argv[2]);
	n = atoi(argv[3]);
	work = argv[4];
	lat = calloc(n, sizeof(double));
	base = calloc(n, sizeof(double));

	for (int i = 1; i <= n; i++)
	{
		char		dir[1024];
		char		name[64];
		char		machine[16];
		const char *v[3];
		PGresult   *r;
		char		job[16];
		double		created;
		double		deadline;

		snprintf(dir, sizeof(dir), "%s/small/%d", work, i);
		make_source(dir);
		snprintf(name, sizeof(name), "Small %d", i);
		snprintf(machine, sizeof(machine), "CH1%05X", i);
		v[0] = name;
		v[1] = dir;
		v[2] = machine;
		r = PQexecParams(cen,
						 "WITH p AS (INSERT INTO smsdist.packages (name, source_directory) VALUES ($1, $2)"
						 "           RETURNING package_id),"
						 "     pr AS (INSERT INTO smsdist.programs (package_id, program_name, command_line)"
						 "            SELECT package_id, 'Install', 'setup.cmd' FROM p RETURNING package_id)"
						 " INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines)"
						 " SELECT 'run_command', package_id, 'Install', 'machines', ARRAY[$3] FROM pr"
						 " RETURNING job_id, extract(epoch FROM created_at)",
						 3, NULL, v, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "run_latency: insert failed: %s", PQerrorMessage(cen));
			return 1;
		}
		snprintf(job, sizeof(job), "%s", PQgetvalue(r, 0, 0));
		created = atof(PQgetvalue(r, 0, 1));
		PQclear(r);

		deadline = now() + 60;
		for (;;)
		{
			const char *w[2] = {machine, job};

			r = PQexecParams(ch1,
							 "SELECT extract(epoch FROM written_at) FROM smsdist.pcm_files"
							 " WHERE sms_id = $1 AND $2 = ANY (jobs)",
							 2, NULL, w, NULL, NULL, 0);
			if (PQresultStatus(r) != PGRES_TUPLES_OK)
			{
				fprintf(stderr, "run_latency: poll failed: %s", PQerrorMessage(ch1));
				return 1;
			}
			if (PQntuples(r) == 1)
			{
				lat[done] = (atof(PQgetvalue(r, 0, 0)) - created) * 1000.0;
				PQclear(r);
				break;
			}
			PQclear(r);
			if (now() > deadline)
			{
				fprintf(stderr, "run_latency: job %s has no PCM file at CH1 after 60 s\n", job);
				return 1;
			}
			usleep(1000);
		}

		/* the baseline: the same work by hand */
		{
			char		cmd[4096];
			double		t0;

			snprintf(cmd, sizeof(cmd),
					 "set -e; b='%s/pipe-small/%d'; mkdir -p \"$b/child\" \"$b/dp\" \"$b/logon\";"
					 " tar -czf \"$b/pkg.tgz\" -C '%s' .; cp \"$b/pkg.tgz\" \"$b/child/\";"
					 " tar -xzf \"$b/child/pkg.tgz\" -C \"$b/dp\";"
					 " printf '[job %s]\\ncommand_line=setup.cmd\\n' > \"$b/logon/.%s.tmp\";"
					 " sync; mv \"$b/logon/.%s.tmp\" \"$b/logon/%s\"",
					 work, i, dir, job, machine, machine, machine);
			t0 = now();
			if (system(cmd) != 0)
			{
				fprintf(stderr, "run_latency: the baseline failed\n");
				return 1;
			}
			base[done] = (now() - t0) * 1000.0;
		}
		done++;
	}

	printf("  %d jobs, one after another, each for its own machine at CH1\n", done);
	if (done >= 8)
	{
		/* a trend shows work that grows with the jobs already there */
		int			q = done / 4;
		double	   *first = malloc(q * sizeof(double));
		double	   *last = malloc(q * sizeof(double));

		memcpy(first, lat, q * sizeof(double));
		memcpy(last, lat + done - q, q * sizeof(double));
		qsort(first, q, sizeof(double), cmp);
		qsort(last, q, sizeof(double), cmp);
		printf("  p50 of the first %d jobs %.1f ms, of the last %d %.1f ms\n", q, pct(first, q, 50), q, pct(last, q, 50));
	}
	report("smsdist: job INSERT at CEN -> PCM at CH1", lat, done);
	report("shell: tar -czf, cp, tar -xzf, PCM, sync", base, done);
	printf("  smsdist p50 / shell p50: %.2f   (target: smsdist p50 < 100 ms)\n",
		   pct(lat, done, 50) / pct(base, done, 50));
	PQfinish(cen);
	PQfinish(ch1);
	return 0;
}
