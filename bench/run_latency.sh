#!/usr/bin/env bash
# A 1 KB package job from INSERT at CEN to its PCM file on a child site's
# logon server: p50/p90/p99 over $RUN_JOBS (200) jobs, against the same work
# done by a shell (bench/run_latency.c).  Called by bench/run-all with the
# central cluster up (PGHOST/PGPORT set, database bench); $1 = work
# directory.  It starts its own child site CH1.
set -eu
work=$1
n=${RUN_JOBS:-200}
bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
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
"$work/run_latency" "host=$PGHOST port=$PGPORT dbname=bench" "host=$PGHOST port=$chport dbname=bench" "$n" "$work"
# where the time goes: medians of each step, from the two sites' own rows
echo "  medians (ms):"
psql -X -At -d bench -F ' ' <<'SQL' | awk '{ printf "    CEN: job INSERT -> build started %s, build %s, build -> send started %s, send (to the end of receive_end) %s\n", $1, $2, $3, $4 }'
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM b.started_at - j.created_at))::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM b.finished_at - b.started_at))::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM s.started_at - b.finished_at))::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM s.finished_at - s.started_at))::numeric, 1)
  FROM smsdist.jobs j
  JOIN smsdist.package_builds b ON b.package_id = j.package_id AND b.source_version = j.source_version
  JOIN smsdist.job_site_status s ON s.job_id = j.job_id AND s.phase = 'send'
 WHERE j.job_type = 'run_command' AND j.comment IS DISTINCT FROM 'sent by the parent site'
   AND j.target_machines[1] LIKE 'CH1%';
SQL
PGPORT=$chport psql -X -At -d bench -F ' ' <<'SQL' | awk '{ printf "    CH1: job recorded -> distribution started %s, distribution %s, distribution -> PCM file %s\n", $1, $2, $3 }'
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM s.started_at - j.created_at))::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM s.finished_at - s.started_at))::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM p.written_at - s.finished_at))::numeric, 1)
  FROM smsdist.jobs j
  JOIN smsdist.job_site_status s ON s.job_id = j.job_id AND s.phase = 'distribute'
  JOIN smsdist.pcm_files p ON j.job_id = ANY (p.jobs);
SQL
