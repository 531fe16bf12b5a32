# Content validation at one site: a package published on two distribution
# points is damaged there -- a file corrupted, one truncated, one deleted,
# one added, a mode changed -- and the Despooler finds each difference,
# records it in content_validations and publishes the tree again from the
# package file, without an operator: when validate_content() asks, when
# smsdist.content_validation_interval makes a check due, and when a
# machine reports that a download did not verify (10004).  A damaged
# package file is compressed again first.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $node = site_node('content', conf => "smsdist.poll_interval = '2s'\nsmsdist.content_validation_interval = 0\n");
my $base = $node->basedir;
my $src = "$base/source/app";
my ($dp1, $dp2, $drive) = map { "$base/$_" } qw(dp1 dp2 drive);
make_path($_) for ($dp1, $dp2, $drive, "$src/sub/deeper");

sub write_file { my ($p, $c) = @_; open my $fh, '>', $p or die "$p: $!"; binmode $fh; print $fh $c; close $fh; }
write_file("$src/setup.exe", "MZ" . ("setup " x 2000));
write_file("$src/run.sh", "#!/bin/sh\necho run\n");
chmod 0755, "$src/run.sh";
write_file("$src/sub/data.bin", join('', map { chr(($_ * 7) % 256) } 1 .. 100_000));
write_file("$src/sub/readme.txt", "Read me\n" x 50);
write_file("$src/sub/deeper/notes.txt", "notes\n");

$node->safe_psql('postgres', 'CREATE ROLE content_admin LOGIN IN ROLE smsdist_admin');
$node->safe_psql('postgres', 'CREATE ROLE content_operator LOGIN IN ROLE smsdist_operator');
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CHD', 'Child', 'CEN');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$dp1'), ('CEN', 'distribution_point', 'DP2', '$dp2'),
  ('CEN', 'site_server_drive', 'D1', '$drive');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00001', 'WKS1', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 60),
	'the package is published on both distribution points');

my ($t1, $t2) = map { "$_/SMS_PKGC/CEN00001" } ($dp1, $dp2);
my %dp_id = map { split /\|/ } split /\n/, $node->safe_psql('site',
	"SELECT name, site_system_id FROM smsdist.site_systems WHERE role = 'distribution_point'");

sub mode { return sprintf('%04o', (stat($_[0]))[2] & 07777); }
sub identical
{
	my ($tree) = @_;
	return 0 unless system("diff -r '$src' '$tree' >/dev/null 2>&1") == 0;
	for my $f (qw(setup.exe run.sh sub/data.bin sub/readme.txt sub/deeper/notes.txt))
	{
		return 0 unless mode("$src/$f") eq mode("$tree/$f");
	}
	return 1;
}
sub row
{
	my ($dp, $cols) = @_;
	return $node->safe_psql('site',
		"SELECT $cols FROM smsdist.content_validations WHERE package_id = 'CEN00001' AND site_system_id = $dp_id{$dp}");
}
sub repairs { return row($_[0], 'coalesce(extract(epoch FROM repaired_at)::text, \'\')'); }
sub repaired_after
{
	my ($dp, $before) = @_;
	return wait_until($node, 'site', "SELECT requested_at IS NULL AND result = 'repaired'
	    AND repaired_at > coalesce(to_timestamp(nullif('$before', '')::float8), '-infinity')
	  FROM smsdist.content_validations WHERE package_id = 'CEN00001' AND site_system_id = $dp_id{$dp}", 60);
}
sub corrupt
{
	my ($path, $at) = @_;
	open my $fh, '+<', $path or die "$path: $!";
	binmode $fh;
	seek($fh, $at, 0);
	read($fh, my $byte, 1);
	seek($fh, $at, 0);
	print $fh chr(ord($byte) ^ 0xff);
	close $fh;
}

# --- the operator's check: every kind of damage, on two distribution points
corrupt("$t1/setup.exe", 100);
truncate("$t1/sub/data.bin", 5000) or die;
unlink("$t1/sub/readme.txt") or die;
write_file("$t1/sub/added.txt", "not in the package\n");
chmod 0600, "$t1/run.sh";
remove_tree("$t2/sub/deeper");
make_path("$t2/junk/inside");
ok(!identical($t1) && !identical($t2), 'both trees are damaged');

my ($rc, $out, $err) = $node->psql('site', 'SELECT * FROM smsdist.validate_content()',
	extra_params => [ '-U', 'content_operator' ]);
like($err, qr/permission denied for function validate_content/, 'an operator may not call validate_content()');
($rc, $out, $err) = $node->psql('site', "SELECT * FROM smsdist.validate_content('CHD')");
like($err, qr/validated by that site's Despooler, not by site CEN/, 'another site\'s distribution points are refused');
($rc, $out, $err) = $node->psql('site', "SELECT * FROM smsdist.validate_content('ZZZ')");
like($err, qr/unknown site ZZZ/, 'an unknown site is refused');

$out = $node->safe_psql('site', 'SELECT package_id, source_version FROM smsdist.validate_content() ORDER BY site_system_id',
	extra_params => [ '-U', 'content_admin' ]);
is($out, "CEN00001|1\nCEN00001|1", 'validate_content() queues both locations and says so');
ok(repaired_after('DP1', '') && repaired_after('DP2', ''), 'both locations are repaired')
  or diag($node->safe_psql('site', 'SELECT * FROM smsdist.content_validations'));
ok(identical($t1), 'DP1 is byte for byte (and mode for mode) the source again');
ok(identical($t2), 'DP2 is the source again');
is(row('DP1', 'missing_count, extra_count, changed_count, wrong_type_count'), '1|1|3|0',
	'DP1: one missing, one extra, three changed (corrupted, truncated, mode)');
my $findings = row('DP1', "array_to_string(findings, ' | ')");
like($findings, qr/missing: sub\/readme\.txt/, 'the missing file is named');
like($findings, qr/extra: sub\/added\.txt/, 'the added file is named');
like($findings, qr/changed: sub\/data\.bin \(5000 bytes, not 100000\)/, 'the truncated file is named with its size');
like($findings, qr/changed: run\.sh \(mode 0600, not 0755\)/, 'the changed mode is named');
like($findings, qr/changed: setup\.exe \(its SHA-256 is not the manifest's\)/, 'the corrupted file is named');
is(row('DP2', 'missing_count, extra_count, changed_count'), '2|1|0',
	'DP2: the removed directory and its file missing, one extra directory');
like(row('DP2', "array_to_string(findings, ' | ')"), qr/extra: junk\//, 'the extra directory is named once');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3207 AND package_id = 'CEN00001'"),
	'2', 'a status message (3207) for each repair');
is(row('DP1', 'requested_by'), '', 'the request is done');
my @left = glob("$drive/smsdist-despool/*");
is(scalar @left, 0, 'nothing is left on the despool drive');

# --- an intact tree is recorded as intact, not published again
my $published = $node->safe_psql('site', "SELECT published_at FROM smsdist.package_locations WHERE site_system_id = $dp_id{DP1}");
my $checked = row('DP1', 'checked_at');
$node->safe_psql('site', 'SELECT count(*) FROM smsdist.validate_content()');
ok(wait_until($node, 'site', "SELECT requested_at IS NULL AND checked_at > '$checked' AND result = 'intact'
    AND missing_count + extra_count + changed_count + wrong_type_count = 0
  FROM smsdist.content_validations WHERE site_system_id = $dp_id{DP1}", 60), 'an intact tree is recorded as intact');
is($node->safe_psql('site', "SELECT published_at FROM smsdist.package_locations WHERE site_system_id = $dp_id{DP1}"),
	$published, 'and is not published again');

# --- a directory replaced by a link to an identical copy elsewhere is of
# the wrong type, though every file read through it matches
{
	my $before = repairs('DP2');
	make_path("$base/elsewhere");
	system("cp -a '$t2/sub/deeper' '$base/elsewhere/deeper'") == 0 or die;
	remove_tree("$t2/sub/deeper");
	symlink("$base/elsewhere/deeper", "$t2/sub/deeper") or die;
	$node->safe_psql('site', 'SELECT count(*) FROM smsdist.validate_content()');
	ok(repaired_after('DP2', $before), 'a directory replaced by a link is repaired');
	is(row('DP2', "wrong_type_count || ' ' || array_to_string(findings, ' | ')"),
		'1 wrong type: sub/deeper/ (a symbolic link, not a directory)', 'as a directory of the wrong type');
	ok(!-l "$t2/sub/deeper" && identical($t2), 'DP2 holds a real directory again');
	ok(-f "$base/elsewhere/deeper/notes.txt", 'and what the link pointed to is untouched');
}

# --- the interval: no one asks, the Despooler checks on its own
my $before = repairs('DP2');
write_file("$t2/setup.exe", "short");
$node->append_conf('postgresql.conf', "smsdist.content_validation_interval = '1s'\n");
reload_settings($node, 'site', { 'smsdist.content_validation_interval' => '1s' }, 'despooler');
ok(repaired_after('DP2', $before), 'with smsdist.content_validation_interval, a damaged tree is repaired unasked');
ok(identical($t2), 'DP2 is the source again');
is(row('DP2', 'requested_by'), '', 'nobody asked for that check');
$node->append_conf('postgresql.conf', "smsdist.content_validation_interval = 0\n");
reload_settings($node, 'site', { 'smsdist.content_validation_interval' => '0' }, 'despooler');

# --- a machine that could not verify its download: its site's
# distribution points are checked at once
$before = repairs('DP1');
unlink("$t1/setup.exe") or die;
$node->safe_psql('site', q{SELECT smsdist.client_status('CEN00001', 1, now(), 10004, 'warning', 'Client Agent',
    'Package CEN00001 version 1 not downloaded: setup.exe does not match the manifest', NULL, NULL, 'CEN00001')});
ok(repaired_after('DP1', $before), 'a 10004 from a machine gets the distribution point repaired');
ok(identical($t1), 'DP1 is the source again');
like($node->safe_psql('site', "SELECT string_agg(DISTINCT requested_by, ',') FROM smsdist.content_validations WHERE package_id = 'CEN00001'"),
	qr/^$/, 'and the requests are done');
like(row('DP1', "array_to_string(findings, ' | ')"), qr/^missing: setup\.exe$/, 'what it found');

# --- a damaged package file is compressed again before the tree is repaired
my ($file, $sha) = split /\|/, $node->safe_psql('site',
	"SELECT file_path, sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1");
corrupt($file, 300);
$before = repairs('DP2');
unlink("$t2/run.sh") or die;
$node->safe_psql('site', 'SELECT count(*) FROM smsdist.validate_content()');
ok(repaired_after('DP2', $before), 'with a damaged package file, the tree is still repaired')
  or diag($node->safe_psql('site', 'SELECT * FROM smsdist.content_validations'));
ok(identical($t2), 'DP2 is the source again');
like($node->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE message_id = 3208"),
	qr/is corrupt: its SHA-256 is [0-9a-f]{64}, not [0-9a-f]{64}; compressing it again/, 'after the package file was found corrupt (3208)');
is((split / /, `sha256sum '$file'`)[0],
	$node->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1"),
	'the package file compressed again matches its SHA-256');

# --- one location that cannot be repaired does not stop the others
$before = repairs('DP1');
my $before2 = repairs('DP2');
unlink("$t1/run.sh") or die;
unlink("$t2/run.sh") or die;
chmod 0555, "$dp1/SMS_PKGC" or die;
$node->safe_psql('site', 'SELECT count(*) FROM smsdist.validate_content()');
ok(repaired_after('DP2', $before2), 'the other distribution point is repaired');
ok(wait_until($node, 'site', "SELECT requested_at IS NULL AND result = 'failed' FROM smsdist.content_validations WHERE site_system_id = $dp_id{DP1}", 60),
	'the one whose share cannot be written is recorded as failed');
like(row('DP1', 'detail'), qr/SMS_PKGC/, 'with the reason');
is($node->safe_psql('site', "SELECT count(*) > 0 FROM smsdist.status_messages WHERE message_id = 3209 AND severity = 'error'"),
	't', 'and an error status message (3209)');
chmod 0755, "$dp1/SMS_PKGC" or die;
$node->safe_psql('site', 'SELECT count(*) FROM smsdist.validate_content()');
ok(repaired_after('DP1', $before), 'and is repaired once it can be');
ok(identical($t1) && identical($t2), 'both are the source again');

$node->stop;
done_testing();
