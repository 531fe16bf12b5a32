# kill -9 of the Scheduler: the postmaster restarts the server, the job state
# survives, and work resumes -- jobs that were mid-activation are activated
# exactly once, and a job that fell due while the server was recovering is
# picked up when the Scheduler returns.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('crash', conf => "restart_after_crash = on\n");
basic_inventory($node, 'site');
ok(wait_until($node, 'site', "SELECT state = 'idle' FROM smsdist.workers WHERE component = 'scheduler'"),
	'scheduler idle');

# one job activated before the crash
insert_job($node, 'site', 'CEN00001');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00001'"),
	'job activated before the crash');

# 3000 due jobs in one commit: the Scheduler activates them 100 per
# transaction; kill it part-way through
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
SELECT 'CEN' || lpad(upper(to_hex(i)), 5, '0'), 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}'
  FROM generate_series(4096, 4096 + 2999) i});
# and one that falls due while the server is recovering
insert_job($node, 'site', 'CEN00002', "clock_timestamp() + interval '1.5 s'");

ok(wait_until($node, 'site', "SELECT count(*) > 0 FROM smsdist.jobs WHERE state = 'active' AND job_id >= 'CEN01000'", 10),
	'activation under way');
my $pid = scheduler_pid($node);
my $active_at_kill = $node->safe_psql('site', "SELECT count(*) FROM smsdist.jobs WHERE state = 'active'");
note("killing scheduler $pid with $active_at_kill jobs active");
kill 'KILL', $pid;

# the postmaster reinitializes; the supervisor and the Scheduler come back
ok(wait_until($node, 'site',
		"SELECT pid IS NOT NULL AND pid <> $pid FROM smsdist.workers WHERE component = 'scheduler'", 30),
	'a new scheduler runs after the crash');
ok($node->log_contains(qr/terminated by signal 9/), 'the server saw the kill -9');

ok(wait_until($node, 'site', "SELECT count(*) = 3002 FROM smsdist.jobs WHERE state = 'active'", 30),
	'every job is active after the restart');
is($node->safe_psql('site', q{
SELECT count(*) FROM (SELECT job_id FROM smsdist.job_transitions WHERE to_state = 'active'
                       GROUP BY job_id HAVING count(*) <> 1) d}),
	'0', 'each job was activated exactly once');
is($node->safe_psql('site', 'SELECT count(*) FROM smsdist.job_site_status'), '3002',
	'one site row per job: nothing lost, nothing duplicated');
is($node->safe_psql('site', 'SELECT count(*) FROM smsdist.job_target_status'), '3002',
	'one target row per job');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3000"), '3002',
	'one activation status message per job');
is($node->safe_psql('site', "SELECT state FROM smsdist.jobs WHERE job_id = 'CEN00001'"), 'active',
	'the job activated before the crash is still active');
ok($node->safe_psql('site',
		"SELECT activated_at >= start_after FROM smsdist.jobs WHERE job_id = 'CEN00002'") eq 't',
	'the job due during recovery was activated, not early');

# the status log shows both Scheduler processes starting
cmp_ok($node->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE message_id = 500"),
	'>=', 2, 'both scheduler starts are in the status log');

$node->stop;
done_testing();
