# Extracting a package while it is received (early_extract.c): a package
# that CEN sends to CH1 while compressing it arrives over the whole build,
# and CH1's Despooler starts an early extractor that extracts the part file
# as it grows; when the job arrives the Despooler publishes that tree
# instead of extracting the file again.  Compression is slowed down
# (smsdist.test_compress_delay_ms) so that the overlap can be seen.
#
# - the early extractor runs, and files appear in its stage, while CEN is
#   still compressing; the published trees are the source; nothing is left
#   in the despool directory; the distribute row says how it was extracted;
# - a stream that starts again (CEN's builder stopped) stops the early
#   extraction of the old stream, and one of the new stream is used;
# - a Despooler stopped in the middle: its early extractor stops, and the
#   package is still published whole;
# - smsdist.extract_while_receiving = off: no early extractor.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my ($cen, $ch1, $gc1, $dps_ref) = three_sites();
my %dps = %$dps_ref;
my $drive = $ch1->basedir . '/drive';
$cen->append_conf('postgresql.conf', "smsdist.test_compress_delay_ms = 500\n");
# (a builder has the postmaster's settings when it starts)
reload_settings($cen, 'site', { 'smsdist.test_compress_delay_ms' => '500ms' });


sub identical
{
	my ($src, $id, $what) = @_;
	for my $dp (@{ $dps{CH1} })
	{
		ok(system("diff -r '$src' '$dp/SMS_PKGC/$id' >/dev/null 2>&1") == 0, "$what: CH1 $dp is identical to the source");
	}
}

sub rows
{
	my ($node, $job) = @_;
	return $node->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || coalesce(detail, '') || ' ' || coalesce(last_error, ''), E'\\n') FROM smsdist.job_site_status WHERE job_id = '$job'");
}

sub early_extractors
{
	my ($package) = @_;
	return $ch1->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'smsdist early extractor'"
		  . ($package ? " AND query = 'extracting package $package version 1 while it is received'" : ''));
}

sub send_job
{
	my ($package, $job, $src) = @_;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$package', '$package', '$src');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('$job', 'share_package', '$package', 'sites', '{CH1}')});
}

# files extracted into the stage of an early extraction of $package at CH1
# while CEN is still compressing it
sub stage_grows_while_building
{
	my ($package) = @_;
	for (1 .. 600)
	{
		my @files = glob("$drive/smsdist-despool/$package.1.*.early/tree/*/*");
		my $state = $cen->safe_psql('site', "SELECT state FROM smsdist.package_builds WHERE package_id = '$package'");
		return 1 if @files && $state eq 'building';
		usleep(100_000);
	}
	return 0;
}

# the server log has $re after byte $offset, within $secs seconds
sub log_has
{
	my ($node, $re, $secs, $offset) = @_;
	return eventually(sub { slurp_file($node->logfile, $offset) =~ $re }, $secs);
}

sub despool_dir_empty
{
	my @left;
	return 1 if eventually(sub { @left = glob("$drive/smsdist-despool/*"); !@left });
	diag("left: @left");
	return 0;
}

# --- a package extracted while it is received
my $src1 = make_source($cen, 'app', 48);
send_job('CEN00001', 'CEN00101', $src1);
ok(wait_until($ch1, 'postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist early extractor' AND query = 'extracting package CEN00001 version 1 while it is received'", 60),
	'CH1 starts an early extractor when the stream begins');
ok(stage_grows_while_building('CEN00001'), 'files appear in its stage while CEN is still compressing');
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 120),
	'the job completes') or diag(rows($cen, 'CEN00101'), rows($ch1, 'CEN00101'));
is($ch1->safe_psql('site', "SELECT state || ': ' || detail FROM smsdist.job_site_status WHERE job_id = 'CEN00101' AND phase = 'distribute'"),
	'done: published on 2 distribution points (extracted while it was received)',
	'the Despooler published the early extraction, and says so');
identical($src1, 'CEN00001', 'extracted while received');
is($ch1->safe_psql('site', "SELECT manifest IS NOT NULL, file_count FROM smsdist.package_builds WHERE package_id = 'CEN00001'"),
	't|8', 'CH1 keeps the manifest it was extracted with, of 8 files (a base for deltas)');
ok(wait_until($ch1, 'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'smsdist early extractor'", 10),
	'no early extractor is left');
ok(despool_dir_empty(), 'nothing is left in the despool directory');

# --- the stream starts again: the early extraction of the old one stops,
# one of the new one is used
my $src2 = make_source($cen, 'suite', 64);
send_job('CEN00002', 'CEN00102', $src2);
ok(stage_grows_while_building('CEN00002'), 'the second package is extracted at CH1 while it is compressed');
my $first_stream = $cen->safe_psql('site', "SELECT stream_id FROM smsdist.package_builds WHERE package_id = 'CEN00002'");
my $log_offset = -s $ch1->logfile;
is($cen->safe_psql('postgres', "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'smsdist package builder'"),
	'1', 'its builder at CEN is stopped');
ok(log_has($ch1, qr/early extraction of package CEN00002 version 1 stopped: the part file was (cut back|replaced): the transfer started again/, 60, $log_offset),
	'the early extraction of the old stream stops, and says why');
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 120),
	'the job completes with another builder') or diag(rows($cen, 'CEN00102'), rows($ch1, 'CEN00102'));
isnt($cen->safe_psql('site', "SELECT stream_id FROM smsdist.package_builds WHERE package_id = 'CEN00002'"),
	$first_stream, 'CEN sent another stream');
is($ch1->safe_psql('site', "SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN00102' AND phase = 'distribute'"),
	'published on 2 distribution points (extracted while it was received)',
	'the new stream was extracted while it was received');
identical($src2, 'CEN00002', 'after the stream started again');
ok(despool_dir_empty(), 'nothing of either stream is left in the despool directory');

# --- the Despooler stops in the middle: so does its early extractor
my $src3 = make_source($cen, 'tools', 48);
send_job('CEN00003', 'CEN00103', $src3);
ok(stage_grows_while_building('CEN00003'), 'a third package is extracted at CH1 while it is compressed');
$log_offset = -s $ch1->logfile;
is($ch1->safe_psql('postgres', "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'smsdist despooler'"),
	'1', 'the Despooler at CH1 is stopped');
ok(log_has($ch1, qr/early extraction of package CEN00003 version 1 stopped: (the Despooler has gone|could not .*: No such file or directory)/, 30, $log_offset),
	'its early extractor stops too');
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00103'", 120),
	'the job completes') or diag(rows($cen, 'CEN00103'), rows($ch1, 'CEN00103'));
identical($src3, 'CEN00003', 'after the Despooler was stopped');
ok(wait_until($ch1, 'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'smsdist early extractor'", 10),
	'no early extractor is left');
ok(despool_dir_empty(), 'nothing is left in the despool directory');

# --- smsdist.extract_while_receiving = off
$ch1->append_conf('postgresql.conf', "smsdist.extract_while_receiving = off\n");
reload_settings($ch1, 'site', { 'smsdist.extract_while_receiving' => 'off' }, 'despooler');
my $src4 = make_source($cen, 'docs', 32);
send_job('CEN00004', 'CEN00104', $src4);
ok(wait_until($ch1, 'site', "SELECT EXISTS (SELECT 1 FROM smsdist.package_transfers WHERE package_id = 'CEN00004' AND bytes_received > 0)
	  OR EXISTS (SELECT 1 FROM smsdist.jobs WHERE job_id = 'CEN00104')", 60),
	'with extract_while_receiving off, the stream arrives at CH1');
is(early_extractors(), '0', 'and no early extractor runs');
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00104'", 120),
	'the job completes') or diag(rows($cen, 'CEN00104'), rows($ch1, 'CEN00104'));
is($ch1->safe_psql('site', "SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN00104' AND phase = 'distribute'"),
	'published on 2 distribution points', 'the Despooler extracted the package file itself');
ok(slurp_file($ch1->logfile) !~ /early extraction of package CEN00004/, 'the server log shows no early extraction of it');
like(slurp_file($ch1->logfile), qr/early extraction of package CEN00001 version 1 started into "[^"]*CEN00001\.1\.[0-9a-f]{16}\.early"/,
	'(where it shows the early extractions that ran)');
identical($src4, 'CEN00004', 'extracted after it was received');

done_testing();
