# explain(): why a target has not finished, in one query.  Each situation
# the operator asks about is made for real -- a Start After to come, a
# package being compressed, a source that cannot be read, a sender address
# paused for the hour, a child site that cannot be reached, a child that
# stopped answering, a full despool drive, a package not yet on a site's
# distribution points, a PCM file no agent has read, an Offer After or an
# offer time to come, a machine that left its collection, a platform the
# program does not support, a maintenance window, a full download cache, a
# program running, a program that failed -- and explain() must name it,
# with who it waits for, since when and what happens next.  The examples of
# docs/troubleshooting.md run here too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

$ENV{TZ} = 'UTC';
my $agent = agent_path();
my $cen = agent_site();
my $b = $cen->basedir;
my $site_key = site_key_file($cen);
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die "$f: $!"; print $fh $t; close $fh; }
sub q1 { my ($sql) = @_; return $cen->safe_psql('site', $sql); }

# a child CH1 whose workers run in another database: it receives what it is
# sent, but nothing there distributes it; a child CH2 nobody listens for
my $ch1 = site_node('ch1', site_code => 'CH1', conf => "smsdist.poll_interval = '5s'\n");
$ch1->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
$cen->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CH1', 'Child', 'CEN'), ('CH2', 'Unreachable child', 'CEN')});
link_sites($cen, 'CEN', $ch1, 'CH1');
make_path($ch1->basedir . '/dp');
$ch1->safe_psql('site', "INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CH1', 'distribution_point', 'DP1', '"
	  . $ch1->basedir . "/dp')");
$ch1->safe_psql('postgres', q{ALTER SYSTEM SET smsdist.database = 'postgres'});
$ch1->restart;
my $dead_port = PostgreSQL::Test::Cluster::get_free_port();

make_path("$b/src", "$b/src2", "$b/src3/bad", "$b/srcA", "$b/srcB", "$b/marks");
spew("$b/src/wait.sh", "while [ ! -e '$b/marks/release' ]; do sleep 0.1; done\n");
spew("$b/src/ok.sh", "exit 0\n");
spew("$b/src/fail.sh", "exit 3\n");
# a source two of whose files cannot be read
spew("$b/src3/good.txt", "fine\n");
spew("$b/src3/bad/one.bin", "secret\n");
spew("$b/src3/two.bin", "secret\n");
chmod 0000, "$b/src3/bad/one.bin", "$b/src3/two.bin";
# two packages of 700 KB each, for a cache of 1 MB
system("head -c 700000 /dev/urandom > '$b/srcA/a.bin' && head -c 700000 /dev/urandom > '$b/srcB/b.bin'") == 0 or die;
# a package of 24 MB, compressed slowly
system("head -c 24000000 /dev/urandom > '$b/src2/big.bin'") == 0 or die;

q1(qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'OLD-02', 'CORP', 'CEN', 'WIN95'),
  ('CEN00003', 'WKS-03', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00004', 'WKS-04', 'CORP', 'CEN', 'WINNT_X86'),
  ('CEN00005', 'WKS-05', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00006', 'WKS-06', 'CORP', 'CEN', 'WINNT_X86'),
  ('CH100001', 'BR-01', 'BRANCH', 'CH1', 'WINNT_X86'), ('CH200001', 'FAR-01', 'FAR', 'CH2', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES
  ('CEN00A01', 'Workstations'), ('CEN00A02', 'Leaving'), ('CEN00A04', 'Night shift'), ('CEN00A05', 'Failing');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES
  ('CEN00A01', 'direct', 'CEN00001'), ('CEN00A02', 'direct', 'CEN00006'),
  ('CEN00A04', 'direct', 'CEN00004'), ('CEN00A05', 'direct', 'CEN00005');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
  ('CEN00B01', 'Tools', '$b/src'), ('CEN00B02', 'Big', '$b/src2'), ('CEN00B03', 'Unreadable', '$b/src3'),
  ('CEN00B0A', 'Cache A', '$b/srcA'), ('CEN00B0B', 'Cache B', '$b/srcB');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes) VALUES
  ('CEN00B01', 'Wait', 'sh wait.sh', NULL, 30), ('CEN00B01', 'Ok', 'sh ok.sh', NULL, NULL),
  ('CEN00B01', 'Fail', 'sh fail.sh', NULL, NULL), ('CEN00B01', 'NT only', 'sh ok.sh', '{WINNT_X86,WIN_X64}', NULL),
  ('CEN00B02', 'Ok', 'true', NULL, NULL), ('CEN00B03', 'Ok', 'true', NULL, NULL),
  ('CEN00B0A', 'Ok', 'true', NULL, NULL), ('CEN00B0B', 'Ok', 'true', NULL, NULL);
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES
  ('CEN000E1', 'share_package', 'CEN00B01', 'sites', '{CEN}'),
  ('CEN000EA', 'share_package', 'CEN00B0A', 'sites', '{CEN}'),
  ('CEN000EB', 'share_package', 'CEN00B0B', 'sites', '{CEN}');
});
ok(wait_until($cen, 'site', q{SELECT count(DISTINCT package_id) = 3 FROM smsdist.package_locations}, 60),
	'the packages are published at CEN');

sub why
{
	my ($id, $m) = @_;
	my $arg = defined $m ? "'$id', '$m'" : "'$id'";
	return q1("SELECT coalesce(sms_id, '-') || '|' || coalesce(site_code, '-') || '|' || coalesce(state, '-') || '|'
	                  || coalesce(waiting_on, '-') || '|' || reason
	             FROM smsdist.explain($arg)");
}

# --- a job whose Start After has not come
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
     VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Ok', 'machines', '{CEN00001}', now() + interval '1 day')});
like(why('CEN000D1'), qr/^-\|-\|pending\|scheduler\|its Start After time, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00, has not come \(in 24\.0 h\): the Scheduler activates the job then$/,
	'Start After to come: one row for the job, waiting for the Scheduler, with the time');
is(q1(q{SELECT next_attempt_at = (SELECT start_after FROM smsdist.jobs WHERE job_id = 'CEN000D1') FROM smsdist.explain('CEN000D1')}),
	't', 'its next attempt is the Start After time');
like(why('CEN000D1', 'CEN00001'), qr/^CEN00001\|CEN\|pending\|scheduler\|its Start After time.*; the machine's part is known once the job is active \(targets: 1 listed machine\(s\), 1 of them in system_resources\)$/,
	'asked for one machine, the same reason, and what the job targets');

# --- a machine that does not support the program
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
     VALUES ('CEN000D2', 'run_command', 'CEN00B01', 'NT only', 'machines', '{CEN00002}')});
ok(wait_until($cen, 'site', q{SELECT count(*) = 1 FROM smsdist.explain('CEN000D2') WHERE reason LIKE 'program%'}, 60),
	'the platform reason appears once the job is active');
is(why('CEN000D2'), 'CEN00002|CEN|waiting|agent|program "NT only" runs on WINNT_X86, WIN_X64; this machine is WIN95: its agent will report that it does not apply here (10007)',
	'a platform the program does not support');

# --- a PCM file no agent has read, then a program running
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
     VALUES ('CEN000D3', 'run_command', 'CEN00B01', 'Wait', 'machines', '{CEN00001}', now() - interval '2 minutes', now() - interval '2 minutes', now() - interval '1 minute')});
ok(wait_until($cen, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.pcm_files WHERE sms_id = 'CEN00001' AND 'CEN000D3' = ANY (jobs))}, 60),
	'the PCM file of CEN00001 holds the job');
like(why('CEN000D3'), qr/^CEN00001\|CEN\|waiting\|agent\|its PCM file was written at \S+ \S+ on \d+ logon server\(s\); its policy holds the job since \S+ \S+; the agent has not reported on this job since: no message from its agent has ever reached this site$/,
	'a PCM file written, and no agent heard from');
is(q1(q{SELECT since = (SELECT written_at FROM smsdist.pcm_files WHERE sms_id = 'CEN00001') FROM smsdist.explain('CEN000D3')}),
	't', 'since: when the PCM file was written');

my %keys = map { $_ => machine_key_file($cen, $_) } qw(CEN00001 CEN00002 CEN00003 CEN00004 CEN00005);
# the agent's clock is the site's
sub agent_cmd
{
	my ($id, @more) = @_;
	my $now = q1(q{SELECT to_char(now() AT TIME ZONE 'UTC' + interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
	return [ $agent, '--sms-id', $id, '--site', 'CEN', '--platform', $id eq 'CEN00002' ? 'WIN95' : 'WINNT_X86',
		'--state-dir', "$b/ws/$id", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key,
		'--machine-key', $keys{$id}, '--now', $now, '--once', @more ];
}
my ($aout, $aerr) = ('', '');
my $running = IPC::Run::start(agent_cmd('CEN00001'), '>', \$aout, '2>', \$aerr);
# the Status Manager is woken on each round: the agent reports through a
# file in the status inbox, which is read when it is woken or at its poll
my $seen_running = 0;
my $until = time() + $PostgreSQL::Test::Utils::timeout_default;
while (time() < $until)
{
	q1(q{SELECT smsdist.wake('status_manager')});
	if (q1(q{SELECT state = 'running' FROM smsdist.job_target_status WHERE job_id = 'CEN000D3'}) eq 't')
	{
		$seen_running = 1;
		last;
	}
	select(undef, undef, undef, 0.1);
}
ok($seen_running, 'the program runs (the agent said so)') or diag("$aout$aerr");
like(why('CEN000D3'), qr/^CEN00001\|CEN\|running\|agent\|its program is running since \S+ \S+ \(\d+ s\); the agent stops it at \S+ \S+ if it still runs \(maximum run time 30 min\)$/,
	'running since when, and when it would be stopped');
is(q1(q{SELECT next_attempt_at = (SELECT client_at + interval '30 min' FROM smsdist.job_target_status WHERE job_id = 'CEN000D3')
          FROM smsdist.explain('CEN000D3')}), 't', 'the next event: the maximum run time');
spew("$b/marks/release", "");
$running->finish;
q1(q{SELECT smsdist.wake('status_manager')});
ok(wait_until($cen, 'site', q{SELECT state = 'succeeded' FROM smsdist.job_target_status WHERE job_id = 'CEN000D3'}, 60),
	'the program ends');
is(why('CEN000D3'), '', 'a job with every target final has nothing to explain');
like(why('CEN000D3', 'CEN00001'), qr/^CEN00001\|CEN\|succeeded\|-\|its program succeeded at \S+ \S+ \(exit code 0\)$/,
	'one machine is explained whatever its state');

# --- Offer After to come
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, offer_after)
     VALUES ('CEN000D4', 'run_command', 'CEN00B01', 'Ok', 'machines', '{CEN00001}', now() + interval '2 days')});
ok(wait_until($cen, 'site', q{SELECT count(*) = 1 FROM smsdist.explain('CEN000D4') WHERE reason LIKE 'its Offer After%'}, 60),
	'the job is active');
like(why('CEN000D4'), qr/^CEN00001\|CEN\|waiting\|agent\|its Offer After time, \S+ \S+, has not come \(in (47\.\d|48\.0) h\): the agent offers the job then$/,
	'Offer After to come');

# --- a failed program: exit code, and what happens next (job, and an advertisement that reruns it)
my $assign = q1(q{SELECT to_char(date_trunc('minute', now() AT TIME ZONE 'UTC') - interval '23 hours', 'YYYY-MM-DD HH24:MI')});
q1(qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
     VALUES ('CEN000D5', 'run_command', 'CEN00B01', 'Fail', 'machines', '{CEN00005}', now() - interval '2 minutes', now() - interval '2 minutes', now() - interval '1 minute');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, offer_time_utc, rerun_behaviour)
VALUES ('CEN00C05', 'Failing', 'CEN00B01', 'Fail', 'CEN00A05', '2026-01-01 00:00', true, 'rerun_if_failed');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc, recur_every)
VALUES ('CEN00C05', '$assign', true, '1 day');});
ok(wait_until($cen, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.pcm_files WHERE sms_id = 'CEN00005' AND 'CEN000D5' = ANY (jobs))
                                AND position('CEN00C05' IN coalesce(pg_read_file('} . $b . q{/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0}, 60),
	'the failing job and advertisement reach CEN00005');
IPC::Run::run(agent_cmd('CEN00005'), '>', \$aout, '2>', \$aerr);
q1(q{SELECT smsdist.wake('status_manager')});
ok(wait_until($cen, 'site', q{SELECT (SELECT state FROM smsdist.job_target_status WHERE job_id = 'CEN000D5') = 'failed'
                                AND (SELECT state FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C05') = 'failed'}, 60),
	'both fail') or diag("$aout$aerr");
like(why('CEN000D5', 'CEN00005'), qr/^CEN00005\|CEN\|failed\|operator\|its program failed at \S+ \S+ with exit code 3: .*; a job runs its program once, so it will not run again/,
	'a failed job target: its exit code, and that a job does not run it again');
like(why('CEN00C05', 'CEN00005'), qr/^CEN00005\|CEN\|failed\|agent\|its program failed at \S+ \S+ with exit code 3: .*; its rerun behaviour, rerun_if_failed, runs it again at the next mandatory time, \S+ \S+$/,
	'a failed advertisement target: its exit code, and its rerun behaviour runs it again');
is(q1(qq{SELECT next_attempt_at = ('$assign'::timestamp + interval '1 day') AT TIME ZONE 'UTC' FROM smsdist.explain('CEN00C05', 'CEN00005')}),
	't', 'at the next recurrence of its assignment');

# --- an offer time to come, and a machine that left the collection
q1(q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, offer_time_utc)
VALUES ('CEN00C01', 'Later', 'CEN00B01', 'Ok', 'CEN00A01', (now() AT TIME ZONE 'UTC') + interval '3 days', true),
       ('CEN00C02', 'Leaving', 'CEN00B01', 'Ok', 'CEN00A02', '2026-01-01 00:00', true);});
like(why('CEN00C01'), qr/^CEN00001\|CEN\|waiting\|agent\|its offer time, \S+ \S+, has not come \(in 3\.0 days\): the agent offers it then$/,
	'an advertisement whose offer time has not come');
like(why('CEN00C02'), qr/^CEN00006\|CEN\|waiting\|agent\|.*the agent has not reported on it since: no message from its agent has ever reached this site$/,
	'an advertisement no agent has reported on');
q1(q{DELETE FROM smsdist.collection_rules WHERE collection_id = 'CEN00A02'});
ok(wait_until($cen, 'site', q{SELECT state = 'not_applicable' FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C02'}, 60),
	'the machine leaves the collection');
is(why('CEN00C02'), '', 'no open target left');
like(why('CEN00C02', 'CEN00006'), qr/^CEN00006\|CEN\|not_applicable\|-\|it is not applicable since \S+ \S+: the machine left the collection of advertisement CEN00C02 before its program ran$/,
	'the machine that left: not applicable, and why');
like(why('CEN00C01', 'CEN00005'), qr/^CEN00005\|CEN\|not a target\|-\|machine CEN00005 is not a target of advertisement CEN00C01: it is not a member of collection CEN00A01/,
	'a machine that is not a target says so');

# --- outside the maintenance windows: the next window, six hours from now
my $opens = q1(q{SELECT to_char(date_trunc('hour', now() AT TIME ZONE 'UTC') + interval '6 hours', 'HH24:MI')});
q1(qq{
INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
VALUES ('CEN00A04', 'Night', '$opens', 60, '{mon,tue,wed,thu,fri,sat,sun}');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, offer_time_utc)
VALUES ('CEN00C04', 'At night', 'CEN00B01', 'Ok', 'CEN00A04', '2026-01-01 00:00', true);
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc)
VALUES ('CEN00C04', date_trunc('minute', now() AT TIME ZONE 'UTC') - interval '1 hour', true);});
ok(wait_until($cen, 'site', q{SELECT position('CEN00C04' IN coalesce(pg_read_file('} . $b . q{/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0}, 60),
	'the advertisement reaches the CAP');
IPC::Run::run(agent_cmd('CEN00004'), '>', \$aout, '2>', \$aerr);
q1(q{SELECT smsdist.wake('status_manager')});
ok(wait_until($cen, 'site', q{SELECT state = 'downloaded' FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C04'}, 60),
	'the agent downloads it and waits for its window') or diag("$aout$aerr");
like(why('CEN00C04'), qr/^CEN00004\|CEN\|downloaded\|agent\|the package was downloaded at \S+ \S+; its mandatory time \S+ \S+ passed, but the machine is outside its maintenance windows: the next, "Night", opens at \S+ \S+ \(\w+ $opens the machine's own time\)/,
	'outside its maintenance windows: which opens next, and when');
# (the time of day, not an interval from now: the hour may turn meanwhile)
is(q1(q{SELECT to_char(next_attempt_at AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || (next_attempt_at > now())
          FROM smsdist.explain('CEN00C04')}), "$opens true",
	'the next attempt is when the window opens');

# --- a full download cache (1 MB): the first package is locked in it, the second does not fit
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, mandatory_at) VALUES
  ('CEN000DA', 'run_command', 'CEN00B0A', 'Ok', 'machines', '{CEN00003}', now() + interval '10 days')});
ok(wait_until($cen, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.pcm_files WHERE sms_id = 'CEN00003' AND 'CEN000DA' = ANY (jobs))}, 60),
	'the first job reaches CEN00003');
IPC::Run::run(agent_cmd('CEN00003', '--cache-size', '1'), '>', \$aout, '2>', \$aerr);
q1(q{SELECT smsdist.wake('status_manager')});
ok(wait_until($cen, 'site', q{SELECT state = 'downloaded' FROM smsdist.job_target_status WHERE job_id = 'CEN000DA'}, 60),
	'its package is in the cache') or diag("$aout$aerr");
like(why('CEN000DA'), qr/^CEN00003\|CEN\|downloaded\|agent\|the package was downloaded at \S+ \S+; the program runs at its mandatory time, \S+ \S+ \(in 10\.0 days\), or when the user runs it; its agent last reported at/,
	'downloaded, and when it runs');
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, mandatory_at) VALUES
  ('CEN000DB', 'run_command', 'CEN00B0B', 'Ok', 'machines', '{CEN00003}', now() + interval '10 days')});
ok(wait_until($cen, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.pcm_files WHERE sms_id = 'CEN00003' AND 'CEN000DB' = ANY (jobs))}, 60),
	'the second job reaches CEN00003');
IPC::Run::run(agent_cmd('CEN00003', '--cache-size', '1'), '>', \$aout, '2>', \$aerr);
q1(q{SELECT smsdist.wake('status_manager')});
ok(wait_until($cen, 'site', q{SELECT detail LIKE '%cache is full%' FROM smsdist.job_target_status WHERE job_id = 'CEN000DB'}, 60),
	'the agent reports a full cache') or diag("$aout$aerr");
like(why('CEN000DB'), qr/^CEN00003\|CEN\|offered\|agent\|the download cache of its agent has no room for the package: the cache is full: \d+ bytes are needed, \d+ are free and 0 more could be freed \(the rest is locked\) \(reported at \S+ \S+; the agent tries again at each poll\); its agent reported at \S+ \S+ a cache of 1024 kB, 684 kB used, 684 kB locked, the first lock ends at \S+ \S+ \(package CEN00B0A\)$/,
	'a full cache: bytes needed, free, and locked, and when the first lock ends');
is(q1(q{SELECT next_attempt_at = (SELECT locked_until FROM smsdist.machine_cache_packages WHERE sms_id = 'CEN00003' AND package_id = 'CEN00B0A')
          FROM smsdist.explain('CEN000DB')}), 't', 'the next attempt: when that lock ends');

# --- a sender address paused for the hour: when sending resumes
my $hour = q1(q{SELECT (extract(hour FROM now() AT TIME ZONE current_setting('TimeZone'))::int + 12) % 24});
q1(qq{
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, hourly_rate_pct)
VALUES ('CH1', 'host=} . $ch1->host . ' port=' . $ch1->port . qq{ dbname=site user=parent_sender', 'rate_limited',
        (SELECT array_agg(CASE WHEN h = $hour THEN 50 ELSE 0 END ORDER BY h) FROM generate_series(0, 23) h)::smallint[]);
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000E2', 'share_package', 'CEN00B01', 'sites', '{CH1}');});
ok(wait_until($cen, 'site', q{SELECT state = 'retrying' FROM smsdist.job_site_status WHERE job_id = 'CEN000E2' AND phase = 'send'}, 60),
	'the send to CH1 pauses');
like(why('CEN000E2'), qr/^-\|CH1\|send retrying\|sender\|the sender address to site CH1 allows no sending in this hour \(its hourly rate is 0 %\): sending to site CH1 resumes at \S+ \S+$/,
	'a paused sender address: when sending resumes');
is(q1(qq{SELECT next_attempt_at = date_trunc('hour', now()) + make_interval(hours => ($hour - extract(hour FROM now())::int + 24) % 24)
          FROM smsdist.explain('CEN000E2')}), 't', 'at the first hour whose rate is not 0 %');
# a pause is not a failure: however long it lasts, the transfer does not give up
q1(q{ALTER SYSTEM SET smsdist.send_give_up_after = 1; SELECT pg_reload_conf();});
ok(wait_until($cen, 'site', q{SELECT attempts >= 3 AND clock_timestamp() - started_at > interval '2 s'
                                FROM smsdist.job_site_status WHERE job_id = 'CEN000E2' AND phase = 'send'}, 60),
	'the paused transfer is tried again and again, past send_give_up_after')
  or diag(q1(q{SELECT state, attempts, detail FROM smsdist.job_site_status WHERE job_id = 'CEN000E2'}));
is(q1(q{SELECT j.state || ' ' || s.state FROM smsdist.jobs j JOIN smsdist.job_site_status s USING (job_id)
         WHERE job_id = 'CEN000E2' AND s.phase = 'send'}), 'active retrying', 'and neither it nor its job gives up');
q1(q{ALTER SYSTEM RESET smsdist.send_give_up_after; SELECT pg_reload_conf();});
q1(q{UPDATE smsdist.sender_addresses SET throttle = 'unlimited', hourly_rate_pct = NULL WHERE target_site_code = 'CH1'});

# --- at CH1 nothing distributes: not on its distribution points yet; then CH1 stops answering
ok(wait_until($cen, 'site', q{SELECT state = 'waiting' FROM smsdist.job_site_status WHERE job_id = 'CEN000E2' AND phase = 'distribute'
                                AND EXISTS (SELECT 1 FROM smsdist.distribution_report_answers WHERE job_id = 'CEN000E2' AND reported_at IS NOT NULL)}, 60),
	'the package reaches CH1, which reports its distribution waiting');
like($ch1->safe_psql('site', q{SELECT coalesce(site_code, '-') || '|' || state || '|' || waiting_on || '|' || reason FROM smsdist.explain('CEN000E2')}),
	qr/^-\|pending\|scheduler\|Start After passed at \S+ \S+; the Scheduler activates the job at its next step$/,
	'at CH1, whose workers do not run: its copy of the job waits for its Scheduler');
like(why('CEN000E2'), qr/^-\|CH1\|distribute waiting\|child site\|site CH1 reports its distribution waiting.*, as of its last report at \S+ \S+ \(\d+ s ago\)$/,
	'at CEN: what CH1 last reported');
$ch1->stop('immediate');
ok(wait_until($cen, 'site', q{SELECT report_error IS NOT NULL FROM smsdist.distribution_report_answers WHERE job_id = 'CEN000E2' AND hop = 'CH1'}, 60),
	'CEN notices that CH1 does not answer');
like(why('CEN000E2'), qr/^-\|CH1\|distribute waiting\|child site\|site CH1 reports its distribution waiting.*, as of its last report at \S+ \S+ \(\d+ s ago\); it has not answered since \S+ \S+: .+$/,
	'a child behind on the job: its last report, and why it does not answer');

# --- a child site that cannot be reached
q1(qq{
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH2', 'host=127.0.0.1 port=$dead_port dbname=site user=parent_sender connect_timeout=2');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN000D6', 'run_command', 'CEN00B01', 'Ok', 'machines', '{CH200001}');});
ok(wait_until($cen, 'site', q{SELECT state = 'retrying' FROM smsdist.job_site_status WHERE job_id = 'CEN000D6' AND phase = 'send'}, 60),
	'the send to CH2 fails');
like(why('CEN000D6'), qr/^CH200001\|CH2\|waiting\|child site\|site CH2 cannot be reached since \S+ \S+ \(\d+ s, \d+ attempt\(s\)\): .*; next attempt at \S+ \S+$/,
	'an unreachable child: since when, the error, the next attempt');
is(q1(q{SELECT since = s.retrying_since AND e.next_attempt_at = s.next_attempt_at AND s.next_attempt_at > s.retrying_since
          FROM smsdist.explain('CEN000D6') e, smsdist.job_site_status s WHERE s.job_id = 'CEN000D6' AND s.phase = 'send'}),
	't', 'since and next attempt are those of the send row');

# --- a source that cannot be read: every path
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000E3', 'share_package', 'CEN00B03', 'sites', '{CEN}')});
ok(wait_until($cen, 'site', q{SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN000E3'}, 60), 'the build fails');
like(why('CEN000E3'), qr/^-\|-\|failed\|operator\|the job failed at .*bad\/one\.bin.*|^-\|-\|failed\|operator\|the job failed at .*two\.bin.*/,
	'the failed build is explained with its paths');
like(why('CEN000E3'), qr/bad\/one\.bin/, 'the first unreadable file is named');
like(why('CEN000E3'), qr/two\.bin/, 'and the second');

# --- a package being compressed: how far
q1(q{ALTER SYSTEM SET smsdist.test_compress_delay_ms = 2000; SELECT pg_reload_conf();});
# (a builder has the postmaster's settings when it starts)
wait_until($cen, 'site', q{SELECT current_setting('smsdist.test_compress_delay_ms') = '2s'}, 60);
q1(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000E4', 'share_package', 'CEN00B02', 'sites', '{CEN}')});
ok(wait_until($cen, 'site', q{SELECT count(*) = 1 FROM smsdist.explain('CEN000E4') WHERE waiting_on = 'package builder'}, 60),
	'the package is being compressed');
q1(q{INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, offer_time_utc)
     VALUES ('CEN00C06', 'Big', 'CEN00B02', 'Ok', 'CEN00A01', '2026-01-01 00:00', true)});
like(why('CEN00C06'), qr/^CEN00001\|CEN\|waiting\|despooler\|package CEN00B02 is not on the distribution points of site CEN: job CEN000E4 is distributing it \(see explain\('CEN000E4'\)\)$/,
	'an advertisement whose package is not on the distribution points yet');
like(why('CEN000E4'), qr/^-\|-\|active\|package builder\|package CEN00B02 version 1 is being compressed: \d+( \w+)? of 23 MB of source read \(\d+ %\), since \S+ \S+ \(first attempt\)$/,
	'being compressed: how much of the source, and the percent');
q1(q{ALTER SYSTEM RESET smsdist.test_compress_delay_ms; SELECT pg_reload_conf();});

# --- a full despool drive (needs the small file system the suite mounts as root)
SKIP:
{
	my $small = $ENV{SMSDIST_TEST_SMALLFS};
	skip 'no small file system (run the tests as root to get one)', 4 unless $small && -w $small;
	make_path("$small/drive035");
	q1(qq{UPDATE smsdist.site_systems SET root_directory = '$small/drive035' WHERE role = 'site_server_drive';
	      INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000E5', 'share_package', 'CEN00B02', 'sites', '{CEN}')});
	ok(wait_until($cen, 'site', q{SELECT state = 'retrying' FROM smsdist.job_site_status WHERE job_id = 'CEN000E5'}, 120),
		'the despool waits for room');
	# (between attempts: during one the row is 'running')
	my $full = qr/^-\|CEN\|distribute retrying\|despooler\|not on this site's distribution points yet: the Despooler has been waiting for room since \S+ \S+ \(.*, \d+ attempt\(s\)\): the despool drive "\Q$small\E\/drive035" is full \(\d+ bytes free, \d+ bytes needed\): .*No space left on device.*; next attempt at \S+ \S+$/;
	ok(eventually(sub { why('CEN000E5') =~ $full }, 60),
		'a full despool drive: which, what is free, what is needed, and when the next attempt is') or diag(why('CEN000E5'));
	ok(wait_until($cen, 'site', q{SELECT e.next_attempt_at = s.next_attempt_at AND s.next_attempt_at IS NOT NULL
	                                FROM smsdist.explain('CEN000E5') e, smsdist.job_site_status s WHERE s.job_id = 'CEN000E5'}, 60),
		'next_attempt_at is the row\'s');
	# another drive with room: the next attempt uses it
	q1(qq{UPDATE smsdist.site_systems SET root_directory = '$b/drive' WHERE role = 'site_server_drive'});
	ok(wait_until($cen, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000E5'}, 120),
		'once there is room, the job completes by itself');
	remove_tree("$small/drive035");
}

# --- bad input
my ($rc, $o, $e) = $cen->psql('site', q{SELECT * FROM smsdist.explain('NOSUCH01')});
like($e, qr/there is no job or advertisement "NOSUCH01" at site CEN/, 'an unknown ID is an error that says so');
($rc, $o, $e) = $cen->psql('site', q{SELECT * FROM smsdist.explain(NULL)});
like($e, qr/explain\(\) needs a job ID or an advertisement ID/, 'NULL too');

# --- readers may call it; it shows no conninfo
$cen->safe_psql('postgres', 'CREATE ROLE watcher LOGIN IN ROLE smsdist_reader');
like($cen->safe_psql('site', q{SET ROLE watcher; SELECT string_agg(reason, ' ') FROM smsdist.explain('CEN000D6')}),
	qr/cannot be reached/, 'a reader gets the reasons');
unlike($cen->safe_psql('site', q{SET ROLE watcher; SELECT string_agg(reason, ' ') FROM smsdist.explain('CEN000D6')}),
	qr/password|conninfo|port=/, 'without the sender address');

# --- every example of docs/troubleshooting.md runs
my $doc = do { local $/; open(my $fh, '<', "$FindBin::Bin/../../docs/troubleshooting.md") or die $!; <$fh> };
my @examples = $doc =~ /```sql\n(.*?)```/sg;
ok(@examples >= 5, 'the troubleshooting page has examples (' . scalar(@examples) . ')');
for my $sql (@examples)
{
	my ($r, $out, $err) = $cen->psql('site', $sql);
	my $first = (split /\n/, $sql)[0];
	is($r, 0, "example runs: $first") or diag($err);
	note("$first\n$out");
}

done_testing();
