# The Run phase across sites: a run-command job at the central site CEN for
# a collection whose machines are at the child site CH1.  CEN sends CH1 the
# package and the real job (program, times, the machines behind CH1); CH1
# distributes the package and writes the PCM files of its machines on its
# own two logon servers.  When a machine at CH1 joins or leaves the
# collection at CEN, CEN tells CH1 and the files follow.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $conf = "smsdist.poll_interval = '5s'\n";
my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
my $b = $ch1->basedir;
make_path("$b/dp1", "$b/dp2", "$b/drive", "$b/logon1", "$b/logon2");
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$b/dp1'), ('CH1', 'distribution_point', 'DP2', '$b/dp2'),
  ('CH1', 'site_server_drive', 'D', '$b/drive'),
  ('CH1', 'logon_server', 'LOGON1', '$b/logon1'), ('CH1', 'logon_server', 'LOGON2', '$b/logon2');});

my $src = $cen->basedir . '/src';
make_path($src);
system("echo setup > '$src/setup.exe'") == 0 or die;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CH100001', 'CH-WKS-1', 'BRANCH', 'CH1', 'WINNT_X86'),
  ('CH100002', 'CH-WKS-2', 'BRANCH', 'CH1', 'WINNT_X86'),
  ('CH100003', 'CH-WKS-3', 'BRANCH', 'CH1', 'WIN95');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'NT');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
VALUES ('CEN00A01', 'query', 'platform = ''WINNT_X86''');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, max_run_minutes)
VALUES ('CEN00B01', 'Install', 'setup.exe /q', 15);
});
ok(wait_until($cen, 'site', "SELECT count(*) = 2 FROM smsdist.collection_members", 30), 'the collection has two machines');
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id, expires_at)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01', now() + interval '7 days')});

sub files_at
{
	my ($id, $present) = @_;
	my @paths = ("$b/logon1/pcins.box/$id", "$b/logon2/pcins.box/$id", "$b/drive/mancfg.box/pcmdom.box/BRANCH.000/$id");
	return eventually(sub { my $n = grep { -f $_ } @paths; $present ? $n == 3 : $n == 0 });
}
ok(files_at('CH100001', 1), 'CH100001 has its PCM file on both logon servers of CH1 and its site server');
ok(files_at('CH100002', 1), 'so has CH100002');
ok(files_at('CH100003', 0), 'the WIN95 machine has none');
is($ch1->safe_psql('site', "SELECT job_type || ' ' || program_name || ' ' || target_type || ' ' || array_to_string(target_machines, ',') || ' ' || (expires_at IS NOT NULL) FROM smsdist.jobs WHERE job_id = 'CEN00C01'"),
	'run_command Install machines CH100001,CH100002 true', 'CH1 holds the real job: program, machines, expiry');
open(my $fh, '<', "$b/logon1/pcins.box/CH100001") or die;
my $pcm = do { local $/; <$fh> };
close $fh;
like($pcm, qr/site=CH1\n.*\[job CEN00C01\].*command_line=setup.exe \/q\n.*max_run_minutes=15\nlocations=\Q$b\E\/dp1\/SMS_PKGC\/CEN00B01;\Q$b\E\/dp2\/SMS_PKGC\/CEN00B01\n/s,
	"the file names CH1's two distribution points");

# --- membership at CEN reaches CH1
$cen->safe_psql('site', "UPDATE smsdist.system_resources SET platform = 'WINNT_X86' WHERE sms_id = 'CH100003'");
ok(files_at('CH100003', 1), 'a machine at CH1 that joins the collection at CEN gets its file at CH1');
$cen->safe_psql('site', "UPDATE smsdist.system_resources SET platform = 'WIN95' WHERE sms_id = 'CH100001'");
ok(files_at('CH100001', 0), 'one that leaves loses it');
is($ch1->safe_psql('site', "SELECT string_agg(sms_id || ':' || state, ',' ORDER BY sms_id) FROM smsdist.job_target_status WHERE job_id = 'CEN00C01'"),
	'CH100001:not_applicable,CH100002:waiting,CH100003:waiting',
	"CH1's copy of the job has the machines CEN has behind CH1; the one that left before its program ran is not applicable");

$_->stop for ($cen, $ch1);
done_testing();
