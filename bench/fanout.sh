#!/usr/bin/env bash
# Sending one package to 10 child sites at once (docs/packages.md#several-
# child-sites-at-once): a ~200 MB package of mixed files (the tree
# compress.sh makes) from CEN to 10 child sites, 10 clusters on this
# machine (small shared_buffers, each child with its own distribution point
# directory), against one child alone and against 10 sequential sends
# (smsdist.max_concurrent_sends = 1), in the same run.  Each figure is a new
# package (so that no child has it), built before its job: the time is the
# job's INSERT at CEN to the last child's job completed (published and
# verified there); CEN's CPU is its processes' utime + stime (/proc: the
# postmaster's own and reaped children's, plus the live ones'); the bytes
# that left it are the package bytes the Sender's send rows counted.
# Called by bench/run-all with the central cluster up (PGHOST/PGPORT set,
# database bench, data directory $1/data); $1 = work directory.
# FANOUT_MB=200: the tree's size in MB; other than 200, a tree of the same
# mix scaled to it in $1/tree-<MB> (a machine short of disk: each child
# holds the package file and its published tree).
set -eu
work=$1
mbs=${FANOUT_MB:-200}
tree=$work/tree
[ "$mbs" = 200 ] || tree=$work/tree-$mbs
children=10
bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# the tree compress.sh makes (~200 MB: random, text, binaries)
bash "$(dirname "$0")/make_tree.sh" "$tree" "$mbs"
echo "tree: $(find "$tree" -type f | wc -l) files, $(mb "$(du -sb "$tree" | cut -f1)") MB; $children child sites; $(nproc) CPUs"

# CEN: room for a helper per child (8 workers, a builder and its compressors)
psql -X -q -d bench -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET max_worker_processes = 24" >/dev/null
"$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w restart >/dev/null
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'fanout benchmark' WHERE state IN ('pending', 'active');
SQL

codes=()
stops=()
trap 'for s in "${stops[@]}"; do eval "$s"; done' EXIT
for i in $(seq 1 $children); do
    code=$(printf 'F%02d' "$i")
    codes+=("$code")
    port=$((PGPORT + 10 + i))
    data=$work/fan-$code
    "$bindir/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$PGHOST'
port = $port
shared_buffers = 16MB
shared_preload_libraries = 'smsdist'
smsdist.database = 'bench'
smsdist.site_code = '$code'
max_worker_processes = 12
CONF
    "$bindir/pg_ctl" -D "$data" -l "$data.log" -w start >/dev/null
    stops+=("'$bindir/pg_ctl' -D '$data' -m fast -w stop >/dev/null 2>&1")
    mkdir -p "$work/fan/$code/dp" "$work/fan/$code/drive"
    PGPORT=$port "$bindir/createdb" bench
    PGPORT=$port psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION smsdist;
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('$code', 'Fan-out child', 'CEN');
CREATE ROLE parent_sender LOGIN IN ROLE smsdist_parent_site;
INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('parent_sender', 'CEN');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'distribution_point', 'DP', '$work/fan/$code/dp'), ('$code', 'site_server_drive', 'D', '$work/fan/$code/drive');
SQL
    psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.sites VALUES ('$code', 'Fan-out child', 'CEN') ON CONFLICT DO NOTHING;
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo)
VALUES ('$code', 'host=$PGHOST port=$port dbname=bench user=parent_sender');
SQL
done
port_of() { echo $((PGPORT + 10 + 10#${1#F})); }

# CEN's CPU time so far, in seconds: the postmaster's own and its reaped
# children's (fields 14-17 of /proc/PID/stat), and its live children's
cen_cpu() {
    local pm
    pm=$(head -1 "$work/data/postmaster.pid")
    { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
      for c in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do
          awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true
      done; } | awk -v hz="$(getconf CLK_TCK)" '{ s += $1 } END { printf "%.2f", s / hz }'
}

# build <package>: the package file, ready at CEN before any job sends it
# (a job for CEN itself makes the build; it has no distribution point)
build() {
    psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$1', 'Fan-out bench', '$tree');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', '$1', 'sites', '{CEN}');
SQL
    bash "$(dirname "$0")/wait_build.sh" "$1"
    [ "$(psql -X -At -d bench -c "SELECT state FROM smsdist.package_builds WHERE package_id = '$1'")" = ready ] ||
        { echo "the build of $1 failed"; exit 1; }
    psql -X -q -d bench -c "UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'built' WHERE package_id = '$1' AND state IN ('pending', 'active')" >/dev/null
}

# wait_child <code> <job>: until the job is completed or failed there (10 min at most)
wait_child() {
    PGPORT=$(port_of "$1") psql -X -q -d bench -v job="$2" >/dev/null <<'SQL'
SELECT set_config('bench.job', :'job', false);
DO $$
BEGIN
    FOR i IN 1 .. 12000 LOOP
        EXIT WHEN (SELECT state IN ('completed', 'failed') FROM smsdist.jobs WHERE job_id = current_setting('bench.job'));
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SQL
}

# send <package> <limit> <sites...>: a job for those sites with
# smsdist.max_concurrent_sends = limit; sets took_s, cpu_s, sent_bytes,
# identical, most (transfers seen running at once, sampled)
send() {
    local id=$1 limit=$2 job sites created last f state c0
    shift 2
    sites=$(IFS=,; echo "{$*}")
    job=${id/B/C}
    psql -X -q -d bench -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET smsdist.max_concurrent_sends = $limit" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5   # the Sender reads its settings between steps
    c0=$(cen_cpu)
    psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('$job', 'share_package', '$id', 'sites', '$sites');
SQL
    # the most transfers running at once, sampled by one session until the
    # sends are done (CEN's own record: its send helpers)
    most=$(psql -X -q -At -d bench -v job="$job" <<'SQL'
SELECT set_config('bench.job', :'job', false) \g /dev/null
CREATE TEMP TABLE most (n int);
DO $$
DECLARE m int := 0;
BEGIN
    FOR i IN 1 .. 60000 LOOP
        PERFORM pg_stat_clear_snapshot();   -- a fresh pg_stat_activity each time
        m := greatest(m, (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'smsdist send'));
        EXIT WHEN NOT EXISTS (SELECT 1 FROM smsdist.job_site_status WHERE job_id = current_setting('bench.job')
                               AND phase = 'send' AND state NOT IN ('done', 'failed'));
        PERFORM pg_sleep(0.02);
    END LOOP;
    INSERT INTO most VALUES (m);
END $$;
SELECT n FROM most;
SQL
)
    for c in "$@"; do wait_child "$c" "$job"; done
    cpu_s=$(secs "$c0" "$(cen_cpu)")
    created=$(psql -X -At -d bench -c "SELECT extract(epoch FROM created_at) FROM smsdist.jobs WHERE job_id = '$job'")
    last=0
    identical=yes
    for c in "$@"; do
        state=$(PGPORT=$(port_of "$c") psql -X -At -d bench -c "SELECT state FROM smsdist.jobs WHERE job_id = '$job'")
        [ "$state" = completed ] || { echo "the job at $c is '$state'"; exit 1; }
        f=$(PGPORT=$(port_of "$c") psql -X -At -d bench -c "SELECT extract(epoch FROM finished_at) FROM smsdist.jobs WHERE job_id = '$job'")
        last=$(awk -v a="$last" -v b="$f" 'BEGIN { print (b > a) ? b : a }')
        diff -r "$tree" "$work/fan/$c/dp/SMS_PKGC/$id" >/dev/null || identical=no
    done
    # checked: the published trees go (disk), the package files stay
    for c in "$@"; do rm -rf "$work/fan/$c/dp/SMS_PKGC/$id"; done
    took_s=$(secs "$created" "$last")
    sent_bytes=$(psql -X -At -d bench -c "SELECT sum(bytes_done) FROM smsdist.job_site_status WHERE job_id = '$job' AND phase = 'send'")
}

report() {
    printf '  %-52s %8s s   CEN CPU %7s s   sent %8s MB   at once %2s   identical %s\n' \
        "$1" "$took_s" "$cpu_s" "$(mb "$sent_bytes")" "$most" "$identical"
}

build CENFB001; build CENFB002; build CENFB003; build CENFB004
echo "package file: $(mb "$(psql -X -At -d bench -c "SELECT bytes FROM smsdist.package_builds WHERE package_id = 'CENFB001'")") MB"
send CENFB001 4 "${codes[0]}"
one_s=$took_s; report "one child alone"
send CENFB002 1 "${codes[@]}"
seq_s=$took_s; report "$children children, max_concurrent_sends = 1 (sequential)"
send CENFB003 4 "${codes[@]}"
def_s=$took_s; report "$children children, max_concurrent_sends = 4 (default)"
send CENFB004 $children "${codes[@]}"
all_s=$took_s; report "$children children, max_concurrent_sends = $children"
echo "  $children at once (limit $children) / one alone: $(awk -v a="$all_s" -v b="$one_s" 'BEGIN{printf "%.2f", a/b}')"
echo "  $children at once (limit $children) / $children sequential: $(awk -v a="$all_s" -v b="$seq_s" 'BEGIN{printf "%.2f", a/b}')   (target: < 1.00)"
echo "  default limit 4 / $children sequential: $(awk -v a="$def_s" -v b="$seq_s" 'BEGIN{printf "%.2f", a/b}')"
echo "  load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
psql -X -q -d bench -c "ALTER SYSTEM RESET smsdist.max_concurrent_sends" -c "SELECT pg_reload_conf()" >/dev/null
