# A run-command job that completes before the parent has taken the child's
# distribution report (found by the chaos run, docs/reliability.md): the
# child publishes the package and its machine's agent runs the program;
# the child's Status Manager tells the parent the target succeeded, and
# the parent's job completes, while the parent's Sender is held in the
# transaction that takes the child's first report (the parent's
# package_locations locked) and is then killed.  After the restart the
# Sender still follows the completed job's open distribute row: it becomes
# done from the child's report, and the parent learns where the package
# is published -- before, the row waited for the site's report for ever.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my $conf = "smsdist.poll_interval = '5s'\nrestart_after_crash = on\n";
my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES ('CH100001', 'WKS-CH1', 'BRANCH', 'CH1', 'WINNT_X86')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
my $conninfo = sub { my ($n, $user) = @_; return 'host=' . $n->host . ' port=' . $n->port . " dbname=site user=$user"; };
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', '" . $conninfo->($ch1, 'parent_sender') . "')");
$ch1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', '" . $conninfo->($cen, 'child_reporter') . "')");
my $b = $ch1->basedir;
make_path(map { "$b/$_" } qw(dp1 drive logon1 cap1));
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$b/dp1'), ('CH1', 'site_server_drive', 'D', '$b/drive'),
  ('CH1', 'logon_server', 'LOGON1', '$b/logon1'), ('CH1', 'client_access_point', 'CAP1', '$b/cap1');});
my $src = $cen->basedir . '/src';
make_path($src);
system("echo 'exit 0' > '$src/setup.sh'") == 0 or die;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tool', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'sh setup.sh');});

# the Sender at CEN will wait in the transaction that takes CH1's report
my ($in, $out, $err) = ("BEGIN;\nLOCK TABLE smsdist.package_locations IN SHARE MODE;\n", '', '');
my $hold = IPC::Run::start([ $psql, '-X', '-d', $cen->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$hold->pump while length $in;
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, mandatory_at)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'machines', '{CH100001}', now())});
ok(wait_until($cen, 'site', q{SELECT state = 'done' FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND phase = 'send'}, 90),
	'CEN sent the job to CH1');
ok(wait_until($cen, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist sender' AND wait_event_type = 'Lock'}, 90),
	"CEN's Sender waits to record CH1's first report");
ok(wait_until($ch1, 'site', qq{SELECT coalesce(pg_read_file('$b/logon1/pcins.box/CH100001', 0, 100000, true), '') LIKE '%[job CEN00C01]%'}, 90),
	'CH1 published the package and wrote the PCM file');

# The agent judges a mandatory time by the site's clock in the heartbeat
# (CH1.HBT, rewritten every poll interval): it runs the program once that
# clock has passed the job's time, which a fast chain can beat
my $due = $ch1->safe_psql('site', q{SELECT to_char((date_trunc('second', mandatory_at) + interval '1 second') AT TIME ZONE 'UTC',
	'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM smsdist.jobs WHERE job_id = 'CEN00C01'});
ok(eventually(sub {
			open(my $fh, '<', "$b/cap1/offerinf.box/CH1.HBT") or return 0;
			my ($t) = join('', <$fh>) =~ /^site_time=(\S+)$/m;
			return defined $t && $t ge $due;
		}), "CH1's heartbeat shows its clock past the job's mandatory time ($due)");

# the machine's agent runs the program; CH1 tells CEN, whose job completes
my ($o, $e) = ('', '');
IPC::Run::run([ agent_path(), '--sms-id', 'CH100001', '--site', 'CH1', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws", '--logon-server', "$b/logon1", '--cap', "$b/cap1", '--once',
	'--machine-key', machine_key_file($ch1, 'CH100001'), '--site-key', site_key_file($ch1) ], '>', \$o, '2>', \$e);
like($o, qr/^${AGENT_INFO}ran job CEN00C01: /m, 'the agent ran the program') or diag("$o$e");
$ch1->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($cen, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00C01'}, 90),
	"CEN's job completes with its target");
is($cen->safe_psql('site', q{SELECT state FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND phase = 'distribute'}),
	'waiting', 'while its distribute row for CH1 still waits for the report');

# the Sender dies in that transaction; after the restart it follows the row
my $pid = $cen->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist sender'});
kill 'KILL', $pid;
$hold->kill_kill;
ok(wait_until($cen, 'site', q{SELECT state = 'done' FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND phase = 'distribute'}, 90),
	"the completed job's distribute row is done from CH1's report")
  or diag($cen->safe_psql('site', q{SELECT * FROM smsdist.job_site_status WHERE job_id = 'CEN00C01'}));
ok(wait_until($cen, 'site', qq{SELECT count(*) = 1 FROM smsdist.package_locations WHERE site_code = 'CH1' AND path LIKE '$b/dp1/%'}, 60),
	'and CEN knows where CH1 published the package');
is($cen->safe_psql('site', q{SELECT state FROM smsdist.jobs WHERE job_id = 'CEN00C01'}), 'completed', 'the job stays completed');

$_->stop for ($cen, $ch1);
done_testing();
