# Package icons: a package names a file of its tree as its icon
# (packages.icon_file); the Offer Manager reads it from the published tree,
# checks it, and writes it as <PACKAGE>.ICO beside the .PKG, which names it
# and carries its SHA-256 (the .PKG is signed, the .ICO is not); the
# policy carries the same; legacy and advanced agents keep the icon with
# the offer in their state directory.  A bad icon (too large, not an icon,
# a symbolic link, a path out of the tree) is refused with its reason in
# package_icons and status message 3600, and that package's offer still
# goes out, without an icon; an .ICO changed on the share is not kept.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use Digest::SHA qw(sha256_hex);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $agent = agent_path();
my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
$ENV{TZ} = 'UTC';

sub spew { my ($f, $t) = @_; open(my $fh, '>:raw', $f) or die "$f: $!"; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<:raw', $f) or return undef; local $/; my $t = <$fh>; close $fh; return $t; }

# A 16x16 32-bit icon: the ICONDIR, one ICONDIRENTRY, a BITMAPINFOHEADER
# (height doubled: image and mask), the pixels and the AND mask.
sub bmp_icon
{
	my ($shade) = @_;
	my $pixels = pack('C', $shade) x (16 * 16 * 4);
	my $mask = "\0" x (16 * 4);
	my $dib = pack('V l l v v V V l l V V', 40, 16, 32, 1, 32, 0, length($pixels) + length($mask), 0, 0, 0, 0)
	  . $pixels . $mask;
	return pack('v v v', 0, 1, 1) . pack('C C C C v v V V', 16, 16, 0, 0, 1, 32, length($dib), 22) . $dib;
}
my $icon = bmp_icon(0x40);
my $png = "\x89PNG\r\n\x1a\n" . pack('N', 13) . 'IHDR' . pack('N N C C C C C', 16, 16, 8, 6, 0, 0, 0) . "\0" x 4;

# one source tree per package
my %src = map { $_ => "$b/src/$_" } qw(good large png link);
make_path(map { "$_/art" } values %src);
spew("$_/setup.exe", "setup\n") for values %src;
spew("$src{good}/art/app.ico", $icon);
spew("$src{large}/art/app.ico", $icon . ("\0" x (300 * 1024)));
spew("$src{png}/art/app.ico", $png);
spew("$src{link}/art/real.ico", $icon);
symlink('real.ico', "$src{link}/art/app.ico") or die "symlink: $!";

$node->safe_psql('postgres', 'CREATE ROLE agent LOGIN IN ROLE smsdist_client');
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent', 'CEN00001');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A01', 'direct', 'CEN00001');
INSERT INTO smsdist.packages (package_id, name, source_directory, icon_file) VALUES
  ('CEN00B01', 'Good', '$src{good}', 'art/app.ico'), ('CEN00B02', 'Large', '$src{large}', 'art/app.ico'),
  ('CEN00B03', 'Png', '$src{png}', 'art/app.ico'), ('CEN00B04', 'Link', '$src{link}', 'art/app.ico'),
  ('CEN00B05', 'None', '$src{good}', NULL);
INSERT INTO smsdist.programs (package_id, program_name, command_line)
  SELECT package_id, 'Install', 'setup.exe /q' FROM smsdist.packages;
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites)
  SELECT 'share_package', package_id, 'sites', '{CEN}' FROM smsdist.packages;
});

# --- a path out of the tree is refused where it is set
for my $bad ('../../etc/passwd', '/etc/passwd', 'art/../../x.ico', 'art/', '')
{
	my ($ret, $out, $err) = $node->psql('site', "UPDATE smsdist.packages SET icon_file = '$bad' WHERE package_id = 'CEN00B05'");
	like($err, qr/invalid path in a package "\Q$bad\E": it must be relative/, "icon_file '$bad' is refused");
}

ok(wait_until($node, 'site', "SELECT count(*) = 5 FROM smsdist.package_locations", 120), 'the packages are published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
  SELECT 'CEN00C0' || right(package_id, 1), name, package_id, 'Install', 'CEN00A01', '2026-01-01 00:00'
    FROM smsdist.packages;
});
ok(wait_until($node, 'site', "SELECT count(*) = 4 FROM smsdist.package_icons", 60), 'the Offer Manager read the four icons');
ok(wait_until($node, 'site', q{SELECT jsonb_array_length(smsdist.machine_policy('CEN00001')->'advertisements') = 5}, 60),
	'the machine\'s policy has the five advertisements');
my $box = "$b/cap/pkginfo.box";
ok(SmsTest::eventually(sub { (grep { -f "$box/CEN00B0$_.PKG" } 1 .. 5) == 5 && -f "$box/CEN00B01.ICO" }),
	'every package file and the good icon reach the CAP');

# --- the good icon
is(slurp("$box/CEN00B01.ICO"), $icon, 'the .ICO on the CAP is the icon of the package, byte for byte');
is(slurp("$b/drive/inboxes/pkginfo.box/CEN00B01.ICO"), $icon, 'and so is the site server\'s copy');
my $sha = sha256_hex($icon);
like(slurp("$box/CEN00B01.PKG"), qr/\nicon_sha256=$sha\nicon=CEN00B01\.ICO\n/, 'the .PKG names the icon and its SHA-256');
is($node->safe_psql('site', q{SELECT sha256 || ' ' || bytes || ' ' || icon_file || ' ' || (problem IS NULL)
                               FROM smsdist.package_icons WHERE package_id = 'CEN00B01'}),
	"$sha " . length($icon) . ' art/app.ico true', 'package_icons records the good icon');
my $pol = $node->safe_psql('site', q{
SELECT string_agg(a->>'package_id' || '=' || coalesce(a->'icon'->>'file', '-') || ':' || coalesce(a->'icon'->>'sha256', '-'), ','
                  ORDER BY a->>'package_id')
  FROM jsonb_array_elements(smsdist.machine_policy('CEN00001')->'advertisements') a});
is($pol, "CEN00B01=art/app.ico:$sha,CEN00B02=-:-,CEN00B03=-:-,CEN00B04=-:-,CEN00B05=-:-",
	'the policy carries the good icon\'s file and hash, and no icon for the others');

# --- the bad ones: refused with the reason, their offers still go out
for my $p (2 .. 5)
{
	like(slurp("$box/CEN00B0$p.PKG"), qr/\nicon=none\n/, "package CEN00B0$p goes out with icon=none");
	ok(!-e "$box/CEN00B0$p.ICO", "and no .ICO");
}
my %why = split /\|/, $node->safe_psql('site', q{
SELECT string_agg(package_id || '|' || problem, '|' ORDER BY package_id) FROM smsdist.package_icons WHERE problem IS NOT NULL});
like($why{CEN00B02}, qr/^the icon "art\/app\.ico" is larger than 262144 bytes \(\d+ bytes\)$/, 'too large: refused, and why');
like($why{CEN00B03}, qr/^the icon "art\/app\.ico" was refused: not an icon file: it is a PNG image/, 'a PNG renamed: refused, and why');
like($why{CEN00B04}, qr/^the icon "art\/app\.ico" is a symbolic link$/, 'a symbolic link: refused, and why');
is($node->safe_psql('site', q{SELECT string_agg(package_id, ',' ORDER BY package_id) FROM smsdist.status_messages WHERE message_id = 3600}),
	'CEN00B02,CEN00B03,CEN00B04', 'status message 3600 says each refused icon once');
like($node->safe_psql('site', q{SELECT message FROM smsdist.status_messages WHERE message_id = 3600 AND package_id = 'CEN00B04'}),
	qr/^The icon of package CEN00B04 \(version 1\) was refused; its offers go out without an icon: the icon "art\/app\.ico" is a symbolic link$/,
	'with the package, its version and the reason');

# a published link pointed at /etc/passwd is still a link: nothing of it goes out
my $tree = $node->safe_psql('site', q{SELECT path FROM smsdist.package_locations WHERE package_id = 'CEN00B04'});
unlink("$tree/art/app.ico") or die;
symlink('/etc/passwd', "$tree/art/app.ico") or die;
# (the step that writes the renamed offer reads the icon again)
$node->safe_psql('site', q{UPDATE smsdist.advertisements SET name = 'Link again' WHERE advert_id = 'CEN00C04'});
my $outbox = "$b/drive/inboxes";
ok(SmsTest::eventually(sub { (slurp("$outbox/offerinf.box/CEN00C04.OFR") // '') =~ /\nname=Link again\n/ }),
	'the Offer Manager has run again');
like(slurp("$outbox/pkginfo.box/CEN00B04.PKG"), qr/\nicon=none\n/, 'a link to /etc/passwd in the published tree goes out as icon=none');
ok(!-e "$outbox/pkginfo.box/CEN00B04.ICO", 'and no .ICO');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3600 AND package_id = 'CEN00B04'}),
	'1', 'the same problem is not said again');

# --- the agents keep the good icon with the offer
sub run_agent
{
	my ($dir, @mode) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws/$dir", '--once', @mode ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}
my $mkey = machine_key_file($node, 'CEN00001');
my @legacy = ('--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $mkey);
my ($rc, $out, $err) = run_agent('legacy', @legacy);
is($rc, 0, 'legacy agent: the poll runs') or diag($err);
like($out, qr/^${AGENT_INFO}offer advert CEN00C01 package CEN00B01/m, 'legacy agent: the package with the icon is offered');
like($out, qr/^${AGENT_INFO}icon CEN00B01 kept: \d+ bytes, SHA-256 $sha$/m, 'legacy agent: it says it kept the icon');
is(slurp("$b/ws/legacy/icons/CEN00B01.ICO"), $icon, 'legacy agent: the icon kept with the offer is the package\'s, byte for byte');
is(join(',', map { s/.*\///r } sort glob("$b/ws/legacy/icons/*")), 'CEN00B01.ICO', 'legacy agent: and no other icon');
like($out, qr/^${AGENT_INFO}offer advert CEN00C0$_ /m, "legacy agent: advertisement CEN00C0$_ is offered without an icon")
  for 2 .. 5;

my $mp = 'host=' . $node->host . ' port=' . $node->port . ' dbname=site user=agent';
($rc, $out, $err) = run_agent('advanced', '--management-point', $mp);
is($rc, 0, 'advanced agent: the poll runs') or diag($err);
is(slurp("$b/ws/advanced/icons/CEN00B01.ICO"), $icon, 'advanced agent: the icon kept with the offer is the package\'s');
is(join(',', map { s/.*\///r } sort glob("$b/ws/advanced/icons/*")), 'CEN00B01.ICO', 'advanced agent: and no other icon');

# --- a tampered .ICO on a share is not kept (a copy of the CAP, which the
# Inbox Manager would otherwise put right)
system('cp', '-a', "$b/cap", "$b/cap-copy") == 0 or die "cp: $?";
my $bad = $icon;
substr($bad, 100, 1) = "\xff";
spew("$b/cap-copy/pkginfo.box/CEN00B01.ICO", $bad);
my @copy = ('--logon-server', "$b/logon", '--cap', "$b/cap-copy", '--site-key', $site_key, '--machine-key', $mkey);
($rc, $out, $err) = run_agent('tampered', @copy);
is($rc, 0, 'tampered share: the poll runs') or diag($err);
like($out . $err, qr/Icon "\Q$b\E\/cap-copy\/pkginfo\.box\/CEN00B01\.ICO" of package CEN00B01 refused: its SHA-256 is not the one the site gave/,
	'tampered share: the icon is refused, and why');
ok(!-e "$b/ws/tampered/icons/CEN00B01.ICO", 'tampered share: the icon is not kept');
like($out, qr/^${AGENT_INFO}offer advert CEN00C01 package CEN00B01/m, 'tampered share: the offer still goes out');
# an agent that kept the good icon keeps it
($rc, $out, $err) = run_agent('legacy', @copy);
is(slurp("$b/ws/legacy/icons/CEN00B01.ICO"), $icon, 'an agent that kept the good icon keeps it when the share\'s is changed');

# --- no icon any more: the site and the agent forget it
$node->safe_psql('site', q{UPDATE smsdist.packages SET icon_file = NULL WHERE package_id = 'CEN00B01'});
ok(SmsTest::eventually(sub { !-e "$box/CEN00B01.ICO" && (slurp("$box/CEN00B01.PKG") // '') =~ /\nicon=none\n/ }),
	'a package whose icon is removed goes out with icon=none, and its .ICO leaves the CAP');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.package_icons WHERE package_id = 'CEN00B01'}), '0',
	'and package_icons forgets it');
($rc, $out, $err) = run_agent('legacy', @legacy);
ok(!-e "$b/ws/legacy/icons/CEN00B01.ICO", 'the agent removes the icon it kept');

$node->stop;
done_testing();
