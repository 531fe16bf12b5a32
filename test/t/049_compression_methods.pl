# smsdist.compression_method: a package compressed by each library
# (libdeflate, ISA-L, zlib), with near-random slices stored or not, is
# published as its source, is read by gzip and tar, and is extracted by
# extract_package (whose inflater inflates whole members with libdeflate).
# A package file of one large member (gzip's own) is still extracted: the
# inflater streams such a member with zlib.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('methods');
my $base = $node->basedir;
my $src = "$base/source/mixed";
my ($dp, $drive, $work) = map { "$base/$_" } qw(dp drive work);
make_path("$src/bin", "$src/doc", $dp, $drive, $work);
# near-random runs between text (runs of both kinds inside one 4 MB
# chunk), sizes that are no multiple of a 64 kB slice, and an empty file
system("head -c 3000001 /dev/urandom > '$src/bin/a.bin'") == 0 or die;
system("seq 1 400000 > '$src/doc/numbers.txt'") == 0 or die;
system("head -c 5500000 /dev/urandom > '$src/bin/b.bin'") == 0 or die;
system("yes 'a line of the manual' | head -c 4000000 > '$src/doc/manual.txt'") == 0 or die;
system("touch '$src/doc/empty.txt'") == 0 or die;

$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$dp'), ('CEN', 'site_server_drive', 'D1', '$drive')});

is($node->safe_psql('site', 'SHOW smsdist.compression_method'), 'libdeflate', 'libdeflate is the default method');

sub extract
{
	my ($path) = @_;
	remove_tree("$work/out");
	make_path("$work/out");
	return $node->psql('site', "SELECT smsdist.extract_package('$path', '$work/out')");
}

my %size;
my $n = 0;
for my $case (['libdeflate', 'on'], ['libdeflate', 'off'], ['isal', 'on'], ['isal', 'off'], ['zlib', 'on'])
{
	my ($method, $store) = @$case;
	my $name = "$method, store_incompressible $store";
	$n++;
	my $pkg = sprintf('CEN0000%d', $n);
	$node->safe_psql('site', qq{
ALTER SYSTEM SET smsdist.compression_method = '$method';
ALTER SYSTEM SET smsdist.store_incompressible = '$store'});
	reload_settings($node, 'site',
		{ 'smsdist.compression_method' => $method, 'smsdist.store_incompressible' => $store }, 'scheduler');
	$node->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$pkg', '$name', '$src');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN0010$n', 'share_package', '$pkg', 'sites', '{CEN}')});
	ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN0010$n'", 90),
		"$name: the package is published")
	  or diag($node->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE package_id = '$pkg'"));
	ok(system("diff -r '$src' '$dp/SMS_PKGC/$pkg' >/dev/null 2>&1") == 0, "$name: the published tree is the source");

	my $file = $node->safe_psql('site', "SELECT file_path FROM smsdist.package_builds WHERE package_id = '$pkg'");
	$size{$name} = -s $file;
	ok(system("gzip -t '$file' && tar -tzf '$file' >/dev/null") == 0, "$name: gzip and tar read the package file");
	my ($rc, $out, $err) = extract($file);
	is($rc, 0, "$name: extract_package extracts it") or diag($err);
	ok(system("diff -r '$src' '$work/out' >/dev/null 2>&1") == 0, "$name: and the tree is the source");

	my ($stored) = $node->safe_psql('site', "SELECT message FROM smsdist.status_messages WHERE package_id = '$pkg' AND message_id = 3100")
	  =~ /; (\d+) bytes stored as they were, already compressed\)/;
	if ($store eq 'on')
	{
		ok(defined $stored && $stored >= 8_000_000, "$name: the near-random bytes were stored (" . ($stored // 'no figure') . ')');
	}
	else
	{
		is($stored, '0', "$name: nothing was stored");
	}
}
diag(join(', ', map { "$_: $size{$_}" } sort keys %size));
ok($size{'isal, store_incompressible off'} > $size{'libdeflate, store_incompressible off'},
	'ISA-L trades size for speed: its file is the larger');

# one gzip member for the whole tar stream, larger than the inflater's
# output buffer: streamed by zlib, extracted all the same
my $file = $node->safe_psql('site', "SELECT file_path FROM smsdist.package_builds WHERE package_id = 'CEN00001'");
system("gzip -dc '$file' | gzip -1 > '$work/one.tar.gz'") == 0 or die;
ok(-s "$work/one.tar.gz" > 4_000_000, 'a package file of one large member');
my ($rc, $out, $err) = extract("$work/one.tar.gz");
is($rc, 0, 'extract_package extracts a member larger than its buffer') or diag($err);
ok(system("diff -r '$src' '$work/out' >/dev/null 2>&1") == 0, 'and the tree is the source');

# that member truncated: zlib's message, as before
truncate("$work/one.tar.gz", int((-s "$work/one.tar.gz") * 0.7)) or die;
($rc, $out, $err) = extract("$work/one.tar.gz");
like($err, qr/one\.tar\.gz" ends in the middle of a gzip member/, 'a truncated large member is refused');

$node->stop;
done_testing();
