# The tree as it was: a package source with a sticky group-writable
# directory (1775), a setgid directory (2755), files and directories whose
# modification times have nanoseconds, and relative symbolic links (to a
# file, to a directory, a chain of links, nested ../ that stays inside) is
# published on the site's distribution point and on a child site's exactly
# as it was: types, modes, times to the nanosecond, link targets.  The
# agent's cache keeps the times and the links, with their targets; a
# manifest edited on the share (a link made to leave the package) is
# refused, saying why.  A source with a setuid file, an absolute link, a
# link leaving the package and a link through a link fails to build, the
# error naming every one of them.  Hostile package files whose tar carries a
# link that leaves the package, or a file written through a link, are
# refused at extraction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = agent_site();
my $b = $node->basedir;
my $ch1 = site_node('ch1', site_code => 'CH1');
$node->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CH1', 'Child', 'CEN')});
$ch1->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
link_sites($node, 'CEN', $ch1, 'CH1');
$node->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
my $cb = $ch1->basedir;
make_path("$cb/dp", "$cb/drive");
$ch1->safe_psql('site', qq{INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$cb/dp'), ('CH1', 'site_server_drive', 'D', '$cb/drive')});

sub run { my @c = @_; system(@c) == 0 or die "@c: $?"; }
sub write_file { my ($f, $t) = @_; open(my $fh, '>', $f) or die "$f: $!"; print $fh $t; close $fh; }
# touch -h: the link itself, never what it points to
sub stamp { my ($t, @f) = @_; run('touch', '-h', '-d', "\@$t", @f); }

# ---- the source tree
my $src = "$b/src/tree";
make_path("$src/sticky", "$src/sgid/deep", "$src/lib", "$src/bin", "$src/empty");
write_file("$src/sticky/a.txt", "a file in a sticky directory\n");
write_file("$src/sgid/b.bin", "b" x 1000);
write_file("$src/sgid/deep/c.txt", "deep\n");
write_file("$src/lib/libfoo.so.1.2.3", "\x7fELF" . ("x" x 500));
write_file("$src/bin/run.sh", "#!/bin/sh\necho run\n");
chmod 0755, "$src/bin/run.sh";
symlink('libfoo.so.1.2.3', "$src/lib/libfoo.so.1") or die;
symlink('libfoo.so.1', "$src/lib/libfoo.so") or die;                   # a chain
symlink('../lib/libfoo.so.1.2.3', "$src/bin/libfoo") or die;           # ../ inside
symlink('sgid', "$src/docs") or die;                                    # a directory
symlink('../../sticky/a.txt', "$src/sgid/deep/up") or die;             # nested ../
stamp('1700000000.123456789', "$src/sticky/a.txt");
stamp('1600000000.000000001', "$src/sgid/b.bin");
stamp('1650000000.987654321', "$src/sgid/deep/c.txt", "$src/sgid/deep/up");
stamp('1500000000.5', "$src/lib/libfoo.so.1.2.3", "$src/lib/libfoo.so.1", "$src/lib/libfoo.so");
stamp('1710000000.111111111', "$src/bin/run.sh", "$src/bin/libfoo", "$src/docs");
# directories last, deepest first, their modes after their contents
stamp('1400000000.222222222', "$src/sgid/deep");
stamp('1400000001.333333333', "$src/sgid", "$src/sticky", "$src/lib", "$src/bin", "$src/empty");
chmod 01775, "$src/sticky" or die;
chmod 02755, "$src/sgid" or die;
stamp('1400000001.333333333', "$src/sgid", "$src/sticky");

# Every name below a tree with its type, mode, mtime (ns) and link target.
sub listing
{
	my ($dir) = @_;
	my $out = `cd '$dir' && find . -mindepth 1 -printf '%P %y %m %T\@ %l\\n' | LC_ALL=C sort`;
	return $out;
}
my $want = listing($src);
like($want, qr/^sticky d 1775 1400000001\.3333333330 $/m, 'the source has a 1775 directory with a nanosecond mtime');
like($want, qr/^docs l 777 1710000000\.1111111110 sgid$/m, 'and a link to a directory');

$node->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Tree', '$src');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CEN}'),
       ('CEN00102', 'share_package', 'CEN00001', 'sites', '{CH1}');});
ok(wait_until($node, 'site', "SELECT count(*) = 2 FROM smsdist.jobs WHERE job_id IN ('CEN00101', 'CEN00102') AND state = 'completed'", 120),
	'the tree is shared at the site and sent to the child') or diag($node->safe_psql('site', "SELECT string_agg(job_id || ' ' || state || ' ' || coalesce(state_reason, ''), E'\\n') FROM smsdist.jobs"));
my $manifest = $node->safe_psql('site', "SELECT manifest FROM smsdist.package_builds WHERE package_id = 'CEN00001'");
like($manifest, qr/\Asmsdist-manifest 2\n/, 'the manifest is version 2');
like($manifest, qr/^\@{64} 11 0777 1500000000\.500000000 lib\/libfoo\.so -> libfoo\.so\.1$/m, 'it lists a link with its target and time');
like($manifest, qr/^-{64} 0 1775 1400000001\.333333333 sticky\/$/m, 'and a directory with its mode and time');
is(listing("$b/dp/SMS_PKGC/CEN00001"), $want, 'the site\'s distribution point holds the tree as it was: types, modes, times, targets');
ok(wait_until($ch1, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations WHERE package_id = 'CEN00001'", 60), 'the child published it');
is(listing("$cb/dp/SMS_PKGC/CEN00001"), $want, 'so does the child\'s distribution point');

# content validation compares the new attributes too
my $dp = "$b/dp/SMS_PKGC/CEN00001";
stamp('1400000099.0', "$dp/sgid/b.bin");
unlink("$dp/lib/libfoo.so") or die;
symlink('libfoo.so.1.2.3', "$dp/lib/libfoo.so") or die;
chmod 0755, "$dp/sticky" or die;
$node->safe_psql('site', "SELECT smsdist.validate_content()");
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.content_validations WHERE package_id = 'CEN00001' AND result = 'repaired' AND changed_count = 3", 60),
	'content validation finds a file time, a link target and a directory mode changed')
  or diag($node->safe_psql('site', 'SELECT * FROM smsdist.content_validations'));
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.status_messages WHERE message_id = 3207 AND package_id = 'CEN00001'", 60),
	'and the tree is published again');
is(listing($dp), $want, 'as it was');

# ---- what cannot be built: every offending path named in one error
my $bad = "$b/src/bad";
make_path("$bad/d");
write_file("$bad/ok.txt", "fine\n");
write_file("$bad/suid", "x");
chmod 04755, "$bad/suid" or die;
symlink('/etc/passwd', "$bad/abs") or die;
symlink('../../outside', "$bad/d/escape") or die;
symlink('d', "$bad/dl") or die;
symlink('dl/../ok.txt', "$bad/through") or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00002', 'Bad', '$bad');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00201', 'share_package', 'CEN00002', 'sites', '{CEN}');});
ok(wait_until($node, 'site', "SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN00201'", 60), 'a source with bad links and a setuid file fails');
my $reason = $node->safe_psql('site', "SELECT state_reason FROM smsdist.jobs WHERE job_id = 'CEN00201'");
like($reason, qr/has 4 paths that cannot be packaged/, 'one error for the four') or diag($reason);
like($reason, qr/"abs" \(a symbolic link to "\/etc\/passwd": its target is an absolute path\)/, 'the absolute link is named');
like($reason, qr/"d\/escape" \(a symbolic link to "..\/..\/outside": its target leaves the package\)/, 'the link leaving the package is named');
like($reason, qr/"through" \(a symbolic link to "dl\/..\/ok.txt": its target passes through "dl", a symbolic link\)/, 'the link through a link is named');
like($reason, qr/"suid" \(mode 4755: the setuid bit\)/, 'the setuid file is named');

# ---- the agent's cache: times and links kept; an edited manifest refused
my $plain = "$b/src/plain";
make_path("$plain/sub");
write_file("$plain/setup.bin", "setup" x 100);
write_file("$plain/sub/data.txt", "data\n");
stamp('1690000000.123456789', "$plain/setup.bin");
stamp('1690000001.000000007', "$plain/sub/data.txt");
stamp('1690000002.5', "$plain/sub");
my $agent = agent_path();
my $site_key = site_key_file($node);
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'name LIKE ''WKS%''');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00003', 'Plain', '$plain');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00003', 'Install', 'setup.bin'), ('CEN00001', 'Install', 'bin/run.sh');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00301', 'share_package', 'CEN00003', 'sites', '{CEN}');});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00301'", 60), 'the plain package is shared');
my $keyfile = machine_key_file($node, 'CEN00001');
for my $p ('3', '1')
{
	$node->safe_psql('site', "INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
		VALUES ('CEN00C0$p', 'Advert $p', 'CEN0000$p', 'Install', 'CEN00A01', '2026-01-01 00:00')");
	ok(wait_until($node, 'site', "SELECT position('CEN00C0$p' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0"
		  . " AND position('[location' IN coalesce(pg_read_file('$b/cap/pkginfo.box/CEN0000$p.NAL', 0, 100000, true), '')) > 0"
		  . " AND (pg_stat_file('$b/cap/pkginfo.box/CEN0000$p.PKG', true)).size IS NOT NULL", 60),
		"advertisement $p reached the CAP");
}
my ($out, $err) = ('', '');
IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $keyfile,
	'--cache-size', '1', '--now', '2026-12-01T00:00:00Z', '--once' ], '>', \$out, '2>', \$err);
like($out, qr/^${AGENT_INFO}cached CEN00003 version 1: .*every file verified$/m, 'the agent caches the plain package') or diag($out, $err);
my $cached = listing("$b/ws/cache/CEN00003.1");
like($cached, qr/^setup.bin f \d+ 1690000000\.1234567890 $/m, 'a cached file keeps its time to the nanosecond');
like($cached, qr/^sub\/data.txt f \d+ 1690000001\.0000000070 $/m, 'so does one in a directory');
like($cached, qr/^sub d \d+ 1690000002\.5000000000 $/m, 'and the directory keeps its time');
like($out, qr/^${AGENT_INFO}cached CEN00001 version 1: .*every file verified$/m, 'the agent caches the package with links') or diag($out, $err);
my $tree = listing("$b/ws/cache/CEN00001.1");
my @want_links = grep { / l / } split /\n/, $want;
is_deeply([ grep { / l / } split /\n/, $tree ], \@want_links,
	'its links arrive in the cache as links, with their targets and times') or diag($tree);
is(scalar(@want_links), 5, 'all five of them');
like($tree, qr/^sgid\/deep\/c.txt f \d+ 1650000000\.9876543210 $/m, 'a file below keeps its time');
like($tree, qr/^sticky d 1755 1400000001\.3333333330 $/m, 'the 1775 directory keeps its sticky bit and time in the cache, not group write');
like($tree, qr/^sgid d 2755 1400000001\.3333333330 $/m, 'the 2755 directory keeps its setgid bit');
sub run_advert
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key,
		'--machine-key', $keyfile, '--cache-size', '1', '--now', '2026-12-01T00:00:00Z', '--once',
		'--run', 'CEN00C01' ], '>', \$o, '2>', \$e);
	return ($o, $e);
}
($out, $err) = run_advert();
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "Install" of package CEN00001 succeeded/m,
	'its program runs: the check before the run accepts the links of the manifest') or diag($out, $err);
# moved to another file system (a copy): links, modes and times go along
my $moved = "/dev/shm/smsdist-043-$$";
END { remove_tree($moved) if defined $moved; }
($out, $err) = ('', '');
IPC::Run::run([ $agent, '--state-dir', "$b/ws", 'cache', 'move', $moved ], '>', \$out, '2>', \$err);
is(listing("$moved/CEN00001.1"), $tree, 'the cache moved to another file system keeps links, modes and times') or diag($out, $err);
($out, $err) = run_advert();
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "Install" of package CEN00001 succeeded/m,
	'and the program runs from it') or diag($out, $err);
# a cached link given another target: the check before the run refuses it
unlink("$moved/CEN00001.1/docs") or die;
symlink('sticky', "$moved/CEN00001.1/docs") or die;
($out, $err) = run_advert();
like($out, qr/^${AGENT_INFO}not running advert CEN00C01: .*the cached copy of version 1 does not match its manifest: the link "docs" points to "sticky", not "sgid"\./m,
	'a cached link whose target changed runs nothing, and the reason says why') or diag($out, $err);

# a manifest on the share whose link leaves the package: the agent refuses it
my $pub = "$b/dp/SMS_PKGC/CEN00001.1.manifest";
open(my $mfh, '<', $pub) or die; my $m = do { local $/; <$mfh> }; close $mfh;
my $edited = $m =~ s/ bin\/libfoo -> \.\.\/lib\/libfoo\.so\.1\.2\.3$/ bin\/libfoo -> ..\/..\/..\/etc\/passwd/mr;
isnt($edited, $m, 'the published manifest is edited: bin/libfoo leaves the package');
write_file($pub, $edited);
($out, $err) = ('', '');
IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws2", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $keyfile,
	'--cache-size', '1', '--now', '2026-12-01T00:00:00Z', '--once' ], '>', \$out, '2>', \$err);
like($out . $err, qr/^${AGENT_INFO}not downloaded CEN00001 version 1: the manifest at "[^"]*" does not match the package hash/m,
	'the agent refuses the edited manifest, with the reason') or diag($out, $err);
ok(!-e "$b/ws2/cache/CEN00001.1", 'and caches nothing of it');
write_file($pub, $m);

# ---- hostile package files: a link leaving the package, a file through a link
sub hostile
{
	my ($name, $make, $re, $what) = @_;
	my $d = "$b/hostile/$name";
	make_path($d);
	if (($make->($d) // '') ne 'built')
	{
		write_file("$d/.smsdist-manifest", "smsdist-manifest 2\n");
		my @names = split ' ', `cd '$d' && ls -A | grep -v '^.smsdist-manifest\$' | LC_ALL=C sort`;
		run('tar', '--format=pax', '-czf', "$b/hostile/$name.tar.gz", '-C', $d, @names, '.smsdist-manifest');
	}
	make_path("$b/hostile/$name.out");
	my ($ret, $o, $e) = $node->psql('site', "SELECT smsdist.extract_package('$b/hostile/$name.tar.gz', '$b/hostile/$name.out')");
	like($e, $re, $what);
	ok(!-e "$b/outside-written", "$what: nothing written outside");
}
hostile('escape', sub { symlink('../../../outside-written', "$_[0]/l") or die; },
	qr/refusing entry "l".*symbolic link to "..\/..\/..\/outside-written": its target leaves the package/, 'a link leaving the package is refused at extraction');
hostile('absolute', sub { symlink("$b/outside-written", "$_[0]/l") or die; },
	qr/refusing entry "l".*its target is an absolute path/, 'an absolute link is refused at extraction');
hostile('through', sub {
		my ($d) = @_;
		make_path("$d/sub");
		symlink('sub', "$d/l") or die;
		write_file("$d/x", "through the link\n");
		# the tar names x as l/x: written through the link if it were followed
		run('tar', '--format=pax', '-cf', "$d/../through.tar", '-C', $d, 'sub', 'l');
		run('tar', '--format=pax', '-rf', "$d/../through.tar", '-C', $d, '--transform=s,^x$,l/x,', 'x');
		write_file("$d/.smsdist-manifest", "smsdist-manifest 2\n");
		run('tar', '--format=pax', '-rf', "$d/../through.tar", '-C', $d, '.smsdist-manifest');
		run('gzip', '-f', "$d/../through.tar");
		unlink("$d/x");
		return 'built';
	}, qr/refusing entry "l\/x".*"l" is a symbolic link, not a directory/, 'a file written through a link is refused at extraction');
ok(!-e "$b/hostile/through/sub/x", 'and nothing was written through it');

# ---- version 2 as a delta to the child: a time alone, a link's target and a
# directory's mode changed count as changes, and arrive
stamp('1600000099.000000099', "$src/sgid/b.bin");
unlink("$src/lib/libfoo.so") or die;
symlink('libfoo.so.1.2.3', "$src/lib/libfoo.so") or die;
stamp('1500000001.000000001', "$src/lib/libfoo.so");
chmod 01777, "$src/empty" or die;
$want = listing($src);
$node->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00104', 'share_package', 'CEN00001', 'sites', '{CH1}');});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00104'", 120), 'version 2 reaches the child');
is($node->safe_psql('site', "SELECT delta_base FROM smsdist.job_site_status WHERE job_id = 'CEN00104' AND site_code = 'CH1' AND phase = 'send'"),
	'1', 'as a delta from version 1');
is($node->safe_psql('site', "SELECT files_sent || ' sent, ' || files_deleted || ' deleted, ' || files_kept || ' kept' FROM smsdist.package_deltas WHERE package_id = 'CEN00001' AND source_version = 2"),
	'1 sent, 0 deleted, 4 kept', 'the file whose time alone changed is sent, the others kept');
ok(wait_until($ch1, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations WHERE package_id = 'CEN00001' AND source_version = 2", 60),
	'the child published version 2');
is(listing("$cb/dp/SMS_PKGC/CEN00001"), $want, 'the child\'s distribution point holds version 2 as it is: the new time, target and mode');

done_testing();
