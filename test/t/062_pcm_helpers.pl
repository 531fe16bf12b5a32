# PCM writers beside the Despooler: a job for 6,000 machines queues more
# PCM files than the Despooler's first batch holds, so a helper process
# (smsdist pcm writer) takes batches of the same queue.  Both are held at
# the recording of their batch (this session holds the machine_policies
# lock they take there), so the helper surely has a batch of its own; then
# every machine has its file once, on the site server and both logon
# servers.  Then a logon server that refuses files: the helper's batch is
# rolled back (a helper writes all or nothing), its temporary copies go,
# and the Despooler writes those machines itself, leaving out the failing
# logon server, which gets every file once it takes them again.  The
# Despooler ended while its helper writes: the one started again starts no
# second helper beside the one still running.  Last, a
# helper killed (-9) with a batch written but not recorded: after the
# restart every file is written again and no temporary copy is left.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $n = 6000;
my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '5s'\nrestart_after_crash = on\n");
my $b = $node->basedir;
make_path("$b/dp", "$b/drive", "$b/logon1", "$b/logon2", "$b/src");
system("echo setup > '$b/src/setup.exe'") == 0 or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$b/logon1'), ('CEN', 'logon_server', 'LOGON2', '$b/logon2');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT 'CEN' || upper(to_hex(65536 + g)), 'WKS-' || g, 'CORP', 'CEN', 'WINNT_X86' FROM generate_series(1, $n) g;
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'All');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'name LIKE ''WKS-%''');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe /q');});
ok(wait_until($node, 'site', "SELECT count(*) = $n FROM smsdist.collection_members WHERE collection_id = 'CEN00A01'", 60),
	"the collection has its $n machines");

# this session holds the lock that recording a batch takes
my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
sub hold_recording
{
	my ($in, $out, $err) = ("BEGIN;\nSELECT pg_advisory_xact_lock(hashtextextended('smsdist machine_policies', 0));\nSELECT 'held';\n", '', '');
	my $h = IPC::Run::start([ $psql, '-X', '-At', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
	$h->pump until $out =~ /held/;
	return ($h, \$in);
}
sub release
{
	my ($h, $in) = @_;
	$$in .= "COMMIT;\n\\q\n";
	$h->finish;
}
sub waits_for_lock
{
	my ($type) = @_;
	return wait_until($node, 'site', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = '$type' AND wait_event = 'advisory'", 120);
}
sub count_files { my ($dir) = @_; opendir(my $d, $dir) or return 0; my $c = grep { !/^\./ } readdir($d); closedir $d; return $c; }
sub count_temporaries { my ($dir) = @_; opendir(my $d, $dir) or return 0; my $c = grep { /\.tmp/ } readdir($d); closedir $d; return $c; }
my $site_dir = "$b/drive/mancfg.box/pcmdom.box/CORP.000";

# --- the job: the Despooler and a helper each record a batch
my ($h, $in) = hold_recording();
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id, offer_after)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01', now() + interval '1 hour')});
ok(waits_for_lock('smsdist despooler'), 'the Despooler has written its first batch and waits to record it');
ok(waits_for_lock('smsdist pcm writer'), 'a helper has written a batch of its own beside it and waits too');
release($h, $in);
ok(wait_until($node, 'site', "SELECT count(*) = $n FROM smsdist.pcm_files WHERE jobs = '{CEN00C01}' AND copies = 3", 180),
	"every machine's file is recorded, with its three copies");
ok(wait_until($node, 'site', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'smsdist pcm writer'", 60),
	'the helper stops once the queue is empty');
ok($node->log_contains(qr/smsdist pcm writer: wrote [1-9][0-9]* batch(es)? of PCM files \([1-9][0-9]* files\) in/),
	'the server log says what the helper wrote');
is(count_files($site_dir), $n, "$n files on the site server");
is(count_files("$b/logon1/pcins.box"), $n, "$n on the first logon server");
is(count_files("$b/logon2/pcins.box"), $n, "$n on the second");
is(count_temporaries($site_dir) + count_temporaries("$b/logon1/pcins.box") + count_temporaries("$b/logon2/pcins.box"), 0,
	'no temporary copy is left');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.pcm_queue"), '0', 'the queue is empty');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.machine_policies p WHERE p.policy::text LIKE '%CEN00C01%'"), "$n",
	'and every machine has the job in its policy');

# --- a logon server that refuses files, and a second job for every machine
chmod(0555, "$b/logon2/pcins.box") or die;
($h, $in) = hold_recording();
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id, offer_after)
VALUES ('CEN00C02', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01', now() + interval '1 hour')});
ok(waits_for_lock('smsdist despooler'), 'the Despooler has written its first batch of the second job');
ok(eventually(sub { $node->log_contains(qr/smsdist pcm writer stopped, leaving its work to the SMS Despooler: could not create PCM file "\Q$b\E\/logon2\/pcins\.box\//) }),
	'the helper stopped at its first copy on the failing logon server, and says so');
release($h, $in);
ok(wait_until($node, 'site', "SELECT count(*) = $n FROM smsdist.pcm_files WHERE jobs = '{CEN00C01,CEN00C02}' AND copies = 2", 180),
	'the Despooler writes every file of the second job, without the failing logon server');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3210 AND message LIKE '%logon2/pcins.box%'}), '1',
	'status message 3210 names the failing logon server, once');

chmod(0755, "$b/logon2/pcins.box") or die;
ok(wait_until($node, 'site', "SELECT count(*) = $n FROM smsdist.pcm_files WHERE jobs = '{CEN00C01,CEN00C02}' AND copies = 3", 180),
	'once it takes files again, the logon server gets every file');
ok(eventually(sub {
		open(my $fh, '<', "$b/logon2/pcins.box/CEN11770") or return 0;
		local $/;
		my $t = <$fh>;
		return $t =~ /CEN00C02/;
	}, 60), 'with the second job');
is(count_files("$b/logon2/pcins.box"), $n, "$n files there");
ok(wait_until($node, 'site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.pcm_queue)
                                 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity
                                                  WHERE backend_type IN ('smsdist despooler', 'smsdist pcm writer') AND state <> 'idle')}, 60),
	'the writers are done');
is(count_temporaries($site_dir) + count_temporaries("$b/logon1/pcins.box") + count_temporaries("$b/logon2/pcins.box"), 0,
	'no temporary copy is left, the helper\'s rolled-back batch\'s included');

# --- the Despooler ended (pg_terminate_backend) while its helper writes:
# the supervisor starts it again, and the new one counts the helper that
# still runs, so no second one starts
my $log_from = -s $node->logfile;
($h, $in) = hold_recording();
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id, offer_after)
VALUES ('CEN00C03', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01', now() + interval '1 hour')});
ok(waits_for_lock('smsdist pcm writer'), 'a helper has written a batch of the third job');
ok(waits_for_lock('smsdist despooler'), 'and so has the Despooler');
my $old_despooler = $node->safe_psql('site', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist despooler'");
$node->safe_psql('site', "SELECT pg_terminate_backend($old_despooler)");
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist despooler'
                               AND pid <> $old_despooler AND wait_event = 'advisory'", 120),
	'the Despooler started again has written a batch beside the helper');
release($h, $in);
ok(wait_until($node, 'site', "SELECT count(*) = $n FROM smsdist.pcm_files WHERE jobs = '{CEN00C01,CEN00C02,CEN00C03}' AND copies = 3", 180),
	'every machine has its file with the third job');
ok(wait_until($node, 'site', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'smsdist pcm writer'", 60),
	'the helpers have stopped');
{
	my $since = substr(slurp_file($node->logfile), $log_from);
	my $helpers = () = $since =~ /smsdist pcm writer: wrote/g;
	is($helpers, 1, 'one helper ran for the third job: the new Despooler started none beside it');
}

# --- kill -9 of a helper with a batch written and not recorded: the server
# restarts, the batch's queue rows are back, and every file is written
# again
($h, $in) = hold_recording();
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id, offer_after)
VALUES ('CEN00C04', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01', now() + interval '1 hour')});
ok(waits_for_lock('smsdist pcm writer'), 'a helper has written a batch of the third job and waits to record it');
my $pid = $node->safe_psql('site', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist pcm writer'");
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.pcm_files WHERE 'CEN00C04' = ANY (jobs)"), '0',
	'none of its files is recorded yet');
kill 'KILL', $pid;
$h->kill_kill;	# the restart ends its session anyway
ok(wait_until($node, 'site', "SELECT count(*) = $n FROM smsdist.pcm_files WHERE jobs = '{CEN00C01,CEN00C02,CEN00C03,CEN00C04}' AND copies = 3", 180),
	'after the restart every machine has its file with the third job');
ok($node->log_contains(qr/terminated by signal 9/), 'the server saw the kill -9');
is(count_temporaries($site_dir) + count_temporaries("$b/logon1/pcins.box") + count_temporaries("$b/logon2/pcins.box"), 0,
	'no temporary copy is left');
is(count_files("$b/logon1/pcins.box"), $n, "still $n files on a logon server");

# --- smsdist.pcm_helpers lowered to 0 while a helper writes: it records the
# batch it wrote and stops before the next one; the Despooler writes the rest
$log_from = -s $node->logfile;
($h, $in) = hold_recording();
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id, offer_after)
VALUES ('CEN00C05', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01', now() + interval '1 hour')});
ok(waits_for_lock('smsdist pcm writer'), 'a helper has written a batch of the fifth job and waits to record it');
$node->safe_psql('site', "ALTER SYSTEM SET smsdist.pcm_helpers = 0");
$node->safe_psql('site', "SELECT pg_reload_conf()");
# a new session sees the new value once the postmaster has read the file,
# and it tells the running processes right then
ok(wait_until($node, 'site', "SELECT current_setting('smsdist.pcm_helpers') = '0'", 60), 'the setting is 0 now');
release($h, $in);
ok(wait_until($node, 'site', "SELECT count(*) = $n FROM smsdist.pcm_files WHERE 'CEN00C05' = ANY (jobs) AND copies = 3", 180),
	'every machine has its file with the fifth job');
ok(eventually(sub { $node->log_contains(qr/smsdist pcm writer: stopping, smsdist\.pcm_helpers is 0 now/, $log_from) }),
	'the helper says it stops for the setting');
{
	my $since = substr(slurp_file($node->logfile), $log_from);
	like($since, qr/smsdist pcm writer: wrote 1 batch of PCM files/, 'after the one batch it had written');
}
ok(wait_until($node, 'site', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'smsdist pcm writer'", 60),
	'and is gone');

done_testing();
