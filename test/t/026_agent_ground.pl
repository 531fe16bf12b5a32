# The client agent's own ground, from the attacker's side.  Programs run
# from the cache as root, so:
# - whatever modes the manifest gives (0777, 0666, a sticky 01777
#   directory; setuid and setgid files are never distributed: the build
#   refuses them, t/043), cached files are the agent's, 0644 or
#   0755, and directories 0755 plus the sticky or setgid bit the
#   manifest gives (1777 is cached 1755); a cache directory writable by others is
#   made 0755 (and said), and one below a directory others may write is
#   refused;
# - a cached package changed after its download (bytes appended or changed,
#   a file made a link, a directory made a link, a mode changed, a file or
#   a FIFO added, the kept manifest edited or removed) runs nothing: the run
#   is refused with the reason (status message 10011), the copy is dropped
#   and downloaded again at the next poll, and then the program runs;
# - a program runs in a session of its own without a controlling terminal
#   (it cannot open /dev/tty, so no TIOCSTI into the terminal that started
#   the agent), with a clean environment (no PGPASSWORD, PGPASSFILE or any
#   other variable of the agent's; a fixed PATH) and none of the agent's
#   descriptors beyond 0, 1 and 2.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use File::Copy qw(copy);
use POSIX qw(mkfifo);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $agent = agent_path();
my $me = getpwuid($>);
my $home = (getpwuid($>))[7];

my $node = agent_site();
my $b = $node->basedir;
make_path("$b/src/sub", "$b/src/empty", "$b/src/sticky", "$b/out");
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die "$f: $!"; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }

# The probe: what the program sees of its environment, session, terminal
# and descriptors; ran.txt counts its runs.
spew("$b/src/probe.sh", <<"EOF");
out='$b/out'
env > "\$out/env.txt"
cat /proc/\$\$/stat > "\$out/stat.txt"
p=\$PPID
while [ "\$p" -gt 1 ] && ! grep -q '^[0-9]* (smsdist-agent) ' /proc/\$p/stat; do p=\$(cut -d' ' -f4 /proc/\$p/stat); done
cat /proc/\$p/stat > "\$out/agent-stat.txt"
if ( : </dev/tty ) 2>/dev/null; then echo opened > "\$out/tty.txt"; else echo none > "\$out/tty.txt"; fi
ls -l /proc/\$\$/fd > "\$out/fds.txt"
echo ran >> "\$out/ran.txt"
EOF
spew("$b/src/world.txt", "anyone may write me\n");
spew("$b/src/private.txt", "only mine\n");
spew("$b/src/sub/tool.sh", "echo tool\n");
chmod 0777, "$b/src/probe.sh";
chmod 0666, "$b/src/world.txt";
chmod 0600, "$b/src/private.txt";
chmod 0700, "$b/src/sub/tool.sh";
chmod 0777, "$b/src/sub", "$b/src/empty";
chmod 01777, "$b/src/sticky";

$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A01', 'direct', 'CEN00001');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Probe', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Probe', 'sh probe.sh');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time) VALUES
  ('CEN00C01', 'Probe', 'CEN00B01', 'Probe', 'CEN00A01', '2026-11-01 00:00');});
ok(wait_until($node, 'site', qq{SELECT count(*) = 1 FROM smsdist.package_locations}, 60)
	  && wait_until($node, 'site', qq{SELECT position('CEN00C01' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0}, 60)
	  # the package's location reaches the CAP after its publication
	  && wait_until($node, 'site', qq{SELECT coalesce(pg_read_file('$b/cap/pkginfo.box/CEN00B01.NAL', 0, 100000, true), '') LIKE '%[location%'}, 60),
	'the package is published and advertised, with its location');
my $manifest = slurp("$b/dp/SMS_PKGC/CEN00B01.1.manifest");
like($manifest, qr/ 0777 \S+ probe\.sh$/m, 'hostile: the manifest gives probe.sh mode 0777');
like($manifest, qr/ 0666 \S+ world\.txt$/m, 'hostile: the manifest gives world.txt mode 0666');
like($manifest, qr/ 1777 \S+ sticky\/$/m, 'hostile: the manifest gives the empty directory sticky/ mode 1777');

my $cache = "$b/ws/cache";
my $pkg = "$cache/CEN00B01.1";
my $site_key = site_key_file($node);
my $machine_key = machine_key_file($node, 'CEN00001');

our $state = "$b/ws";
# The agent is started with descriptors 5 and 7 open (not close-on-exec)
# and secrets in its environment; with a terminal when $tty.
sub agent
{
	my ($tty, @more) = @_;
	my ($in, $out, $err) = ('', '', '');
	local $ENV{PGPASSWORD} = 's3cret-pgpassword';
	local $ENV{PGPASSFILE} = "$b/pgpass";
	local $ENV{SMSDIST_AGENT_SECRET} = 'agent-only';
	local $ENV{PATH} = "$b/evil-bin:$ENV{PATH}";
	local $ENV{LD_LIBRARY_PATH_EXTRA} = 'x';
	my @cmd = ('sh', '-c', 'exec 5<"$0" 7>>"$0"; exec "$@"', "$b/inherited.txt",
		$agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', $state, '--logon-server', "$b/logon", '--cap', "$b/cap",
		'--site-key', $site_key, '--machine-key', $machine_key,
		'--now', '2026-12-01T12:00:00Z', '--once', @more);
	if ($tty)
	{
		IPC::Run::run(\@cmd, '<pty<', \$in, '>pty>', \$out, '2>', \$err);
		$out =~ s/\r\n/\n/g;
	}
	else
	{
		IPC::Run::run(\@cmd, '<', \$in, '>', \$out, '2>', \$err);
	}
	return ($?, $out, $err);
}
spew("$b/inherited.txt", '');

# a cache directory anyone may write: made the agent's own
make_path("$b/ws");
mkdir $cache;
chmod 0777, $cache;
my ($rc, $out, $err) = agent(0);
is($rc, 0, 'the poll runs') or diag($err);
like($err, qr/the cache directory "\Q$cache\E" had mode 0777; made it 0755, so that only the agent can change it/,
	'hostile: a cache directory writable by others is made 0755, and the agent says so');
is((stat $cache)[2] & 07777, 0755, 'the cache directory is 0755 now');
ok(-d $pkg, 'the package is in the cache') or diag($out);

# modes in the cache, whatever the manifest said
my %want = ('probe.sh' => 0755, 'world.txt' => 0644,
	'private.txt' => 0644, 'sub/tool.sh' => 0755, 'sub' => 0755, 'empty' => 0755, 'sticky' => 01755, '.' => 0755);
for my $f (sort keys %want)
{
	my @st = lstat("$pkg/$f");
	is(sprintf('%04o %d', $st[2] & 07777, $st[4]), sprintf('%04o %d', $want{$f}, $>),
		"cached $f: mode " . sprintf('%04o', $want{$f}) . ", owned by the agent (no group/other write; a directory keeps only its sticky bit)");
}

# the program, with a terminal: its own session, no terminal, a clean
# environment, no inherited descriptor
($rc, $out, $err) = agent(1, '--run', 'CEN00C01');
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "Probe" of package CEN00B01 succeeded/m, 'the program runs (the agent with a terminal)')
  or diag($out, $err);
sub stat_fields { my ($t) = @_; $t =~ s/^.*\) //s; return split / /, $t; }
my @prog = stat_fields(slurp("$b/out/stat.txt"));
my @agt = stat_fields(slurp("$b/out/agent-stat.txt"));
# after "(comm) ": state ppid pgrp session tty_nr
ok(@prog > 5 && @agt > 5, 'the program recorded its process state and the agent\'s');
isnt($prog[3], $agt[3], "hostile: the program's session ($prog[3]) is not the agent's ($agt[3])");
is($prog[3], $prog[2], 'it leads a session (and process group) of its own');
isnt($agt[4], 0, 'the agent has a controlling terminal in this run');
is($prog[4], 0, 'hostile: the program has no controlling terminal');
is(slurp("$b/out/tty.txt"), "none\n", 'hostile: the program cannot open /dev/tty (no TIOCSTI into the agent\'s terminal)');

my %env = map { /^([^=]+)=(.*)$/ ? ($1 => $2) : () } split /\n/, slurp("$b/out/env.txt");
ok(%env, 'the program wrote its environment');
ok(!exists $env{PGPASSWORD}, 'hostile: the program does not see PGPASSWORD');
ok(!exists $env{PGPASSFILE}, 'hostile: the program does not see PGPASSFILE');
ok(!exists $env{SMSDIST_AGENT_SECRET} && !exists $env{LD_LIBRARY_PATH_EXTRA}, 'hostile: nor any other variable of the agent\'s');
is($env{PATH}, "$pkg:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	'hostile: PATH is the package directory and a fixed list, not the agent\'s');
is(join(' ', map { $env{$_} // '' } qw(HOME USER LOGNAME)), "$home $me $me", 'HOME, USER and LOGNAME are the account\'s');
my @extra = grep { !/^(PATH|HOME|USER|LOGNAME|LANG|LC_ALL|TZ|PWD)$/ } sort keys %env;
is("@extra", '', 'nothing else but the documented variables (and the shell\'s PWD)');

my $fds = slurp("$b/out/fds.txt");
unlike($fds, qr/\Q$b\E\/inherited\.txt/, 'hostile: the descriptors the agent inherited (5 and 7) are closed in the program');
my @above = grep { $_->[0] > 2 } map { / (\d+) -> (.*)$/ ? [ $1, $2 ] : () } split /\n/, $fds;
is(join(',', map { "$_->[0]" } grep { $_->[1] ne '/dev/null' && $_->[1] !~ /probe\.sh$/ } @above), '',
	'no descriptor above 2 but the shell\'s own (its script, /dev/null)') or diag($fds);
is(slurp("$b/out/ran.txt"), "ran\n", 'the probe ran once');

# Tampering with the cached copy, then asking for a run: each case names
# the reason the agent gives.
my @cases = (
	[ 'bytes appended to probe.sh', sub { open(my $fh, '>>', "$pkg/probe.sh") or die; print $fh "echo owned > '$b/out/owned.txt'\n"; close $fh; },
	  qr/"probe\.sh" has \d+ bytes, not \d+/ ],
	[ 'probe.sh changed, same size', sub { my $t = slurp("$pkg/probe.sh"); $t =~ s/echo ran/echo RAN/; chmod 0755, "$pkg/probe.sh"; spew("$pkg/probe.sh", $t); },
	  qr/"probe\.sh" has changed \(\d+ bytes, SHA-256 [0-9a-f]{12}\.\.\., not \d+ bytes, [0-9a-f]{12}\.\.\.\)/ ],
	[ 'probe.sh replaced with a symbolic link to a copy', sub { copy("$pkg/probe.sh", "$b/out/copy.sh") or die; unlink "$pkg/probe.sh"; symlink("$b/out/copy.sh", "$pkg/probe.sh") or die; },
	  qr/"probe\.sh" is a symbolic link \(or lies below one\)/ ],
	[ 'the directory sub replaced with a symbolic link to a copy', sub { remove_tree("$b/out/subcopy"); make_path("$b/out/subcopy"); copy("$pkg/sub/tool.sh", "$b/out/subcopy/tool.sh") or die; chmod 0755, "$b/out/subcopy/tool.sh"; remove_tree("$pkg/sub"); symlink("$b/out/subcopy", "$pkg/sub") or die; },
	  qr/"sub\/tool\.sh" is a symbolic link \(or lies below one\)/ ],
	[ 'world.txt made 0666', sub { chmod 0666, "$pkg/world.txt"; },
	  qr/"world\.txt" has mode 0666, not 0644/ ],
	[ 'probe.sh made setuid', sub { chmod 04755, "$pkg/probe.sh"; },
	  qr/"probe\.sh" has mode 4755, not 0755/ ],
	[ 'the directory sub made 0777', sub { chmod 0777, "$pkg/sub"; },
	  qr/directory "sub" has owner \d+ and mode 0777, not \d+ and 0755/ ],
	[ 'a file added', sub { spew("$pkg/sub/extra.sh", "echo extra\n"); chmod 0755, "$pkg/sub/extra.sh"; },
	  qr/it holds 5 files, the manifest lists 4/ ],
	[ 'world.txt replaced with a FIFO', sub { unlink "$pkg/world.txt"; mkfifo("$pkg/world.txt", 0644) or die; },
	  qr/"world\.txt" is not a regular file/ ],
	[ 'the kept manifest edited to match a changed probe.sh', sub {
		my $m = slurp("$cache/CEN00B01.1.manifest");
		open(my $fh, '>>', "$pkg/probe.sh") or die; print $fh "echo owned > '$b/out/owned.txt'\n"; close $fh;
		my $sum = `sha256sum '$pkg/probe.sh'`; $sum =~ s/\s.*//s;
		my $size = -s "$pkg/probe.sh";
		$m =~ s/^[0-9a-f]{64} \d+ (\d{4}) (\S+) probe\.sh$/$sum $size $1 $2 probe.sh/m;
		spew("$cache/CEN00B01.1.manifest", $m); },
	  qr/the manifest kept in the cache does not match the package hash \(SHA-256 [0-9a-f]{12}\.\.\., not [0-9a-f]{12}\.\.\.\)/ ],
	[ 'the kept manifest removed', sub { unlink "$cache/CEN00B01.1.manifest" or die; },
	  qr/its manifest is not kept in the cache: could not stat "\Q$cache\E\/CEN00B01\.1\.manifest": No such file or directory/ ],
);
my $ran = 1;
for my $case (@cases)
{
	my ($what, $tamper, $reason) = @$case;
	($rc, $out, $err) = agent(0);
	ok(-f "$pkg/probe.sh" && -f "$cache/CEN00B01.1.manifest", "before \"$what\": the package is (again) in the cache, with its manifest")
	  or diag($out, $err);
	$tamper->();
	($rc, $out, $err) = agent(0, '--run', 'CEN00C01');
	like($out, qr/^${AGENT_INFO}not running advert CEN00C01: Program "Probe" of package CEN00B01 was not started: the cached copy of version 1 does not match its manifest: $reason\. The cached copy was removed; it will be downloaded again\.$/m,
		"hostile: $what: nothing runs, the reason is given") or diag($out, $err);
	is(slurp("$b/out/ran.txt"), "ran\n" x $ran, "$what: the program did not run");
	ok(!-e $pkg && !-e "$cache/CEN00B01.1.manifest", "$what: the cached copy is gone");
}
ok(!-e "$b/out/owned.txt", 'what was appended never ran');

# downloaded again, it runs
($rc, $out, $err) = agent(0);
($rc, $out, $err) = agent(0, '--run', 'CEN00C01');
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "Probe" of package CEN00B01 succeeded/m, 'downloaded again, the program runs');
is(slurp("$b/out/ran.txt"), "ran\nran\n", 'once more');

# a cache below a directory others may write: whoever can write there could
# put a cache of theirs in its place; nothing is downloaded or run
make_path("$b/open");
chmod 0777, "$b/open";
{
	local $state = "$b/open/ws";
	($rc, $out, $err) = agent(0, '--run', 'CEN00C01');
}
like($err, qr/the directory "\Q$b\E\/open", above the cache directory "\Q$b\E\/open\/ws\/cache", belongs to user ID $> with mode 0777: another account than root and the agent's could replace the cache; refusing to run programs from it/,
	'hostile: a cache below a directory writable by all is refused, with the reason') or diag($err);
unlike($out, qr/^${AGENT_INFO}ran advert/m, 'and nothing runs from it');
ok(!-e "$b/open/ws/cache/CEN00B01.1", 'nothing is downloaded into it');
is(slurp("$b/out/ran.txt"), "ran\nran\n", 'the program did not run');

# the site has each refusal with its reason
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS')}, 30),
	'the status messages reach the site');
is($node->safe_psql('site', q{SELECT count(*) || ' ' || bool_and(severity = 'error' AND advert_id = 'CEN00C01' AND package_id = 'CEN00B01'
                                 AND message LIKE 'Program "Probe" of package CEN00B01 was not started: the cached copy of version 1 does not match its manifest: %')
                               FROM smsdist.status_messages WHERE message_id = 10011}),
	scalar(@cases) . ' true', 'the site has one 10011 error per refused run, naming the advertisement, the package and the reason');

done_testing();
