#!/usr/bin/env bash
# A run-command job for a package version that is already published on the
# site's distribution points: how long its Distribute phase takes (the
# distribute row's started_at to finished_at, and the job's INSERT to the
# row being done).  One site, two distribution points, a ~35 MB package
# (four 8 MB files of random bytes, 3 MB of text, a small file).  The first
# share job publishes it; then RUNS run-command jobs follow, one at a time.
# FILES=3000 makes the random part 3,000 files of ~10 kB instead.
#
# Run as the postgres OS user (or any user who can run PostgreSQL after
# `make install`): bench/republish.sh <empty work directory>.  The cluster
# listens on a unix socket in the work directory and is stopped at the end.
set -eu
work=$1
RUNS=${RUNS:-3}
bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
mkdir -p "$work"
work=$(cd "$work" && pwd)
export PGHOST=$work PGPORT=${PGPORT:-54391} PGDATABASE=bench
"$bindir/initdb" -D "$work/data" -A trust --no-sync >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$work'
port = $PGPORT
shared_preload_libraries = 'smsdist'
smsdist.database = 'bench'
smsdist.site_code = 'CEN'
smsdist.source_roots = '$work'
max_worker_processes = 16
CONF
"$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
# shellcheck disable=SC2064  # expanded now, on purpose
trap "'$bindir/pg_ctl' -D '$work/data' -m fast -w stop >/dev/null 2>&1" EXIT
"$bindir/createdb" bench

src=$work/src
mkdir -p "$src/bin" "$src/doc/deep" "$work/dp1" "$work/dp2" "$work/drive"
if [ "${FILES:-0}" -gt 0 ]; then
    # FILES=n: the 32 MB of random bytes as n files instead of four
    head -c 32000000 /dev/urandom | split -a 5 -d -b $((32000000 / FILES)) - "$src/bin/part"
else
    for i in 1 2 3 4; do head -c 8000000 /dev/urandom >"$src/bin/part$i.bin"; done
fi
yes 'documentation line' | head -c 3000000 >"$src/doc/manual.txt"
echo 'a small note' >"$src/doc/deep/note.txt"
echo "package: $(du -sb "$src" | cut -f1) bytes in $(find "$src" -type f | wc -l) files, 2 distribution points"

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION smsdist;
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$work/dp1'), ('CEN', 'distribution_point', 'DP2', '$work/dp2'),
  ('CEN', 'site_server_drive', 'D', '$work/drive');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
VALUES ('CEN00001', 'WKS-1', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Bench', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup');
SQL

# wait_done <job>: until its distribute row at CEN is done or failed (5 min at most)
wait_done() {
    psql -X -q -v job="$1" >/dev/null <<'SQL'
SELECT set_config('bench.job', :'job', false);
DO $$
BEGIN
    FOR i IN 1 .. 30000 LOOP
        EXIT WHEN (SELECT state IN ('done', 'failed') FROM smsdist.job_site_status
                    WHERE job_id = current_setting('bench.job') AND phase = 'distribute');
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
SQL
}
report() {
    psql -X -At -c "SELECT format('%s: distribute %s s, INSERT to done %s s (%s)', s.job_id,
                        round(extract(epoch FROM s.finished_at - s.started_at)::numeric, 3),
                        round(extract(epoch FROM s.finished_at - j.created_at)::numeric, 3), s.detail)
                      FROM smsdist.job_site_status s JOIN smsdist.jobs j USING (job_id)
                     WHERE s.job_id = '$1' AND s.phase = 'distribute'"
}

psql -X -q -c "INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
               VALUES ('CEN000A1', 'share_package', 'CEN00B01', 'sites', '{CEN}')"
wait_done CEN000A1
echo "first publish: $(report CEN000A1)"
for i in $(seq 1 "$RUNS"); do
    id=$(printf 'CEN000D%X' "$i")
    sync
    psql -X -q -c "INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
                   VALUES ('$id', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001}')"
    wait_done "$id"
    echo "run-command job $i: $(report "$id")"
done
