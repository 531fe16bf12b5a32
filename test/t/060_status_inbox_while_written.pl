# A status inbox written while the Status Manager reads it, as agents write
# in production: each machine's messages must be taken in their sequence
# order, or an older message recorded after a newer one is "not applied"
# and its machine's target could miss a move.  A directory listing made
# while files are renamed into the directory may return a file and miss an
# older one of the same machine (readdir gives no snapshot): the Status
# Manager must not take a machine's file before the older ones that were
# already there.  Here three machines' agents write 4,000 messages each
# while the Status Manager is woken again and again; every message must be
# recorded once, none refused as out of order, and each target must end in
# the state of its machine's last message.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use Digest::SHA qw(hmac_sha256_hex);
use POSIX qw(strftime);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $per = 4000;
my @machines = qw(CEN00001 CEN00002 CEN00003);
my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '300s'\n");
my $b = $node->basedir;
make_path("$b/cap/statmsgs.box");
my $rows = join(', ', map { "('$_', 'WKS-$_', 'CORP', 'CEN', 'WINNT_X86')" } @machines);
my $rules = join(', ', map { "('CEN00A01', 'direct', '$_')" } @machines);
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'client_access_point', 'CAP1', '$b/cap');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES $rows;
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tool', '$b/srv');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'All');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES $rules;
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN00C01', 'Tool', 'CEN00B01', 'Install', 'CEN00A01');});
ok(wait_until($node, 'site', q{SELECT count(*) = 3 FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C01' AND state = 'waiting'}, 60),
	'the advertisement has a waiting target per machine');
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist status_manager'}, 60),
	'the Status Manager runs');

# the refused files of earlier days make each listing of the inbox take a
# while, and one session wakes the Status Manager every 20 files, so it
# lists the inbox again and again while the files arrive
for my $i (1 .. 30000)
{
	open(my $fh, '>', sprintf('%s/cap/statmsgs.box/CEN09%03d.%010d.SMS.bad', $b, $i % 1000, $i)) or die $!;
	close $fh;
}
my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my ($in, $out, $err) = ('', '', '');
my $waker = IPC::Run::start([ $psql, '-X', '-q', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
my %key = map { $_ => pack('H*', $node->safe_psql('site', "SELECT smsdist.machine_key('$_')")) } @machines;
my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime);
for my $seq (1 .. $per)
{
	for my $machine (@machines)
	{
		my $file = sprintf('%s/cap/statmsgs.box/%s.%010d.SMS', $b, $machine, $seq);
		my $id = $seq < $per ? 10001 : 10008;
		my $text = "[smsdist]\nformat=status\nversion=1\nmachine=$machine\nsite=CEN\nsequence=$seq\n"
		  . "at=$at\nmessage_id=$id\nseverity=info\ncomponent=Client Agent\nadvert_id=CEN00C01\n"
		  . "text=message $seq of $machine\n";
		open(my $fh, '>', "$file.tmp") or die "$file: $!";
		print $fh $text . 'hmac=' . hmac_sha256_hex($text, $key{$machine}) . "\n";
		close $fh;
		rename("$file.tmp", $file) or die;
	}
	if ($seq % 20 == 0)
	{
		$in .= "SELECT smsdist.wake('status_manager');\n";
		$waker->pump_nb;
	}
}
$in .= "\\q\n";
$waker->finish;
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});

my $n = $per * @machines;
ok(wait_until($node, 'site', qq{SELECT count(*) = $n FROM smsdist.status_messages WHERE advert_id = 'CEN00C01'}, 120),
	"all $n messages are rows")
  or diag($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE advert_id = 'CEN00C01'}));
ok(wait_until($node, 'site', qq{SELECT count(*) = 0 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS'}, 60),
	'the inbox is emptied');
ok(!glob("$b/cap/statmsgs.box/CEN0000*.bad"), 'none was refused');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE target_effect LIKE 'not applied%'}), '0',
	'no message was taken after a newer one of its machine')
  or diag($node->safe_psql('site', q{SELECT machine, client_sequence, target_effect FROM smsdist.status_messages
                                       WHERE target_effect LIKE 'not applied%' ORDER BY 1, 2 LIMIT 10}));
is($node->safe_psql('site', q{SELECT string_agg(t.sms_id || ':' || t.state || ':' || m.client_sequence, ',' ORDER BY t.sms_id)
                                FROM smsdist.advertisement_target_status t JOIN smsdist.status_messages m ON m.status_id = t.status_id
                               WHERE t.advert_id = 'CEN00C01'}),
	join(',', map { "$_:succeeded:$per" } @machines),
	'each target is in the state of its machine\'s last message, which set it');

# A machine registered while a step of the Status Manager is under way:
# the step is held at its first look (a session locks site_systems), the
# machine is added, its agent writes a message signed with its new key,
# and the step goes on.  Its keys must be read fresh, not from the step's
# first snapshot (which has no such machine), or the message is refused.
($in, $out, $err) = ("BEGIN;\nLOCK TABLE smsdist.site_systems IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n", '', '');
my $locker = IPC::Run::start([ $psql, '-X', '-At', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$locker->pump until $out =~ /locked/;
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', q{SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE backend_type = 'smsdist status_manager'}, 60),
	'a step of the Status Manager has begun and waits');
$node->safe_psql('site', q{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES ('CEN00004', 'WKS-CEN00004', 'CORP', 'CEN', 'WINNT_X86')});
{
	my $key = pack('H*', $node->safe_psql('site', "SELECT smsdist.machine_key('CEN00004')"));
	my $file = "$b/cap/statmsgs.box/CEN00004.0000000001.SMS";
	my $text = "[smsdist]\nformat=status\nversion=1\nmachine=CEN00004\nsite=CEN\nsequence=1\n"
	  . "at=$at\nmessage_id=10001\nseverity=info\ncomponent=Client Agent\nadvert_id=CEN00C01\ntext=a new machine\n";
	open(my $fh, '>', "$file.tmp") or die "$file: $!";
	print $fh $text . 'hmac=' . hmac_sha256_hex($text, $key) . "\n";
	close $fh;
	rename("$file.tmp", $file) or die;
}
ok(wait_until($node, 'site', q{SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE backend_type = 'smsdist status_manager'}, 60),
	'the step still waits');
$in .= "COMMIT;\n\\q\n";
$locker->finish;
ok(wait_until($node, 'site', qq{SELECT count(*) = 0 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE 'CEN00004%'}, 60),
	'the new machine\'s file is taken');
ok(!-e "$b/cap/statmsgs.box/CEN00004.0000000001.SMS.bad", 'and not refused');
is($node->safe_psql('site', q{SELECT message FROM smsdist.status_messages WHERE machine = 'CEN00004' AND message_id = 10001}), 'a new machine',
	'its message is recorded');

done_testing();
