# The root part of t/019_agent_run_as.pl, run as root by test/run-all (run
# as root) after the tests that run as the postgres OS user: the agent, run
# as root, switches to the logged-on user's account ("nobody") for the
# programs that run with the user's rights, and runs the others as root.
# t/019 (as postgres) left a published package, the offers, a PCM file and
# the agent's arguments in $SMSDIST_TEST_RUNAS/shared; this test keeps the
# agent's state and cache in a directory of root's beside it.  No sudo rule
# or other grant is involved; run-all's trap removes the directory.
use strict;
use warnings;
use Test::More;
use IPC::Run;

# an info line of the agent's log: its time and level, then the message
my $AGENT_INFO = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: /;

my $runas = $ENV{SMSDIST_TEST_RUNAS};
my $agent = $ENV{SMSDIST_AGENT};
plan skip_all => 'run by test/run-all as root (SMSDIST_TEST_RUNAS, SMSDIST_AGENT)'
  unless defined $runas && defined $agent && $> == 0;
my $shared = "$runas/shared";
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }

unless (ok(-f "$shared/ready", 't/019 (as postgres) prepared the site for this part'))
{
	done_testing();
	exit 1;
}
my @args = split /\n/, slurp("$shared/agent-args");
ok(@args > 0, 'with the agent\'s arguments');

# what t/019's own runs wrote before (read, never written here)
my $before = length(slurp("$shared/marks/who.txt"));
my $ws = "$runas/agent/ws";
mkdir "$runas/agent", 0755 or die "$runas/agent: $!";

my ($out, $err) = ('', '');
IPC::Run::run([ $agent, @args, '--state-dir', $ws, '--user', 'CORP\\guest', '--user-account', 'nobody' ],
	'>', \$out, '2>', \$err);
is($?, 0, 'the agent runs as root') or diag($err);
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "AsUser" of package CEN00B01 succeeded/m, 'the user-rights program runs') or diag($out);
like($out, qr/^${AGENT_INFO}ran advert CEN00C02: Program "AsAgent" of package CEN00B01 succeeded/m, 'the administrative-rights program runs');
like($out, qr/^${AGENT_INFO}ran job CEN000D2: Program "JobAsUser" of package CEN00B01 succeeded/m, 'the job\'s program runs');
my $who = substr(slurp("$shared/marks/who.txt"), $before);
my $nobody_home = (getpwnam('nobody'))[7];
like($who, qr/^user nobody nobody \Q$nobody_home\E$/m, 'as the user\'s account, "nobody", switched to by the root agent, with its USER and HOME');
like($who, qr/^agent root root /m, 'the administrative-rights program as root, the agent\'s account');
like($who, qr/^job nobody nobody /m, 'the job\'s user-rights program as "nobody" too');

# the state and the cache the root agent wrote stay root's: the user cannot change them
my @st = stat("$ws/runs");
is($st[4], 0, 'the agent\'s state stays owned by root');
my $pkg = "$ws/cache/CEN00B01.1";
@st = stat("$pkg/who.sh");
is(sprintf('%d %04o', $st[4], $st[2] & 07777), '0 0644',
	'the cached file (0600 in the source) is root\'s, 0644: readable by "nobody", writable by root only');
@st = stat($pkg);
is(sprintf('%d %04o', $st[4], $st[2] & 07777), '0 0755', 'its directory is root\'s, 0755');

IPC::Run::run([ $agent, '--state-dir', $ws, 'cache', 'clear' ], '>', \$out, '2>', \$err);
is($?, 0, 'the cache is cleared') or diag($err);

# a configuration file decides what runs as root: one owned by another
# account is refused, even when nobody else may write it
my $conf = "$runas/agent/agent.conf";
open(my $cfh, '>', $conf) or die "$conf: $!";
print $cfh "state-dir = $ws\n";
close $cfh;
chmod(0644, $conf) or die;
chown(scalar(getpwnam('nobody')), -1, $conf) or die "chown $conf: $!";
IPC::Run::run([ $agent, '--config', $conf, 'cache', 'show' ], '>', \$out, '2>', \$err);
is($? >> 8, 2, 'as root, a configuration file owned by "nobody" is refused (exit 2)');
like($err, qr/ error: the configuration file "\Q$conf\E" is owned by user \d+, not by root or by this user \(0\)/,
	'and says why') or diag($err);
chown(0, -1, $conf) or die;
IPC::Run::run([ $agent, '--config', $conf, 'cache', 'show' ], '>', \$out, '2>', \$err);
is($?, 0, 'owned by root, it is read') or diag($err);
like($out, qr/^cache \Q$ws\E\/cache: /m, 'its state directory is used');

done_testing();
