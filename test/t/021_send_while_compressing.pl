# Sending a package while it is compressed (0.6): the package builder appends
# the compressed members to its output file in order, and the Sender sends
# that file to a child site as it grows, then the rest once the build is
# ready.  CEN -> CH1 -> GC1, with compression slowed down
# (smsdist.test_compress_delay_ms) so the overlap can be seen.
#
# - the transfer to CH1 is under way while the build is still 'building',
#   every byte is sent once, and the published trees at CH1 and GC1 are the
#   source;
# - a builder stopped in the middle (pg_terminate_backend) is replaced by
#   another, which writes another file under another stream ID: the Sender
#   gives up the first stream, CH1 drops what it had of it, and the package
#   arrives whole;
# - a hop whose sites hold a version of the package waits for the finished
#   file (it gets a delta), and does not stream;
# - the receiving functions refuse a bad stream ID, a stream with a delta,
#   and a size for a stream they do not have.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my ($cen, $ch1, $gc1, $dps_ref) = three_sites();
my %dps = %$dps_ref;
$cen->append_conf('postgresql.conf', "smsdist.test_compress_delay_ms = 500\n");
# (a builder has the postmaster's settings when it starts)
reload_settings($cen, 'site', { 'smsdist.test_compress_delay_ms' => '500ms' });


sub identical
{
	my ($src, $id, $what, @codes) = @_;
	for my $code (@codes)
	{
		for my $dp (@{ $dps{$code} })
		{
			ok(system("diff -r '$src' '$dp/SMS_PKGC/$id' >/dev/null 2>&1") == 0, "$what: $code $dp is identical to the source");
		}
	}
}

sub rows
{
	my ($job) = @_;
	return $cen->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || coalesce(detail, '') || ' ' || coalesce(last_error, ''), E'\\n') FROM smsdist.job_site_status WHERE job_id = '$job'");
}

sub sent_bytes
{
	my ($job) = @_;
	my ($n) = $cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = '$job' AND message_id = 3302")
	  =~ /\((\d+) bytes sent\)/;
	return $n;
}

# --- a package sent while it is compressed
my $src1 = make_source($cen, 'app', 48);
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src1');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($ch1, 'site', q{SELECT total_bytes IS NULL AND sha256 IS NULL AND stream_id IS NOT NULL
	FROM smsdist.package_transfers WHERE package_id = 'CEN00001'}, 60),
	'at CH1 the transfer has a stream ID and no size yet');
ok(wait_until($cen, 'site', q{SELECT s.bytes_done > 0 AND b.state = 'building'
	  AND s.detail LIKE 'sending to CH1 while the package is compressed: % bytes so far'
	  AND s.bytes_total_estimated AND s.bytes_total >= s.bytes_done
	FROM smsdist.job_site_status s, smsdist.package_builds b
	WHERE s.job_id = 'CEN00101' AND s.site_code = 'CH1' AND s.phase = 'send'
	  AND b.package_id = 'CEN00001' AND b.source_version = 1}, 60),
	'bytes reach CH1 while the package is still being compressed, and the row says so')
  or diag(rows('CEN00101'));
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 120),
	'the job completes') or diag(rows('CEN00101'));
identical($src1, 'CEN00001', 'streamed', 'CH1', 'GC1');
my ($bytes1, $sha1, $stream1) = split /\|/, $cen->safe_psql('site', "SELECT bytes, sha256, stream_id FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1");
is($ch1->safe_psql('site', "SELECT bytes || ' ' || sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1"),
	"$bytes1 $sha1", 'CH1 holds the same file, by size and SHA-256');
is(sent_bytes('CEN00101'), $bytes1, "every byte was sent once ($bytes1)");
is($cen->safe_psql('site', "SELECT (s.started_at < b.finished_at)::text || ' ' || s.bytes_total FROM smsdist.job_site_status s, smsdist.package_builds b WHERE s.job_id = 'CEN00101' AND s.site_code = 'CH1' AND s.phase = 'send' AND b.package_id = 'CEN00001'"),
	"true $bytes1", 'the send started before the build finished, and its total is the file size');
is($ch1->safe_psql('site', "SELECT count(*) FROM smsdist.package_transfers"), '0', 'no transfer left open at CH1');
is(join(',', sort glob($cen->data_dir . '/pg_smsdist/packages/*')),
	$cen->data_dir . '/pg_smsdist/packages/CEN00001.1.tar.gz', 'CEN keeps the package file and no stream file');

# --- the builder is stopped in the middle: another one writes another stream
my $src2 = make_source($cen, 'suite', 64);
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00002', 'Suite', '$src2');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00102', 'share_package', 'CEN00002', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT s.bytes_done > 0 AND b.state = 'building'
	FROM smsdist.job_site_status s, smsdist.package_builds b
	WHERE s.job_id = 'CEN00102' AND s.site_code = 'CH1' AND s.phase = 'send'
	  AND b.package_id = 'CEN00002' AND b.source_version = 1}, 60),
	'the second package is being sent while it is compressed') or diag(rows('CEN00102'));
my $first_stream = $cen->safe_psql('site', "SELECT stream_id FROM smsdist.package_builds WHERE package_id = 'CEN00002'");
is($cen->safe_psql('postgres', "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'smsdist package builder'"),
	'1', 'its builder is stopped');
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 120),
	'the job completes with another builder') or diag(rows('CEN00102'));
my ($bytes2, $stream2) = split /\|/, $cen->safe_psql('site', "SELECT bytes, stream_id FROM smsdist.package_builds WHERE package_id = 'CEN00002'");
isnt($stream2, $first_stream, 'the second builder wrote another stream');
identical($src2, 'CEN00002', 'after a builder restart', 'CH1');
my $sent2 = sent_bytes('CEN00102');
ok(defined $sent2 && $sent2 > $bytes2, "the first stream was given up and the second sent whole ($sent2 bytes sent, file $bytes2)")
  or diag("sent: " . ($sent2 // 'none'));
is($ch1->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00002'"),
	$cen->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00002'"),
	'CH1 holds the second builder\'s file');
is(join(',', grep { !/CEN0000[12]\.1\.tar\.gz$/ } glob($cen->data_dir . '/pg_smsdist/packages/*')),
	'', 'nothing of the stopped builder is left in the package store');

# --- a site that holds a version gets a delta of the finished file: no streaming
system("head -c 8000000 /dev/urandom > '$src1/bin/part1.bin'") == 0 or die;
$cen->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00103', 'share_package', 'CEN00001', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00103'", 120),
	'the update completes') or diag(rows('CEN00103'));
is($cen->safe_psql('site', "SELECT (s.started_at >= b.finished_at)::text || ' ' || s.delta_base FROM smsdist.job_site_status s, smsdist.package_builds b WHERE s.job_id = 'CEN00103' AND s.site_code = 'CH1' AND s.phase = 'send' AND b.package_id = 'CEN00001' AND b.source_version = 2"),
	'true 1', 'the update was sent after the build, as a delta from version 1');
identical($src1, 'CEN00001', 'version 2 as a delta', 'CH1');

# --- a slow build does not hold the Sender: a small package for the same
# child goes while the big one is still being compressed, and the big one
# is taken up again where it was
$cen->append_conf('postgresql.conf', "smsdist.test_compress_delay_ms = 3000\n");
reload_settings($cen, 'site', { 'smsdist.test_compress_delay_ms' => '3s' });
my $src4 = make_source($cen, 'slow', 64);
my $src5 = $cen->basedir . '/source/small';
make_path($src5);
system("echo 'a small tool' > '$src5/tool.txt'") == 0 or die;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00004', 'Slow', '$src4'), ('CEN00005', 'Small', '$src5');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00105', 'share_package', 'CEN00004', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT s.bytes_done > 0 AND b.state = 'building'
	FROM smsdist.job_site_status s, smsdist.package_builds b
	WHERE s.job_id = 'CEN00105' AND s.site_code = 'CH1' AND s.phase = 'send'
	  AND b.package_id = 'CEN00004'}, 60),
	'the slow package is being sent while it is compressed') or diag(rows('CEN00105'));
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00106', 'share_package', 'CEN00005', 'sites', '{CH1}')});
ok(wait_until($ch1, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00106'", 60),
	'the small package reaches CH1') or diag(rows('CEN00106'), rows('CEN00105'));
is($cen->safe_psql('site', "SELECT state FROM smsdist.package_builds WHERE package_id = 'CEN00004'"),
	'building', 'while the slow one is still being compressed');
$cen->append_conf('postgresql.conf', "smsdist.test_compress_delay_ms = 0\n");
$cen->reload;
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00105'", 120),
	'and then the slow one completes') or diag(rows('CEN00105'));
identical($src4, 'CEN00004', 'taken up again', 'CH1');
{
	my $bytes4 = $cen->safe_psql('site', "SELECT bytes FROM smsdist.package_builds WHERE package_id = 'CEN00004'");
	my $sent4 = sent_bytes('CEN00105');
	ok(defined $sent4 && $sent4 >= $bytes4, "the status message counts the bytes sent before and after stepping out ($sent4 of $bytes4)")
	  or diag('sent: ' . ($sent4 // 'none'));
}
is($cen->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00004'"),
	$ch1->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00004'"),
	'CH1 holds the same file');

# --- kill -9 of the Sender while it sends a package that is being
# compressed: the server restarts (the builder with it), a new builder
# writes a new stream, and the package arrives whole
$cen->append_conf('postgresql.conf', "smsdist.test_compress_delay_ms = 1000\n");
$cen->safe_psql('postgres', "ALTER SYSTEM SET restart_after_crash = on");
reload_settings($cen, 'site', { 'smsdist.test_compress_delay_ms' => '1s', restart_after_crash => 'on' });
my $src6 = make_source($cen, 'crash', 48);
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00006', 'Crash', '$src6');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00107', 'share_package', 'CEN00006', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT s.bytes_done > 0 AND b.state = 'building'
	FROM smsdist.job_site_status s, smsdist.package_builds b
	WHERE s.job_id = 'CEN00107' AND s.site_code = 'CH1' AND s.phase = 'send'
	  AND b.package_id = 'CEN00006'}, 60),
	'a package is being sent while it is compressed') or diag(rows('CEN00107'));
my $sender_pid = $cen->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist sender'");
ok(kill('KILL', $sender_pid), 'the Sender is killed with SIGKILL');
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00107'", 120),
	'the job completes after the server restarts') or diag(rows('CEN00107'));
identical($src6, 'CEN00006', 'after kill -9 of the Sender', 'CH1');
is($ch1->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00006'"),
	$cen->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00006'"),
	'CH1 holds the file of the build that finished');
is($ch1->safe_psql('site', "SELECT count(*) FROM smsdist.package_transfers"), '0', 'no transfer left open at CH1');
$cen->append_conf('postgresql.conf', "smsdist.test_compress_delay_ms = 0\n");
$cen->reload;

# --- smsdist.send_while_compressing = off: a first send waits for the build
my $src3 = make_source($cen, 'tools', 24);
$cen->append_conf('postgresql.conf', "smsdist.send_while_compressing = off\n");
reload_settings($cen, 'site', { 'smsdist.send_while_compressing' => 'off' }, 'sender');
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00003', 'Tools', '$src3');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00104', 'share_package', 'CEN00003', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00104'", 120),
	'with send_while_compressing off the job completes') or diag(rows('CEN00104'));
is($cen->safe_psql('site', "SELECT (s.started_at >= b.finished_at)::text FROM smsdist.job_site_status s, smsdist.package_builds b WHERE s.job_id = 'CEN00104' AND s.site_code = 'CH1' AND s.phase = 'send' AND b.package_id = 'CEN00003'"),
	'true', 'and the send started after the build');
identical($src3, 'CEN00003', 'sent after compressing', 'CH1');

# --- what the receiving functions refuse
my %bad = (
	"SELECT smsdist.receive_begin('CEN00009', 1, NULL, NULL, 'X', '/srv/x', NULL, 'XYZ')" => qr/invalid stream ID "XYZ"/,
	"SELECT smsdist.receive_begin('CEN00009', 2, NULL, NULL, 'X', '/srv/x', 1, '0123456789abcdef')" => qr/a delta of package CEN00009 version 2 cannot be streamed/,
	"SELECT smsdist.receive_begin('CEN00009', 1, NULL, NULL, 'X', '/srv/x')" => qr/argument "total_bytes" of receive_begin must not be null/,
	"SELECT smsdist.receive_begin('CEN00009', 1, NULL, NULL, NULL, '/srv/x', NULL, '0123456789abcdef')" => qr/argument "package_name" of receive_begin must not be null/,
	"SELECT smsdist.receive_total('CEN00009', 1, '0123456789abcdef', 10, repeat('a', 64))" => qr/no transfer of stream 0123456789abcdef of package CEN00009 version 1 is in progress/,
	"SELECT smsdist.receive_total('CEN00009', 1, '0123456789abcdef', 0, repeat('a', 64))" => qr/invalid size 0/,
);
for my $sql (sort keys %bad)
{
	my ($rc, $out, $err) = $ch1->psql('site', $sql);
	like($err, $bad{$sql}, "refused: $sql");
}

# a stream, its size, a stream ID that does not match, the end before the size
$ch1->safe_psql('site', "SELECT smsdist.receive_begin('CEN00009', 1, NULL, NULL, 'X', '/srv/x', NULL, '0123456789abcdef')");
my ($rc, $out, $err) = $ch1->psql('site', "SELECT smsdist.receive_end('CEN00009', 1, 'CEN00109', 'share_package', '{CH1}', false)");
like($err, qr/is not complete at site CH1: 0 bytes received, and its size is not known yet/, 'receive_end refuses a stream whose size is not known');
($rc, $out, $err) = $ch1->psql('site', "SELECT smsdist.receive_total('CEN00009', 1, 'fedcba9876543210', 10, repeat('a', 64))");
like($err, qr/no transfer of stream fedcba9876543210/, 'receive_total refuses another stream ID');
# (one session: a chunk is durable only at the end, or every 32 MB or 0.5 s)
is($ch1->safe_psql('site', "SELECT smsdist.receive_chunk('CEN00009', 1, 0, 'hello'::bytea, encode(sha256('hello'::bytea), 'hex'));"
	. " SELECT smsdist.receive_total('CEN00009', 1, '0123456789abcdef', 5, encode(sha256('hello'::bytea), 'hex'))"),
	"5\n5", 'a chunk of a stream of unknown size is taken, and receive_total answers the offset: all there');
is($ch1->safe_psql('site', "SELECT total_bytes || ' ' || bytes_received FROM smsdist.package_transfers WHERE package_id = 'CEN00009'"),
	'5 5', 'and the row now has the size, every byte durable');
($rc, $out, $err) = $ch1->psql('site', "SELECT smsdist.receive_total('CEN00009', 1, '0123456789abcdef', 6, repeat('b', 64))");
like($err, qr/was said to be 5 bytes/, 'a second, different size is refused');
is($ch1->safe_psql('site', "SELECT smsdist.receive_begin('CEN00009', 1, 5, encode(sha256('hello'::bytea), 'hex'), 'X', '/srv/x', NULL, '0123456789abcdef')"),
	'5', 'receive_begin with the stream ID and the size resumes');
is($ch1->safe_psql('site', "SELECT smsdist.receive_begin('CEN00009', 1, NULL, NULL, 'X', '/srv/x', NULL, 'fedcba9876543210')"),
	'0', 'a new stream ID starts from zero');

done_testing();
