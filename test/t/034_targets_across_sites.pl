# A deployment ends, across the hierarchy: a run-command job made at the
# central site for a machine of each of three sites runs on each machine's
# agent; each site's Status Manager moves its targets from the agents'
# status files, and each child sends its parent the targets whose state
# changed (the middle site passes on its child's).  The central site's job
# completes when the last machine of its subtree has finished, with the
# counts; each child's copy completes with its own targets; an operator's
# LISTEN on smsdist_targets sees every change; job_status counts current
# states.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my ($cen, $ch1, $gc1) = three_sites();
my %node = (CEN => $cen, CH1 => $ch1, GC1 => $gc1);
my %base = map { $_ => $node{$_}->basedir } keys %node;

make_path("$base{CEN}/dp1", "$base{CEN}/drive", "$base{CEN}/src");
# the program fails (exit code 3) on the machine whose agent state is ws-CH100001
open(my $fh, '>', "$base{CEN}/src/setup.sh") or die;
print $fh "case \"\$PWD\" in */ws-CH100001/*) exit 3 ;; esac\nexit 0\n";
close $fh;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$base{CEN}/dp1'), ('CEN', 'site_server_drive', 'D', '$base{CEN}/drive');});
for my $code (qw(CEN CH1 GC1))
{
	my $b = $base{$code};
	make_path("$b/logon1", "$b/cap1");
	$node{$code}->safe_psql('site', qq{
ALTER SYSTEM SET smsdist.client_time_window = '20000d';
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'logon_server', 'LOGON1', '$b/logon1'), ('$code', 'client_access_point', 'CAP1', '$b/cap1');});
	reload_settings($node{$code}, 'site', { 'smsdist.client_time_window' => '20000d' }, 'status_manager');
}
# status travels up: each child's login at its parent
my $to = sub { my ($n) = @_; return 'host=' . $n->host . ' port=' . $n->port . ' dbname=site user=child_reporter'; };
$ch1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', '" . $to->($cen) . "')");
$gc1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', '" . $to->($ch1) . "')");

$cen->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-CEN', 'CORP', 'CEN', 'WINNT_X86'), ('CH100001', 'WKS-CH1', 'BRANCH', 'CH1', 'WINNT_X86'),
  ('GC100001', 'WKS-GC1', 'FIELD', 'GC1', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, version, source_directory) VALUES ('CEN00B01', 'Tool', '1.0', '$base{CEN}/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms) VALUES ('CEN00B01', 'Install', 'sh setup.sh', '{WINNT_X86}');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines,
                          start_after, offer_after, mandatory_at)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001,CH100001,GC100001}',
        '2026-11-30 00:00+00', '2026-12-01 00:00+00', '2026-12-01 06:00+00');});

# an operator listens at the central site
my $listener = $cen->background_psql('site');
$listener->query_safe('LISTEN smsdist_targets');

my %member = (CEN => 'CEN00001', CH1 => 'CH100001', GC1 => 'GC100001');
for my $code (qw(CEN CH1 GC1))
{
	my $f = "$base{$code}/logon1/pcins.box/$member{$code}";
	ok(wait_until($node{$code}, 'site', "SELECT coalesce(pg_read_file('$f', 0, 100000, true), '') LIKE '%[job CEN000D1]%'", 120),
		"the PCM file of $member{$code} at $code has the job");
	ok(wait_until($node{$code}, 'site', "SELECT (pg_stat_file('$base{$code}/cap1/statmsgs.box', true)).isdir", 60),
		"$code has made its CAP's status inbox");
}
is($cen->safe_psql('site', q{SELECT string_agg(sms_id || ':' || site_code || ':' || state, ',' ORDER BY sms_id)
                              FROM smsdist.job_target_status WHERE job_id = 'CEN000D1'}),
	'CEN00001:CEN:waiting,CH100001:CH1:waiting,GC100001:GC1:waiting', 'every target of the job waits');
# explain() at the central site, for its own machine and, from what they
# reported, for those of the child and the grandchild
ok(wait_until($cen, 'site', q{SELECT count(*) = 3 FROM smsdist.explain('CEN000D1') WHERE waiting_on = 'agent'}, 60),
	'explain() at the central site: every machine waits for its agent')
  or diag($cen->safe_psql('site', q{SELECT * FROM smsdist.explain('CEN000D1')}));
like($cen->safe_psql('site', q{SELECT reason FROM smsdist.explain('CEN000D1') WHERE sms_id = 'CEN00001'}),
	qr/^its PCM file was written at .*; the agent has not reported on this job since: no message from its agent has ever reached this site$/,
	'its own machine: the PCM file written, no agent heard from');
for my $code (qw(CH1 GC1))
{
	like($cen->safe_psql('site', qq{SELECT reason FROM smsdist.explain('CEN000D1') WHERE sms_id = '$member{$code}'}),
		qr/^the package is on the distribution points of site $code; site $code has reported no message of this machine's agent on this job$/,
		"the machine of $code: the package is there, its agent not heard from");
}

# each machine's agent, once, after the mandatory time: offered, downloaded, run
for my $code (qw(CEN CH1 GC1))
{
	my $id = $member{$code};
	my ($o, $e) = ('', '');
	IPC::Run::run([ agent_path(), '--sms-id', $id, '--site', $code, '--platform', 'WINNT_X86',
		'--state-dir', "$base{$code}/ws-$id", '--logon-server', "$base{$code}/logon1", '--cap', "$base{$code}/cap1",
		'--once', '--now', '2026-12-01T07:00:00Z',
		'--machine-key', machine_key_file($node{$code}, $id),
		'--site-key', site_key_file($node{$code}, "$base{$code}/site-key.pub") ], '>', \$o, '2>', \$e);
	like($o, qr/^${AGENT_INFO}ran job CEN000D1: /m, "the agent of $id ran the job's program") or diag("$o$e");
	$node{$code}->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
}

# each site moves its own targets from its agents' status files
for my $w ([CEN => 'CEN00001:succeeded:0'], [CH1 => 'CH100001:failed:3'], [GC1 => 'GC100001:succeeded:0'])
{
	my ($code, $want) = @$w;
	ok(wait_until($node{$code}, 'site', qq{SELECT string_agg(sms_id || ':' || state || ':' || exit_code, ',') = '$want'
	                                        FROM smsdist.job_target_status
	                                       WHERE job_id = 'CEN000D1' AND site_code = '$code'}, 60),
		"$code: the target of its machine is final, from its agent's own messages ($want)")
	  or diag($node{$code}->safe_psql('site', q{SELECT message_id, machine, target_effect FROM smsdist.status_messages
	                                            WHERE machine IS NOT NULL ORDER BY status_id}));
}

# the central site learns every machine's final state and completes the job
ok(wait_until($cen, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000D1'}, 90),
	'the central site\'s job completes once the last machine of its subtree has finished')
  or diag($cen->safe_psql('site', q{SELECT * FROM smsdist.job_target_status}));
is($cen->safe_psql('site', q{SELECT state_reason FROM smsdist.jobs WHERE job_id = 'CEN000D1'}),
	'with failures: 2 succeeded, 1 failed', 'its reason gives the counts, and that some failed');
is($cen->safe_psql('site', q{SELECT string_agg(sms_id || ':' || state || ':' || coalesce(exit_code::text, '-'), ',' ORDER BY sms_id)
                              FROM smsdist.job_target_status WHERE job_id = 'CEN000D1'}),
	'CEN00001:succeeded:0,CH100001:failed:3,GC100001:succeeded:0',
	'the central site holds each machine\'s final state and exit code, the grandchild\'s passed on by the child');
like($cen->safe_psql('site', q{SELECT detail FROM smsdist.job_target_status WHERE job_id = 'CEN000D1' AND sms_id = 'CH100001'}),
	qr/failed with exit code 3/, 'and the agent\'s words for the failure');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.explain('CEN000D1')}), '0', 'explain() of the completed job: nothing waits');
like($cen->safe_psql('site', q{SELECT state || '|' || reason FROM smsdist.explain('CEN000D1', 'CH100001')}),
	qr/^failed\|its program failed at \S+ \S+ with exit code 3: .*failed with exit code 3.*; a job runs its program once/,
	'explain() of the child\'s machine at the central site: its exit code, from what the child reported');
is($cen->safe_psql('site', q{SELECT targeted || ':' || succeeded || ':' || failed || ':' || waiting FROM smsdist.job_status WHERE job_id = 'CEN000D1'}),
	'3:2:1:0', 'job_status counts the current states of the whole subtree');
for my $w ([CH1 => 'with failures: 1 succeeded, 1 failed'], [GC1 => '1 succeeded'])
{
	my ($code, $want) = @$w;
	ok(wait_until($node{$code}, 'site', qq{SELECT state = 'completed' AND state_reason = '$want' FROM smsdist.jobs WHERE job_id = 'CEN000D1'}, 60),
		"${code}'s copy of the job completes with its own targets ($want)");
}
ok(wait_until($ch1, 'site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_target_status WHERE report_pending)}, 60),
	'the child has nothing left to tell its parent');
for my $code (qw(CEN CH1 GC1))
{
	my $f = "$base{$code}/logon1/pcins.box/$member{$code}";
	ok(wait_until($node{$code}, 'site', "SELECT coalesce(pg_read_file('$f', 0, 100000, true), '') NOT LIKE '%[job CEN000D1]%'", 60),
		"a completed job leaves the PCM file of $member{$code}");
}

# the operator saw each change as it happened (psql prints what arrived
# with the result of its next command)
my $out = '';
my @seen;
for (1 .. 100)
{
	$out .= $listener->query_safe('SELECT 1');
	@seen = $out =~ /Asynchronous notification "smsdist_targets" with payload "(.*)" received from server process/g;
	last if grep { /CH100001/ && /failed/ } @seen;
	select(undef, undef, undef, 0.1);
}
$listener->quit;
ok((grep { /"kind" : "job"/ && /"sms_id" : "CEN00001"/ && /"state" : "succeeded"/ } @seen),
	'LISTEN smsdist_targets: the central machine\'s success') or diag($out);
ok((grep { /"sms_id" : "CH100001"/ && /"state" : "failed"/ && /"site" : "CH1"/ } @seen),
	'and a child machine\'s failure, as the child reported it');

done_testing();
