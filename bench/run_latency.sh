#!/usr/bin/env bash
# A 1 KB package job from INSERT at CEN to its PCM file on a child site's
# logon server: p50/p90/p99 over $RUN_JOBS (200) jobs, against the same work
# done by a shell (bench/run_latency.c).  Called by bench/run-all with the
# central cluster up (PGHOST/PGPORT set, database bench); $1 = work
# directory.  It starts its own child site CH1.
set -eu
work=$1
n=${RUN_JOBS:-200}
bindir=$(${PG_CONFIG:-pg_config} --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
chport=$((PGPORT + 2))

. "$(dirname "$0")/child_site.sh"
start_child_site "$work/ch1run" "$chport"
mkdir -p "$work/ch1run-dirs/dp" "$work/ch1run-dirs/drive" "$work/ch1run-dirs/logon" "$work/small" "$work/pipe-small"
PGPORT=$chport psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP', '$work/ch1run-dirs/dp'),
  ('CH1', 'site_server_drive', 'D', '$work/ch1run-dirs/drive'),
  ('CH1', 'logon_server', 'LOGON', '$work/ch1run-dirs/logon');
SQL
# earlier benchmarks' jobs are not what is measured here; CH1 is this one
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'run latency benchmark'
 WHERE state IN ('pending', 'active');
DELETE FROM smsdist.sender_addresses WHERE target_site_code = 'CH1';
-- run-all's own package is CEN00001, given by hand: new IDs start above it
SELECT setval('smsdist.package_id_seq', greatest(4096, (SELECT last_value FROM smsdist.package_id_seq)));
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo)
VALUES ('CH1', 'host=$PGHOST port=$chport dbname=bench user=parent_sender');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT 'CH1' || upper(lpad(to_hex(g), 5, '0')), 'LAT' || g, 'BRANCH', 'CH1', 'WINNT_X86'
  FROM generate_series(1, $n) g
ON CONFLICT DO NOTHING;
SQL
# CPU time of a cluster (clock ticks): its postmaster, the children it has
# reaped and those still running.  Latency on a shared machine depends on
# the load; the CPU the two sites spend per job does not.
cluster_cpu() {
    local pm f t c
    pm=$(head -1 "$1/postmaster.pid")
    read -r -a f < "/proc/$pm/stat"
    t=$((f[13] + f[14] + f[15] + f[16]))
    for c in $(ps --ppid "$pm" -o pid=); do
        read -r -a f < "/proc/$c/stat" 2>/dev/null && t=$((t + f[13] + f[14]))
    done
    echo "$t"
}
# STATEMENTS=1: what each site's statements took, from the first job on
if [ -n "${STATEMENTS:-}" ]; then
    for p in "$PGPORT" "$chport"; do
        PGPORT=$p psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null \
            -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()"
    done
fi
cpu0=$(( $(cluster_cpu "$work/data") + $(cluster_cpu "$work/ch1run") ))
"$work/run_latency" "host=$PGHOST port=$PGPORT dbname=bench" "host=$PGHOST port=$chport dbname=bench" "$n" "$work"
cpu1=$(( $(cluster_cpu "$work/data") + $(cluster_cpu "$work/ch1run") ))
awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$n" \
    'BEGIN { printf "  CPU of both sites (all their processes): %.1f ms per job\n", t * 1000 / hz / n }'
# Where the time goes: each hop's p50/p90 from timestamps the two sites'
# rows already carry (one machine's clock), joined by job ID (a job keeps
# its ID at the child).  CH1's job row is written by receive_end, so "send"
# ends inside receive_end's transaction.
psql -X -At -d bench -F ' ' >"$work/hops-cen" <<'SQL'
SELECT j.job_id, extract(epoch FROM j.created_at), extract(epoch FROM j.activated_at),
       extract(epoch FROM b.started_at), extract(epoch FROM b.finished_at), extract(epoch FROM s.started_at)
  FROM smsdist.jobs j
  JOIN smsdist.package_builds b ON b.package_id = j.package_id AND b.source_version = j.source_version
  JOIN smsdist.job_site_status s ON s.job_id = j.job_id AND s.phase = 'send'
 WHERE j.job_type = 'run_command' AND j.comment IS DISTINCT FROM 'sent by the parent site'
   AND j.target_machines[1] LIKE 'CH1%' AND s.state = 'done'
 ORDER BY 1;
SQL
PGPORT=$chport psql -X -At -d bench -F ' ' >"$work/hops-ch1" <<'SQL'
SELECT j.job_id, extract(epoch FROM j.created_at), extract(epoch FROM j.activated_at),
       extract(epoch FROM s.started_at), extract(epoch FROM s.finished_at), extract(epoch FROM p.written_at)
  FROM smsdist.jobs j
  JOIN smsdist.job_site_status s ON s.job_id = j.job_id AND s.phase = 'distribute'
  JOIN smsdist.pcm_files p ON j.job_id = ANY (p.jobs)
 ORDER BY 1;
SQL
join "$work/hops-cen" "$work/hops-ch1" | awk '
function pct(a, n, p,   i) { i = int(p / 100 * (n - 1) + 0.5) + 1; return a[i] }
function median(col, from, to,   n, i, j, v, x) {
    n = 0
    for (i = from; i <= to; i++) {
        x = d[i, col]
        for (j = ++n; j > 1 && v[j - 1] > x; j--) v[j] = v[j - 1]
        v[j] = x
    }
    return pct(v, n, 50)
}
function show(name, col,   n, i, j, v, x, q) {
    n = 0
    for (i = 1; i <= rows; i++) {
        x = d[i, col]
        for (j = ++n; j > 1 && v[j - 1] > x; j--) v[j] = v[j - 1]
        v[j] = x
    }
    # a hop whose time grows with the jobs already there: its p50 over
    # the first and the last quarter of the jobs
    q = int(rows / 4); if (q < 1) q = 1
    printf "    %-58s %7.1f %7.1f %7.1f %7.1f\n", name, pct(v, n, 50), pct(v, n, 90),
           median(col, 1, q), median(col, rows - q + 1, rows)
}
{
    rows++
    d[rows, 1] = ($3 - $2) * 1000; d[rows, 2] = ($4 - $3) * 1000; d[rows, 3] = ($5 - $4) * 1000
    d[rows, 4] = ($6 - $5) * 1000; d[rows, 5] = ($7 - $6) * 1000; d[rows, 6] = ($8 - $7) * 1000
    d[rows, 7] = ($9 - $8) * 1000; d[rows, 8] = ($10 - $9) * 1000; d[rows, 9] = ($11 - $10) * 1000
    d[rows, 10] = ($11 - $2) * 1000
}
END {
    printf "  where the time goes, per hop (%d jobs; ms)                      p50     p90  p50 1st  p50 4th quarter\n", rows
    show("CEN: job INSERT -> activated (Scheduler woken at commit)", 1)
    show("CEN: activated -> build started (rest of the activation)", 2)
    show("CEN: build (small package, in the Scheduler step)", 3)
    show("CEN: build finished -> send started (Sender woken)", 4)
    show("send started -> job recorded at CH1 (in receive_end)", 5)
    show("CH1: job recorded -> activated (CH1 Scheduler woken)", 6)
    show("CH1: activated -> distribution started (Despooler woken)", 7)
    show("CH1: distribution (extract, publish)", 8)
    show("CH1: distribution finished -> PCM file written", 9)
    show("total: job INSERT at CEN -> PCM file at CH1", 10)
}'
# The statements that took the most time at each site; one whose time
# grows with the jobs already there has a max far above its mean.
if [ -n "${STATEMENTS:-}" ]; then
    for site in CEN:$PGPORT CH1:$chport; do
        echo "  statements at ${site%%:*} by planning + execution time (ms): calls, planning, execution, mean execution, rows, query"
        PGPORT=${site#*:} psql -X -At -d bench -F ' | ' <<'SQL' | sed 's/^/    /'
SELECT 'all ' || sum(calls), round(sum(total_plan_time)::numeric, 1), round(sum(total_exec_time)::numeric, 1),
       '', '', '(every statement; nested ones are also in their callers'' execution)'
  FROM pg_stat_statements WHERE toplevel;
SELECT calls, round(total_plan_time::numeric, 1), round(total_exec_time::numeric, 1),
       round(mean_exec_time::numeric, 2), rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
  FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT 15;
SQL
    done
fi
