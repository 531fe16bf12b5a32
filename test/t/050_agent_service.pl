# The client agent as a service: --version; log lines with their time
# (ISO 8601 UTC) and level, and --log-level; the configuration file (its
# settings, the command line overriding it, files refused for their owner
# or mode, an unknown key or a bad value named with its line); --check in
# both modes, good and bad (a missing CAP, a management point that refuses
# the agent), without a poll's effects; the systemd unit
# (systemd-analyze verify, when there is one) and the example
# configuration (accepted by --check once its paths are this test's).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path);
use IPC::Run;
use POSIX qw(strftime);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $agent = agent_path();
my $top = "$FindBin::Bin/../..";

# ---- --version: the extension's version, from smsdist.control
my ($out, $err) = ('', '');
IPC::Run::run([ $agent, '--version' ], '>', \$out, '2>', \$err);
is($?, 0, '--version exits 0');
open(my $ctl, '<', "$top/smsdist.control") or die "smsdist.control: $!";
my ($version) = join('', <$ctl>) =~ /^default_version\s*=\s*'([^']+)'/m;
close $ctl;
is($out, "smsdist-agent $version\n", "--version prints \"smsdist-agent $version\"");

my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
make_path("$b/src", "$b/conf");
system("echo setup > '$b/src/setup.exe'") == 0 or die;
$node->safe_psql('postgres', 'CREATE ROLE agent50 LOGIN IN ROLE smsdist_client');
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent50', 'CEN00002');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe /q');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001}', '2026-01-01 00:00+00', '2026-01-01 00:00+00');});
ok(wait_until($node, 'site', "SELECT (pg_stat_file('$b/logon/pcins.box/CEN00001', true)).size > 0", 60),
	'the site has written the PCM file');
my $machine_key = machine_key_file($node, 'CEN00001');
my $mp = 'host=' . $node->host . ' port=' . $node->port . ' dbname=site user=agent50';

sub agent
{
	my (@args) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ $agent, @args ], '>', \$o, '2>', \$e);
	return ($? & 127 ? 128 + ($? & 127) : $? >> 8, $o, $e);
}
# a configuration file of these lines, mode 0644 unless said
sub conf
{
	my ($name, $text, $mode) = @_;
	my $file = "$b/conf/$name";
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh $text;
	close $fh;
	chmod($mode // 0644, $file) or die "$file: $!";
	return $file;
}
my $legacy = "sms-id = CEN00001\nsite = CEN\nplatform = WINNT_X86\n"
  . "logon-server = $b/logon\ncap = $b/cap\nsite-key = $site_key\nmachine-key = $machine_key\n";

my ($rc, $o, $e);

# ---- --check
# (before any poll: the status inbox is empty, and stays so)
my $good = conf('good.conf', "# a comment\n\n$legacy" . "state-dir = $b/ws/from-file\nonce = true\n"
	  . "now = 2025-06-01T00:00:00Z\n");
($rc, $o, $e) = agent('--config', $good, '--state-dir', "$b/ws/check", '--check');
is($rc, 0, '--check, legacy, all well: exit 0') or diag($o, $e);
like($o, qr/ info: check: the CAP's status inbox ".*statmsgs\.box" is readable and writable$/m, 'it checks the status inbox');
like($o, qr/ info: check: all is well with \Q$good\E$/m, 'and says all is well');
like($e, qr/ warning: check: the CAP's package files ".*pkginfo\.box" is not there \(yet\)/m,
	'a box the site has not made yet is a warning (no advertisement: no pkginfo.box)');
ok(!-e "$b/ws/check", '--check makes no state directory');
like($o, qr/ info: check: the site key verifies \d+ signed file\(s\) on the shares \(first: ".*"\)$/m,
	'it verifies the signed files on the shares with the site key');

# the public key of another site: --check says it verifies nothing there
system("openssl genpkey -algorithm ED25519 -out '$b/conf/other.key' 2>/dev/null && "
	  . "openssl pkey -in '$b/conf/other.key' -pubout -out '$b/conf/other.pub' 2>/dev/null") == 0
  or die "openssl genpkey failed";
chmod(0644, "$b/conf/other.pub") or die;
($rc, $o, $e) = agent('--config', $good, '--site-key', "$b/conf/other.pub", '--state-dir', "$b/ws/check", '--check');
is($rc, 1, '--check with the key of another site: exit 1');
like($e, qr/ error: check: the site key\(s\) verify none of the \d+ signed file\(s\) on the shares: is --site-key the public key of this site/m,
	'it says the key verifies none of the files on the shares') or diag($o, $e);
like($e, qr/ warning: check: ".*pcins\.box\/CEN00001" does not verify with the site key\(s\)/m,
	'and names a file it refused');
($rc, $o, $e) = agent("--conf=$good", '--state-dir', "$b/ws/check", '--check');
like($o, qr/ info: check: all is well with \Q$good\E$/m, '--config abbreviated as getopt allows (--conf=FILE) is read too');
is(scalar(() = glob("$b/cap/statmsgs.box/*")), 0, 'and sends no status');
($rc, $o, $e) = agent('--config', $good, '--state-dir', "$b/ws/check", '--cap', "$b/nocap", '--check');
is($rc, 1, '--check, a CAP that is not there: exit 1');
like($e, qr/ error: check: the CAP "\Q$b\E\/nocap": No such file or directory$/m, 'it names the CAP and the reason') or diag($e);
like($e, qr/ error: check: the agent would not work as configured/m, 'and says the agent would not work');
make_path(map { "$b/badcap/$_" } qw(offerinf.box pkginfo.box statmsgs.box));
chmod(0, "$b/badcap/offerinf.box") or die;
chmod(0555, "$b/badcap/statmsgs.box") or die;
($rc, $o, $e) = agent('--config', $good, '--state-dir', "$b/ws/check", '--cap', "$b/badcap", '--check');
is($rc, 1, '--check, a CAP whose offers this account may not read and whose inbox it may not write: exit 1');
like($e, qr/ error: check: the CAP's offers "\Q$b\E\/badcap\/offerinf\.box" is not readable by this account \(uid \d+\): Permission denied$/m,
	'said for the offers') or diag($e);
like($e, qr/ error: check: the CAP's status inbox "\Q$b\E\/badcap\/statmsgs\.box" is not readable and writable by this account/m,
	'and for the inbox');

my $adv = conf('adv.conf', "sms-id = CEN00002\nsite = CEN\nplatform = WINNT_X86\nstate-dir = $b/ws/adv\n"
	  . "management-point = $mp\n");
($rc, $o, $e) = agent('--config', $adv, '--check');
is($rc, 0, '--check, advanced mode, all well: exit 0') or diag($o, $e);
like($o, qr/ info: check: connected to the management point as role "agent50"/m, 'it connects and authenticates');
like($o, qr/ info: check: the management point gave this machine's policy/m, 'and asks the policy');
($rc, $o, $e) = agent('--config', $adv, '--check', '--management-point', "$mp-nosuchrole");
is($rc, 1, '--check, a management point that refuses the role: exit 1');
like($e, qr/ warning: could not connect to the management point: .*agent50-nosuchrole/m, 'with the server\'s reason')
  or diag($e);
like($e, qr/ error: check: the management point cannot be reached or refused this agent$/m, 'and the verdict');
$node->safe_psql('postgres', 'CREATE ROLE outsider50 LOGIN');
($rc, $o, $e) = agent('--config', $adv, '--check', '--management-point', $mp =~ s/user=agent50/user=outsider50/r);
is($rc, 1, '--check, a role that is not a client of the site: exit 1');
like($e, qr/ error: check: the management point did not give this machine's policy$/m, 'the policy is refused') or diag($e);
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE machine = 'CEN00002'}), '0',
	'--check in advanced mode sends no status');

# ---- log lines: time and level
my $before = strftime('%Y-%m-%dT%H:%M:%S', gmtime(time - 1));
($rc, $o, $e) = agent('--no-config', '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws/log", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key,
	'--machine-key', $machine_key, '--once', '--now', '2026-12-01T12:00:00Z');
my $after = strftime('%Y-%m-%dT%H:%M:%S', gmtime(time + 1));
is($rc, 0, 'a legacy poll runs') or diag($e);
like($o, qr/^${AGENT_INFO}offer job CEN000D1 package CEN00B01 program "Install": setup\.exe \/q$/m,
	'an offer is an info line with the message it always had');
my @lines = split /\n/, $o . $e;
my @bad = grep { !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?:error|warning|info|debug): \S/ } @lines;
is(scalar(@bad), 0, 'every line of the poll carries an ISO 8601 UTC time and a level') or diag(join("\n", @bad));
my @times = map { /^(\S+)\.\d{3}Z/ ? $1 : () } @lines;
is(scalar(grep { $_ lt $before || $_ gt $after } @times), 0,
	'the times are the real clock\'s (not --now\'s), in UTC') or diag("$before .. $after:\n$o$e");
($rc, $o, $e) = agent('--no-config', '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws/log", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key,
	'--machine-key', $machine_key, '--once', '--now', '2026-12-01T12:00:00Z', '--log-level', 'warning');
is($rc, 0, '--log-level warning: the poll runs');
unlike($o, qr/ info: /, 'and logs no info line');
($rc, $o, $e) = agent('--config', $good, '--state-dir', "$b/ws/debug", '--log-level', 'debug');
is($rc, 0, '--log-level debug: the poll runs') or diag($e);
like($o, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z debug: settings from \Q$good\E and the command line$/m,
	'and logs debug lines too') or diag($o);
($rc, $o, $e) = agent('--no-config', '--sms-id', '../x', '--site', 'CEN', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws/log", '--management-point', $mp, '--once');
is($rc, 2, 'bad usage: exit status 2');
like($e, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z error: invalid SMS ID "\.\.\/x"/m, 'said as an error line');
($rc, $o, $e) = agent('--no-config', '--log-level', 'loud');
is($rc, 2, '--log-level takes error, warning, info or debug only');

# ---- the configuration file
($rc, $o, $e) = agent('--config', $good);
is($rc, 0, 'a poll from the configuration file alone runs') or diag($e);
like($o, qr/^${AGENT_INFO}waiting job CEN000D1 package CEN00B01 program "Install": /m,
	'with the file\'s settings (its test clock: before the job\'s offer time)') or diag($o);
ok(-f "$b/ws/from-file/offers", 'in the file\'s state directory');
($rc, $o, $e) = agent('--config', $good, '--now', '2026-12-01T12:00:00Z', '--state-dir', "$b/ws/from-args");
is($rc, 0, 'the command line overrides the file') or diag($e);
like($o, qr/^${AGENT_INFO}offer job CEN000D1 /m, 'its clock: the job is offered') or diag($o);
ok(-f "$b/ws/from-args/offers", 'its state directory is used');
{
	# SMSDIST_AGENT_CONFIG names the file when the command line names none
	local $ENV{SMSDIST_AGENT_CONFIG} = $good;
	($rc, $o, $e) = agent('--state-dir', "$b/ws/from-env");
	is($rc, 0, 'a poll with SMSDIST_AGENT_CONFIG naming the file runs') or diag($e);
	ok(-f "$b/ws/from-env/offers", 'with the settings of the file it names');
	($rc, $o, $e) = agent('--no-config', '--state-dir', "$b/ws/from-env");
	is($rc, 2, '--no-config reads no file, whatever SMSDIST_AGENT_CONFIG says');
	$ENV{SMSDIST_AGENT_CONFIG} = "$b/conf/nosuch.conf";
	($rc, $o, $e) = agent('--state-dir', "$b/ws/from-env");
	is($rc, 2, 'SMSDIST_AGENT_CONFIG naming a file that is not there: exit 2');
	like($e, qr/nosuch\.conf/, 'the error names the file') or diag($e);
}

my %refused = (
	'world-writable' => [ conf('ww.conf', $legacy, 0666), qr/ww\.conf" is writable by others \(mode 0666\)/ ],
	'group-writable' => [ conf('gw.conf', $legacy, 0664), qr/gw\.conf" is writable by its group \(mode 0664\)/ ],
	'unknown key'    => [ conf('key.conf', "sms-id = CEN00001\nsite = CEN\nplatfrom = WINNT_X86\n"),
		qr/key\.conf:3: unknown key "platfrom"/ ],
	'bad value'      => [ conf('value.conf', "$legacy" . "interval = 60s\n"),
		qr/value\.conf:8: --interval wants a whole number of seconds from 1 to 86400, not "60s"/ ],
	'not key = value' => [ conf('line.conf', "sms-id CEN00001\n"), qr/line\.conf:1: "sms-id CEN00001" is not a "key = value" line/ ],
	'--run in a file' => [ conf('run.conf', "$legacy" . "run = CEN000D1\n"),
		qr/run\.conf:8: "run" belongs on the command line/ ],
	'missing'        => [ "$b/conf/none.conf", qr/could not open the configuration file ".*none\.conf": No such file/ ]);
for my $what (sort keys %refused)
{
	my ($file, $why) = @{ $refused{$what} };
	($rc, $o, $e) = agent('--config', $file, '--state-dir', "$b/ws/refused", '--once');
	is($rc, 2, "$what configuration file: refused with exit status 2");
	like($e, qr/ error: .*$why/, "$what: says why") or diag($e);
}
make_path("$b/open", "$b/sticky");
chmod(0777, "$b/open") or die;
chmod(01777, "$b/sticky") or die;
copy($good, "$b/open/agent.conf") or die;
copy($good, "$b/sticky/agent.conf") or die;
($rc, $o, $e) = agent('--config', "$b/open/agent.conf", '--state-dir', "$b/ws/refused", '--check');
is($rc, 2, 'a configuration file in a directory others may write: refused with exit status 2');
like($e, qr/ error: the configuration file ".*" is in directory "[^"]*\/open", which is writable by others \(mode 0777\): the file could be replaced/,
	'naming the directory') or diag($e);
($rc, $o, $e) = agent('--config', "$b/sticky/agent.conf", '--state-dir', "$b/ws/check", '--check');
is($rc, 0, 'in a sticky directory (as /tmp) it is read: only its owner may replace it') or diag($e);
ok(!-e "$b/ws/refused", 'a refused configuration polls nothing');

# ---- the example configuration and the systemd unit
my $example = do { local $/; open(my $fh, '<', "$top/contrib/agent.conf.example") or die $!; <$fh> };
$example =~ s{^(site-key = ).*$}{$1$site_key}m;
$example =~ s{^(machine-key = ).*$}{$1$machine_key}m;
$example =~ s{^(logon-server = ).*$}{$1$b/logon}m;
$example =~ s{^(cap = ).*$}{$1$b/cap}m;
$example =~ s{^(state-dir = ).*$}{$1$b/ws/example}m;
($rc, $o, $e) = agent('--config', conf('example.conf', $example), '--check');
is($rc, 0, 'the example configuration (with this test\'s paths) passes --check') or diag($o, $e);

SKIP:
{
	my $analyze = (grep { -x "$_/systemd-analyze" } split /:/, "$ENV{PATH}:/usr/bin:/bin")[0];
	skip 'no systemd-analyze', 2 unless $analyze;
	# the unit as installed, but starting this agent (verify wants an executable)
	my $unit = do { local $/; open(my $fh, '<', "$top/contrib/smsdist-agent.service") or die $!; <$fh> };
	like($unit, qr{^ExecStart=/usr/bin/smsdist-agent --config /etc/smsdist/agent\.conf$}m, 'the unit starts the agent on PATH');
	$unit =~ s{^ExecStart=/usr/bin/smsdist-agent}{ExecStart=$agent}m;
	make_path("$b/unit");
	open(my $fh, '>', "$b/unit/smsdist-agent.service") or die $!;
	print $fh $unit;
	close $fh;
	($o, $e) = ('', '');
	# (--man=no: the man page need not be installed where man looks)
	IPC::Run::run([ "$analyze/systemd-analyze", 'verify', '--man=no', "$b/unit/smsdist-agent.service" ],
		'>', \$o, '2>', \$e);
	is($? >> 8, 0, 'systemd-analyze verify accepts the unit') or diag($o, $e);
}

done_testing();
