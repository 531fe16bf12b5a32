# A hierarchy whose sites run different versions: a parent at the current
# version with a child one version behind, and the reverse.  The earlier
# version is built from the repository's history into a copy of the
# PostgreSQL installation (test/lib/build-old-version): the last commit
# whose smsdist.control names the previous version, i.e. the parent of
# the first commit that names the current one.
#
# Each pair gets a run-command job for a machine at the child and a share
# job for the child, sent by the parent.  What the test shows (and
# docs/upgrades.md says):
#
#   old parent, new child: everything works.  The child takes the package
#   and its job, distributes it, and reports its targets up: both jobs
#   complete at the parent.
#   new parent, old child: the package files of the current version
#   (version 2 manifests) cannot be read by the older child.  The parent's
#   Sender asks the child its version before a transfer and does not send:
#   the send rows wait (retrying) with the reason, naming the versions and
#   the site to update, and the jobs stay active until the child is
#   updated; then they go on by themselves (without that check, the child
#   took the file and failed to extract it with "invalid manifest ... the
#   line is too short", and the jobs failed).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

# the repository: test/run-all passes it (its work copy has no .git)
my $gitdir = $ENV{SMSDIST_GIT_DIR}
  // `git -C '$FindBin::Bin' rev-parse --path-format=absolute --git-common-dir 2>/dev/null`;
chomp $gitdir;
plan skip_all => 'no git repository to build the earlier version from' if $gitdir eq '' || !-d $gitdir;
my $git = "git -c safe.directory='*' --git-dir='$gitdir'";

my $current = `sed -n "s/^default_version *= *'\\(.*\\)'/\\1/p" '$FindBin::Bin/../../smsdist.control'`;
chomp $current;
my $first = `$git log --format=%H -S"default_version = '$current'" -- smsdist.control | tail -1`;
chomp $first;
my $old_commit = `$git rev-parse '$first^'`;
chomp $old_commit;
my $previous = `$git show '$old_commit:smsdist.control' | sed -n "s/^default_version *= *'\\(.*\\)'/\\1/p"`;
chomp $previous;
ok($old_commit =~ /^[0-9a-f]{40}$/ && $previous ne $current && $previous ne '',
	"the previous version $previous is commit $old_commit");
my $out = `bash '$FindBin::Bin/../lib/build-old-version' $old_commit '$PostgreSQL::Test::Utils::tmp_check/old' pg_config`;
is($?, 0, "$previous built into a copy of the installation") or BAIL_OUT('no earlier version to run');
my ($old) = $out =~ /([^\n]+)\n?\z/;

my $conf = "smsdist.poll_interval = '2s'\n";

# A parent CEN and a child CH1 (machine WKS1, a distribution point), each
# from its installation, and the two jobs at the parent.
sub pair
{
	my ($tag, $parent_old, $child_old) = @_;
	my $p = site_node("p$tag", site_code => 'CEN', conf => $conf, $parent_old ? (install_path => $old) : ());
	my $c = site_node("c$tag", site_code => 'CH1', conf => $conf, $child_old ? (install_path => $old) : ());
	for my $n ($p, $c)
	{
		$n->safe_psql('site', q{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00001', 'WKS1', 'CORP', 'CH1', 'WIN95');});
	}
	link_sites($p, 'CEN', $c, 'CH1');
	$p->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
		  . $c->host . ' port=' . $c->port . " dbname=site user=parent_sender')");
	$c->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', 'host="
		  . $p->host . ' port=' . $p->port . " dbname=site user=child_reporter')");
	my $cb = $c->basedir;
	make_path(map { "$cb/$_" } qw(dp drive logon cap));
	$c->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$cb/dp'), ('CH1', 'site_server_drive', 'D', '$cb/drive'),
  ('CH1', 'logon_server', 'LOGON1', '$cb/logon'), ('CH1', 'client_access_point', 'CAP1', '$cb/cap')});
	my $src = $p->basedir . '/source/tool';
	make_path($src);
	open my $fh, '>', "$src/tool.sh" or die $!;
	print $fh "echo installing tool\n";
	close $fh;
	$p->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Tool', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00001', 'Run', 'tool --install');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
    VALUES ('CEN00001', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
    VALUES ('CEN00002', 'share_package', 'CEN00001', 'sites', '{CH1}');});
	return ($p, $c);
}

# --- the parent one version behind its child: everything works
my ($p, $c) = pair('old', 1, 0);
is($p->safe_psql('site', "SELECT extversion FROM pg_extension WHERE extname = 'smsdist'") . ' '
	  . $c->safe_psql('site', "SELECT extversion FROM pg_extension WHERE extname = 'smsdist'"),
	"$previous $current", "parent at $previous, child at $current");
ok(wait_until($p, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00002'", 60),
	'the share job completes at the parent');
ok(wait_until($c, 'site', q{SELECT count(*) = 1 FROM smsdist.package_locations WHERE package_id = 'CEN00001'}, 60),
	'the child published the package');
ok(wait_until($c, 'site', "SELECT count(*) = 1 FROM smsdist.pcm_files WHERE sms_id = 'CEN00001' AND 'CEN00001' = ANY (jobs)", 60),
	"the child wrote the run-command job's PCM file");
$c->safe_psql('site', q{
INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message, job_id, client_sequence, client_at)
VALUES ('CH1', 'SMS_CLIENT', 'CEN00001', 'informational', 10008, 'the program succeeded', 'CEN00001', 1, now())});
ok(wait_until($p, 'site', q{SELECT j.state = 'completed' AND t.state = 'succeeded'
	FROM smsdist.jobs j JOIN smsdist.job_target_status t USING (job_id) WHERE j.job_id = 'CEN00001'}, 60),
	"the child's target report reaches the older parent: the run-command job completes");
$p->stop;
$c->stop;

# --- the child one version behind its parent: the parent does not send,
# and says why
($p, $c) = pair('new', 0, 1);
is($p->safe_psql('site', "SELECT extversion FROM pg_extension WHERE extname = 'smsdist'") . ' '
	  . $c->safe_psql('site', "SELECT extversion FROM pg_extension WHERE extname = 'smsdist'"),
	"$current $previous", "parent at $current, child at $previous");
my $reason = "site CH1 runs smsdist $previous, which cannot read the package files of this site's smsdist $current: "
  . "update site CH1 to $current or later first";
ok(wait_until($p, 'site', q{SELECT count(*) = 2 FROM smsdist.job_site_status
	WHERE site_code = 'CH1' AND phase = 'send' AND state = 'retrying' AND last_error = $r$} . $reason . q{$r$}, 60),
	'both send rows wait for the child, with the reason')
  or diag($p->safe_psql('site', "SELECT string_agg(job_id || ' ' || phase || ' ' || state || ': ' || coalesce(last_error, ''), E'\n') FROM smsdist.job_site_status"));
is($p->safe_psql('site', "SELECT string_agg(job_id || ' ' || state, ', ' ORDER BY job_id) FROM smsdist.jobs"),
	'CEN00001 active, CEN00002 active', 'the jobs stay active, neither fails');
ok(wait_until($p, 'site', qq{SELECT count(*) > 0 FROM smsdist.status_messages
	WHERE component = 'sender' AND severity <> 'informational' AND message LIKE '%runs smsdist $previous%'}, 60),
	'a status message tells the administrator');
is($c->safe_psql('site', 'SELECT count(*) FROM smsdist.package_transfers') . ' '
	  . $c->safe_psql('site', 'SELECT count(*) FROM smsdist.jobs'),
	'0 0', 'the child received nothing');

# --- the child is updated (the current library and scripts installed in
# its installation, a restart, ALTER EXTENSION UPDATE): the sends go on by
# themselves and the jobs complete.  The copy is the test's own; its build
# marker is removed, so that it would be built again if asked for.
$c->stop;
my $cur_lib = `pg_config --pkglibdir`;
my $cur_share = `pg_config --sharedir`;
chomp($cur_lib, $cur_share);
my $old_lib = `'$old/bin/pg_config' --pkglibdir`;
my $old_share = `'$old/bin/pg_config' --sharedir`;
chomp($old_lib, $old_share);
unlink("$old/../../../../done");
system("cp '$cur_lib/smsdist.so' '$old_lib/' && cp '$cur_share'/extension/smsdist* '$old_share/extension/'") == 0
  or die 'installing the current version in the copy failed';
$c->start;
$c->safe_psql('site', 'ALTER EXTENSION smsdist UPDATE');
is($c->safe_psql('site', "SELECT extversion FROM pg_extension WHERE extname = 'smsdist'"), $current,
	"the child is updated to $current");
ok(wait_until($p, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00002'", 60),
	'the waiting share job is sent and completes');
ok(wait_until($c, 'site', "SELECT count(*) = 1 FROM smsdist.pcm_files WHERE sms_id = 'CEN00001' AND 'CEN00001' = ANY (jobs)", 60),
	"and the run-command job reaches the child's machine");

done_testing();
