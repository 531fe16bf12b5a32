#!/usr/bin/env bash
# Collections and the Run phase at scale (issue 4's benchmarks 1 and 2), on
# the central cluster bench/run-all started (PGHOST/PGPORT set, database
# bench, site CEN); $1 = work directory.
#   2. a query rule over 1,000,000 systems: rule INSERT -> membership
#      materialized, against the same SELECT materialized by hand;
#   1. a run-command job for a 100,000-member collection: job INSERT -> every
#      PCM file on the site server and on both logon servers.
set -eu
work=$1
# smaller figures for a machine short of disk (the defaults need about
# 3.5 GB: two sets of 300,000 files and the systems' WAL)
systems=${COLLECTIONS_SYSTEMS:-1000000}
run_machines=${RUN_MACHINES:-100000}
# files in the job's package: its manifest (one line a file) is what the
# package's hash in every PCM file and policy is computed from
run_files=${RUN_FILES:-1}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
q() { psql -X -At -q -d bench -v ON_ERROR_STOP=1 -c "$1"; }
wait_for() {   # wait_for <sql returning t> <timeout s>
    local deadline=$(( $(date +%s) + $2 ))
    while [ "$(q "$1")" != t ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for: $1"; return 1; }
        sleep 0.05
    done
}
mkdir -p "$work/run/dp" "$work/run/drive" "$work/run/logon1" "$work/run/logon2" "$work/run/src"
echo "echo setup" > "$work/run/src/setup.sh"
if [ "$run_files" -gt 1 ]; then
    mkdir -p "$work/run/src/lib"
    for ((i = 1; i < run_files; i++)); do echo "part $i" > "$work/run/src/lib/file$i.dll"; done
fi
q "UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'collections benchmark' WHERE state IN ('pending', 'active')" >/dev/null

# ---- $systems systems (a bulk load queues a full evaluation)
t0=$(now)
q "INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform, memory_mb)
   SELECT 'BNC' || lpad(upper(to_hex(i)), 5, '0'), 'W' || i, 'BENCH', 'CEN',
          (CASE WHEN i % 2 = 0 THEN 'WINNT_X86' ELSE 'WIN95' END)::smsdist.platform, (i % 8) * 256
     FROM generate_series(0, $systems - 1) i" >/dev/null
t1=$(now)
wait_for "SELECT count(*) = 0 FROM smsdist.collection_evaluation_queue" 120
q "VACUUM ANALYZE smsdist.system_resources" >/dev/null
# the load's WAL written out now, so that neither measurement below pays
# for a checkpoint the other did not
q "CHECKPOINT" >/dev/null
echo "  loaded $systems systems in $(secs "$t0" "$t1") s"

# ---- 2. a query rule over them (a quarter match)
rule="platform = 'WINNT_X86' AND memory_mb >= 1024"
t0=$(now)
q "CREATE TABLE bench_members (collection_id text, sms_id text, PRIMARY KEY (collection_id, sms_id));
   INSERT INTO bench_members SELECT 'X', r.sms_id FROM smsdist.system_resources r
    WHERE r.platform::text = 'WINNT_X86' AND r.memory_mb >= 1024" >/dev/null
t1=$(now)
base_s=$(secs "$t0" "$t1")
# one psql for the rule and the wait, as the baseline is one psql: the
# rule committed, then polled every 5 ms from the same session (a psql
# started for every poll cost as much CPU as the evaluation it waited for)
t0=$(now)
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
BEGIN;
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CENBEC01', 'Query bench');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
VALUES ('CENBEC01', 'query', \$\$$rule\$\$);
COMMIT;
DO \$\$
BEGIN
  FOR i IN 1 .. 24000 LOOP
    EXIT WHEN (SELECT evaluated_at IS NOT NULL FROM smsdist.collections WHERE collection_id = 'CENBEC01');
    PERFORM pg_sleep(0.005);
  END LOOP;
END \$\$;
SQL
t1=$(now)
[ "$(q "SELECT evaluated_at IS NOT NULL FROM smsdist.collections WHERE collection_id = 'CENBEC01'")" = t ] \
    || { echo "timed out waiting for the evaluation of CENBEC01"; exit 1; }
eval_s=$(secs "$t0" "$t1")
members=$(q "SELECT count(*) FROM smsdist.collection_members WHERE collection_id = 'CENBEC01'")
echo
echo "== 2. a query rule over $systems systems ($members members)"
printf '  %-62s %8s s\n' "baseline: INSERT ... SELECT of the same rows into a keyed table" "$base_s"
printf '  %-62s %8s s\n' "smsdist: rule INSERT -> membership materialized (evaluated_at)" "$eval_s"
echo "  smsdist / baseline: $(awk -v a="$eval_s" -v b="$base_s" 'BEGIN{printf "%.2f", a/b}')   (target: under 3 s)"

# ---- 1. a run-command job for a $run_machines-member collection
q "INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
     ('CEN', 'distribution_point', 'DP', '$work/run/dp'),
     ('CEN', 'site_server_drive', 'D', '$work/run/drive'),
     ('CEN', 'logon_server', 'LOGON1', '$work/run/logon1'),
     ('CEN', 'logon_server', 'LOGON2', '$work/run/logon2');
   INSERT INTO smsdist.collections (collection_id, name) VALUES ('CENBEC02', 'Run bench');
   INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
   VALUES ('CENBEC02', 'query', 'sms_id < ''BNC$(printf '%05X' "$run_machines")''');
   INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CENBEB01', 'Run bench', '$work/run/src');
   INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CENBEB01', 'Install', 'setup.sh')" >/dev/null
wait_for "SELECT evaluated_at IS NOT NULL FROM smsdist.collections WHERE collection_id = 'CENBEC02'" 120
members=$(q "SELECT count(*) FROM smsdist.collection_members WHERE collection_id = 'CENBEC02'")
# baseline: the same number of small files written whole by one process
# the way smsdist writes them (temporary names, one sync, renames, one fsync
# per directory): the file system's own cost for these files
cat > "$work/run/baseline.py" <<'PYEND'
import os, sys
n, dirs = int(sys.argv[1]), sys.argv[2:]
body = b"[smsdist]\nformat=pcm\nversion=1\n" + b"x" * 500 + b"\n"
for d in dirs:
    os.makedirs(d, exist_ok=True)
for i in range(n):
    for d in dirs:
        fd = os.open(os.path.join(d, ".t%d" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, body)
        os.close(fd)
os.sync()
for i in range(n):
    for d in dirs:
        os.rename(os.path.join(d, ".t%d" % i), os.path.join(d, "BNC%05X" % i))
for d in dirs:
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
PYEND
t0=$(now)
python3 "$work/run/baseline.py" "$members" "$work/run/base1" "$work/run/base2" "$work/run/base3"
t1=$(now)
base_s=$(secs "$t0" "$t1")
# the Despooler's timing of each batch (a DEBUG1 line), printed below
q "ALTER SYSTEM SET log_min_messages = debug1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
log_from=$(wc -c < "$work/server.log")
# the CPU time (user, system) of the components that do this job's work,
# which unlike the elapsed time does not move with the file system's state
cpu_of() {   # cpu_of <backend_type> -> "user system" in clock ticks
    local pid
    pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = '$1'")
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || { echo "0 0"; return; }
    # fields 14 and 15 of /proc/PID/stat, counted after the command's ")"
    sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12, $13 }'
}
components="smsdist despooler|smsdist scheduler|smsdist offer_manager"
declare -A cpu0
while IFS= read -r c; do cpu0[$c]=$(cpu_of "$c"); done < <(tr '|' '\n' <<<"$components")
# the job and the wait in one psql, polling every 50 ms from that session
# and counting the files' rows only once the queue is empty: a psql
# started for every poll, counting 100,000 rows each time, took a fifth of
# the machine's CPU from the writers while the baseline ran alone
t0=$(now)
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id)
VALUES ('CENBEC03', 'run_command', 'CENBEB01', 'Install', 'collection', 'CENBEC02');
DO \$\$
BEGIN
  FOR i IN 1 .. 12000 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM smsdist.pcm_queue)
          AND (SELECT count(*) FROM smsdist.pcm_files) = $members;
    PERFORM pg_sleep(0.05);
  END LOOP;
END \$\$;
SQL
t1=$(now)
[ "$(q "SELECT count(*) FROM smsdist.pcm_files")" = "$members" ] \
    || { echo "timed out waiting for the PCM files of CENBEC03"; exit 1; }
run_s=$(secs "$t0" "$t1")
tick=$(getconf CLK_TCK)
cpu_line=""
while IFS= read -r c; do
    read -r u0 s0 <<<"${cpu0[$c]}"
    read -r u1 s1 < <(cpu_of "$c")
    cpu_line+=$(awk -v n="${c#smsdist }" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$tick" \
        'BEGIN { printf "%s %.1f + %.1f s", n, u / t, s / t }')"; "
done < <(tr '|' '\n' <<<"$components")
q "ALTER SYSTEM RESET log_min_messages" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
on_disk=$(( $(ls "$work/run/logon1/pcins.box" | wc -l) + $(ls "$work/run/logon2/pcins.box" | wc -l) + $(ls "$work/run/drive/mancfg.box/pcmdom.box/BENCH.000" | wc -l) ))
echo
echo "== 1. a run-command job for a $members-member collection"
printf '  %-62s %8s s\n' "baseline: $members x 3 small files, temp + one sync + rename" "$base_s"
printf '  %-62s %8s s\n' "smsdist: job INSERT -> every PCM file on every logon server" "$run_s"
echo "  smsdist / baseline: $(awk -v a="$run_s" -v b="$base_s" 'BEGIN{printf "%.2f", a/b}')   (target: 1.25 or less)"
echo "  PCM files on disk: $on_disk (expected $((members * 3)))"
echo "  CPU during the job (user + system): ${cpu_line%; }"
echo "  the Despooler's batches (files written: reading, writing, syncing):"
tail -c +"$((log_from + 1))" "$work/server.log" | grep -o 'run phase[^:]*: [0-9]* PCM files\? written.*' \
    | sed 's/^run phase: /    /; s/^run phase (helper): /    helper: /' || true
echo "  helpers (smsdist.pcm_helpers):"
tail -c +"$((log_from + 1))" "$work/server.log" | grep -o 'smsdist pcm writer: wrote.*' | sed 's/^smsdist pcm writer: /    /' || true
