# kill -9 of the Status Manager while it takes in a full status inbox (issue
# 5), held in the middle of a batch by a session that locks the status
# table: the server restarts, and in the end every message of the inbox is a
# row exactly once -- files are removed only after their rows commit, and a
# file read again after the crash is recorded once (the unique index on
# machine, client sequence and client time).
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
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86');});

# two machines' worth of messages, written as the agent writes them:
# signed with each machine's key, at the site's time
my %key = map { $_ => pack('H*', $node->safe_psql('site', "SELECT smsdist.machine_key('$_')")) } qw(CEN00001 CEN00002);
my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime);
for my $i (1 .. $n)
{
	my $machine = $i % 2 ? 'CEN00001' : 'CEN00002';
	my $seq = int(($i + 1) / 2);
	my $file = sprintf('%s/cap/statmsgs.box/%s.%010d.SMS', $b, $machine, $seq);
	open(my $fh, '>', "$file.tmp") or die "$file: $!";
	my $text = "[smsdist]\nformat=status\nversion=1\nmachine=$machine\nsite=CEN\nsequence=$seq\n"
	  . "at=$at\nmessage_id=10001\nseverity=info\ncomponent=Client Agent\n"
	  . "text=message $seq of $machine\n";
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
ok(wait_until($node, 'site', q{SELECT count(*) > 0 FROM smsdist.status_messages WHERE message_id = 10001}, 60),
	'the Status Manager is taking the inbox in');
my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my ($in, $out, $err) = ("BEGIN;\nLOCK TABLE smsdist.status_messages IN SHARE MODE;\n", '', '');
my $locker = IPC::Run::start([ $psql, '-X', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$locker->pump while length $in;
ok(wait_until($node, 'site', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid", 60),
	'the Status Manager waits in the middle of a batch');
my $before = $node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 10001});
my $left = () = glob("$b/cap/statmsgs.box/*.SMS");
kill 'KILL', $pid;
$locker->kill_kill;	# the restart ends its session anyway
note("killed the Status Manager with $before rows in and $left files left");
ok($left > 0, "it was killed with files still in the inbox ($left of $n)");

# the server restarts; the new Status Manager takes in the rest
ok(wait_until($node, 'site', qq{SELECT count(*) = 0 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS'}, 120),
	'after the restart the inbox is emptied') or diag($node->safe_psql('site', 'SELECT count(*) FROM smsdist.status_messages'));
ok($node->log_contains(qr/terminated by signal 9/), 'the server saw the kill -9');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 10001}), $n,
	"all $n messages are rows");
is($node->safe_psql('site', q{SELECT count(*) FROM (SELECT machine, client_sequence FROM smsdist.status_messages
                                WHERE message_id = 10001 GROUP BY 1, 2 HAVING count(*) > 1) d}), '0',
	'none of them twice');
is($node->safe_psql('site', q{SELECT string_agg(machine || ':' || max_seq, ',' ORDER BY machine) FROM
                                (SELECT machine, max(client_sequence) AS max_seq FROM smsdist.status_messages
                                  WHERE message_id = 10001 GROUP BY 1) m}),
	'CEN00001:' . ($n / 2) . ',CEN00002:' . ($n / 2), 'each machine\'s messages up to its last sequence');
ok(!glob("$b/cap/statmsgs.box/*.bad"), 'none was refused');

done_testing();
