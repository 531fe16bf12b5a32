# The client agent in legacy mode (issue 5, first part): smsdist-agent reads
# the PCM file on its logon server and the lookup, installation, offer and
# NAL files on its CAP, as a workstation would, for several simulated
# workstations (separate state directories): offers by machine, by user and
# by group; a platform that does not match; an offer time not yet reached
# (and reached, with the test clock); a status message per new offer in the
# CAP's status inbox, none again for an offer already made; a damaged offer
# file refused with a status message; bad usage (legacy mode needs the
# site's public key, --site-key).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually wait_quiescent);

my $agent = agent_path();
ok(-x $agent, 'smsdist-agent is installed with the PostgreSQL programs');

my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
make_path("$b/src");
system("echo setup > '$b/src/setup.exe'") == 0 or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WIN95'),
  ('CEN00003', 'LAB-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.users VALUES ('CORP', 'alice', 'Alice'), ('CORP', 'bob', 'Bob');
INSERT INTO smsdist.user_groups VALUES ('CORP', 'staff');
INSERT INTO smsdist.user_group_members VALUES ('CORP', 'staff', 'CORP', 'bob');
INSERT INTO smsdist.collections (collection_id, name) VALUES
  ('CEN00A01', 'Workstations'), ('CEN00A02', 'Alice'), ('CEN00A03', 'Staff');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES
  ('CEN00A01', 'query', 'name LIKE ''WKS%''');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name) VALUES ('CEN00A02', 'direct', 'CORP', 'alice');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, group_domain, group_name) VALUES ('CEN00A03', 'direct', 'CORP', 'staff');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms) VALUES
  ('CEN00B01', 'Install', 'setup.exe /q', '{WINNT_X86}'), ('CEN00B01', 'Anywhere', 'setup.exe /any', NULL);
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
VALUES ('CEN00C01', 'For workstations', 'CEN00B01', 'Install', 'CEN00A01', '2026-01-01 00:00'),
       ('CEN00C02', 'For Alice, later', 'CEN00B01', 'Anywhere', 'CEN00A02', '2030-01-01 00:00'),
       ('CEN00C03', 'For staff', 'CEN00B01', 'Anywhere', 'CEN00A03', '2026-01-01 00:00');
-- (an offer time in the past: the PCM file rounds times to the second)
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001}', '2026-01-01 00:00+00', '2026-01-01 00:00+00');
});

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return undef; local $/; my $t = <$fh>; close $fh; return $t; }
ok(eventually(sub {
			(slurp("$b/cap/offerinf.box/CENSYSTM.LKP") // '') =~ /name=CEN00001\nadverts=CEN00C01\n/
			  && (slurp("$b/cap/offerinf.box/CENUSRGRP.LKP") // '') =~ /CEN00C03/
			  && (slurp("$b/cap/offerinf.box/CENUSR.LKP") // '') =~ /CEN00C02/
			  && -f "$b/cap/pkginfo.box/CEN00B01.NAL"
			  && (slurp("$b/logon/pcins.box/CEN00001") // '') =~ /\[job CEN000D1\]/ }),
	'the site has written the lookup, offer, NAL and PCM files');
# the agents' status files are counted in the CAP's inbox below, before the
# test wakes the Status Manager: it takes them at any step (a status
# message from another worker wakes it)
ok(wait_quiescent($node, 'status_manager', 120), 'the Status Manager is quiescent before the agents run');

# run the agent once as a workstation; returns (exit code, stdout, stderr)
sub agent
{
	my ($id, $platform, @more) = @_;
	my ($out, $err) = ('', '');
	my @key = $id =~ /^CEN0000[123]$/ ? ('--machine-key', machine_key_file($node, $id)) : ();
	my @cmd = ($agent, '--sms-id', $id, '--site', 'CEN', '--platform', $platform,
		'--state-dir', "$b/ws/$id", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--once', @key, @more);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	return ($? & 127 ? 128 + ($? & 127) : $? >> 8, $out, $err);
}
sub status_files { my ($id) = @_; my @f = sort glob("$b/cap/statmsgs.box/$id.*.SMS"); return @f; }

# ---- by machine, and the PCM file
my ($rc, $out, $err) = agent('CEN00001', 'WINNT_X86');
is($rc, 0, 'CEN00001: the poll runs') or diag($err);
like($out, qr/^${AGENT_INFO}offer advert CEN00C01 package CEN00B01 program "Install": setup\.exe \/q$/m,
	'CEN00001 is offered the advertisement for its collection');
like($out, qr/^${AGENT_INFO}offer job CEN000D1 package CEN00B01 program "Install": setup\.exe \/q$/m,
	'and the run-command job from its PCM file');
unlike($out, qr/CEN00C02|CEN00C03/, 'and nothing meant for users or groups (nobody is logged on)');
my @sms = status_files('CEN00001');
is(scalar(@sms), 3, 'three status messages in the CAP\'s status inbox (two offers, one download)');
my $first = slurp($sms[0]) . slurp($sms[1]);
system("cp '$sms[0]' '$b/saved.SMS'") == 0 or die;
like($first, qr/format=status\n/, 'they are status files');
like($first, qr/machine=CEN00001\n/, 'from the machine');
like($first, qr/message_id=10001\n.*advert_id=CEN00C01\n/s, 'one says the advertisement was offered (10001)');
like($first, qr/message_id=10002\n.*job_id=CEN000D1\n/s, 'one says the job was offered (10002)');
like(slurp($sms[2]), qr/message_id=10003\n.*package_id=CEN00B01\n/s, 'and one that its package was downloaded into the cache (10003)');
like(slurp("$b/ws/CEN00001/offers"), qr/^job CEN000D1\nadvert CEN00C01\n$/, 'the state directory keeps the current offers');

($rc, $out) = agent('CEN00001', 'WINNT_X86');
is(scalar(status_files('CEN00001')), 3, 'polling again: the same offers, no new status message');

# ---- a platform that does not match
($rc, $out) = agent('CEN00002', 'WIN95');
is($rc, 0, 'CEN00002: the poll runs');
unlike($out, qr/^${AGENT_INFO}offer /m, 'the WIN95 machine is offered nothing: the program is for WINNT_X86 only');
like($out, qr/^${AGENT_INFO}not applicable advert CEN00C01: .*the program runs on WINNT_X86; this machine is WIN95\.$/m,
	'it reports the advertisement as not applicable (10007)');

# ---- by user: the offer time not reached yet, then reached (test clock)
($rc, $out) = agent('CEN00003', 'WINNT_X86', '--user', 'CORP\\alice');
like($out, qr/^${AGENT_INFO}waiting advert CEN00C02 package CEN00B01 program "Anywhere": 2030-01-01T00:00:00Z$/m,
	'CEN00003 with alice logged on: the advertisement for alice waits for its offer time');
is(scalar(status_files('CEN00003')), 0, 'no status message for a waiting offer');
($rc, $out) = agent('CEN00003', 'WINNT_X86', '--user', 'CORP\\alice', '--now', '2030-01-02T00:00:00Z');
like($out, qr/^${AGENT_INFO}offer advert CEN00C02 /m, 'once the offer time has come it is offered');

# ---- by group
($rc, $out) = agent('CEN00003', 'WINNT_X86', '--user', 'CORP\\bob', '--group', 'CORP\\staff');
like($out, qr/^${AGENT_INFO}offer advert CEN00C03 package CEN00B01 program "Anywhere": setup\.exe \/any$/m,
	'with bob (a member of CORP\\staff) logged on: the advertisement for the group is offered');
unlike($out, qr/CEN00C02/, 'not alice\'s');

# ---- a damaged offer file is refused, with a status message
system("cp '$b/cap/offerinf.box/CEN00C01.OFR' '$b/ofr.keep'") == 0 or die;
open(my $fh, '>>', "$b/cap/offerinf.box/CEN00C01.OFR") or die;
print $fh "[assignment 1]\ntime=not a time\n";
close $fh;
($rc, $out, $err) = agent('CEN00002', 'WIN95');
is($rc, 0, 'a damaged offer file does not stop the poll');
like($err, qr/CEN00C01\.OFR" refused: \d+ bytes follow its \[signature\] section: the signature must end the file/,
	'it is refused, saying where and why (text after the site\'s signature)');
ok((grep { slurp($_) =~ /message_id=10010\n/ } status_files('CEN00002')) == 1,
	'and reported as status message 10010');

# ---- the site's Status Manager takes the messages in
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT count(*) = 0 FROM (SELECT 1) x
                                WHERE EXISTS (SELECT 1 FROM pg_ls_dir('} . "$b/cap/statmsgs.box" . q{') f WHERE f LIKE '%.SMS')}, 30),
	'the Status Manager takes every status file from the CAP\'s inbox');
is($node->safe_psql('site', q{SELECT string_agg(machine || ':' || message_id || ':' || coalesce(advert_id, job_id, '') || ':' || severity, ',' ORDER BY machine, client_sequence)
                               FROM smsdist.status_messages WHERE client_sequence IS NOT NULL}),
	'CEN00001:10002:CEN000D1:informational,CEN00001:10001:CEN00C01:informational,CEN00001:10003:CEN000D1:informational,'
	  . 'CEN00002:10007:CEN00C01:informational,CEN00002:10010::error,CEN00003:10001:CEN00C02:informational,CEN00003:10003:CEN00C02:informational,'
	  . 'CEN00003:10001:CEN00C03:informational',
	'each message is a row of status_messages, with the machine, the message ID, what it is about and its severity')
  or diag($node->safe_psql('site', 'SELECT machine, message_id, advert_id, job_id, message FROM smsdist.status_messages WHERE client_sequence IS NOT NULL'));
ok($node->safe_psql('site', q{SELECT bool_and(client_at IS NOT NULL AND abs(extract(epoch FROM at - client_at)) < 600) FROM smsdist.status_messages WHERE client_sequence IS NOT NULL AND machine = 'CEN00001'}) eq 't',
	'with the agent\'s own time (client_at) beside the site\'s');
is($node->safe_psql('site', q{SELECT advert_id || ':' || targeted || ':' || offered FROM smsdist.advertisement_status WHERE advert_id = 'CEN00C01'}),
	'CEN00C01:2:1', 'advertisement_status: 2 machines targeted, 1 has reported the offer');
is($node->safe_psql('site', q{SELECT targeted || ':' || waiting FROM smsdist.job_status WHERE job_id = 'CEN000D1'}),
	'1:0', 'job_status: the job\'s machine has reported on it (it waits no more)');

# a forged file: the name says one machine, the content another
system("cp '$b/saved.SMS' '$b/cap/statmsgs.box/CEN00002.0000000099.SMS'") == 0 or die;
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.status_messages WHERE message_id = 3400 AND machine = 'CEN00002'}, 30),
	'a status file whose content names another machine is refused (status message 3400)');
ok(-f "$b/cap/statmsgs.box/CEN00002.0000000099.SMS.bad", 'and kept aside as .bad, not retried');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE machine = 'CEN00001' AND client_sequence IS NOT NULL}),
	'3', 'nothing was recorded for it');

# ---- the site's clock on the shares: a clock set back six years is noticed
system("cp '$b/ofr.keep' '$b/cap/offerinf.box/CEN00C01.OFR'") == 0 or die;    # undamaged again
# (written after the boxes, in the same step)
ok(eventually(sub { -f "$b/cap/offerinf.box/CEN.HBT" }), 'the Inbox Manager writes the site\'s clock (heartbeat) to the CAP');
($rc, $out, $err) = agent('CEN00001', 'WINNT_X86', '--clock-offset', '-200000000');
like($out, qr/^${AGENT_INFO}offer advert CEN00C01 /m,
	'with this machine\'s clock six years behind, the advertisement is still offered: schedules follow the site\'s clock');
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.status_messages WHERE message_id = 10020 AND machine = 'CEN00001'
                                 AND message ~ '^This machine''s clock is (199999|200000)[0-9]{3} s behind the site''s'}, 30),
	'and the skew is reported (10020), measured against the heartbeat');

# ---- usage
($rc, $out, $err) = agent('../x', 'WINNT_X86');
is($rc, 2, 'an SMS ID that could escape a directory is bad usage (exit 2)');
like($err, qr/invalid SMS ID "\.\.\/x"/, 'with the reason');
# numbers: whole, in range, nothing after them; a relative cache directory
for my $bad ([ '--interval', '0', qr/--interval wants a whole number of seconds from 1 to 86400, not "0"/ ],
	[ '--interval', '5x', qr/--interval wants a whole number of seconds from 1 to 86400, not "5x"/ ],
	[ '--test-minute', '0', qr/--test-minute wants a whole number of seconds from 1 to 60/ ],
	[ '--max-skew', '-3', qr/--max-skew wants a whole number of seconds/ ],
	[ '--cache-size', '99999999999999999999', qr/--cache-size wants a whole number of megabytes/ ],
	[ '--clock-offset', 'soon', qr/--clock-offset wants a whole number of seconds/ ],
	[ '--now', '2026-12-01 08:00', qr/--now wants a UTC time like 2026-12-01T08:00:00Z/ ],
	[ '--cache-dir', 'relative/cache', qr/--cache-dir wants an absolute directory/ ])
{
	my ($opt, $val, $why) = @$bad;
	($rc, $out, $err) = agent('CEN00001', 'WINNT_X86', $opt, $val);
	is($rc, 2, "$opt $val is bad usage (exit 2)");
	like($err, $why, "$opt $val: the reason");
}
# legacy mode without the site's key: nothing on a share can be trusted
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws/nokey", '--logon-server', "$b/logon", '--cap', "$b/cap", '--once' ], '>', \$o, '2>', \$e);
	is($? >> 8, 2, 'legacy mode without --site-key is bad usage (exit 2)');
	like($e, qr/legacy mode \(--logon-server and --cap\) needs --site-key FILE/, 'with the reason');
	ok(!-d "$b/ws/nokey", 'and nothing was read or written');
}
($rc, $out, $err) = agent('CEN00001', 'WINNT_X86', 'stray');
is($rc, 2, 'a stray argument is bad usage');
my $help = `$agent --help`;
is($? >> 8, 0, '--help exits 0');
like($help, qr/--logon-server DIR/, '--help describes the options');

done_testing();
