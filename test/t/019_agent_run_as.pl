# A program runs as the designated user: a program that
# runs with administrative rights runs as the agent's own account; one that
# runs with the user's rights runs as the logged-on user's local account,
# waits while nobody is logged on, and fails with a reason (status message
# 10009) when the user has no account or the agent cannot switch to it.
# The run mode travels in the .PKG file, the PCM file (a run-command job),
# the management point's policy and the details a child site receives; a
# changed program rewrites the PCM files of its active jobs.
#
# The switch to another account needs an agent run as root.  No root grant
# is needed for that: test/run-all, run as root, gives this test (run as the
# postgres OS user) a directory in SMSDIST_TEST_RUNAS; the site's shares and
# the marks go there, and at the end this test writes the agent's arguments
# and a "ready" file.  After the tests that run as postgres, run-all runs
# test/root/019_agent_run_as.pl as root, which runs the agent against these
# shares and shows the switch to "nobody"; its trap removes the directory.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use File::Temp;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $agent = agent_path();
my $me = getpwuid($>);

# the shares and the marks where the root part of run-all (and "nobody")
# can reach them, and that outlive this test's node
my $pub = $ENV{SMSDIST_TEST_RUNAS} // File::Temp::tempdir('/tmp/smsdist-t019.XXXXXX', CLEANUP => 1);
chmod 0755, $pub;
my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '300s'\n");
my $b = $node->basedir;
my $s = "$pub/site";
make_path("$b/src", "$b/drive", "$pub/marks", map { "$s/$_" } qw(dp logon cap));
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$s/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$s/logon'), ('CEN', 'client_access_point', 'CAP1', '$s/cap');});
chmod 0777, "$pub/marks";
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }
spew("$b/src/who.sh", "echo \"\$1 \$(id -un) \$USER \$HOME\" >> \"\$2\"\n");
chmod 0600, "$b/src/who.sh";	# the agent's copy is readable by the user all the same
spew("$pub/marks/who.txt", '');
chmod 0666, "$pub/marks/who.txt";
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A01', 'direct', 'CEN00001');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, run_with) VALUES
  ('CEN00B01', 'AsUser', 'sh who.sh user $pub/marks/who.txt', 'user_rights'),
  ('CEN00B01', 'AsAgent', 'sh who.sh agent $pub/marks/who.txt', 'administrative_rights'),
  ('CEN00B01', 'JobAsUser', 'sh who.sh job $pub/marks/who.txt', 'administrative_rights');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
ok(wait_until($node, 'site', "SELECT (pg_stat_file('$s/cap/statmsgs.box', true)).isdir", 60),
	'the site has made its CAP\'s status inbox (agents never make it)');

my $stderr = '';
$node->psql('site', q{INSERT INTO smsdist.programs (package_id, program_name, command_line, run_with) VALUES ('CEN00B01', 'Bad', 'x', 'root')},
	stderr => \$stderr);
like($stderr, qr/violates check constraint "run_with_known"/, 'a run mode other than administrative_rights or user_rights is refused');

$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time) VALUES
  ('CEN00C01', 'As the user', 'CEN00B01', 'AsUser', 'CEN00A01', '2026-11-01 00:00'),
  ('CEN00C02', 'As the agent', 'CEN00B01', 'AsAgent', 'CEN00A01', '2026-11-01 00:00');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc) VALUES
  ('CEN00C01', '2026-12-01 10:00', true), ('CEN00C02', '2026-12-01 10:00', true);
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'JobAsUser', 'machines', '{CEN00001}', '2026-01-01 00:00+00',
        '2026-01-01 00:00+00', '2026-12-01 10:00+00');});
ok(wait_until($node, 'site', qq{SELECT position('run_with=user_rights' IN coalesce(pg_read_file('$s/cap/pkginfo.box/CEN00B01.PKG', 0, 100000, true), '')) > 0
                                  AND position('CEN00C02' IN coalesce(pg_read_file('$s/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0
                                  AND position('CEN000D1' IN coalesce(pg_read_file('$s/logon/pcins.box/CEN00001', 0, 100000, true), '')) > 0}, 60),
	'the .PKG on the CAP says which program runs with the user\'s rights; the offers and the PCM file are there');
unlike(slurp("$s/logon/pcins.box/CEN00001"), qr/run_with/, 'the job\'s program runs with administrative rights: its PCM entry has no run_with');

# changing the program rewrites the PCM file of its active job
$node->safe_psql('site', q{UPDATE smsdist.programs SET run_with = 'user_rights' WHERE program_name = 'JobAsUser'});
ok(wait_until($node, 'site', qq{SELECT position('run_with=user_rights' IN coalesce(pg_read_file('$s/logon/pcins.box/CEN00001', 0, 100000, true), '')) > 0}, 60),
	'a program changed to the user\'s rights: the PCM file of its active job is written again and says so');

# the policy and what a child site receives carry it
# (the policy is stored after the files are written, which were waited for)
ok($node->poll_query_until('site', q{SELECT string_agg(a->>'advert_id' || ':' || (a->>'run_with'), ',' ORDER BY a->>'advert_id')
                               FROM jsonb_array_elements(smsdist.machine_policy('CEN00001')->'advertisements') a},
	'CEN00C01:user_rights,CEN00C02:administrative_rights'), 'the management point\'s policy carries the run mode');
is($node->safe_psql('site', q{SELECT smsdist.advertisement_details('CEN00C01', 'CH1')->'program'->>'run_with'}),
	'user_rights', 'the details a child site receives for an advertisement carry it');
is($node->safe_psql('site', q{SELECT smsdist.run_job_details('CEN000D1', 'CEN')->>'run_with'}),
	'user_rights', 'and those for a run-command job');

# The site takes in the status messages in the CAP's inbox.  (ws1, ws2 and
# ws3 below play the same machine, each a little later: its messages are
# told apart by sequence and time, and the files of one are taken in before
# the next writes files of the same names.)
sub ingest
{
	$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
	return wait_until($node, 'site', qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$s/cap/statmsgs.box') f WHERE f LIKE '%.SMS')}, 30);
}

# the site's public key and the machine's key, where the root part can
# read them after this test's node is gone
my $site_key = site_key_file($node, "$pub/site-key.pub");
my $keyfile = "$pub/CEN00001.key";
system('cp', machine_key_file($node, 'CEN00001'), $keyfile) == 0 or die "copying the machine key: $!";
chmod 0600, $keyfile;

# what every run of the agent here is given (the root part's too)
sub agent_args
{
	return ('--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--logon-server', "$s/logon", '--cap', "$s/cap", '--site-key', $site_key, '--machine-key', $keyfile,
		'--now', '2026-12-01T12:00:00Z', '--once');
}

sub agent
{
	my ($ws, @more) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, agent_args(), '--state-dir', $ws, @more ], '>', \$out, '2>', \$err);
	my $rc = $?;
	ingest() or diag('the status messages were not taken in');
	return ($rc, $out, $err);
}

# nobody logged on: the user-rights programs wait, the other runs as the agent
my ($rc, $out, $err) = agent("$b/ws1");
is($rc, 0, 'the poll runs') or diag($err);
like($out, qr/^${AGENT_INFO}waiting to run advert CEN00C01: it runs with the user's rights and no user is logged on$/m,
	'with nobody logged on, the program that runs with the user\'s rights waits');
like($out, qr/^${AGENT_INFO}waiting to run job CEN000D1: it runs with the user's rights and no user is logged on$/m,
	'so does the job\'s, read from the PCM file');
like($out, qr/^${AGENT_INFO}ran advert CEN00C02: Program "AsAgent" of package CEN00B01 succeeded/m, 'the administrative-rights program runs');
like(slurp("$pub/marks/who.txt"), qr/^agent $me /m, 'as the agent\'s own account');
unlike(slurp("$pub/marks/who.txt"), qr/^(user|job) /m, 'the waiting ones did not run');

# the user logs on (CORP\<this account>): they run, as that account
($rc, $out, $err) = agent("$b/ws1", '--user', "CORP\\$me");
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "AsUser" of package CEN00B01 succeeded/m, 'once the user is logged on it runs');
like($out, qr/^${AGENT_INFO}ran job CEN000D1: Program "JobAsUser" of package CEN00B01 succeeded/m, 'and the job\'s program too');
like(slurp("$pub/marks/who.txt"), qr/^user $me $me /m, "as the user's account ($me), with USER set to it");

# a user with no local account, and an account the agent may not switch to
($rc, $out, $err) = agent("$b/ws2", '--user', 'CORP\\nosuchuser19', '--now', '2026-12-01T12:00:02Z');
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "AsUser" of package CEN00B01 could not be started: it runs with the user's rights and user CORP\\nosuchuser19 has no local account "nosuchuser19"\.$/m,
	'a user without a local account: the program fails with the reason');
if ($> != 0)
{
	($rc, $out, $err) = agent("$b/ws3", '--user', 'CORP\\alice', '--user-account', 'nobody', '--now', '2026-12-01T12:00:04Z');
	like($out, qr/could not be started: it runs with the user's rights \(account "nobody"\) and the agent, not running as root, cannot switch to another account\.$/m,
		'--user-account names the account; an agent that is not root cannot switch to it and says so');
}
my $runs = slurp("$b/ws2/runs");
like($runs, qr/^advert CEN00C01 \d+ 127 /m, 'the failed start is recorded as a run (exit 127): it is not retried at every poll');

ok(ingest(), 'the status messages reach the site');
like($node->safe_psql('site', q{SELECT string_agg(message, E'\n') FROM smsdist.status_messages
                                 WHERE message_id = 10009 AND advert_id = 'CEN00C01'}),
	qr/has no local account "nosuchuser19"/, 'the site has the failure (10009) with its reason');
like($node->safe_psql('site', q{SELECT string_agg(message, E'\n') FROM smsdist.status_messages
                                 WHERE message_id = 10005 AND advert_id = 'CEN00C01'}),
	qr/^Program "AsUser" of package CEN00B01 started as \Q$me\E: sh who\.sh/m, 'the start message (10005) names the account');

# as root: the switch to another account, shown by the root part of
# test/run-all (test/root/019_agent_run_as.pl) with these shares and arguments
if (defined $ENV{SMSDIST_TEST_RUNAS})
{
	# CEN000D1 has ended (its machine's last report is final): the root
	# part gets a job of its own, live in the PCM file
	$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
VALUES ('CEN000D2', 'run_command', 'CEN00B01', 'JobAsUser', 'machines', '{CEN00001}', '2026-01-01 00:00+00',
        '2026-01-01 00:00+00', '2026-12-01 10:00+00');});
	ok(wait_until($node, 'site', qq{SELECT position('CEN000D2' IN coalesce(pg_read_file('$s/logon/pcins.box/CEN00001', 0, 100000, true), '')) > 0}, 60),
		'a job for the root part is in the PCM file');
	open(my $fh, '>', "$pub/agent-args") or die "$pub/agent-args: $!";
	print $fh map { "$_\n" } agent_args();
	close $fh;
	spew("$pub/ready", "t/019 prepared the site for the root part of test/run-all\n");
}

done_testing();
