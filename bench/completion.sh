#!/usr/bin/env bash
# A deployment's end (bench/run-all, "completion"): a run-command job for
# 10,000 machines at one site; every machine's agent reports its program
# succeeded, and the 10,000 signed status files land in the CAP's status
# inbox together.  Measured: the time from the last file landing (and the
# Status Manager being woken, as nothing but its poll wakes it for files)
# to the job being completed, which needs every file read, authenticated,
# recorded and its target moved; and the Status Manager's ingest rate
# against a plain COPY of the same 10,000 status_messages rows into a
# table without triggers or indexes, in the same run.  Called by
# bench/run-all with the central cluster up (PGHOST/PGPORT set, database
# bench); $1 = work directory.
set -eu
work=$1
machines=${COMPLETION_MACHINES:-10000}
here=$(cd "$(dirname "$0")" && pwd)
src=${SMSDIST_SRC:-$(cd "$here/.." && pwd)}/src

gcc -O2 -Wall -Wno-format-truncation -std=c99 -D_POSIX_C_SOURCE=200809L -I"$src/formats" -o "$work/status_files" \
    "$here/status_files.c" "$src"/formats/*.c -lcrypto

mkdir -p "$work/completion/dp" "$work/completion/cap" "$work/completion/staging"
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'CDP', '$work/completion/dp'),
  ('CEN', 'client_access_point', 'CCAP', '$work/completion/cap');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT 'CEN' || upper(to_hex(196608 + g)), 'END-' || g, 'CORP', 'CEN', 'WINNT_X86'
  FROM generate_series(1, $machines) g;
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
SELECT 'CEN0E001', 'run_command', 'CEN00001', 'Run', 'machines',
       array_agg(('CEN' || upper(to_hex(196608 + g)))::smsdist.sms_id)
  FROM generate_series(1, $machines) g;
SELECT smsdist.wake('status_manager');
SQL
# the job is active with every target, its package published, its PCM
# files written, the inbox made
psql -X -q -d bench >/dev/null <<SQL
DO \$\$
BEGIN
  FOR i IN 1 .. 3000 LOOP
    EXIT WHEN (SELECT count(*) FROM smsdist.job_target_status WHERE job_id = 'CEN0E001') = $machines
          AND EXISTS (SELECT 1 FROM smsdist.job_site_status WHERE job_id = 'CEN0E001' AND phase = 'distribute' AND state = 'done')
          AND (pg_stat_file('$work/completion/cap/statmsgs.box', true)).isdir
          -- and quiet: every PCM file and policy of the job written
          AND NOT EXISTS (SELECT 1 FROM smsdist.pcm_queue);
    PERFORM pg_sleep(0.1);
  END LOOP;
END \$\$;
SQL
ready=$(psql -X -At -d bench -c "SELECT state || ' ' || (SELECT count(*) FROM smsdist.job_target_status WHERE job_id = 'CEN0E001') FROM smsdist.jobs WHERE job_id = 'CEN0E001'")
[ "$ready" = "active $machines" ] || { echo "  the job did not become active with $machines targets: $ready" >&2; exit 1; }
psql -X -At -F ' ' -d bench -c "SELECT sms_id, smsdist.machine_key(sms_id) FROM smsdist.job_target_status WHERE job_id = 'CEN0E001'" \
    > "$work/completion/keys"

landed=$("$work/status_files" "$work/completion/staging" "$work/completion/cap/statmsgs.box" CEN0E001 10008 < "$work/completion/keys")
done_at=$(psql -X -q -At -d bench -c "SELECT smsdist.wake('status_manager')" -c "
DO \$\$
BEGIN
  FOR i IN 1 .. 600000 LOOP
    EXIT WHEN (SELECT state FROM smsdist.jobs WHERE job_id = 'CEN0E001') <> 'active';
    PERFORM pg_sleep(0.001);
  END LOOP;
END \$\$" -c "SELECT extract(epoch FROM clock_timestamp())" | tail -1)
state=$(psql -X -At -d bench -c "SELECT state || ': ' || state_reason FROM smsdist.jobs WHERE job_id = 'CEN0E001'")
secs=$(awk -v a="$landed" -v b="$done_at" 'BEGIN{printf "%.3f", b - a}')
rate=$(awk -v s="$secs" -v n="$machines" 'BEGIN{printf "%.0f", n / s}')

# baseline: the same rows, COPY into a plain table
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE public.copy_baseline AS SELECT * FROM smsdist.status_messages WITH NO DATA;
\copy (SELECT * FROM smsdist.status_messages WHERE job_id = 'CEN0E001') TO '$work/completion/rows.copy'
SQL
copy_secs=$(psql -X -At -d bench <<SQL | tail -1
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\copy public.copy_baseline FROM '$work/completion/rows.copy'
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 4);
SQL
)
copy_rate=$(awk -v s="$copy_secs" -v n="$machines" 'BEGIN{printf "%.0f", n / s}')
echo "  job CEN0E001 for $machines machines: $state"
printf '  %-66s %8.3f s   (target: under 2 s)\n' "last status file in statmsgs.box (Status Manager woken) -> job completed" "$secs"
printf '  %-66s %8s /s\n' "Status Manager ingest: files read, verified, recorded, targets moved" "$rate"
printf '  %-66s %8s /s\n' "baseline: COPY of the same $machines rows into a plain table" "$copy_rate"
echo "  ingest / COPY: $(awk -v a="$rate" -v b="$copy_rate" 'BEGIN{printf "%.3f", a/b}')"
