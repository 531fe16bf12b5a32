# The client agent's download cache: a package offered
# to the workstation is downloaded from the distribution point into the
# cache, every file checked against the manifest published beside it, and
# locked; a package larger than the cache is refused; when a download does
# not fit, only unlocked packages (30 days after a download whose program
# never ran: a test clock shows it) are deleted, oldest first, and if that is
# not enough nothing is deleted and the package is not downloaded; an
# unlocked package stays unlocked; a corrupted file is refused; what a
# crash left is cleaned; the administrator's commands (show, size, move,
# clear) work.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $agent = agent_path();

my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
# five packages of random (incompressible) files: 300 KB, 400 KB, 1.5 MB, 500 KB, 10 KB
my %kb = (1 => [100, 100, 100], 2 => [400], 3 => [1536], 4 => [500], 5 => [10]);
for my $p (sort keys %kb)
{
	make_path("$b/src$p/sub");
	my $i = 0;
	for my $k (@{ $kb{$p} })
	{
		my $f = $i++ ? "$b/src$p/sub/f$i.bin" : "$b/src$p/setup.bin";
		system("head -c " . ($k * 1024) . " /dev/urandom > '$f'") == 0 or die;
	}
}
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'name LIKE ''WKS%''');
INSERT INTO smsdist.packages (package_id, name, source_directory)
SELECT 'CEN00B0' || p, 'Package ' || p, '$b/src' || p FROM generate_series(1, 5) p;
INSERT INTO smsdist.programs (package_id, program_name, command_line)
SELECT 'CEN00B0' || p, 'Install', 'setup.bin' FROM generate_series(1, 5) p;
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites)
SELECT 'share_package', 'CEN00B0' || p, 'sites', '{CEN}' FROM generate_series(1, 5) p;
});
my $keyfile = machine_key_file($node, 'CEN00001');
ok(wait_until($node, 'site', "SELECT count(*) = 5 FROM smsdist.package_locations", 120), 'the five packages are published');
ok(-f "$b/dp/SMS_PKGC/CEN00B01.1.manifest", 'the manifest is published beside each package');
is($node->safe_psql('site', q{SELECT encode(sha256(convert_to(manifest, 'UTF8')), 'hex') FROM smsdist.package_builds WHERE package_id = 'CEN00B01'}),
	`sha256sum '$b/dp/SMS_PKGC/CEN00B01.1.manifest' | cut -c1-64` =~ s/\s+$//r,
	'its SHA-256 is the package hash');

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return undef; local $/; my $t = <$fh>; close $fh; return $t; }
sub advertise
{
	my @ids = @_;
	$node->safe_psql('site', join('', map { "INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
		VALUES ('CEN00C0$_', 'Advert $_', 'CEN00B0$_', 'Install', 'CEN00A01', '2026-01-01 00:00');" } @ids));
	ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM (SELECT 1) x WHERE "
		  . join(' AND ', map { "position('CEN00C0$_' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0"
				  . " AND position('[location' IN coalesce(pg_read_file('$b/cap/pkginfo.box/CEN00B0$_.NAL', 0, 100000, true), '')) > 0"
				  . " AND (pg_stat_file('$b/cap/pkginfo.box/CEN00B0$_.PKG', true)).size IS NOT NULL" } @ids), 60),
		"advertisement(s) @ids reached the CAP");
}
my $cache = "$b/ws/cache";
sub agent
{
	my ($now, @more) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $keyfile, '--cache-size', '1',
		'--now', $now, @more ], '>', \$out, '2>', \$err);
	return ($?, $out, $err);
}
sub cache_cmd
{
	my ($now, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, '--state-dir', "$b/ws", '--now', $now, 'cache', @args ], '>', \$out, '2>', \$err);
	return ($?, $out, $err);
}
sub messages
{
	$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
	return wait_until($node, 'site',
		qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS')}, 30);
}
my $day0 = '2026-12-01T00:00:00Z';

# ---- a package offered is downloaded, verified and locked -- after a first
# attempt killed (SIGKILL) with two of its three files copied
advertise(1);
$ENV{SMSDIST_AGENT_TEST_CRASH_AFTER_FILES} = 2;
my ($rc, $out, $err) = agent($day0, '--once');
delete $ENV{SMSDIST_AGENT_TEST_CRASH_AFTER_FILES};
is($rc & 127, 9, 'an agent killed in the middle of a download (SIGKILL, two of three files copied)');
my @partial = glob("$cache/.partial.CEN00B01.1/*");
ok(@partial >= 1 && !-e "$cache/CEN00B01.1", 'leaves only a partial download, never a cache entry');
unlike(slurp("$cache/cache.state") // '', qr/CEN00B01/, 'and nothing in the cache state');
($rc, $out, $err) = agent($day0, '--once');
is($rc, 0, 'the poll runs') or diag($err);
like($out, qr/^${AGENT_INFO}cached CEN00B01 version 1: 307200 bytes from ".*SMS_PKGC\/CEN00B01", every file verified$/m,
	'package 1 is downloaded into the cache, every file verified');
is(system("diff -r '$b/dp/SMS_PKGC/CEN00B01' '$cache/CEN00B01.1' >/dev/null"), 0, 'the cached copy is identical to the distribution point\'s');
ok(!-e "$cache/.partial.CEN00B01.1", 'the partial download was removed and the download started over');
($rc, $out) = cache_cmd($day0, 'show');
like($out, qr/^CEN00B01 version 1: 307200 bytes, downloaded 2026-12-01T00:00:00Z, locked until 2026-12-31T00:00:00Z$/m,
	'it is locked for 30 days (its program has not run)');
($rc, $out) = agent($day0, '--once');
like($out, qr/^${AGENT_INFO}cached CEN00B01 version 1: already in the cache \(locked\)$/m, 'a second poll finds it there');

# ---- larger than the whole cache: refused
advertise(3);
($rc, $out) = agent($day0, '--once');
like($out, qr/^${AGENT_INFO}not downloaded CEN00B03 version 1: the package \(1572864 bytes\) is larger than the whole cache \(1048576 bytes\)$/m,
	'a package larger than the whole cache is not downloaded, and the reason is given');

# ---- fits beside the locked one
advertise(2);
($rc, $out) = agent($day0, '--once');
like($out, qr/^${AGENT_INFO}cached CEN00B02 version 1: 409600 bytes/m, 'package 2 fits beside package 1');

# ---- does not fit, and only locked packages are there: nothing is deleted
advertise(4);
($rc, $out) = agent($day0, '--once');
like($out, qr/^${AGENT_INFO}not downloaded CEN00B04 version 1: the cache is full: 512000 bytes are needed, 331776 are free and 0 more could be freed \(the rest is locked\)$/m,
	'package 4 does not fit and packages 1 and 2 are locked: it is not downloaded');
ok(-d "$cache/CEN00B01.1" && -d "$cache/CEN00B02.1", 'and nothing was deleted');
ok(messages(), 'the status messages reach the site');
is($node->safe_psql('site', q{SELECT string_agg(message_id || ':' || package_id, ',' ORDER BY message_id, package_id)
                               FROM smsdist.status_messages WHERE client_sequence IS NOT NULL AND message_id BETWEEN 10003 AND 10006}),
	'10003:CEN00B01,10003:CEN00B02,10006:CEN00B03,10006:CEN00B04',
	'downloaded (10003) twice, not downloaded for want of room (10006) twice -- each once, not at every poll');

# ---- 31 days later: both unlocked (their programs never ran); the oldest goes
my $day31 = '2027-01-01T00:00:00Z';
($rc, $out) = agent($day31, '--once');
like($out, qr/^${AGENT_INFO}cached CEN00B04 version 1: 512000 bytes/m, 'after 30 days without a run the packages unlock: package 4 fits now');
ok(!-e "$cache/CEN00B01.1", 'the oldest unlocked package (1) was deleted to make room');
ok(-d "$cache/CEN00B02.1", 'and only that one');
($rc, $out) = cache_cmd($day31, 'show');
like($out, qr/^CEN00B02 version 1: 409600 bytes, downloaded 2026-12-01T00:00:00Z, unlocked since 2026-12-31T00:00:00Z$/m,
	'package 2 stays unlocked: being offered again does not lock it again');
like($out, qr/^CEN00B04 version 1: 512000 bytes, downloaded 2027-01-01T00:00:00Z, locked until 2027-01-31T00:00:00Z$/m,
	'package 4 is locked');

# ---- a corrupted file on the distribution point is refused
open(my $fh, '>>', "$b/dp/SMS_PKGC/CEN00B05/setup.bin") or die;
print $fh 'x';
close $fh;
advertise(5);
($rc, $out) = agent($day31, '--once');
like($out, qr/^${AGENT_INFO}not downloaded CEN00B05 version 1: "setup\.bin" does not match the manifest \(10241 bytes/m,
	'a file that does not match the manifest is refused');
ok(!-e "$cache/CEN00B05.1" && !glob("$cache/.partial.*"), 'and nothing of it stays in the cache');

# ---- what a crash left is removed; the download starts over
make_path("$cache/.partial.CEN00B05.1/half");
($rc, $out) = cache_cmd($day31, 'show');
ok(!-e "$cache/.partial.CEN00B05.1", 'a download cut off by a crash is removed when the cache is next opened');

# ---- administration
($rc, $out, $err) = cache_cmd($day31, 'size', '2');
is($rc, 0, 'cache size 2 (MB)') or diag($err);
like($out, qr/2097152 bytes/, 'the cache is resized');
($rc, $out, $err) = cache_cmd($day31, 'move', "$b/newcache");
is($rc, 0, 'cache move') or diag($err);
ok(-d "$b/newcache/CEN00B04.1" && !-e "$cache/CEN00B04.1", 'the content moves with it');
($rc, $out) = agent($day31, '--once');
like($out, qr/^${AGENT_INFO}cached CEN00B04 version 1: already in the cache \(locked\)$/m, 'the agent finds the cache in its new place');

# a move that cannot finish is undone: nothing lost, nothing left behind
my @entries = map { s{.*/}{}r } grep { -d } glob("$b/newcache/CEN*");
diag('cached: ' . join(', ', @entries));
my $last = $entries[-1];
make_path("$b/blocked/$last/in-the-way");
($rc, $out, $err) = cache_cmd($day31, 'move', "$b/blocked");
isnt($rc, 0, 'a move that cannot finish fails');
like($err, qr/cannot move .*\Q$last\E/, 'and names the package it could not move');
is(join(',', grep { !-d "$b/newcache/$_" } @entries), '', 'every package is still in the cache, where it was');
is(join(',', map { s{.*/}{}r } glob("$b/blocked/*")), $last, 'nothing was left in the new place but what was there before');
($rc, $out) = agent($day31, '--once');
like($out, qr/^${AGENT_INFO}cached CEN00B04 version 1: already in the cache \(locked\)$/m, 'the agent still uses the cache where it was');
($rc, $out, $err) = cache_cmd($day31, 'verify');
is($rc, 0, 'cache verify: every entry is whole') or diag($out, $err);
like($out, qr/^CEN00B04 version 1: verified$/m, 'and says so per package');
my ($victim) = grep { -f } glob("$b/newcache/CEN00B04.1/*"), glob("$b/newcache/CEN00B04.1/*/*");
chmod 0644, $victim;
open(my $vfh, '>>', $victim) or die "$victim: $!";
print $vfh "changed\n";
close $vfh;
($rc, $out, $err) = cache_cmd($day31, 'verify');
is($rc >> 8, 1, 'cache verify fails when a cached file was changed');
like($out, qr/^CEN00B04 version 1: differs: /m, 'and names the package');
($rc, $out, $err) = cache_cmd($day31, 'clear');
is($rc, 0, 'cache clear') or diag($err);
($rc, $out) = cache_cmd($day31, 'show');
like($out, qr/: 0 of 2097152 bytes used, 0 packages$/m, 'the cache is empty');
($rc, $out, $err) = cache_cmd($day31, 'size', 'lots');
is($rc >> 8, 2, 'a size that is not a number is bad usage');

done_testing();
