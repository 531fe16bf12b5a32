# Package updates and live jobs (docs/packages.md, "Package updates and live
# jobs"): a distribution point holds one version of a package, its current
# one, and live run-command jobs follow it.  A run-command job for version 1
# is live (its PCM file written, the agent has not run yet); the source
# changes and a share_package job publishes version 2: the job moves to
# version 2, its PCM file is rewritten, and the agent downloads and runs
# version 2 -- never a version that is no longer on the distribution point.
# A job for a version that is already published, intact, on every
# distribution point does not extract and publish it again (the tree on the
# distribution point is not touched); a damaged copy is published again.
# Removing the package says so for the live jobs.  Then the same across two
# sites: the child's copy of the job follows what the child's distribution
# points hold, and a second job does not extract the package there again.
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

my $agent = agent_path();
my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
make_path("$b/src", "$b/marks");
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die "$f: $!"; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }
# version 1 of the package: its program says which version ran
spew("$b/src/install.sh", "echo \"version 1 from \$(pwd)\" >> '$b/marks/ran.txt'\n");
spew("$b/src/data.txt", "one\n");
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'sh install.sh');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000A1', 'share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000A1'", 60),
	'version 1 is published')
  or BAIL_OUT('version 1 was not published: ' . $node->safe_psql('site', q{SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE severity <> 'informational'}));
my $keyfile = machine_key_file($node, 'CEN00001');
my $share = "$b/dp/SMS_PKGC";

# ---- a live run-command job for version 1
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001}', '2026-01-01 00:00+00',
        '2026-01-01 00:00+00', '2026-12-01 10:00+00')});
my $pcm = "$b/logon/pcins.box/CEN00001";
ok(wait_until($node, 'site', qq{SELECT coalesce(pg_read_file('$pcm', 0, 100000, true), '') ~ '\\[job CEN000D1\\][^[]*package_version=1\\n'}, 60),
	'the PCM file offers job CEN000D1 with version 1');
is($node->safe_psql('site', q{SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN000D1' AND phase = 'distribute'}),
	'already published on 1 distribution point', 'the job found version 1 published: not extracted again');

# ---- the source changes; a share_package job publishes version 2
spew("$b/src/install.sh", "echo \"version 2 from \$(pwd)\" >> '$b/marks/ran.txt'\n");
spew("$b/src/data.txt", "two\n");
$node->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00B01';});
# what a Despooler killed while writing a manifest leaves: its temporary file
# (a Despooler that is writing none lists the share)
my @manifest_leftovers = map { "$share/$_" } ('.CEN00B01.1.manifest.tmp.4194301', '.CEN00B01.2.manifest.tmp.4194302');
spew($_, "partial manifest\n") for @manifest_leftovers;
spew("$share/.CEN00B09.1.manifest.tmp.4194303", "another package's\n");
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000A2', 'share_package', 'CEN00B01', 'sites', '{CEN}');});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000A2'", 60),
	'version 2 is published');
is(join(', ', grep { -e } @manifest_leftovers), '', "publishing removed the package's manifest temporary files that a killed Despooler left");
ok(-e "$share/.CEN00B09.1.manifest.tmp.4194303", "but not another package's");
unlink("$share/.CEN00B09.1.manifest.tmp.4194303");
ok(-f "$share/CEN00B01.2.manifest" && !-e "$share/CEN00B01.1.manifest",
	'the distribution point holds version 2 only (version 1 is gone from it)');
is($node->safe_psql('site', q{SELECT state || ' ' || source_version FROM smsdist.jobs WHERE job_id = 'CEN000D1'}),
	'active 2', 'the live job now names version 2');
like($node->safe_psql('site', q{SELECT message FROM smsdist.status_messages WHERE message_id = 3205 AND job_id = 'CEN000D1'}),
	qr/^Job CEN000D1 now runs package CEN00B01 version 2 at site CEN instead of version 1: version 2 is what its distribution points hold \(published by job CEN000A2\)\. The PCM files of its 1 machine here are rewritten\.$/,
	'a status message (3205) says so');
is($node->safe_psql('site', q{SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN000D1' AND phase = 'distribute'}),
	'runs version 2, which the distribution points of this site hold (it named version 1)', "and the job's distribute row");
ok(wait_until($node, 'site', qq{SELECT coalesce(pg_read_file('$pcm', 0, 100000, true), '') ~ '\\[job CEN000D1\\][^[]*package_version=2\\n'}, 60),
	'the PCM file is rewritten: version 2');
my $sha2 = $node->safe_psql('site', q{SELECT encode(sha256(convert_to(manifest, 'UTF8')), 'hex') FROM smsdist.package_builds WHERE package_id = 'CEN00B01' AND source_version = 2});
like(slurp($pcm), qr/package_sha256=$sha2\n/, 'with the hash of the manifest of version 2');
# nothing points at content that is not there: every location of every PCM
# job holds the version it names
is($node->safe_psql('site', q{
SELECT count(*) FROM smsdist.jobs j JOIN smsdist.package_locations l ON l.package_id = j.package_id AND l.site_code = 'CEN'
 WHERE j.job_type = 'run_command' AND j.state = 'active' AND l.source_version <> j.source_version}),
	'0', 'no live job names a version other than the one on its locations');

# ---- the agent (it had not run): downloads and runs version 2
$ENV{TZ} = 'UTC';
sub agent
{
	my ($now) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key,
		'--machine-key', $keyfile, '--now', $now, '--once' ], '>', \$out, '2>', \$err);
	return ($?, $out, $err);
}
my ($rc, $out, $err) = agent('2026-12-01T12:00:00Z');
is($rc, 0, 'the agent runs') or diag($err);
like($out, qr/^${AGENT_INFO}cached CEN00B01 version 2: /m, 'it downloads version 2 into its cache');
unlike($out, qr/no manifest of version/, 'it finds the manifest of the version it was told');
like($out, qr/^${AGENT_INFO}ran job CEN000D1: Program "Install" of package CEN00B01 succeeded/m, 'and runs the job');
like(slurp("$b/marks/ran.txt"), qr/^version 2 from \Q$b\E\/ws\/cache\/CEN00B01\.2$/m, 'version 2 ran, from the cache');

# ---- a second job for version 2, already published: not extracted again
my @before = stat("$share/CEN00B01");
my @mbefore = stat("$share/CEN00B01.2.manifest");
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after)
VALUES ('CEN000D2', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001}', '2026-01-01 00:00+00', '2026-01-01 00:00+00')});
ok(wait_until($node, 'site', "SELECT state = 'done' FROM smsdist.job_site_status WHERE job_id = 'CEN000D2' AND phase = 'distribute'", 60),
	'the second job is distributed');
is($node->safe_psql('site', q{SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN000D2' AND phase = 'distribute'}),
	'already published on 1 distribution point', 'its detail: already published');
is($node->safe_psql('site', q{SELECT string_agg(message_id || ': ' || message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN000D2' AND message_id IN (3200, 3204)}),
	'3204: Package CEN00B01 version 2 is already published on 1 distribution point of site CEN, every file verified: not extracted again.',
	'a status message (3204) says so, and no 3200');
my @after = stat("$share/CEN00B01");
my @mafter = stat("$share/CEN00B01.2.manifest");
is("$after[1] $after[9]", "$before[1] $before[9]", 'the published tree was not replaced (same inode and modification time)');
is("$mafter[1] $mafter[9]", "$mbefore[1] $mbefore[9]", 'nor the manifest beside it');
ok(wait_until($node, 'site', qq{SELECT coalesce(pg_read_file('$pcm', 0, 100000, true), '') ~ '\\[job CEN000D2\\][^[]*package_version=2\\n'}, 60),
	'the second job is in the PCM file');

# ---- a damaged copy (same size, other bytes) is published again
spew("$share/CEN00B01/data.txt", "TWO\n");
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000A3', 'share_package', 'CEN00B01', 'sites', '{CEN}');});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000A3'", 60),
	'a third job completes');
is($node->safe_psql('site', q{SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN000A3' AND phase = 'distribute'}),
	'published on 1 distribution point', 'the damaged copy is not taken for published: the package is published again');
is(slurp("$share/CEN00B01/data.txt"), "two\n", 'the file is repaired');

# ---- removing the package: the live jobs say they cannot run here
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000F1', 'remove_package', 'CEN00B01', 'sites', '{CEN}');});
ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000F1'", 60),
	'the package is removed');
like($node->safe_psql('site', q{SELECT message FROM smsdist.status_messages WHERE message_id = 3206 AND job_id = 'CEN000D2'}),
	qr/^Job CEN000D2 cannot run package CEN00B01 version 2 at site CEN: job CEN000F1 removed the package from the distribution points of the site\./,
	'a status message (3206) for each live job');
is($node->safe_psql('site', q{SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN000D2' AND phase = 'distribute'}),
	'job CEN000F1 removed package CEN00B01 from the distribution points of this site: version 2 cannot run here',
	"the job's distribute row says so");
like($node->safe_psql('site', q{SELECT detail FROM smsdist.job_target_status WHERE job_id = 'CEN000D2' AND sms_id = 'CEN00001'}),
	qr/^package CEN00B01 version 2 was removed from the distribution points of site CEN by job CEN000F1$/,
	"and so does the detail of its machine, which had not run it");
ok(wait_until($node, 'site', qq{SELECT pg_read_file('$pcm', 0, 100000, true) IS NULL}, 60),
	'the PCM file no longer offers jobs whose package is gone (the machine has no live job left: no file)');

# ---- published again: the live jobs are offered again
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000A5', 'share_package', 'CEN00B01', 'sites', '{CEN}');});
ok(wait_until($node, 'site', qq{SELECT coalesce(pg_read_file('$pcm', 0, 100000, true), '') ~ '\\[job CEN000D2\\][^[]*package_version=2\\n'}, 60),
	'published again, the package is offered again by the live job');
is($node->safe_psql('site', q{SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN000D2' AND phase = 'distribute'}),
	'published again on the distribution points of this site: runs version 2', "the job's distribute row says so");
$node->stop;

# ======== two sites: the child's copy follows what the child holds
my $conf = "smsdist.poll_interval = '5s'\n";
my $cen = site_node('cen2', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
my $c = $ch1->basedir;
make_path("$c/dp1", "$c/dp2", "$c/drive", "$c/logon");
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$c/dp1'), ('CH1', 'distribution_point', 'DP2', '$c/dp2'),
  ('CH1', 'site_server_drive', 'D', '$c/drive'), ('CH1', 'logon_server', 'LOGON1', '$c/logon');});
my $src = $cen->basedir . '/src';
make_path($src);
spew("$src/setup.sh", "echo one\n");
$cen->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CH100001', 'CH-WKS-1', 'BRANCH', 'CH1', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'sh setup.sh');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN000E1', 'run_command', 'CEN00B01', 'Install', 'machines', '{CH100001}');});
my $cpcm = "$c/logon/pcins.box/CH100001";
ok(wait_until($ch1, 'site', qq{SELECT coalesce(pg_read_file('$cpcm', 0, 100000, true), '') ~ '\\[job CEN000E1\\][^[]*package_version=1\\n'}, 90),
	'CH1: the PCM file offers the job with version 1');

spew("$src/setup.sh", "echo two\n");
$cen->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00B01';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN000A4', 'share_package', 'CEN00B01', 'sites', '{CH1}');});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000A4'", 90),
	'version 2 is published at CH1');
is($ch1->safe_psql('site', q{SELECT source_version FROM smsdist.jobs WHERE job_id = 'CEN000E1'}), '2',
	"CH1's copy of the live job follows version 2");
ok(wait_until($ch1, 'site', qq{SELECT coalesce(pg_read_file('$cpcm', 0, 100000, true), '') ~ '\\[job CEN000E1\\][^[]*package_version=2\\n'}, 60),
	"CH1 rewrites its machine's PCM file: version 2");
ok(-f "$c/dp1/SMS_PKGC/CEN00B01.2.manifest" && -f "$c/dp2/SMS_PKGC/CEN00B01.2.manifest"
	  && !-e "$c/dp1/SMS_PKGC/CEN00B01.1.manifest", 'both distribution points of CH1 hold version 2, and only it');
ok($ch1->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3205 AND job_id = 'CEN000E1'}) == 1,
	'CH1 says so (3205)');

# a second run-command job for version 2: neither sent nor extracted again at CH1
my @ibefore = stat("$c/dp1/SMS_PKGC/CEN00B01");
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN000E2', 'run_command', 'CEN00B01', 'Install', 'machines', '{CH100001}');});
ok(wait_until($ch1, 'site', "SELECT state = 'done' FROM smsdist.job_site_status WHERE job_id = 'CEN000E2' AND phase = 'distribute'", 90),
	'CH1 distributes the second job');
is($ch1->safe_psql('site', q{SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN000E2' AND phase = 'distribute'}),
	'already published on 2 distribution points', 'CH1: already published on its 2 distribution points');
is($ch1->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE job_id = 'CEN000E2' AND message_id = 3204}),
	'1', 'with a status message (3204)');
is($ch1->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE job_id = 'CEN000E2' AND message_id = 3300}),
	'0', 'CH1 did not receive the package file again (no 3300)');
my @iafter = stat("$c/dp1/SMS_PKGC/CEN00B01");
is("$iafter[1] $iafter[9]", "$ibefore[1] $ibefore[9]", "CH1's published tree was not replaced");
ok(wait_until($ch1, 'site', qq{SELECT coalesce(pg_read_file('$cpcm', 0, 100000, true), '') ~ '\\[job CEN000E2\\][^[]*package_version=2\\n'}, 60),
	"the second job is in CH1's PCM file");

$_->stop for ($cen, $ch1);
done_testing();
