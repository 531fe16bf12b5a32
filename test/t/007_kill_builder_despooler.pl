# kill -9 in the middle of the work: of a package builder while it
# compresses, and of the Despooler while it extracts or publishes.  The
# server restarts, the Scheduler finds the build without a builder and starts
# another, the Despooler takes its item again, and the job completes with the
# published tree identical to the source and nothing left behind.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use Time::HiRes qw(usleep);
use POSIX ();
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

# (compression slowed down: random data is stored, not searched, so the
# build would otherwise be over before the kill)
my $node = site_node('kill', conf => "restart_after_crash = on\nmax_worker_processes = 16\nsmsdist.test_compress_delay_ms = 100\n");
my $base = $node->basedir;
my $src = "$base/source/big";
my ($dp1, $dp2, $drive) = map { "$base/$_" } qw(dp1 dp2 drive);
make_path($src, $dp1, $dp2, $drive);
# enough data that compression and publishing take a noticeable time
for my $i (1 .. 12)
{
	system("head -c 8000000 /dev/urandom > '$src/part$i.bin'") == 0 or die;
}
system("yes 'a line of text for the package' | head -c 30000000 > '$src/log.txt'") == 0 or die;

$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$dp1'), ('CEN', 'distribution_point', 'DP2', '$dp2'),
  ('CEN', 'site_server_drive', 'D1', '$drive');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Big', '$src');
});

sub pid_of
{
	my ($type) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = '$type'");
}

# --- kill -9 the package builder while it compresses
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CEN}')});
my $builder = 0;
for (1 .. 500)
{
	$builder = pid_of('smsdist package builder');
	last if $builder;
	usleep(10_000);
}
ok($builder > 0, 'a package builder is running');
usleep(300_000);
kill 'KILL', $builder;
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 90),
	'the job completes after the builder was killed')
  or diag($node->safe_psql('site', "SELECT state || ' ' || coalesce(state_reason, '') FROM smsdist.jobs"));
cmp_ok($node->safe_psql('site', "SELECT attempts FROM smsdist.package_builds WHERE package_id = 'CEN00001'"),
	'>=', 2, 'the build was started again');
ok(system("diff -r '$src' '$dp1/SMS_PKGC/CEN00001' >/dev/null") == 0
	  && system("diff -r '$src' '$dp2/SMS_PKGC/CEN00001' >/dev/null") == 0,
	'both distribution points hold the source exactly');
my $store = $node->data_dir . '/pg_smsdist/packages';
my @stray = grep { !/CEN00001\.1\.tar\.gz$/ } glob("$store/*");
is(scalar @stray, 0, 'nothing but the package file is left in the package store') or diag("@stray");

# --- kill -9 the Despooler while it extracts or publishes a new version
system("head -c 8000000 /dev/urandom > '$src/part13.bin'") == 0 or die;
unlink("$src/part1.bin");
$node->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00102', 'share_package', 'CEN00001', 'sites', '{CEN}')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.job_site_status
	WHERE job_id = 'CEN00102' AND state = 'running'}, 60), 'the Despooler is at work on version 2');
my $despooler = pid_of('smsdist despooler');
kill 'KILL', $despooler;
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 90),
	'the job completes after the Despooler was killed')
  or diag($node->safe_psql('site', "SELECT state || ' ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = 'CEN00102'"));
ok(system("diff -r '$src' '$dp1/SMS_PKGC/CEN00001' >/dev/null") == 0
	  && system("diff -r '$src' '$dp2/SMS_PKGC/CEN00001' >/dev/null") == 0,
	'both distribution points hold version 2 exactly');
is(scalar(() = glob("$dp1/SMS_PKGC/.CEN00001* $dp2/SMS_PKGC/.CEN00001*")), 0,
	'no temporary copy left on the distribution points');
is(scalar(() = glob("$drive/smsdist-despool/*")), 0, 'no temporary directory left on the drive');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.package_locations WHERE package_id = 'CEN00001' AND source_version = 2"),
	'2', 'both locations recorded once, for version 2');

# --- what a killed builder left does not fail the next build of the version,
# even while that builder's compressors still write into it (here: a process
# that keeps creating files in a parts directory of a builder that is gone)
my $stuck = "$store/CEN00001.3.parts.99999";
my $stop = "$base/stop-writing";
my $writer = fork();
die "fork: $!" unless defined $writer;
if ($writer == 0)
{
	my $n = 0;
	until (-e $stop)
	{
		make_path($stuck);
		if (open(my $fh, '>', "$stuck/chunk." . $n++)) { close $fh; }
		usleep(200);
	}
	POSIX::_exit(0);	# (not exit: that would run the test's END blocks here)
}
ok(eventually(sub { -d $stuck }, 30), 'something keeps writing into what a dead builder left');
$node->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 3 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00103', 'share_package', 'CEN00001', 'sites', '{CEN}')});
ok(wait_until($node, 'site', "SELECT state IN ('completed', 'failed') FROM smsdist.jobs WHERE job_id = 'CEN00103'", 90)
	  && $node->safe_psql('site', "SELECT state FROM smsdist.jobs WHERE job_id = 'CEN00103'") eq 'completed',
	'the build completes all the same')
  or diag($node->safe_psql('site', "SELECT state || ' ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = 'CEN00103'"));
system("touch '$stop'");
waitpid($writer, 0);

$node->stop;
done_testing();
