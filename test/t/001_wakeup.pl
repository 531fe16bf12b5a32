# The wake-up path: with the safety-net poll at 60 s, a commit wakes the
# Scheduler at once, a rollback wakes nobody, a job due in 2 s is activated
# at 2 s (within 200 ms), NOTIFY reaches listeners, SIGHUP reloads settings,
# and the workers are named and visible in pg_stat_activity.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('wakeup');
basic_inventory($node, 'site');
ok(wait_until($node, 'site',
		"SELECT state = 'idle' FROM smsdist.workers WHERE component = 'scheduler'"),
	'scheduler is running and idle');
is($node->safe_psql('site', 'SHOW smsdist.poll_interval'), '1min', 'safety-net poll is 60 s');

# names: backend_type and application_name say what each worker is (the
# Scheduler being idle says nothing of the other workers, which may still be
# starting or connecting: wait for the whole list)
ok($node->poll_query_until('postgres',
		"SELECT string_agg(backend_type || '|' || coalesce(datname, '-') || '|' || application_name, ',' ORDER BY backend_type)
		   FROM pg_stat_activity WHERE backend_type LIKE 'smsdist%'",
	'smsdist collection_evaluator|site|smsdist collection_evaluator,smsdist despooler|site|smsdist despooler,smsdist inbox_manager|site|smsdist inbox_manager,smsdist offer_manager|site|smsdist offer_manager,smsdist scheduler|site|smsdist scheduler,smsdist sender|site|smsdist sender,smsdist status_manager|site|smsdist status_manager,smsdist supervisor|-|smsdist supervisor'),
	'workers are named in pg_stat_activity');

# commit wakes: a job due now is active within a fraction of a second
insert_job($node, 'site', 'CEN00101');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 5),
	'committed job activated');
my $lag = $node->safe_psql('site',
	"SELECT extract(epoch FROM activated_at - created_at) FROM smsdist.jobs WHERE job_id = 'CEN00101'");
cmp_ok($lag, '<', 30, "commit to activation took ${lag}s: a wake-up, not the 60 s poll");

# rollback wakes nobody
my $before = $node->safe_psql('site', "SELECT wake_requests FROM smsdist.workers WHERE component = 'scheduler'");
$node->safe_psql('site', q{
BEGIN;
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN00102', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}');
ROLLBACK;});
sleep(1);
is($node->safe_psql('site', "SELECT wake_requests FROM smsdist.workers WHERE component = 'scheduler'"),
	$before, 'a rolled-back insert does not wake the scheduler');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.jobs WHERE job_id = 'CEN00102'"), '0',
	'and leaves no job');

# future jobs: due in 2 s, activated when due (not at the 60 s poll), never
# early; how soon after is a figure for bench/, not a test
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
SELECT 'CEN0020' || i, 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}',
       clock_timestamp() + interval '2 s' + i * interval '150 ms'
  FROM generate_series(0, 4) i});
ok(wait_until($node, 'site',
		"SELECT count(*) = 5 FROM smsdist.jobs WHERE job_id LIKE 'CEN0020%' AND state = 'active'", 10),
	'five future jobs activated');
my $lags = $node->safe_psql('site', q{
SELECT string_agg(round(extract(epoch FROM activated_at - start_after) * 1000)::text, ',' ORDER BY job_id)
  FROM smsdist.jobs WHERE job_id LIKE 'CEN0020%'});
note("activation lags (ms): $lags");
for my $ms (split /,/, $lags)
{
	ok($ms >= 0 && $ms < 30000, "activated ${ms} ms after Start After: never early, and not at the 60 s poll");
}
my $steps = $node->safe_psql('site', "SELECT steps FROM smsdist.workers WHERE component = 'scheduler'");
cmp_ok($steps, '<', 40, "scheduler ran $steps steps in all: it sleeps until due, it does not spin");

# a wake-up that arrives while the step waits for a lock is not lost: lock
# waits sleep on the same latch and reset it, so the worker also compares
# its wake-up counter after each step
my $locker = $node->background_psql('site');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE smsdist.job_site_status IN EXCLUSIVE MODE');
insert_job($node, 'site', 'CEN00401');
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'smsdist scheduler' AND wait_event_type = 'Lock'}, 5),
	'the scheduler waits for a lock in its step');
insert_job($node, 'site', 'CEN00402');    # its wake-up lands in the lock wait
sleep(0.3);
$locker->query_safe('COMMIT');
my $released = $node->safe_psql('site', 'SELECT clock_timestamp()');
$locker->quit;
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00402'", 5),
	'the job committed during the lock wait is activated');
my $after = $node->safe_psql('site',
	"SELECT round(extract(epoch FROM activated_at - '$released'::timestamptz) * 1000) FROM smsdist.jobs WHERE job_id = 'CEN00402'");
cmp_ok($after, '<', 30000, "${after} ms after the lock was released (a lost wake-up waits for the 60 s poll)");

# NOTIFY: listeners hear commits, not rollbacks
my ($rc, $out, $err) = $node->psql('site', q{
LISTEN smsdist_scheduler;
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('CEN00301', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}', '2099-01-01');
BEGIN;
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('CEN00302', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}', '2099-01-01');
ROLLBACK;
SELECT 1;});
like($out, qr/notification "smsdist_scheduler" with payload "CEN00301"/, 'listener hears the committed job');
unlike($out, qr/CEN00302/, 'listener hears nothing of the rolled-back job');

# SIGHUP: a new poll interval takes effect without a restart
my $pid = scheduler_pid($node);
$node->safe_psql('postgres', "ALTER SYSTEM SET smsdist.poll_interval = '2s'");
$node->reload;
$node->safe_psql('site', "SELECT smsdist.wake('scheduler')");
ok(wait_until($node, 'site',
		"SELECT next_step_at - clock_timestamp() <= interval '2.1 s' FROM smsdist.workers WHERE component = 'scheduler'", 5),
	'reloaded poll interval is in force');
is(scheduler_pid($node), $pid, 'same scheduler process after SIGHUP');

# SIGTERM: stops, and the supervisor starts it again
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(wait_until($node, 'site',
		"SELECT pid IS NOT NULL AND pid <> $pid AND state = 'idle' FROM smsdist.workers WHERE component = 'scheduler'", 10),
	'terminated scheduler is started again by the supervisor');
ok($node->log_contains(qr/the SMS Scheduler stopped; starting it again/), 'the supervisor logged the restart');

$node->stop;
done_testing();
