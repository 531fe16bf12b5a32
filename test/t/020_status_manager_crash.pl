# kill -9 of the Status Manager while it takes in a full status inbox (issue
# 5), held in the middle of a batch by a session that locks the status
# table: the server restarts, and in the end every message of the inbox is a
# row exactly once -- files are removed only after their rows commit, and a
# file read again after the crash is recorded once (the unique index on
# machine, client sequence and client time).  The messages move the
# machines' targets of an advertisement, in the transaction that records
# them: after the restart each target is in the state of its machine's
# newest message, moved there exactly once.  Then: an agent's temporary
# file abandoned in the inbox is removed once it is an hour old.
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

my $n = 20000;
my $node = site_node('cen', site_code => 'CEN',
	conf => "smsdist.poll_interval = '300s'\nrestart_after_crash = on\n");
my $b = $node->basedir;
make_path("$b/cap/statmsgs.box");
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'client_access_point', 'CAP1', '$b/cap');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tool', '$b/srv');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Both');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES
  ('CEN00A01', 'direct', 'CEN00001'), ('CEN00A01', 'direct', 'CEN00002');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN00C01', 'Tool', 'CEN00B01', 'Install', 'CEN00A01');});
ok(wait_until($node, 'site', q{SELECT count(*) = 2 FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C01' AND state = 'waiting'}, 60),
	'the advertisement has a waiting target per machine');

# two machines' worth of messages, written as the agent writes them:
# signed with each machine's key, at the site's time; offers, and last a
# success (CEN00001) and a failure (CEN00002)
my %key = map { $_ => pack('H*', $node->safe_psql('site', "SELECT smsdist.machine_key('$_')")) } qw(CEN00001 CEN00002);
my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime);
for my $i (1 .. $n)
{
	my $machine = $i % 2 ? 'CEN00001' : 'CEN00002';
	my $seq = int(($i + 1) / 2);
	my $file = sprintf('%s/cap/statmsgs.box/%s.%010d.SMS', $b, $machine, $seq);
	open(my $fh, '>', "$file.tmp") or die "$file: $!";
	my $last = $seq == $n / 2;
	my $id = !$last ? 10001 : $machine eq 'CEN00001' ? 10008 : 10009;
	my $text = "[smsdist]\nformat=status\nversion=1\nmachine=$machine\nsite=CEN\nsequence=$seq\n"
	  . "at=$at\nmessage_id=$id\nseverity=info\ncomponent=Client Agent\nadvert_id=CEN00C01\n"
	  . "text=message $seq of $machine" . ($id == 10009 ? ' failed with exit code 5' : '') . "\n";
	print $fh $text . 'hmac=' . hmac_sha256_hex($text, $key{$machine}) . "\n";
	close $fh;
	rename("$file.tmp", $file) or die;
}

ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist status_manager'}, 60),
	'the Status Manager runs');
my $pid = $node->safe_psql('site',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist status_manager'");
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
# once some batches are in, hold the next one at its INSERT (a session
# locks the table), and kill the Status Manager there: mid-batch, with
# files read but their rows not committed, and others still waiting
ok(wait_until($node, 'site', q{SELECT count(*) > 0 FROM smsdist.status_messages WHERE advert_id = 'CEN00C01'}, 60),
	'the Status Manager is taking the inbox in');
my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my ($in, $out, $err) = ("BEGIN;\nLOCK TABLE smsdist.status_messages IN SHARE MODE;\n", '', '');
my $locker = IPC::Run::start([ $psql, '-X', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$locker->pump while length $in;
ok(wait_until($node, 'site', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid", 60),
	'the Status Manager waits in the middle of a batch');
my $before = $node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE advert_id = 'CEN00C01'});
my $left = () = glob("$b/cap/statmsgs.box/*.SMS");
kill 'KILL', $pid;
$locker->kill_kill;	# the restart ends its session anyway
note("killed the Status Manager with $before rows in and $left files left");
ok($left > 0, "it was killed with files still in the inbox ($left of $n)");

# the server restarts; the new Status Manager takes in the rest
ok(wait_until($node, 'site', qq{SELECT count(*) = 0 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS'}, 120),
	'after the restart the inbox is emptied') or diag($node->safe_psql('site', 'SELECT count(*) FROM smsdist.status_messages'));
ok($node->log_contains(qr/terminated by signal 9/), 'the server saw the kill -9');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE advert_id = 'CEN00C01'}), $n,
	"all $n messages are rows");
is($node->safe_psql('site', q{SELECT count(*) FROM (SELECT machine, client_sequence FROM smsdist.status_messages
                                WHERE advert_id = 'CEN00C01' GROUP BY 1, 2 HAVING count(*) > 1) d}), '0',
	'none of them twice');
is($node->safe_psql('site', q{SELECT string_agg(machine || ':' || max_seq, ',' ORDER BY machine) FROM
                                (SELECT machine, max(client_sequence) AS max_seq FROM smsdist.status_messages
                                  WHERE advert_id = 'CEN00C01' GROUP BY 1) m}),
	'CEN00001:' . ($n / 2) . ',CEN00002:' . ($n / 2), 'each machine\'s messages up to its last sequence');
ok(!glob("$b/cap/statmsgs.box/*.bad"), 'none was refused');
is($node->safe_psql('site', q{SELECT string_agg(t.sms_id || ':' || t.state || ':' || t.exit_code || ':' || m.client_sequence, ',' ORDER BY t.sms_id)
                                FROM smsdist.advertisement_target_status t JOIN smsdist.status_messages m ON m.status_id = t.status_id
                               WHERE t.advert_id = 'CEN00C01'}),
	'CEN00001:succeeded:0:' . ($n / 2) . ',CEN00002:failed:5:' . ($n / 2),
	'each target is in the state of its machine\'s newest message, which set it');
is($node->safe_psql('site', q{SELECT string_agg(machine || ' ' || target_effect, ',' ORDER BY machine) FROM smsdist.status_messages
                               WHERE target_effect IN ('advertisement CEN00C01: offered -> succeeded',
                                                       'advertisement CEN00C01: offered -> failed',
                                                       'advertisement CEN00C01: waiting -> offered')}),
	'CEN00001 advertisement CEN00C01: waiting -> offered,CEN00001 advertisement CEN00C01: offered -> succeeded,'
	  . 'CEN00002 advertisement CEN00C01: waiting -> offered,CEN00002 advertisement CEN00C01: offered -> failed',
	'each move happened exactly once, however often the batch that made it was read');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE target_effect LIKE 'not applied%'}), '0',
	'and no message was refused as out of order');

# what an agent killed between create and rename left in the inbox: the
# Status Manager removes a temporary file unchanged for more than an hour
# (the agent may never run again to remove its own), and leaves a fresh
# one (an agent may be writing it) and anything that is not a temporary
my $inbox = "$b/cap/statmsgs.box";
my %planted = (
	'.CEN00001.0000099001.SMS.tmp.4242' => [ 2 * 3600, 0 ],
	'.CEN00002.INV.tmp.4243' => [ 2 * 3600, 0 ],
	'.CEN00001.0000099002.SMS.tmp.4244' => [ 60, 1 ],
	'notes.txt' => [ 2 * 3600, 1 ]);
for my $f (sort keys %planted)
{
	open(my $fh, '>', "$inbox/$f") or die "$inbox/$f: $!";
	print $fh "half";
	close($fh);
	my $t = time() - $planted{$f}[0];
	utime($t, $t, "$inbox/$f") or die;
}
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', qq{SELECT count(*) = 0 FROM pg_ls_dir('$inbox') f WHERE f LIKE '%.tmp.424_' AND f NOT LIKE '%99002%'}, 60),
	'the temporaries unchanged for two hours are removed');
for my $f (sort keys %planted)
{
	next unless $planted{$f}[1];
	ok(-e "$inbox/$f", "kept: $f");
}
ok($node->log_contains(qr/removed "\Q$inbox\E\/\.CEN00002\.INV\.tmp\.4243", a temporary file unchanged for more than 3600 seconds/),
	'the server log says what was removed');

done_testing();
