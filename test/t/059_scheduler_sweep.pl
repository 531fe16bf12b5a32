# The Scheduler's net under job completion, finish_done_jobs(), runs at
# most once a second; a step that skips it must still make it up a second
# later, by itself, even when nothing wakes the Scheduler again and its
# poll interval is an hour.
#
# Three run-command jobs, one after another: each one's target is made
# final without the triggers that complete the job (as a superuser can,
# with session_replication_role = replica) right after a step of the
# Scheduler, and a job inserted for tomorrow then wakes it.  From the
# second job on, those steps come right after the sweep that completed
# the job before, so they skip the sweep, and only the make-up completes
# the job.  (On a machine slow enough to take a second between them, a
# step sweeps itself: the test still passes, never wrongly fails.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '1h'\n");
basic_inventory($node, 'site');
for my $job ('CEN00101', 'CEN00102', 'CEN00103')
{
	insert_job($node, 'site', $job);
}
ok(wait_until($node, 'site',
		"SELECT count(*) = 3 FROM smsdist.jobs j WHERE j.state = 'active'"
		  . " AND EXISTS (SELECT 1 FROM smsdist.job_target_status t WHERE t.job_id = j.job_id)", 60),
	'the three run-command jobs are active, with their targets');

my $later = 0x201;
for my $job ('CEN00101', 'CEN00102', 'CEN00103')
{
	# a step of the Scheduler, waited for
	my $steps = $node->safe_psql('site', "SELECT steps FROM smsdist.workers WHERE component = 'scheduler'");
	insert_job($node, 'site', sprintf('CEN00%03X', $later++), "clock_timestamp() + interval '1 day'");
	ok(wait_until($node, 'site', "SELECT steps > $steps FROM smsdist.workers WHERE component = 'scheduler'", 60),
		"$job: the Scheduler took a step for a job of tomorrow");

	# at once: the target final behind the Scheduler's back, and a wake-up
	$node->safe_psql('site', qq{
SET session_replication_role = replica;
UPDATE smsdist.job_target_status SET state = 'succeeded' WHERE job_id = '$job';
RESET session_replication_role;
});
	insert_job($node, 'site', sprintf('CEN00%03X', $later++), "clock_timestamp() + interval '1 day'");
	ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = '$job'", 60),
		"$job: the Scheduler's sweep completed it, with an hour until its next poll");
	is($node->safe_psql('site', "SELECT state_reason FROM smsdist.jobs WHERE job_id = '$job'"),
		'1 succeeded', "$job: with the count of its targets");
}

done_testing();
