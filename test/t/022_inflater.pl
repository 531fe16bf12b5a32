# Extracting a large package file with an inflater process (inflate.c): the
# gzip stream is inflated by a second process while the first extracts the
# tar stream.  The result is the source tree; a damaged, truncated or
# extended package file is refused with the inflater's reason.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $node = site_node('inflater');
my $base = $node->basedir;
my $src = "$base/source/big";
my ($dp, $drive, $work) = map { "$base/$_" } qw(dp drive work);
make_path("$src/bin", "$src/doc", $dp, $drive, $work);
# 4 MB members: several of them, and more than the 4 MB below which the
# extractor inflates by itself
for my $i (1 .. 3)
{
	system("head -c 5000000 /dev/urandom > '$src/bin/part$i.bin'") == 0 or die;
}
system("yes 'a line of the manual' | head -c 6000000 > '$src/doc/manual.txt'") == 0 or die;

$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$dp'), ('CEN', 'site_server_drive', 'D1', '$drive');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Big', '$src');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CEN}')});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 90),
	'a large package is published by the Despooler');
ok(system("diff -r '$src' '$dp/SMS_PKGC/CEN00001' >/dev/null 2>&1") == 0, 'the published tree is the source');

my $file = $node->safe_psql('site', "SELECT file_path FROM smsdist.package_builds WHERE package_id = 'CEN00001'");
my $size = -s $file;
ok($size > 8_000_000, "the package file is large enough for an inflater ($size bytes)");

sub extract
{
	my ($path) = @_;
	remove_tree("$work/out");
	make_path("$work/out");
	return $node->psql('site', "SELECT smsdist.extract_package('$path', '$work/out')");
}

my ($rc, $out, $err) = extract($file);
is($rc, 0, 'extract_package extracts it') or diag($err);
ok(system("diff -r '$src' '$work/out' >/dev/null 2>&1") == 0, 'and the tree is the source');

# a truncated file: the inflater finds the last member cut short
copy($file, "$work/cut.tar.gz") or die;
truncate("$work/cut.tar.gz", int($size * 0.6)) or die;
($rc, $out, $err) = extract("$work/cut.tar.gz");
like($err, qr/cut\.tar\.gz" ends in the middle of a gzip member/, 'a truncated package file is refused by the inflater');

# bytes after the last member
copy($file, "$work/long.tar.gz") or die;
open(my $fh, '>>', "$work/long.tar.gz") or die;
print $fh "not gzip at all" x 100;
close $fh;
($rc, $out, $err) = extract("$work/long.tar.gz");
like($err, qr/long\.tar\.gz" is not a valid gzip stream: incorrect header check/, 'bytes after the last member are refused');

# one flipped byte in the middle
copy($file, "$work/flip.tar.gz") or die;
open($fh, '+<', "$work/flip.tar.gz") or die;
binmode $fh;
seek($fh, int($size / 2), 0);
read($fh, my $byte, 1);
seek($fh, int($size / 2), 0);
print $fh chr(ord($byte) ^ 0xff);
close $fh;
($rc, $out, $err) = extract("$work/flip.tar.gz");
isnt($rc, 0, 'a package file with a flipped byte is refused');
like($err, qr/flip\.tar\.gz/, 'naming the file') or diag($err);

# the Despooler with a damaged large package file: it finds out while it
# extracts (through the inflater), compresses the package again, publishes
# the source
{
	open(my $fh, '+<', $file) or die "$file: $!";
	binmode $fh;
	seek($fh, int($size / 3), 0);
	read($fh, my $byte, 1);
	seek($fh, int($size / 3), 0);
	print $fh chr(ord($byte) ^ 0xff);
	close $fh;
	# (the version is published intact: a job for it would not read the
	# package file; a file changed on the distribution point has it
	# published again, from the damaged package file)
	my $one = "$dp/SMS_PKGC/CEN00001/doc/manual.txt";
	open(my $w, '>>', $one) or die "$one: $!";
	print $w "changed\n";
	close $w;
	$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00102', 'share_package', 'CEN00001', 'sites', '{CEN}')});
	ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 90),
		'a job whose large package file was damaged completes');
	like($node->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN00102' AND message_id = 3202"),
		qr/is corrupt: its SHA-256 is [0-9a-f]{64}, not [0-9a-f]{64}; compressing it again/,
		'the damage is reported as such, and the package compressed again');
	is((split / /, `sha256sum '$file'`)[0],
		$node->safe_psql('site', "SELECT sha256 FROM smsdist.package_builds WHERE package_id = 'CEN00001'"),
		'the new package file matches its recorded SHA-256');
	ok(system("diff -r '$src' '$dp/SMS_PKGC/CEN00001' >/dev/null 2>&1") == 0, 'and the published tree is the source');
}

# no inflater is left behind (it has no database connection, so it is not
# in pg_stat_activity: it is looked for among the postmaster's children)
my $pm = $node->{_pid};
ok(eventually(sub { !grep { (eval { slurp_file("/proc/$_/cmdline") } // '') =~ /smsdist inflater/ } split ' ', `ps -o pid= --ppid $pm` }, 10),
	'no inflater process is left');

done_testing();
