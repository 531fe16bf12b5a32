# The extension's life around its workers: a site database that does not
# exist yet, CREATE and DROP EXTENSION, DROP DATABASE, a version mismatch,
# no site code, and a server that does not preload the library.  None of
# these may put a worker into a restart loop.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

sub count_in_log
{
	my ($node, $re) = @_;
	my $log = slurp_file($node->logfile);
	my @m = ($log =~ /$re/g);
	return scalar @m;
}

sub supervisor_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'smsdist supervisor'");
}

# --- the site database does not exist yet
my $node = site_node('life', create => 0, conf => "smsdist.poll_interval = '1s'\n");
# three polls' time to show a loop if there were one; then wait for the
# supervisor and its report, which a busy machine may delay past that
sleep(3);
ok(wait_until($node, 'postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist supervisor'", 60),
	'supervisor runs without its database');
my $sup = supervisor_pid($node);
for (1 .. 600)
{
	last if count_in_log($node, qr/smsdist.database "site" does not exist/) > 0;
	select(undef, undef, undef, 0.1);
}
is(count_in_log($node, qr/smsdist.database "site" does not exist/), 1,
	'missing database reported once, not in a loop');
is(count_in_log($node, qr/smsdist supervisor" \(PID \d+\) exited/), 0, 'supervisor never exited');

# --- the database appears, without the extension: the Scheduler waits
$node->safe_psql('postgres', 'CREATE DATABASE site');
ok(wait_until($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist scheduler' AND datname = 'site'", 10),
	'scheduler started in the new database');
my $sched = scheduler_pid($node);
sleep(2);
is(scheduler_pid($node), $sched, 'scheduler waits for the extension without restarting');
# (a Scheduler just started may still be connecting or in its first look
# for the extension: wait until it sleeps)
ok(wait_until($node, 'postgres',
		"SELECT wait_event LIKE '%Extension%' FROM pg_stat_activity WHERE pid = $sched", 30),
	'and it waits on its latch');

# --- CREATE EXTENSION wakes it and it works
$node->safe_psql('site', 'CREATE EXTENSION smsdist');
basic_inventory($node, 'site');
insert_job($node, 'site', 'CEN00001');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00001'", 5),
	'after CREATE EXTENSION a due job is activated');

# --- a version mismatch (as after installing a newer library) is waited out
$node->safe_psql('site', "UPDATE pg_extension SET extversion = '0.0' WHERE extname = 'smsdist'");
$node->safe_psql('site', "SELECT smsdist.wake('scheduler')");
ok(wait_until($node, 'site',
		"SELECT state LIKE 'waiting for ALTER EXTENSION smsdist UPDATE (installed 0.0, library %' FROM smsdist.workers WHERE component = 'scheduler'", 5),
	'scheduler waits for ALTER EXTENSION UPDATE on a version mismatch');
# once the Scheduler has begun a step after the insert (it polls every
# second, and the insert wakes it), the job must still be pending
insert_job($node, 'site', 'CEN00002');
my $steps = $node->safe_psql('site', "SELECT steps FROM smsdist.workers WHERE component = 'scheduler'");
wait_until($node, 'site', "SELECT steps > $steps FROM smsdist.workers WHERE component = 'scheduler'", 30);
is($node->safe_psql('site', "SELECT state FROM smsdist.jobs WHERE job_id = 'CEN00002'"), 'pending',
	'and does not touch jobs meanwhile');
$node->safe_psql('site', q{
UPDATE pg_extension SET extversion = smsdist.library_version() WHERE extname = 'smsdist';
SELECT smsdist.wake('scheduler');});
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00002'", 5),
	'versions agree again: the job is activated');

# --- DROP EXTENSION: the worker waits, no restart loop; CREATE brings it back
$sched = scheduler_pid($node);
$node->safe_psql('site', 'DROP EXTENSION smsdist CASCADE');
sleep(2);
is(scheduler_pid($node), $sched, 'after DROP EXTENSION the same scheduler waits');
is(count_in_log($node, qr/SMS Scheduler failed/), 0, 'without errors');
$node->safe_psql('site', 'CREATE EXTENSION smsdist');
basic_inventory($node, 'site');
insert_job($node, 'site', 'CEN00003');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00003'", 5),
	'after CREATE EXTENSION again, work resumes');

# --- DROP EXTENSION while the workers are busy: it waits for their steps,
# never deadlocks with them (both want the same tables)
for my $round (1 .. 3)
{
	$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
SELECT 'CEN' || lpad(upper(to_hex(i)), 5, '0'), 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}'
  FROM generate_series(256, 755) i});
	my ($drc, $dout, $derr) = $node->psql('site', 'DROP EXTENSION smsdist CASCADE');
	is($drc, 0, "DROP EXTENSION during activation, round $round") or diag($derr);
	$node->safe_psql('site', 'CREATE EXTENSION smsdist');
	basic_inventory($node, 'site');
}
insert_job($node, 'site', 'CEN000F0');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN000F0'", 10),
	'and the workers carry on afterwards');

# --- an older extension version waits for ALTER EXTENSION UPDATE, which
# brings the data along
$node->safe_psql('site', "DROP EXTENSION smsdist CASCADE; CREATE EXTENSION smsdist VERSION '0.1'");
basic_inventory($node, 'site');
$node->safe_psql('site', "SELECT smsdist.wake('scheduler')");
ok(wait_until($node, 'site',
		"SELECT state = 'waiting for ALTER EXTENSION smsdist UPDATE (installed 0.1, library ' || smsdist.library_version() || ')' FROM smsdist.workers WHERE component = 'scheduler'", 5),
	'at version 0.1 the scheduler waits for ALTER EXTENSION UPDATE');
insert_job($node, 'site', 'CEN000E1');
$node->safe_psql('site', 'ALTER EXTENSION smsdist UPDATE');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN000E1'", 10),
	'after ALTER EXTENSION UPDATE the job inserted under 0.1 is activated');
is($node->safe_psql('site', "SELECT extversion = smsdist.library_version() FROM pg_extension WHERE extname = 'smsdist'"),
	't', 'the extension is at the library version');

# --- DROP DATABASE of the site database is not blocked by the workers
# (DROP DATABASE gives up after 5 s if other sessions stay: success means
# the workers left when asked)
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE site');
is($rc, 0, 'DROP DATABASE of the site database succeeds') or diag($err);
ok(wait_until($node, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'smsdist scheduler'", 5),
	'no scheduler without a database');
$node->safe_psql('postgres', 'CREATE DATABASE site');
$node->safe_psql('site', 'CREATE EXTENSION smsdist');
basic_inventory($node, 'site');
insert_job($node, 'site', 'CEN00004');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00004'", 10),
	'a re-created site database is served again');

# --- a failed DROP DATABASE gives the workers back
my $blocker = $node->background_psql('site');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE site');
isnt($rc, 0, 'DROP DATABASE with a client connected fails as usual');
$blocker->quit;
insert_job($node, 'site', 'CEN00005');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00005'", 10),
	'and the workers come back');
is(supervisor_pid($node), $sup, 'the supervisor never restarted');

# --- no site code: the Scheduler says so, IDs cannot be made, reload fixes it
$node->safe_psql('postgres', "ALTER SYSTEM SET smsdist.site_code = ''");
$node->reload;
ok(wait_until($node, 'site', q{SELECT w.state = 'waiting: smsdist.site_code is not set'
	FROM smsdist.workers w, (SELECT smsdist.wake('scheduler')) wake WHERE w.component = 'scheduler'}, 5),
	'scheduler reports the missing site code');
($rc, $out, $err) = $node->psql('site', "INSERT INTO smsdist.packages (name, source_directory) VALUES ('X', '/srv/x')");
like($err, qr/smsdist.site_code is not set, so no new ID can be made/, 'IDs cannot be made without a site code');
($rc, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET smsdist.site_code = 'bad'");
like($err, qr/invalid value for parameter "smsdist.site_code": "bad"/, 'a malformed site code is refused');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET smsdist.site_code');
$node->reload;
insert_job($node, 'site', 'CEN00006');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00006'", 10),
	'with the site code back, work resumes');
$node->stop;

# --- a server that does not preload the library
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
($rc, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION smsdist');
isnt($rc, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like($err, qr/smsdist must be loaded via shared_preload_libraries/, 'with a clear message');
like($err, qr/HINT:  Add smsdist to shared_preload_libraries/, 'and a hint');
$plain->stop;

done_testing();
