#!/usr/bin/env bash
# Job INSERT to verified content on a child site's distribution point,
# against a shell pipeline doing the same work (tar | pigz, copy, tar -xzf),
# on the tree compress.sh made.  Called by bench/run-all with the central
# cluster up (PGHOST/PGPORT set, database bench, sites CEN and CH1); $1 = work
# directory.  It starts a second cluster for the child site CH1.
set -eu
work=$1
tree=$work/tree
bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
chport=$((PGPORT + 1))
now() { date +%s.%N; }
# CPU time used by the whole machine so far, in seconds (every process:
# /proc/stat's user, nice, system, irq and softirq, not idle or iowait)
cpu_now() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz; exit }' /proc/stat; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# where the time went: the build (CEN), the transfer (CEN's send row), the
# Despooler (CH1's distribute row), each from its own rows
phases() {
    local job=$1 b s d
    b=$(psql -X -At -d bench -c "SELECT round(extract(epoch FROM b.finished_at - b.started_at)::numeric, 3) FROM smsdist.package_builds b JOIN smsdist.jobs j ON j.package_id = b.package_id AND j.source_version = b.source_version WHERE j.job_id = '$job'")
    s=$(psql -X -At -d bench -c "SELECT round(extract(epoch FROM finished_at - started_at)::numeric, 3) FROM smsdist.job_progress WHERE job_id = '$job' AND phase = 'send' AND site_code = 'CH1'")
    d=$(PGPORT=$chport psql -X -At -d bench -c "SELECT round(extract(epoch FROM finished_at - started_at)::numeric, 3) FROM smsdist.job_progress WHERE job_id = '$job' AND phase = 'distribute'")
    echo "  phases: build ${b:-?} s, transfer ${s:-?} s, despool and publish ${d:-?} s"
}
[ -d "$tree" ] || { echo "no tree (run compress.sh first)"; exit 1; }
bytes=$(du -sb "$tree" | cut -f1)
echo "tree: $(find "$tree" -type f | wc -l) files, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MB"

# the child site
. "$(dirname "$0")/child_site.sh"
start_child_site "$work/ch1data" "$chport"
mkdir -p "$work/ch1/dp" "$work/ch1/drive" "$work/pipe/dp" "$work/pipe/child"
PGPORT=$chport psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP', '$work/ch1/dp'), ('CH1', 'site_server_drive', 'D', '$work/ch1/drive');
SQL
# the latency benchmark left ~2,000 active jobs for a machine at CH1: they
# are not what is measured here
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'send benchmark'
 WHERE state IN ('pending', 'active');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo)
VALUES ('CH1', 'host=$PGHOST port=$chport dbname=bench user=parent_sender');
SQL

# baseline: the same work with a shell pipeline
sync
c0=$(cpu_now)
t0=$(now)
tar -cf - -C "$tree" . | pigz -6 -p "$(nproc)" > "$work/pipe/pkg.tgz"
cp "$work/pipe/pkg.tgz" "$work/pipe/child/pkg.tgz"
mkdir -p "$work/pipe/dp/pkg"
tar -xzf "$work/pipe/child/pkg.tgz" -C "$work/pipe/dp/pkg"
t1=$(now)
sync
t2=$(now)
c2=$(cpu_now)
pipe_cpu=$(secs "$c0" "$c2")
pipe_s=$(secs "$t0" "$t1")
pipe_sync_s=$(secs "$t0" "$t2")

# wait_at_child <job>: until the job is completed or failed at CH1 (5 min at most)
wait_at_child() {
    PGPORT=$chport psql -X -q -d bench -v job="$1" >/dev/null <<'SQL'
SELECT set_config('bench.job', :'job', false);
DO $$
BEGIN
    FOR i IN 1 .. 6000 LOOP
        EXIT WHEN (SELECT state IN ('completed', 'failed') FROM smsdist.jobs
                    WHERE job_id = current_setting('bench.job'));
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SQL
}

# send_package <package id> <streaming on|off>: a new package of the tree, a
# share job for CH1 (same ID), until it is completed there; sets sms_s and
# identical
send_package() {
    local id=$1 created finished state
    psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER SYSTEM SET smsdist.send_while_compressing = $2;
SELECT pg_reload_conf();
SQL
    sleep 0.5
    cpu0=$(cpu_now)
    psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$id', 'Send bench', '$tree');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('$id', 'share_package', '$id', 'sites', '{CH1}');
SQL
    wait_at_child "$id"
    sms_cpu=$(secs "$cpu0" "$(cpu_now)")
    state=$(PGPORT=$chport psql -X -At -d bench -c "SELECT state FROM smsdist.jobs WHERE job_id = '$id'")
    [ "$state" = completed ] || { echo "the job at CH1 is '$state'"; exit 1; }
    # server clocks: CEN's created_at to CH1's finished_at (one machine, one clock)
    created=$(psql -X -At -d bench -c "SELECT extract(epoch FROM created_at) FROM smsdist.jobs WHERE job_id = '$id'")
    finished=$(PGPORT=$chport psql -X -At -d bench -c "SELECT extract(epoch FROM finished_at) FROM smsdist.jobs WHERE job_id = '$id'")
    sms_s=$(secs "$created" "$finished")
    identical=no
    diff -r "$tree" "$work/ch1/dp/SMS_PKGC/$id" >/dev/null && identical=yes
    psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER SYSTEM RESET smsdist.send_while_compressing;
SELECT pg_reload_conf();
SQL
}

printf '  %-58s %8s s\n' "shell: tar | pigz -6, cp, tar -xzf (page cache)" "$pipe_s"
printf '  %-58s %8s s\n' "shell: the same, then sync (durable, as smsdist is)" "$pipe_sync_s"
printf '  %-58s %8s s\n' "shell: CPU time used (all processes)" "$pipe_cpu"

# the package sent while it is compressed (the default), then after it is
# compressed (send_while_compressing off), then while again: the same tree
# under three package IDs, so each is a first send (no delta)
send_package CENF0C0B on
printf '  %-58s %8s s\n' "smsdist, sent while compressing (1st)" "$sms_s"
echo "  published tree identical to the source: $identical"
phases CENF0C0B
echo "  CPU time used (all processes, both sites): $sms_cpu s"
echo "  smsdist (while compressing, 1st) / shell (durable): $(awk -v a="$sms_s" -v b="$pipe_sync_s" 'BEGIN{printf "%.2f", a/b}')"
send_package CENF0C0A off
printf '  %-58s %8s s\n' "smsdist, sent after compressing (send_while_compressing off)" "$sms_s"
echo "  published tree identical to the source: $identical"
phases CENF0C0A
echo "  CPU time used (all processes, both sites): $sms_cpu s"
echo "  smsdist (after compressing) / shell (durable): $(awk -v a="$sms_s" -v b="$pipe_sync_s" 'BEGIN{printf "%.2f", a/b}')"
send_package CENF0C01 on
echo "  smsdist, sent while compressing (2nd; the figure below):"

printf '  %-58s %8s s\n' "smsdist: job INSERT at CEN -> published and verified at CH1" "$sms_s"
echo "  smsdist / shell (durable): $(awk -v a="$sms_s" -v b="$pipe_sync_s" 'BEGIN{printf "%.2f", a/b}')   (target: <= 0.50)"
echo "  smsdist / shell (page cache): $(awk -v a="$sms_s" -v b="$pipe_s" 'BEGIN{printf "%.2f", a/b}')"
echo "  published tree identical to the source: $identical"
phases CENF0C01
echo "  CPU time used (all processes, both sites): $sms_cpu s"

# ---- delta update: change 1 % of the files (rewrite them with new bytes of
# the same size), send version 2, and compare the bytes sent with the full
# file's.  CH1 holds version 1 now, so the Sender sends a delta.
nfiles=$(find "$tree" -type f | wc -l)
nchange=$(( (nfiles + 99) / 100 ))
find "$tree" -type f | sort | awk -v n="$nfiles" -v k="$nchange" 'NR % int(n / k) == 0' | head -n "$nchange" |
while IFS= read -r f; do
    size=$(stat -c %s "$f")
    head -c "$size" /dev/urandom > "$f.new" && mv "$f.new" "$f"
done
changed_bytes=$(find "$tree" -type f -newer "$work/pipe/pkg.tgz" -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CENF0C01';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CENF0C02', 'share_package', 'CENF0C01', 'sites', '{CH1}');
SQL
wait_at_child CENF0C02
state=$(PGPORT=$chport psql -X -At -d bench -c "SELECT state FROM smsdist.jobs WHERE job_id = 'CENF0C02'")
[ "$state" = completed ] || { echo "the delta job at CH1 is '$state'"; exit 1; }
created=$(psql -X -At -d bench -c "SELECT extract(epoch FROM created_at) FROM smsdist.jobs WHERE job_id = 'CENF0C02'")
finished=$(PGPORT=$chport psql -X -At -d bench -c "SELECT extract(epoch FROM finished_at) FROM smsdist.jobs WHERE job_id = 'CENF0C02'")
delta_s=$(secs "$created" "$finished")
read -r full_bytes delta_bytes delta_base <<<"$(psql -X -At -F ' ' -d bench -c "
SELECT b.bytes, s.bytes_total, coalesce(s.delta_base::text, 'none')
  FROM smsdist.job_site_status s, smsdist.package_builds b
 WHERE s.job_id = 'CENF0C02' AND s.phase = 'send' AND b.package_id = 'CENF0C01' AND b.source_version = 2")"
identical=no
diff -r "$tree" "$work/ch1/dp/SMS_PKGC/CENF0C01" >/dev/null && identical=yes
echo
echo "== delta update ($nchange of $nfiles files changed, $(awk -v b="$changed_bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MB of new content)"
printf '  %-58s %12s bytes\n' "full package file (version 2)" "$full_bytes"
printf '  %-58s %12s bytes\n' "sent to CH1 (a delta from version $delta_base)" "$delta_bytes"
echo "  delta / full: $(awk -v a="$delta_bytes" -v b="$full_bytes" 'BEGIN{printf "%.4f", a/b}')"
printf '  %-58s %8s s   (the full send above: %s s)\n' "job INSERT at CEN -> version 2 published at CH1" "$delta_s" "$sms_s"
echo "  published tree identical to the source: $identical"
phases CENF0C02
