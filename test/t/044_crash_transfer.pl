# Crashes during a transfer between two sites (docs/reliability.md):
#
# - the whole parent site (its postmaster and every process at once, as a
#   power cut) in the middle of the transfer of a package, and again the
#   whole child site; each is started again;
# - the child's early extractor while it extracts a package that is still
#   arriving;
# - the child's summary and target push to its parent: the child's Status
#   Manager killed while the parent applies the rows, and the parent's
#   backend that applies them.
#
# The transfer is throttled (pulse mode) so that it lasts; a session at the
# child holds the transfer's row once some bytes are durable there, so the
# receiving backend waits in the middle of the transfer (a chunk in flight)
# when the site is killed.  The early extractor is stopped with SIGSTOP
# while the parent still compresses the package (the stream cannot have
# ended), then killed.  The push is held by a session at the parent that
# holds job_target_status.  After each: the job ends once, the send and the
# distribution are said done once, the published package is byte-identical
# to the source, every target is at the parent once, and no part file,
# transfer row, temporary file or despool directory is left.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use File::Find;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually crash_site);

my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
# (the chunks' bytes stay out of the server logs: a throttled transfer
# is hundreds of statements)
my $conf = "smsdist.poll_interval = '5s'\nrestart_after_crash = on\nlog_parameter_max_length = 0\n";

# A session that runs sql in an open transaction and keeps it open.
sub hold
{
	my ($node, $sql) = @_;
	my ($in, $out, $err) = ("BEGIN;\n$sql;\n", '', '');
	my $h = IPC::Run::start([ $psql, '-X', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
	$h->pump while length $in;
	return $h;
}

sub leftovers
{
	my @found;
	find(sub { push @found, $File::Find::name if /^\.(?!\.?$)/ || /\.tmp(\.\d+)?$/ || /\.part$/ || $File::Find::dir =~ m{/smsdist-despool$}; }, @_);
	return join(', ', @found);
}

my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
# 64 KB every 20 ms: a few MB a second, so that a transfer lasts seconds
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, pulse_block_kb, pulse_delay_ms)
  VALUES ('CH1', 'host=" . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender', 'pulse', 64, 20)");
$ch1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', 'host="
	  . $cen->host . ' port=' . $cen->port . " dbname=site user=child_reporter')");
my $cb = $ch1->basedir;
make_path("$cb/dp1", "$cb/drive");
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$cb/dp1'), ('CH1', 'site_server_drive', 'D', '$cb/drive');});
my $store = $ch1->data_dir . '/pg_smsdist/packages';

my %src;
sub new_package
{
	my ($id, $mb) = @_;
	my $s = $cen->basedir . "/src-$id";
	make_path("$s/bin");
	system("head -c ${mb}000000 /dev/urandom > '$s/bin/setup.exe'") == 0 or die;
	system("echo 'read me' > '$s/readme.txt'") == 0 or die;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$id', '$id', '$s');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('$id', 'Install', 'setup.exe /q');});
	$src{$id} = $s;
}

sub share_job
{
	my ($job, $package) = @_;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('$job', 'share_package', '$package', 'sites', '{CH1}')});
}

sub rows
{
	my ($node, $job) = @_;
	return $node->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || coalesce(detail, '') || ' ' || coalesce(last_error, ''), E'\\n') FROM smsdist.job_site_status WHERE job_id = '$job'");
}

# The job completed once, its send and distribution said once, the
# package at CH1 the source, nothing of the transfer left.
sub delivered_once
{
	my ($job, $package, $what) = @_;
	ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = '$job'", 120),
		"$what: the job completes") or diag(rows($cen, $job), "\n", rows($ch1, $job));
	is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.job_transitions WHERE job_id = '$job' AND to_state = 'completed'"),
		'1', "$what: once");
	is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE job_id = '$job' AND message_id = 3302"), '1',
		"$what: CEN said the send done once");
	is($ch1->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE job_id = '$job' AND message_id = 3200"), '1',
		"$what: CH1 distributed it once");
	is($ch1->safe_psql('site', "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'ready') FROM smsdist.package_builds WHERE package_id = '$package'"),
		'1 1', "$what: CH1 holds one build of the package, ready");
	is($ch1->safe_psql('site', 'SELECT count(*) FROM smsdist.package_transfers'), '0', "$what: no transfer is left open at CH1");
	is(system('diff', '-r', $src{$package}, "$cb/dp1/SMS_PKGC/$package"), 0, "$what: the package at CH1 is byte-identical to the source");
	my $left = '';
	ok(eventually(sub { $left = leftovers("$cb/dp1", "$cb/drive", $store); $left eq '' }, 30),
		"$what: no part file, temporary file or despool directory is left at CH1") or diag($left);
}

# Holds CH1's transfer row of the package once bytes of it are durable
# there; returns the session once CH1's receiving backend waits for it (a
# chunk in flight: the transfer has not ended).
sub hold_mid_transfer
{
	my ($package) = @_;
	ok(wait_until($ch1, 'site', "SELECT bytes_received > 0 FROM smsdist.package_transfers WHERE package_id = '$package'", 90),
		"$package: bytes of the transfer are durable at CH1");
	my $h = hold($ch1, "SELECT 1 FROM smsdist.package_transfers WHERE package_id = '$package' FOR UPDATE");
	ok(wait_until($ch1, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND usename = 'parent_sender'}, 60),
		"$package: CH1's receiving backend waits with a chunk in flight");
	is($ch1->safe_psql('site', "SELECT count(*) FROM smsdist.package_transfers WHERE package_id = '$package' AND (total_bytes IS NULL OR bytes_received < total_bytes)"),
		'1', "$package: the transfer is in the middle");
	return $h;
}

# --- the whole parent site, in the middle of a transfer
new_package('CEN00B01', 12);
share_job('CEN00C01', 'CEN00B01');
my $h = hold_mid_transfer('CEN00B01');
ok(crash_site($cen), "every process of the site is gone, and it is started again");
$h->kill_kill;
delivered_once('CEN00C01', 'CEN00B01', 'parent killed mid-transfer');

# --- the whole child site, in the middle of a transfer
new_package('CEN00B02', 12);
share_job('CEN00C02', 'CEN00B02');
$h = hold_mid_transfer('CEN00B02');
ok(crash_site($ch1), "every process of the site is gone, and it is started again");
$h->kill_kill;
delivered_once('CEN00C02', 'CEN00B02', 'child killed mid-transfer');

# --- the early extractor at CH1, while the package still arrives: CEN
# compresses it slowly (each 4 MB member waits), so that it streams the
# file while it builds it; once files are in the extractor's stage the
# transfer is held, so the stream cannot end and the extraction is in the
# middle when the extractor is killed
$cen->safe_psql('site', q{ALTER SYSTEM SET smsdist.test_compress_delay_ms = 300});
reload_settings($cen, 'site', { 'smsdist.test_compress_delay_ms' => '300ms' });
new_package('CEN00B03', 16);
share_job('CEN00C03', 'CEN00B03');
ok(eventually(sub { glob("$cb/drive/smsdist-despool/CEN00B03.1.*.early/tree/*/*") }, 90),
	'files appear in the stage of the early extraction at CH1');
$h = hold_mid_transfer('CEN00B03');
my $pid = $ch1->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist early extractor'});
ok($pid =~ /^\d+$/ && kill('KILL', $pid), 'the early extractor is killed in the middle of its extraction');
$h->kill_kill;
ok(eventually(sub { slurp_file($ch1->logfile) =~ /early extractor.*terminated by signal 9/ }, 30), 'CH1 saw it');
delivered_once('CEN00C03', 'CEN00B03', 'early extractor killed');
$cen->safe_psql('site', q{ALTER SYSTEM RESET smsdist.test_compress_delay_ms});
reload_settings($cen, 'site', { 'smsdist.test_compress_delay_ms' => '0' });

# --- the status push: 300 machines of CH1 succeed a job; CEN applies
# their rows while a session holds job_target_status
my $machines = 300;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT ('CH1' || lpad(i::text, 5, '0'))::smsdist.sms_id, ('CH-WKS-' || i)::smsdist.netbios_name, 'BRANCH', 'CH1', 'WINNT_X86'
  FROM generate_series(1, $machines) i;});
my $all = q{(SELECT array_agg(sms_id ORDER BY sms_id) FROM smsdist.system_resources WHERE site_code = 'CH1')};

# the job's targets at CEN, once each, all succeeded; the summary CH1 sent
sub targets_once
{
	my ($job, $what) = @_;
	ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = '$job'", 120),
		"$what: the job completes at CEN")
	  or diag($cen->safe_psql('site', "SELECT state, count(*) FROM smsdist.job_target_status WHERE job_id = '$job' GROUP BY 1"));
	is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.job_transitions WHERE job_id = '$job' AND to_state = 'completed'"),
		'1', "$what: once");
	is($cen->safe_psql('site', "SELECT count(*) || ' ' || count(DISTINCT sms_id) || ' ' || count(*) FILTER (WHERE state = 'succeeded')
	                             FROM smsdist.job_target_status WHERE job_id = '$job'"),
		"$machines $machines $machines", "$what: every target at CEN once, succeeded");
	ok(wait_until($cen, 'site', "SELECT count(*) = 1 AND sum(succeeded) = $machines FROM smsdist.site_status_reports
	                             WHERE kind = 'job' AND object_id = '$job' AND site_code = 'CH1'", 60),
		"$what: CH1's summary at CEN, once, counts every machine");
	# the child clears its flags once the parent's answer is back, after
	# the parent has committed what the checks above see
	ok(wait_until($ch1, 'site', "SELECT count(*) = 0 FROM smsdist.job_target_status WHERE job_id = '$job' AND report_pending"),
		"$what: nothing left to report at CH1");
}

sub push_held
{
	my ($job, $package) = @_;
	new_package($package, 1);
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, expires_at)
VALUES ('$job', 'run_command', '$package', 'Install', 'machines', $all, now() + interval '7 days')});
	ok(wait_until($ch1, 'site', "SELECT count(*) = $machines FROM smsdist.job_target_status WHERE job_id = '$job'", 120)
		&& wait_until($ch1, 'site', "SELECT count(*) = 0 FROM smsdist.job_target_status WHERE job_id = '$job' AND report_pending", 60),
		"$job: its $machines targets are at CH1 and CEN heard of them");
	my $h = hold($cen, 'LOCK TABLE smsdist.job_target_status IN SHARE MODE');
	# what the agents would report, as CH1's Status Manager records it
	$ch1->safe_psql('site', qq{
INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message, job_id, client_at, client_sequence)
SELECT 'CH1', 'Client Agent', t.sms_id, 'informational', 10008, 'Program completed successfully', '$job', clock_timestamp(), 1
  FROM smsdist.job_target_status t WHERE t.job_id = '$job'});
	ok(wait_until($cen, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'child_reporter' AND wait_event_type = 'Lock'
	                               AND query LIKE '%receive_target_report%'}, 60),
		"$job: CEN applies CH1's target rows, held");
	return $h;
}

# the child's Status Manager killed: CEN's backend applies the rows after
# it, CH1 has not cleared them and sends them again
$h = push_held('CEN00C04', 'CEN00B04');
$pid = $ch1->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist status_manager'});
ok(kill('KILL', $pid), "CH1's Status Manager is killed in the middle of the push");
$h->kill_kill;
ok(eventually(sub { slurp_file($ch1->logfile) =~ /status_manager.*terminated by signal 9/ }, 30), 'CH1 saw it');
targets_once('CEN00C04', 'the child\'s Status Manager killed');

# the parent's backend that applies them killed: CEN restarts, the rows
# were not applied, CH1 sends them again
$h = push_held('CEN00C05', 'CEN00B05');
$pid = $cen->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE usename = 'child_reporter' AND wait_event_type = 'Lock'});
ok(kill('KILL', $pid), "CEN's backend is killed while it applies CH1's rows");
$h->kill_kill;
ok(eventually(sub { (() = slurp_file($cen->logfile) =~ /terminated by signal 9/g) == 1 }, 30), 'CEN saw it');
targets_once('CEN00C05', 'the parent\'s backend killed');

$_->stop for ($cen, $ch1);
done_testing();
