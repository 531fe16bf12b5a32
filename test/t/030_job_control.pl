# Job control across the hierarchy: central CEN -> child CH1 -> grandchild
# GC1, each on its own server, each child with logon servers.  A job made at
# CEN is a job at CH1 and GC1 too (the copies the Senders make); when it is
# cancelled or expires at CEN, both copies follow and the PCM files of their
# machines drop it -- also when CH1 is down while CEN cancels, and CEN
# restarts before CH1 returns.  A failed job that is fixed and retried
# (failed -> pending) runs again from the start and completes: after a bad
# source at CEN, and after a failure at GC1, whose copies (failed at CH1 and
# GC1) are retried with it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my ($cen, $ch1, $gc1) = three_sites();
my %logon;
for my $pair ([$ch1, 'CH1'], [$gc1, 'GC1'])
{
	my ($n, $code) = @$pair;
	my $b = $n->basedir;
	$logon{$code} = ["$b/logon1", "$b/logon2"];
	make_path(@{ $logon{$code} });
	$n->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'logon_server', 'LOGON1', '$b/logon1'), ('$code', 'logon_server', 'LOGON2', '$b/logon2');});
}

my $src = $cen->basedir . '/source/editor';
make_path($src);
system("echo setup > '$src/setup.exe'") == 0 or die;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CH100001', 'CH-WKS-1', 'BRANCH', 'CH1', 'WINNT_X86'),
  ('GC100001', 'GC-WKS-1', 'FAR', 'GC1', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, max_run_minutes)
VALUES ('CEN00B01', 'Install', 'setup.exe /q', 15);});

my %node = (CEN => $cen, CH1 => $ch1, GC1 => $gc1);
my %machine = (CH1 => 'CH100001', GC1 => 'GC100001');

# the PCM file of the site's machine on both logon servers holds the job
# (want 1) or not (want 0); polls
sub pcm_holds
{
	my ($site, $job, $want) = @_;
	my @paths = map { "$_/pcins.box/$machine{$site}" } @{ $logon{$site} };
	for (1 .. 1200)
	{
		my $n = 0;
		for my $p (@paths)
		{
			next unless open(my $fh, '<', $p);
			my $text = do { local $/; <$fh> };
			close $fh;
			$n++ if defined $text && index($text, "[job $job]") >= 0;
		}
		my $listed = $node{$site}->safe_psql('site',
			"SELECT count(*) FROM smsdist.pcm_files WHERE '$job' = ANY (jobs)");
		return 1 if $want ? ($n == 2 && $listed == 1) : ($n == 0 && $listed == 0);
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

sub run_job
{
	my ($job) = @_;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, expires_at)
VALUES ('$job', 'run_command', 'CEN00B01', 'Install', 'machines', '{CH100001,GC100001}', now() + interval '7 days')});
	ok(pcm_holds('CH1', $job, 1), "$job: the PCM file of CH1's machine holds the job");
	ok(pcm_holds('GC1', $job, 1), "$job: so does the one of GC1's machine");
}

sub copy_state
{
	my ($site, $job) = @_;
	return $node{$site}->safe_psql('site', "SELECT state FROM smsdist.jobs WHERE job_id = '$job'");
}

sub wait_copies
{
	my ($job, $state, $timeout) = @_;
	for my $site ('CH1', 'GC1')
	{
		ok(wait_until($node{$site}, 'site',
				"SELECT state = '$state' FROM smsdist.jobs WHERE job_id = '$job'", $timeout // 60),
			"$job: the copy at $site is $state")
		  or diag("$site: " . copy_state($site, $job));
	}
}

# --- cancelled at the central site
run_job('CEN00C01');
is(copy_state('CH1', 'CEN00C01') . ' ' . copy_state('GC1', 'CEN00C01'), 'active active',
	'CEN00C01: the copies at CH1 and GC1 are active');
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'wrong package' WHERE job_id = 'CEN00C01'");
wait_copies('CEN00C01', 'cancelled');
ok(pcm_holds('CH1', 'CEN00C01', 0), "CEN00C01: CH1's machine's PCM file no longer holds it");
ok(pcm_holds('GC1', 'CEN00C01', 0), "CEN00C01: nor does GC1's");
like($gc1->safe_psql('site', "SELECT state_reason FROM smsdist.jobs WHERE job_id = 'CEN00C01'"),
	qr/^cancelled at parent site CH1 \(cancelled at site CH1 by .*cancelled at parent site CEN \(cancelled at site CEN by .*: wrong package\)\)$/,
	"GC1's copy says where the cancel came from, and the operator's reason");
ok(wait_until($cen, 'site', "SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes)", 30)
	  && wait_until($ch1, 'site', "SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes)", 30),
	'nothing is left to pass on at CEN or CH1');
is($cen->safe_psql('site', "SELECT message_id || ': ' || message FROM smsdist.status_messages WHERE message_id = 3320 AND job_id = 'CEN00C01'"),
	'3320: The cancellation of job CEN00C01 was passed to child site CH1; its copy there: cancelled.',
	'CEN says it passed the cancellation on (3320)');
is($gc1->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3322 AND job_id = 'CEN00C01'"),
	'1', 'GC1 says its copy was cancelled by its parent (3322)');
is($cen->safe_psql('site', "SELECT string_agg(DISTINCT state::text, ',') FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND state NOT IN ('done', 'cancelled')"),
	'', "CEN's rows of the job are done or cancelled, none open");

# --- cancelled while the child is down; the central site restarts meanwhile
run_job('CEN00C02');
$ch1->stop;
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'CEN00C02'");
ok(wait_until($cen, 'site',
		"SELECT attempts >= 1 AND last_error IS NOT NULL FROM smsdist.job_control_pushes WHERE job_id = 'CEN00C02' AND hop = 'CH1'", 60),
	'CEN00C02: the cancel cannot reach CH1 while it is down; CEN keeps it, with the reason');
ok(wait_until($cen, 'site', "SELECT EXISTS (SELECT 1 FROM smsdist.status_messages WHERE message_id = 3321 AND job_id = 'CEN00C02')", 30),
	'CEN00C02: CEN says so (3321)');
$cen->restart;
$ch1->start;
wait_copies('CEN00C02', 'cancelled', 120);
ok(pcm_holds('CH1', 'CEN00C02', 0), "CEN00C02: CH1's machine's PCM file drops it after CH1 returns");
ok(pcm_holds('GC1', 'CEN00C02', 0), "CEN00C02: GC1's too");
ok(wait_until($cen, 'site', "SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes)", 30),
	'CEN00C02: the push is gone once CH1 took it');

# --- expired by an operator at the central site
run_job('CEN00C03');
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'expired' WHERE job_id = 'CEN00C03'");
wait_copies('CEN00C03', 'expired');
ok(pcm_holds('CH1', 'CEN00C03', 0), "CEN00C03: CH1's machine's PCM file no longer holds it");
ok(pcm_holds('GC1', 'CEN00C03', 0), "CEN00C03: nor does GC1's");

# --- expired by the Scheduler at the central site: the copies' own expiry
# is a week away
run_job('CEN00C06');
$cen->safe_psql('site', "UPDATE smsdist.jobs SET expires_at = clock_timestamp() + interval '1 second' WHERE job_id = 'CEN00C06'");
ok(wait_until($cen, 'site', "SELECT state = 'expired' FROM smsdist.jobs WHERE job_id = 'CEN00C06'", 30),
	'CEN00C06: the Scheduler at CEN expires the job');
wait_copies('CEN00C06', 'expired');
ok(pcm_holds('CH1', 'CEN00C06', 0), "CEN00C06: CH1's machine's PCM file no longer holds it");
ok(pcm_holds('GC1', 'CEN00C06', 0), "CEN00C06: nor does GC1's");
like($ch1->safe_psql('site', "SELECT state_reason FROM smsdist.jobs WHERE job_id = 'CEN00C06'"),
	qr/^expired at parent site CEN \(expired at site CEN by .*: expiry time .* passed\)$/,
	"CH1's copy says why");

# --- a parent may only change its own jobs there: a job made at CH1 itself
# cannot be cancelled through CH1's parent login
make_path($ch1->basedir . '/own');
$ch1->safe_psql('site', q{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CH100B01', 'Own', '} . $ch1->basedir . q{/own');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, start_after)
VALUES ('CH100C01', 'share_package', 'CH100B01', 'sites', '{CH1}', now() + interval '1 day');});
my ($rc, $out, $err) = $ch1->psql('site', "SELECT smsdist.receive_job_state('CH100C01', 'cancelled', 'x')",
	extra_params => ['-U', 'parent_sender']);
like($err, qr/job CH100C01 was made at site CH1: site CEN may not change it/,
	"CEN's login at CH1 cannot cancel CH1's own job");
($rc, $out, $err) = $ch1->psql('site', "SELECT smsdist.receive_job_state('CEN00C01', 'completed', 'x')",
	extra_params => ['-U', 'parent_sender']);
like($err, qr/invalid job state "completed"/, 'a parent sets only cancelled, expired or pending');
is($ch1->safe_psql('site', "SELECT smsdist.receive_job_state('CEN0FFFF', 'cancelled', 'x')", extra_params => ['-U', 'parent_sender']),
	'not here', 'a job the child never got: "not here"');

# --- retry after a bad source: a FIFO in the package source fails the job
my $bad = $cen->basedir . '/source/bad';
make_path($bad);
system("echo data > '$bad/data.txt'") == 0 or die;
system('mkfifo', "$bad/pipe") == 0 or die 'mkfifo';
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B02', 'Bad', '$bad');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00C04', 'share_package', 'CEN00B02', 'sites', '{CH1}');});
ok(wait_until($cen, 'site', "SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN00C04'", 60),
	'CEN00C04: a source with a FIFO fails the job');
like($cen->safe_psql('site', "SELECT state_reason FROM smsdist.jobs WHERE job_id = 'CEN00C04'"),
	qr/FIFO/, 'CEN00C04: the reason names the FIFO');
unlink "$bad/pipe" or die;
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'CEN00C04'");
ok(wait_until($cen, 'site',
		"SELECT state IN ('completed', 'failed') AND activated_at IS NOT NULL FROM smsdist.jobs WHERE job_id = 'CEN00C04'", 90),
	'CEN00C04: the retried job ran');
is($cen->safe_psql('site', "SELECT state || ': ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = 'CEN00C04'"),
	'completed: distributed to every target site', 'CEN00C04: the fixed, retried job completes (no old failure fails it again)');
is($cen->safe_psql('site', "SELECT string_agg(from_state || '>' || to_state, ' ' ORDER BY transition_id) FROM smsdist.job_transitions WHERE job_id = 'CEN00C04' AND from_state IS NOT NULL"),
	'pending>active active>failed failed>pending pending>active active>completed', 'CEN00C04: its transitions');
is($ch1->safe_psql('site', "SELECT state FROM smsdist.jobs WHERE job_id = 'CEN00C04'"), 'completed',
	'CEN00C04: the package is at CH1');

# --- retry after a failure at the grandchild: the copies failed too, and are
# retried with the job
$gc1->safe_psql('site', "UPDATE smsdist.site_systems SET enabled = false WHERE role = 'distribution_point'");
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00C05', 'share_package', 'CEN00B01', 'sites', '{CH1,GC1}');});
ok(wait_until($cen, 'site', "SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN00C05'", 90),
	'CEN00C05: the job fails at CEN: GC1 has no distribution point');
wait_copies('CEN00C05', 'failed', 30);
$gc1->safe_psql('site', "UPDATE smsdist.site_systems SET enabled = true WHERE role = 'distribution_point'");
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'pending' WHERE job_id = 'CEN00C05'");
ok(wait_until($cen, 'site',
		"SELECT state IN ('completed', 'failed') AND activated_at IS NOT NULL FROM smsdist.jobs WHERE job_id = 'CEN00C05'", 120),
	'CEN00C05: the retried job ran');
is($cen->safe_psql('site', "SELECT state || ': ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = 'CEN00C05'"),
	'completed: distributed to every target site', 'CEN00C05: it completes');
wait_copies('CEN00C05', 'completed', 30);
like($gc1->safe_psql('site', "SELECT string_agg(from_state || '>' || to_state, ' ' ORDER BY transition_id) FROM smsdist.job_transitions WHERE job_id = 'CEN00C05' AND from_state IS NOT NULL"),
	qr/active>failed failed>pending pending>active active>completed$/, "CEN00C05: GC1's copy was retried");

$_->stop for ($cen, $ch1, $gc1);
done_testing();
