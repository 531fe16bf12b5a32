#!/usr/bin/env bash
# Management-point policy requests per second (issue 4, benchmark 3):
# pgbench calling smsdist.machine_policy() for random machines, connected
# as a monitoring login (a member of smsdist_client and smsdist_reader: an
# agent's login reads only its own machine's policy, so one pgbench login
# cannot play 10,000 agents; the reader's check looks up machine_logins by
# key as an agent's does, then its role), against a baseline in the
# same run: pgbench looking each machine up by its primary key.  Called by
# bench/run-all with the central cluster up (PGHOST/PGPORT set, database
# bench); $1 = work directory.
set -eu
work=$1
machines=${POLICY_MACHINES:-10000}
secs=${POLICY_SECONDS:-10}
clients=${POLICY_CLIENTS:-4}
bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bindir/pgbench" ] || bindir=/usr/lib/postgresql/15/bin

# machines CEN10001.. (5 hex digits from 0x10001), 10 collections by name
# prefix (a machine is in 1 to 4 of them), 20 advertisements, 2 windows
psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE ROLE agent LOGIN IN ROLE smsdist_client, smsdist_reader;
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT 'CEN' || upper(to_hex(65536 + g)), 'POL-' || g, 'CORP', 'CEN', 'WINNT_X86'
  FROM generate_series(1, $machines) g;
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0B0F1', 'Policy bench', '$work/source/tool');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN0B0F1', 'Install', 'setup.exe /q');
INSERT INTO smsdist.collections (collection_id, name)
SELECT 'CEN0A0' || upper(lpad(to_hex(k), 2, '0')), 'Policy ' || k FROM generate_series(1, 10) k;
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
SELECT 'CEN0A0' || upper(lpad(to_hex(k), 2, '0')), 'query', 'name LIKE ''POL-' || (k - 1) || '%''' FROM generate_series(1, 10) k;
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
SELECT 'CEN0C0' || upper(lpad(to_hex(a), 2, '0')), 'Policy advert ' || a, 'CEN0B0F1', 'Install',
       'CEN0A0' || upper(lpad(to_hex((a - 1) % 10 + 1), 2, '0'))
  FROM generate_series(1, 20) a;
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time) VALUES ('CEN0C001', '2026-12-24 20:00');
INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days) VALUES
  ('CEN0A001', 'Nights', '22:00', 240, '{mon,tue,wed,thu,fri}'), ('CEN0A002', 'Weekend', '01:00', 300, '{sat,sun}');
-- the logged-on users: one per machine, all in one user collection, and a
-- group in another, each with two advertisements
INSERT INTO smsdist.users (domain, user_name, full_name) SELECT 'CORP', 'user' || g, 'User ' || g FROM generate_series(1, $machines) g;
INSERT INTO smsdist.user_groups VALUES ('CORP', 'staff');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN0A0F1', 'Policy users'), ('CEN0A0F2', 'Policy staff');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name)
SELECT 'CEN0A0F1', 'direct', 'CORP', 'user' || g FROM generate_series(1, $machines) g;
INSERT INTO smsdist.collection_rules (collection_id, rule_type, group_domain, group_name) VALUES ('CEN0A0F2', 'direct', 'CORP', 'staff');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id) VALUES
  ('CEN0C0F1', 'Users 1', 'CEN0B0F1', 'Install', 'CEN0A0F1'), ('CEN0C0F2', 'Users 2', 'CEN0B0F1', 'Install', 'CEN0A0F1'),
  ('CEN0C0F3', 'Staff 1', 'CEN0B0F1', 'Install', 'CEN0A0F2'), ('CEN0C0F4', 'Staff 2', 'CEN0B0F1', 'Install', 'CEN0A0F2');
SQL
# wait for the Collection Evaluator and the Offer Manager (5 min at most):
# every machine's policy stored, and neither of them in a step.  Measured
# while the Offer Manager still computes policies, pgbench would share the
# two cores with it, and a request for a machine whose policy is not
# stored yet computes it (that is not what a request costs).
psql -X -q -d bench >/dev/null <<SQL
DO \$\$
BEGIN
  FOR i IN 1 .. 3000 LOOP
    EXIT WHEN (SELECT count(*) FROM smsdist.collections WHERE collection_id LIKE 'CEN0A0%' AND evaluated_at IS NOT NULL) = 12
          AND NOT EXISTS (SELECT 1 FROM smsdist.collection_evaluation_queue)
          AND NOT EXISTS (SELECT 1 FROM smsdist.system_evaluation_queue)
          AND (SELECT count(*) FROM smsdist.machine_policies WHERE sms_id LIKE 'CEN1____') = $machines
          AND NOT EXISTS (SELECT 1 FROM pg_stat_activity
                           WHERE backend_type IN ('smsdist offer_manager', 'smsdist collection_evaluator')
                             AND state <> 'idle');
    PERFORM pg_sleep(0.1);
    -- pg_stat_activity is read once a transaction unless cleared: without
    -- this the loop saw the first look's busy worker for its 5 minutes
    PERFORM pg_stat_clear_snapshot();
  END LOOP;
END \$\$;
SQL
members=$(psql -X -At -d bench -c "SELECT count(*) FROM smsdist.collection_members WHERE collection_id LIKE 'CEN0A0%'")
adverts=$(psql -X -At -d bench -c "SELECT jsonb_array_length(smsdist.machine_policy('CEN10001')->'advertisements')")
stored=$(psql -X -At -d bench -c "SELECT count(*) FROM smsdist.machine_policies WHERE sms_id LIKE 'CEN1____'")
echo "  $machines machines, 10 collections ($members memberships), 20 advertisements; CEN10001 has $adverts in its policy; $stored policies stored"

cat > "$work/policy.pgbench" <<'PGB'
\set id random(65537, 65536 + :machines)
SELECT smsdist.machine_policy('CEN' || upper(to_hex(:id::integer)));
PGB
cat > "$work/policy_user.pgbench" <<'PGB'
\set id random(65537, 65536 + :machines)
SELECT smsdist.machine_policy('CEN' || upper(to_hex(:id::integer)), 'CORP\user' || (:id - 65536), ARRAY['CORP\staff']);
PGB
cat > "$work/lookup.pgbench" <<'PGB'
\set id random(65537, 65536 + :machines)
SELECT sms_id, name, domain, platform FROM smsdist.system_resources WHERE sms_id = 'CEN' || upper(to_hex(:id::integer));
PGB
# a second baseline: the stored policy document itself by its primary key,
# no checks -- the same bytes to turn into text (jsonb_out) and send
cat > "$work/stored.pgbench" <<'PGB'
\set id random(65537, 65536 + :machines)
SELECT policy FROM smsdist.machine_policies WHERE sms_id = 'CEN' || upper(to_hex(:id::integer));
PGB
run() { # run SCRIPT USER -> tps
    "$bindir/pgbench" -n -M prepared -c "$clients" -j 2 -T "$secs" -D machines="$machines" \
        -U "$2" -f "$1" bench >"$1.out" 2>&1 || { cat "$1.out" >&2; return 1; }
    sed -n "s/^tps = \([0-9.]*\) .*/\1/p" "$1.out"
}
# A settled site, as one that has run for a while: the new rows vacuumed
# and analyzed (autovacuum would otherwise start on them during a run and
# take CPU from one side only), the dirty pages written.
psql -X -q -d bench -c "VACUUM (ANALYZE) smsdist.system_resources, smsdist.machine_policies, smsdist.machine_logins" \
    -c "CHECKPOINT" >/dev/null
# Two rounds, the lookup, the stored policy and the policy alternated, so that a change of
# the machine's speed during the run weighs on all three; the figures are the
# means of the two rounds.
b1=$(run "$work/lookup.pgbench" postgres)
s1=$(run "$work/stored.pgbench" postgres)
p1=$(run "$work/policy.pgbench" agent)
b2=$(run "$work/lookup.pgbench" postgres)
s2=$(run "$work/stored.pgbench" postgres)
p2=$(run "$work/policy.pgbench" agent)
base_tps=$(awk -v a="$b1" -v b="$b2" 'BEGIN{print (a + b) / 2}')
policy_tps=$(awk -v a="$p1" -v b="$p2" 'BEGIN{print (a + b) / 2}')
echo "  rounds: lookup $(printf '%.0f' "$b1") and $(printf '%.0f' "$b2") /s, stored policy $(printf '%.0f' "$s1") and $(printf '%.0f' "$s2") /s, policy $(printf '%.0f' "$p1") and $(printf '%.0f' "$p2") /s"
user_tps=$(run "$work/policy_user.pgbench" agent)
stored_tps=$(awk -v a="$s1" -v b="$s2" 'BEGIN{print (a + b) / 2}')
printf '  %-58s %10.0f /s\n' "baseline: primary-key lookup of a machine (pgbench, $clients clients)" "$base_tps"
printf '  %-58s %10.0f /s\n' "smsdist.machine_policy() as a reader (pgbench, $clients clients)" "$policy_tps"
printf '  %-58s %10.0f /s\n' "machine_policy(machine, user, groups): +4 user/group adverts" "$user_tps"
printf '  %-58s %10.0f /s\n' "the stored policy by primary key, no checks (pgbench)" "$stored_tps"
echo "  policy / lookup: $(awk -v a="$policy_tps" -v b="$base_tps" 'BEGIN{printf "%.2f", a/b}')   (targets: 10,000 policies/s, and 0.80 of the lookup)"
echo "  policy / the stored policy by primary key: $(awk -v a="$policy_tps" -v b="$stored_tps" 'BEGIN{printf "%.2f", a/b}')   (what the checks cost)"
