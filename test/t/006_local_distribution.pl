# The Send phase's compression and the Distribute phase at one site: a
# share-package job compresses the package (parallel gzip members that
# `tar -tzf` reads), the Despooler extracts it on the site-server drive with
# the most free space and publishes it on both distribution points; a new
# source version replaces it whole; Remove Package deletes it; bad sources
# fail the job with the reason; a full distribution point holds the item
# (the old version stays published) until it has room, then it completes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $node = site_node('distribute', conf => "smsdist.compression_workers = 2\nmax_worker_processes = 16\nsmsdist.poll_interval = '2s'\n");
my $base = $node->basedir;
my $src = "$base/source/office";
my ($dp1, $dp2, $drive1, $drive2) = map { "$base/$_" } qw(dp1 dp2 drive1 drive2);
make_path($_) for ($dp1, $dp2, $drive1, $drive2);

# a source tree: nested directories, an empty one, spaces, binary data, and
# a file large enough for several 4 MB gzip members
make_path("$src/bin/x86", "$src/docs/en us", "$src/empty");
sub write_file { my ($p, $c) = @_; open my $fh, '>', $p or die "$p: $!"; binmode $fh; print $fh $c; close $fh; }
write_file("$src/setup.exe", "MZ" . ("setup " x 1000));
write_file("$src/docs/en us/read me.txt", "Read me\n" x 100);
write_file("$src/bin/x86/tool.dll", join('', map { chr(int(rand(256))) } 1 .. 300_000));
system("head -c 9000000 /dev/urandom > '$src/bin/data.bin'") == 0 or die;
system("yes 'compressible line of text' | head -c 6000000 > '$src/bin/log.txt'") == 0 or die;
chmod 0755, "$src/setup.exe";

$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$dp1'), ('CEN', 'distribution_point', 'DP2', '$dp2'),
  ('CEN', 'site_server_drive', 'D1', '$drive1'), ('CEN', 'site_server_drive', 'D2', '$drive2');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Office', '$src');
});

sub share_job
{
	my ($id, $pkg) = @_;
	$pkg //= 'CEN00001';
	$node->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('$id', 'share_package', '$pkg', 'sites', '{CEN}')});
}
sub job_state { $node->safe_psql('site', "SELECT state || ': ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = '$_[0]'") }
sub wait_job
{
	my ($id, $state, $timeout) = @_;
	return wait_until($node, 'site', "SELECT state = '$state' FROM smsdist.jobs WHERE job_id = '$id'", $timeout // 60);
}
sub same_tree { my ($a, $b) = @_; return system("diff -r '$a' '$b' >/dev/null 2>&1") == 0; }

# --- version 1: compress, extract, publish on both distribution points
share_job('CEN00101');
ok(wait_job('CEN00101', 'completed'), 'share job completed') or diag(job_state('CEN00101'));
my ($file, $sha, $files) = split /\|/, $node->safe_psql('site',
	"SELECT file_path, sha256, file_count FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1 AND state = 'ready'");
ok(-f $file, 'package file exists in the package store');
is((split / /, `sha256sum '$file'`)[0], $sha, 'recorded SHA-256 is the file\'s');
my $listing = `tar -tzf '$file' 2>&1`;
like($listing, qr{^bin/data\.bin$}m, 'tar -tzf lists the package (several gzip members)');
like($listing, qr{^\.smsdist-manifest$}m, 'with its manifest');
like($listing, qr{^empty/$}m, 'and its empty directory');
for my $dp ($dp1, $dp2)
{
	ok(same_tree($src, "$dp/SMS_PKGC/CEN00001"), "published tree on $dp is identical to the source");
}
is(sprintf('%o', (stat("$dp1/SMS_PKGC/CEN00001/setup.exe"))[2] & 07777), '755', 'modes are kept');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.package_locations WHERE package_id = 'CEN00001' AND source_version = 1"),
	'2', 'two locations recorded');
is($node->safe_psql('site', "SELECT string_agg(message_id::text, ',' ORDER BY status_id) FROM smsdist.status_messages WHERE package_id = 'CEN00001' AND message_id >= 3100"),
	'3100,3200', 'status messages: compressed, published');
my @left = glob("$drive1/smsdist-despool/* $drive2/smsdist-despool/*");
is(scalar @left, 0, 'no temporary directory left on the site-server drives');
# near-random data (data.bin and tool.dll, 9.3 MB) is stored, not searched
# (smsdist.store_incompressible); the text is compressed
sub stored_bytes
{
	my ($pkg) = @_;
	my ($n) = $node->safe_psql('site', "SELECT message FROM smsdist.status_messages WHERE package_id = '$pkg' AND message_id = 3100")
	  =~ /; (\d+) bytes stored as they were, already compressed\)/;
	return $n;
}
my $stored1 = stored_bytes('CEN00001');
ok(defined $stored1 && $stored1 >= 9_000_000 && $stored1 <= 9_500_000,
	'the status message says the near-random 9.3 MB were stored as they were (' . ($stored1 // 'no figure') . ')');
my $size1 = -s $file;
ok($size1 > 9_300_000 && $size1 < 9_500_000, "and the text compressed: package file of $size1 bytes for 15.3 MB");

# --- a second job for the same version reuses the package file
share_job('CEN00102');
ok(wait_job('CEN00102', 'completed'), 'second share job completed');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.package_builds WHERE package_id = 'CEN00001'"),
	'1', 'the version was compressed once');

# --- version 2: changed, added and deleted files; the published tree follows whole
write_file("$src/setup.exe", "MZ version 2");
write_file("$src/docs/new.txt", "new file\n");
unlink("$src/bin/log.txt");
$node->safe_psql('site', "UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00001'");
share_job('CEN00103');
ok(wait_job('CEN00103', 'completed'), 'version 2 distributed');
for my $dp ($dp1, $dp2)
{
	ok(same_tree($src, "$dp/SMS_PKGC/CEN00001"), "version 2 on $dp is identical to the source");
}
is($node->safe_psql('site', "SELECT string_agg(DISTINCT source_version::text, ',') FROM smsdist.package_locations WHERE package_id = 'CEN00001'"),
	'2', 'locations say version 2');

# --- a late job for the older version does not take version 2 off the
# distribution points
$node->safe_psql('site', q{
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Setup', 'setup.exe', NULL, 10);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00001', 'WKS1', 'CORP', 'CEN', 'WIN95');
UPDATE smsdist.package_locations SET source_version = 3 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN00110', 'run_command', 'CEN00001', 'Setup', 'machines', '{CEN00001}');});
ok(wait_until($node, 'site', "SELECT state = 'done' FROM smsdist.job_site_status WHERE job_id = 'CEN00110'", 30),
	'a job for an older version than the one published finishes its distribution');
is($node->safe_psql('site', "SELECT string_agg(DISTINCT source_version::text, ',') FROM smsdist.package_locations WHERE package_id = 'CEN00001'"),
	'3', 'without replacing the newer version');
$node->safe_psql('site', "UPDATE smsdist.package_locations SET source_version = 2 WHERE package_id = 'CEN00001'");

# --- a corrupted package file (one flipped byte) is detected before it is
# used, compressed again, and the distribution completes identical
{
	my ($file2) = $node->safe_psql('site',
		"SELECT file_path FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 2");
	open my $fh, '+<', $file2 or die "$file2: $!";
	binmode $fh;
	seek($fh, 5000, 0);
	read($fh, my $byte, 1);
	seek($fh, 5000, 0);
	print $fh chr(ord($byte) ^ 0xff);
	close $fh;
	# version 2 is published intact, and a job for it would not read the
	# package file at all: a changed file on a distribution point makes
	# the Despooler publish it again, from the package file
	write_file("$dp1/SMS_PKGC/CEN00001/docs/new.txt", "changed\n");
	share_job('CEN00105');
	ok(wait_job('CEN00105', 'completed'), 'the job with a corrupt package file still completes') or diag(job_state('CEN00105'));
	like($node->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN00105' AND message_id = 3202"),
		qr/is corrupt: its SHA-256 is [0-9a-f]{64}, not [0-9a-f]{64}; compressing it again/, 'the corruption is reported');
	is($node->safe_psql('site', "SELECT attempts > 1 FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 2"),
		't', 'and the package was compressed again');
	is((split / /, `sha256sum '$file2'`)[0],
		$node->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 2"),
		'the new package file matches its recorded SHA-256');
	for my $dp ($dp1, $dp2)
	{
		ok(same_tree($src, "$dp/SMS_PKGC/CEN00001"), "after the repair, $dp holds the source exactly");
	}
}

# --- Remove Package
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00104', 'remove_package', 'CEN00001', 'sites', '{CEN}')});
ok(wait_job('CEN00104', 'completed'), 'remove job completed');
ok(!-e "$dp1/SMS_PKGC/CEN00001" && !-e "$dp2/SMS_PKGC/CEN00001", 'package removed from both distribution points');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.package_locations WHERE package_id = 'CEN00001'"),
	'0', 'and its locations');

# --- bad sources fail the job with the reason
sub bad_source
{
	my ($pkg, $dir, $job, $re, $what) = @_;
	$node->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$pkg', '$what', '$dir')");
	share_job($job, $pkg);
	ok(wait_job($job, 'failed'), "$what: job failed");
	like(job_state($job), $re, "$what: with the reason");
	like($node->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE package_id = '$pkg' AND severity = 'error'"),
		$re, "$what: in an error status message");
}
bad_source('CEN00002', "$base/source/missing", 'CEN00201', qr/could not open|does not exist|No such file/, 'missing source');
make_path("$base/source/linked");
write_file("$base/source/linked/a.txt", "a");
symlink('/etc/passwd', "$base/source/linked/passwd") or die;
bad_source('CEN00003', "$base/source/linked", 'CEN00301', qr/symbolic link.*passwd/, 'source with a symbolic link');
make_path("$base/source/fifo");
system("mkfifo '$base/source/fifo/pipe'") == 0 or die;
bad_source('CEN00004', "$base/source/fifo", 'CEN00401', qr/pipe/, 'source with a FIFO');

# --- a full distribution point: the item waits, saying which and how much
# room there is, the old version stays published, and once room is made the
# job completes by itself
SKIP:
{
	my $small = $ENV{SMSDIST_TEST_SMALLFS};
	skip 'no small file system (run the tests as root to get one)', 11 unless $small && -w $small;
	my $smalldp = "$small/dp";
	make_path($smalldp);
	make_path("$base/source/small");
	write_file("$base/source/small/one.txt", "version one\n");
	$node->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CEN', 'distribution_point', 'SMALL', '$smalldp');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00005', 'Small', '$base/source/small');});
	share_job('CEN00501', 'CEN00005');
	ok(wait_job('CEN00501', 'completed'), 'small package published on the small distribution point');
	# (fails once the file system is full: that is the point)
	system("head -c 40000000 /dev/zero > '$small/filler006' 2>/dev/null");
	system("head -c 3000000 /dev/urandom > '$base/source/small/big.bin'") == 0 or die;
	$node->safe_psql('site', "UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00005'");
	share_job('CEN00502', 'CEN00005');
	ok(wait_until($node, 'site', "SELECT state = 'retrying' AND next_attempt_at IS NOT NULL FROM smsdist.job_site_status WHERE job_id = 'CEN00502' AND phase = 'distribute'", 60),
		'a version that does not fit waits, retrying') or diag(job_state('CEN00502'));
	# (read between attempts: during one the row is 'running', its error cleared)
	my $full = qr/^the distribution point "\Q$smalldp\E\/SMS_PKGC" is full \(\d+ bytes free, 30000\d\d bytes needed\): .*No space left on device/;
	my $error = '';
	ok(eventually(sub { $error = $node->safe_psql('site', "SELECT last_error FROM smsdist.job_site_status WHERE job_id = 'CEN00502' AND state = 'retrying'"); $error =~ $full }, 60),
		'saying which distribution point is full, what is free and what is needed') or diag($error);
	like(job_state('CEN00502'), qr/^active: /, 'the job has not failed');
	my $why = '';
	ok(eventually(sub { $why = $node->safe_psql('site', "SELECT reason || ' | ' || (next_attempt_at IS NOT NULL) FROM smsdist.explain('CEN00502')");
			$why =~ /waiting for room since .*is full .*; next attempt at \S+ \S+ \| true$/ }, 60),
		'explain() says why, and when the next attempt is') or diag($why);
	like($node->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN00502' AND message_id = 3211"),
		qr/waits for room: the distribution point .* is full/, 'status message 3211 says it');
	ok(same_tree("$base/source/small/one.txt", "$smalldp/SMS_PKGC/CEN00005/one.txt")
		  && !-e "$smalldp/SMS_PKGC/CEN00005/big.bin", 'the old version stays published, whole');
	is(scalar(() = glob("$smalldp/SMS_PKGC/.CEN00005*")), 0, 'no temporary copy left');
	my $attempts = $node->safe_psql('site', "SELECT attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00502'");
	ok(wait_until($node, 'site', "SELECT attempts > $attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00502'", 30),
		'it is tried again by itself');
	unlink("$small/filler006");
	ok(wait_job('CEN00502', 'completed'), 'once there is room, the job completes by itself') or diag(job_state('CEN00502'));
	ok(same_tree("$base/source/small", "$smalldp/SMS_PKGC/CEN00005"), 'the new version is published, identical to the source');
	is(scalar(() = glob("$smalldp/SMS_PKGC/.CEN00005*")), 0, 'no temporary copy left');
	$node->safe_psql('site', "DELETE FROM smsdist.site_systems WHERE name = 'SMALL'");
	system("rm -rf '$smalldp'");
}

# --- the package store does not grow without end: an older version no job
# needs loses its file (the row and manifest stay), and a deleted package
# loses its files
my $store = $node->data_dir . '/pg_smsdist/packages';
ok(wait_until($node, 'site', "SELECT state = 'purged' FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1", 10),
	'version 1 of CEN00001 is purged once no job needs it');
# (the Scheduler removes the file after it commits the row)
ok(eventually(sub { !-e "$store/CEN00001.1.tar.gz" }, 30), 'its package file is gone');
ok(-e "$store/CEN00001.2.tar.gz", 'the current version stays');
is($node->safe_psql('site', "SELECT manifest IS NOT NULL FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1"),
	't', 'the purged version keeps its manifest');
# (files younger than 5 minutes are left alone: one may have just been
# renamed into place by a transaction that has not committed yet)
utime(time() - 3600, time() - 3600, "$store/CEN00001.2.tar.gz");
$node->safe_psql('site', q{
DELETE FROM smsdist.jobs WHERE package_id = 'CEN00001';
DELETE FROM smsdist.packages WHERE package_id = 'CEN00001';
SELECT smsdist.wake('scheduler');});
ok(eventually(sub { !-e "$store/CEN00001.2.tar.gz" }), 'the file of a deleted package is removed');

# --- smsdist.store_incompressible = off: every slice is compressed at the
# level; the package is as good, and just as readable
$node->append_conf('postgresql.conf', "smsdist.store_incompressible = off\n");
$node->reload;
$node->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00009', 'All compressed', '$src')");
share_job('CEN00901', 'CEN00009');
ok(wait_job('CEN00901', 'completed'), 'with store_incompressible off the share job completes') or diag(job_state('CEN00901'));
is(stored_bytes('CEN00009'), '0', 'nothing was stored');
for my $dp ($dp1, $dp2)
{
	ok(same_tree($src, "$dp/SMS_PKGC/CEN00009"), "the tree on $dp is identical to the source");
}
{
	my ($file9) = $node->safe_psql('site', "SELECT file_path FROM smsdist.package_builds WHERE package_id = 'CEN00009'");
	ok(system("gzip -t '$file9' && tar -tzf '$file9' >/dev/null") == 0, 'gzip and tar read its package file');
}

$node->stop;
done_testing();
