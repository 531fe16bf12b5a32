# Status from machines, from the attacker's side: whoever can write a CAP's
# status inbox (any account on any workstation) tries to speak for machines
# it is not, to flood the site, to smuggle control characters or absurd
# times into the status table, and to wedge the Status Manager with an
# inbox it cannot use.  Each hostile status file must be kept as
# <name>.bad with status message 3400 naming the file and the reason; an
# unusable inbox is reported once (3402) and skipped while the other CAPs
# are served; a good file after the bad ones is still taken in.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use Digest::SHA qw(hmac_sha256_hex);
use POSIX qw(strftime);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

# ---- the upgrade path: machines registered before 0.7 get keys
my $old = site_node('old', site_code => 'CEN', create => 0);
$old->safe_psql('postgres', 'CREATE DATABASE site');
$old->safe_psql('site', q{CREATE EXTENSION smsdist VERSION '0.6';
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86');
ALTER EXTENSION smsdist UPDATE TO '0.7';});
is($old->safe_psql('site', q{SELECT count(*) FILTER (WHERE smsdist.machine_key(sms_id) ~ '^[0-9a-f]{64}$')
                               || ':' || count(DISTINCT smsdist.machine_key(sms_id)) FROM smsdist.system_resources}),
	'2:2', 'ALTER EXTENSION UPDATE gives each machine registered before it its own 32-byte key');
$old->stop;

# ---- the site: CAP1 (good), CAP2 (an inbox the server cannot write),
# CAP3 (an inbox that is a symbolic link), CAP4 (an inbox that is a file)
my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '300s'\n");
my $b = $node->basedir;
make_path(map { "$b/cap$_" } 1 .. 4);
make_path("$b/cap2/statmsgs.box", "$b/elsewhere");
symlink("$b/elsewhere", "$b/cap3/statmsgs.box") or die;
open(my $fh4, '>', "$b/cap4/statmsgs.box") or die;
close $fh4;
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86');
CREATE ROLE op LOGIN IN ROLE smsdist_operator;
CREATE ROLE rd LOGIN IN ROLE smsdist_reader;
CREATE ROLE adm LOGIN IN ROLE smsdist_admin;});

# ---- keys: issued at registration, for the administrator only
my %key = map { $_ => $node->safe_psql('site', "SELECT smsdist.machine_key('$_')") } qw(CEN00001 CEN00002);
like($key{CEN00001}, qr/^[0-9a-f]{64}$/, 'a machine registered in system_resources gets a 32-byte key at once');
isnt($key{CEN00001}, $key{CEN00002}, 'each machine its own');
is($node->safe_psql('site', q{SELECT smsdist.machine_key('CEN00001')}, connstr => $node->connstr('site') . ' user=adm'),
	$key{CEN00001}, 'the administrator (smsdist_admin) reads a key out with machine_key()');
for my $role (qw(op rd))
{
	my ($rc, $out, $err) = $node->psql('site', q{SELECT smsdist.machine_key('CEN00001')},
		connstr => $node->connstr('site') . " user=$role");
	like($err, qr/permission denied for function machine_key/, "$role may not call machine_key(): permission denied");
	($rc, $out, $err) = $node->psql('site', q{SELECT key FROM smsdist.machine_keys},
		connstr => $node->connstr('site') . " user=$role");
	like($err, qr/permission denied for table machine_keys/, "$role may not read smsdist.machine_keys: permission denied");
}
{
	my ($rc, $out, $err) = $node->psql('site', q{SELECT smsdist.machine_key('CEN000FF')});
	like($err, qr/machine CEN000FF is not in smsdist.system_resources/, 'machine_key() of an unknown machine: the error says so');
}

# ---- hostile files in CAP1's inbox
$node->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'client_access_point', 'CAP1', '$b/cap1'), ('CEN', 'client_access_point', 'CAP2', '$b/cap2'),
  ('CEN', 'client_access_point', 'CAP3', '$b/cap3'), ('CEN', 'client_access_point', 'CAP4', '$b/cap4');
SELECT smsdist.wake('status_manager');});
my $box = "$b/cap1/statmsgs.box";
ok(wait_until($node, 'site', "SELECT (pg_stat_file('$box', true)).isdir", 60),
	'the Status Manager makes the inbox of a CAP that has none');
my @st = stat($box);
is(sprintf('%04o', $st[2] & 07777), '1733', 'with mode 1733: any account creates files, none lists or removes another\'s');
is($st[4], $>, 'owned by the server\'s user, who can always remove what agents leave there');

my $now = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime);
sub status_text
{
	my (%o) = @_;
	my $machine = $o{machine} // 'CEN00001';
	return "[smsdist]\nformat=status\nversion=1\nmachine=$machine\nsite=CEN\nsequence=$o{seq}\n"
	  . 'at=' . ($o{at} // $now) . "\nmessage_id=10001\nseverity=info\ncomponent=Client Agent\n"
	  . 'text=' . ($o{text} // "message $o{seq} of $machine") . "\n";
}
sub signed { my ($t, $hexkey) = @_; return $t . 'hmac=' . hmac_sha256_hex($t, pack('H*', $hexkey)) . "\n"; }
sub put
{
	my ($dir, $name, $content) = @_;
	open(my $fh, '>', "$dir/.$name.tmp") or die "$dir: $!";
	print $fh $content;
	close $fh;
	rename("$dir/.$name.tmp", "$dir/$name") or die;
}
sub name_of { my ($machine, $seq) = @_; return sprintf('%s.%010d.SMS', $machine, $seq); }

my $random = unpack('H*', join('', map { chr(int(rand(256))) } 1 .. 32));
# [file name, content, the reason 3400 must give, what it tries]
my @cases = (
	[ name_of('CEN00001', 1), status_text(seq => 1),
	  qr/it is not authenticated: no hmac line at its end/, 'a status file with no HMAC' ],
	[ name_of('CEN00001', 2), signed(status_text(seq => 2), $random),
	  qr/its hmac does not verify with the key of machine CEN00001/, 'a status file with a wrong HMAC (a made-up key)' ],
	[ name_of('CEN00001', 3), signed(status_text(seq => 3), $key{CEN00002}),
	  qr/its hmac does not verify with the key of machine CEN00001/, 'CEN00002\'s key used for a file of CEN00001' ],
	[ name_of('CEN00002', 4), signed(status_text(seq => 4), $key{CEN00001}),
	  qr/the file name says machine CEN00002, message 4; the file says CEN00001, 4/,
	  'a file whose name names CEN00002 and whose content names CEN00001 (signed with CEN00001\'s key)' ],
	[ name_of('CEN000FF', 5), signed(status_text(seq => 5, machine => 'CEN000FF'), $random),
	  qr/machine CEN000FF is unknown here \(not in smsdist.system_resources\)/, 'a machine the site does not know' ],
	[ name_of('CEN00001', 6), signed(status_text(seq => 6, text => 'A' x (50 * 1024 * 1024)), $key{CEN00001}),
	  qr/it is 5242\d{4} bytes, more than smsdist.status_file_max \(65536 bytes\)/, '50 MB of status text (signed with the right key)' ],
	[ name_of('CEN00001', 7), signed(status_text(seq => 7, text => 'B' x 20000), $key{CEN00001}),
	  qr/its text is 20000 bytes, more than smsdist.status_text_max \(16384 bytes\)/, 'a text over status_text_max in a small file' ],
	[ name_of('CEN00001', 8), signed(status_text(seq => 8, text => "bell\x07 raw"), $key{CEN00001}),
	  qr/control character/, 'a raw control character (BEL) in the file' ],
	[ name_of('CEN00001', 9), signed(status_text(seq => 9, text => 'clear %1B[2J%1B[H the terminal'), $key{CEN00001}),
	  qr/its text holds the control character 0x1B at byte 6 \(only tab is allowed\)/, 'an escaped ESC (terminal control sequence) in the text' ],
	[ name_of('CEN00001', 10), signed(status_text(seq => 10, text => "csi \xc2\x9b2J"), $key{CEN00001}),
	  qr/its text holds the control character U\+009B at byte 4/, 'a C1 control character (U+009B, CSI) in the text' ],
	[ name_of('CEN00001', 11), signed(status_text(seq => 11, text => "line%0Abreak"), $key{CEN00001}),
	  qr/its text holds the control character 0x0A at byte 4/, 'an escaped line feed in the text (a forged second log line)' ],
	[ name_of('CEN00001', 12), signed(status_text(seq => 12, at => '0001-01-01T00:00:00Z'), $key{CEN00001}),
	  qr/its client time 0001-01-01T00:00:00Z is not within smsdist.client_time_window \(2592000 s\) of the site's clock/,
	  'a client time in year 1' ],
	[ name_of('CEN00001', 13), signed(status_text(seq => 13, at => '9999-12-31T23:59:59Z'), $key{CEN00001}),
	  qr/its client time 9999-12-31T23:59:59Z is not within smsdist.client_time_window \(2592000 s\) of the site's clock/,
	  'a client time in year 9999' ],
	[ name_of('CEN00001', 14), signed(status_text(seq => 14), $key{CEN00001}) . "[more]\nx=1\n",
	  qr/it is not authenticated: no hmac line at its end/, 'a signed file with a section added after its hmac line' ],
	[ name_of('CEN00001', 15), do { my $t = signed(status_text(seq => 15, text => 'fine'), $key{CEN00001}); $t =~ s/text=fine/text=evil/; $t },
	  qr/its hmac does not verify with the key of machine CEN00001/, 'a signed file whose text was changed afterwards' ],
);
put($box, $_->[0], $_->[1]) for @cases;
# the same good message once more, after all the bad ones
my $good = name_of('CEN00001', 20);
put($box, $good, signed(status_text(seq => 20, text => "all%09fine"), $key{CEN00001}));
put("$b/cap2/statmsgs.box", name_of('CEN00002', 1), signed(status_text(seq => 1, machine => 'CEN00002'), $key{CEN00002}));
chmod 0555, "$b/cap2/statmsgs.box" or die;

$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.status_messages WHERE machine = 'CEN00001' AND client_sequence = 20}, 60),
	'a good file written after the hostile ones is taken in');
for my $c (@cases)
{
	my ($name, undef, $why, $what) = @$c;
	my $msg = $node->safe_psql('site', qq{SELECT string_agg(message, E'\\n') FROM smsdist.status_messages
	                                       WHERE message_id = 3400 AND position('$name' IN message) > 0});
	like($msg, qr/^Status message file "\Q$box\/$name\E" refused \(kept as \Q$name\E\.bad\): /, "$what: refused, 3400 names the file");
	like($msg, $why, "$what: with the reason");
	ok(-f "$box/$name.bad" && !-e "$box/$name", "$what: kept as .bad, not read again");
}
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE client_sequence IS NOT NULL}), '1',
	'none of the hostile files became a status row');
is($node->safe_psql('site', q{SELECT message FROM smsdist.status_messages WHERE client_sequence = 20}), "all\tfine",
	'tab is allowed in the text');

# ---- the inboxes the Status Manager cannot use: reported once, skipped
my %bad = (cap2 => qr/cannot be listed, written and searched by the server's user/,
	cap3 => qr/is a symbolic link: it is not served/, cap4 => qr/is not a directory: it is not served/);
for my $cap (sort keys %bad)
{
	like($node->safe_psql('site', qq{SELECT string_agg(message, E'\\n') FROM smsdist.status_messages
	                                  WHERE message_id = 3402 AND position('$b/$cap/' IN message) > 0}),
		$bad{$cap}, "$cap\'s inbox is reported (3402) with the reason");
}
# more steps: still one report each, and CAP1 is still served
my $steps = $node->safe_psql('site', q{SELECT steps FROM smsdist.workers WHERE component = 'status_manager'});
put($box, name_of('CEN00001', 21), signed(status_text(seq => 21), $key{CEN00001}));
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.status_messages WHERE machine = 'CEN00001' AND client_sequence = 21}, 60),
	'with three broken inboxes, the good CAP is still served');
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', "SELECT steps >= $steps + 2 FROM smsdist.workers WHERE component = 'status_manager'", 60),
	'two more steps ran');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3402}), '3',
	'each broken inbox was reported once, not at every step');
ok(-e "$b/cap2/statmsgs.box/" . name_of('CEN00002', 1), 'the file in the inbox it cannot use was left alone');
# fixed (the mode the site makes): served again
chmod 01733, "$b/cap2/statmsgs.box" or die;
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.status_messages WHERE machine = 'CEN00002' AND client_sequence = 1}, 60),
	'once its mode is fixed the inbox is served again');

# ---- rotation: the old key no longer speaks for the machine
my $new = $node->safe_psql('site', q{SELECT smsdist.rotate_machine_key('CEN00001')}, connstr => $node->connstr('site') . ' user=adm');
isnt($new, $key{CEN00001}, 'the administrator rotates a key');
put($box, name_of('CEN00001', 22), signed(status_text(seq => 22), $key{CEN00001}));
put($box, name_of('CEN00001', 23), signed(status_text(seq => 23), $new));
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.status_messages WHERE machine = 'CEN00001' AND client_sequence = 23}, 60),
	'a file signed with the new key is taken in');
like($node->safe_psql('site', q{SELECT message FROM smsdist.status_messages WHERE message_id = 3400 AND message LIKE '%CEN00001.0000000022.SMS%'}),
	qr/does not verify with the key of machine CEN00001/, 'one signed with the rotated-out key is refused');

# ---- the same limits for what advanced clients send (client_status)
is($node->safe_psql('site', q{SELECT coalesce(smsdist.status_problem(E'ok\tfine', now()), 'none')}), 'none',
	'status_problem(): a fine text and time');
like($node->safe_psql('site', q{SELECT smsdist.status_problem(E'a\x01b', now())}), qr/control character 0x01 at byte 1/,
	'status_problem(): a control character');
like($node->safe_psql('site', q{SELECT smsdist.status_problem('x', '9999-12-31 23:59:59+00')}),
	qr/client time 9999-12-31T23:59:59Z is not within smsdist.client_time_window/, 'status_problem(): year 9999');
like($node->safe_psql('site', q{SELECT smsdist.status_problem('x', 'infinity')}), qr/not a finite time/,
	'status_problem(): infinity');

# ---- the agent: its key must be its own, and it signs what it writes
my $agent = agent_path();
my $kf = machine_key_file($node, 'CEN00002');
chmod 0644, $kf;
my ($out, $err) = ('', '');
IPC::Run::run([ $agent, '--sms-id', 'CEN00002', '--site', 'CEN', '--platform', 'WINNT_X86', '--state-dir', "$b/ws",
	'--logon-server', "$b/logon", '--cap', "$b/cap1", '--machine-key', $kf, '--once' ], '>', \$out, '2>', \$err);
is($? >> 8, 2, 'the agent refuses a key file other accounts can read (exit 2)');
like($err, qr/the machine key ".*CEN00002\.key" is open to other accounts \(mode 0644\): make it 0600/, 'and says why');
chmod 0600, $kf;
open(my $kfh, '>', "$b/short.key") or die;
print $kfh "abcd\n";
close $kfh;
chmod 0600, "$b/short.key";
IPC::Run::run([ $agent, '--sms-id', 'CEN00002', '--site', 'CEN', '--platform', 'WINNT_X86', '--state-dir', "$b/ws",
	'--logon-server', "$b/logon", '--cap', "$b/cap1", '--machine-key', "$b/short.key", '--once' ], '>', \$out, '2>', \$err);
like($err, qr/could not read the machine key .*a machine key is 64 hexadecimal digits/, 'and a key that is not 64 hex digits');

ok(!$node->log_contains(qr/smsdist status manager.*(?:ERROR|FATAL)|status_manager.*terminated/), 'the Status Manager never failed a step');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 501}), '0',
	'and reported no failed step (501)');

done_testing();
