#!/usr/bin/env bash
# Target rows up the hierarchy (bench/run-all, "target_report"): what a
# parent site does with its children's reports.  A run-command job for
# 100,000 machines of the child site CH1 is active at CEN with every
# target; the child's report that every machine succeeded arrives as
# receive_target_report() calls of 20,000 rows (the most one call takes;
# the Status Manager sends batches of 5,000).  Measured: rows applied per
# second, against an UPDATE of the same rows' state in a keyed table
# without triggers in the same run (the table's own cost).  docs/scaling.md
# starts from this figure.  Called by bench/run-all with the central
# cluster up (PGHOST/PGPORT set, database bench, CH1 a child of CEN);
# $1 = work directory.
set -eu
work=$1
machines=${REPORT_MACHINES:-100000}
batch=20000

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT 'CH1' || upper(lpad(to_hex(g), 5, '0')), 'REP-' || g, 'CORP', 'CH1', 'WINNT_X86'
  FROM generate_series(1, $machines) g;
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
SELECT 'CEN0F001', 'run_command', 'CEN00001', 'Run', 'machines',
       array_agg(('CH1' || upper(lpad(to_hex(g), 5, '0')))::smsdist.sms_id)
  FROM generate_series(1, $machines) g;
SQL
# the job active with every target (its send to CH1 retries: no address)
psql -X -q -d bench >/dev/null <<SQL
DO \$\$
BEGIN
  FOR i IN 1 .. 6000 LOOP
    EXIT WHEN (SELECT count(*) FROM smsdist.job_target_status WHERE job_id = 'CEN0F001') = $machines;
    PERFORM pg_sleep(0.1);
  END LOOP;
END \$\$;
SQL
n=$(psql -X -At -d bench -c "SELECT count(*) FROM smsdist.job_target_status WHERE job_id = 'CEN0F001'")
[ "$n" = "$machines" ] || { echo "  the job has $n of $machines targets" >&2; exit 1; }

# the reports, made beforehand: one JSON array of $batch rows per file
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE public.bench_reports AS
SELECT b, jsonb_agg(jsonb_build_object('kind', 'job', 'id', 'CEN0F001', 'sms_id', sms_id,
                                       'state', 'succeeded', 'detail', 'exit code 0', 'exit_code', 0)) AS report
  FROM (SELECT sms_id, (row_number() OVER (ORDER BY sms_id) - 1) / $batch AS b
          FROM smsdist.job_target_status WHERE job_id = 'CEN0F001') s
 GROUP BY b;
CREATE TABLE public.bench_targets (job_id text, sms_id text, state text, detail text, exit_code integer,
                                   PRIMARY KEY (job_id, sms_id));
INSERT INTO public.bench_targets SELECT job_id, sms_id, 'waiting', NULL, NULL
  FROM smsdist.job_target_status WHERE job_id = 'CEN0F001';
VACUUM ANALYZE public.bench_targets;
VACUUM ANALYZE smsdist.job_target_status;
CHECKPOINT;
SQL
calls=$(psql -X -At -d bench -c "SELECT count(*) FROM public.bench_reports")

# baseline: the same rows' new state into the keyed table, batch by batch
t0=$(now)
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
DECLARE r record;
BEGIN
  FOR r IN SELECT report FROM public.bench_reports ORDER BY b LOOP
    UPDATE public.bench_targets t SET state = x->>'state', detail = x->>'detail', exit_code = (x->>'exit_code')::integer
      FROM jsonb_array_elements(r.report) x
     WHERE t.job_id = x->>'id' AND t.sms_id = x->>'sms_id';
  END LOOP;
END \$\$;
SQL
t1=$(now)
base_s=$(secs "$t0" "$t1")

# smsdist: one call per report, as the child's Status Manager makes them
t0=$(now)
out=$(psql -X -At -d bench -v ON_ERROR_STOP=1 -c "
SELECT sum((smsdist.receive_target_report('CH1', report)->>'applied')::int)
  FROM (SELECT report FROM public.bench_reports ORDER BY b) r")
t1=$(now)
rep_s=$(secs "$t0" "$t1")
[ "$out" = "$machines" ] || { echo "  receive_target_report applied $out of $machines rows" >&2; exit 1; }
ok=$(psql -X -At -d bench -c "SELECT count(*) FROM smsdist.job_target_status WHERE job_id = 'CEN0F001' AND state = 'succeeded'")
[ "$ok" = "$machines" ] || { echo "  $ok of $machines targets succeeded" >&2; exit 1; }

rate() { awk -v n="$machines" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
echo "  $machines target rows of CH1 in $calls calls of $batch rows"
printf '  %-52s %8s s  %8s rows/s\n' "baseline: UPDATE of a keyed table, no triggers" "$base_s" "$(rate "$base_s")"
printf '  %-52s %8s s  %8s rows/s\n' "smsdist.receive_target_report()" "$rep_s" "$(rate "$rep_s")"
echo "  receive_target_report / baseline (rate): $(awk -v a="$base_s" -v b="$rep_s" 'BEGIN { printf "%.2f", a / b }')"
psql -X -q -d bench -c "DROP TABLE public.bench_reports, public.bench_targets" \
    -c "UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'CEN0F001' AND state NOT IN ('completed', 'failed', 'cancelled')" >/dev/null
