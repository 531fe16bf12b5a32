# A distribution point added just before a job: the Despooler must see it.
# A step of the Despooler begins (its first snapshot taken), a session
# holds it there (it locks a table the step reads), and meanwhile the
# site's first distribution point and a share job are committed.  When the
# step goes on, it claims the job with a fresh snapshot; it must read the
# distribution points as fresh, not from the step's first snapshot (which
# has none), or it fails the job with "site has no enabled distribution
# point".
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '300s'\n");
my $b = $node->basedir;
make_path("$b/dp", "$b/drive", "$b/src");
system("echo setup > '$b/src/setup.exe'") == 0 or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CEN', 'site_server_drive', 'D', '$b/drive');
INSERT INTO smsdist.packages (package_id, name, version, source_directory) VALUES ('CEN00B01', 'Editor', '2.0', '$b/src');});
ok(wait_until($node, 'site', q{SELECT state = 'idle' FROM pg_stat_activity WHERE backend_type = 'smsdist despooler'}, 60),
	'the Despooler is idle');

# hold the Despooler's next step at its look for transfers to extract early
my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my ($in, $out, $err) = ("BEGIN;\nLOCK TABLE smsdist.package_transfers IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n", '', '');
my $locker = IPC::Run::start([ $psql, '-X', '-At', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$locker->pump until $out =~ /locked/;
$node->safe_psql('site', q{SELECT smsdist.wake('despooler')});
ok(wait_until($node, 'site', q{SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE backend_type = 'smsdist despooler'}, 60),
	'a step of the Despooler has begun and waits');

# meanwhile: the first distribution point, then the job
$node->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CEN', 'distribution_point', 'DP1', '$b/dp');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN0E001', 'share_package', 'CEN00B01', 'sites', '{CEN}');});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.job_site_status s JOIN smsdist.package_builds b ON b.package_id = 'CEN00B01'
                                WHERE s.job_id = 'CEN0E001' AND s.phase = 'distribute' AND s.state = 'waiting' AND b.state = 'ready'}, 60),
	'the package is built and its distribution waits for the Despooler');
ok(wait_until($node, 'site', q{SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE backend_type = 'smsdist despooler'}, 5),
	'the Despooler still waits in the same step');
$in .= "COMMIT;\n\\q\n";
$locker->finish;

ok(wait_until($node, 'site', q{SELECT state IN ('completed', 'failed') FROM smsdist.jobs WHERE job_id = 'CEN0E001'}, 60),
	'the job ends');
is($node->safe_psql('site', q{SELECT state FROM smsdist.jobs WHERE job_id = 'CEN0E001'}), 'completed',
	'the job completed')
  or diag($node->safe_psql('site', q{SELECT phase, state, detail, last_error FROM smsdist.job_site_status WHERE job_id = 'CEN0E001'}));
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.package_locations WHERE package_id = 'CEN00B01'}), '1',
	'the package is published on the new distribution point');
ok(-e "$b/dp/SMS_PKGD/CEN00B01/setup.exe" || glob("$b/dp/SMS_PKG*/CEN00B01/setup.exe"), 'its file is there');

done_testing();
