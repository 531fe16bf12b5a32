# Full disks recover by themselves.  Each of a full package store at the
# site that compresses, a full despool drive, and a full package store
# under a child's receiving side holds its item in a visible waiting state
# with the reason (which disk, what is free, what is needed) and the time
# of the next attempt, keeps what was published before, leaves no
# temporary file, and goes on by itself once room is made: the job then
# completes with the content byte-identical.  (A full distribution point
# is in t/006, a full logon server in t/011.)
#
# The suite, run as root, mounts a small tmpfs (SMSDIST_TEST_SMALLFS, 20
# MB); each case fills it with a filler file and removes the filler.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $small = $ENV{SMSDIST_TEST_SMALLFS};
plan skip_all => 'no small file system (run the tests as root to get one)' unless $small && -w $small;
remove_tree(glob("$small/*"));

my $conf = "smsdist.poll_interval = '2s'\nmax_worker_processes = 16\n";
my $cen = site_node('cen', site_code => 'CEN', conf => $conf . "smsdist.package_store = '$small/censtore'\n");
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf . "smsdist.package_store = '$small/ch1store'\n");
my $b = $cen->basedir;
my $cb = $ch1->basedir;
make_path("$b/dp", "$b/drive", "$cb/dp", "$cb/drive", "$small/ch1store/incoming");
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
$cen->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive');});
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP', '$cb/dp'), ('CH1', 'site_server_drive', 'D', '$cb/drive');});

my $src = "$b/source/app";
make_path("$src/bin", "$src/doc");
system("head -c 3000000 /dev/urandom > '$src/bin/app.bin'") == 0 or die;
system("yes 'documentation line' | head -c 200000 > '$src/doc/manual.txt'") == 0 or die;
$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src')");

sub job_state { my ($n, $id) = @_; $n->safe_psql('site', "SELECT state || ': ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = '$id'") }
sub share_job
{
	my ($id, $site) = @_;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('$id', 'share_package', 'CEN00001', 'sites', '{$site}')});
}
sub new_version
{
	my ($v) = @_;
	system("head -c 1000000 /dev/urandom > '$src/bin/v$v.bin'") == 0 or die;
	$cen->safe_psql('site', "UPDATE smsdist.packages SET source_version = $v WHERE package_id = 'CEN00001'");
}
# (fails once the file system is full: that is the point)
sub fill { system("head -c 40000000 /dev/zero > '$small/filler' 2>/dev/null"); }
sub same_tree { my ($x, $y) = @_; return system("diff -r '$x' '$y' >/dev/null 2>&1") == 0; }
sub poll_until
{
	my ($what, $sub) = @_;
	my $got = '';
	my $ok = eventually(sub { $got = $sub->() // ''; $got =~ $what }, 60);
	diag("last seen: $got") unless $ok;
	return $ok;
}

# --- (c) a full package store at the site that compresses: the build waits
# in 'building' with the reason and its next attempt; nothing fails
fill();
share_job('CEN00101', 'CEN');
ok(wait_until($cen, 'site', "SELECT next_attempt_at IS NOT NULL FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1", 60),
	'a full package store: the build waits for its next attempt') or diag(job_state($cen, 'CEN00101'));
ok(poll_until(qr/^building\|the package store "\Q$small\E\/censtore" is full \(\d+ bytes free, 3200000 bytes needed\): .*No space left on device/,
		sub { $cen->safe_psql('site', "SELECT state || '|' || coalesce(error, '') FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND next_attempt_at IS NOT NULL") }),
	'its error names the store, what is free and what is needed');
like(job_state($cen, 'CEN00101'), qr/^active: /, 'the job has not failed');
ok(poll_until(qr/^package builder\|package CEN00001 version 1 cannot be compressed since \S+ \S+ \(.*\): the package store .* is full .*; next attempt at \S+ \S+\|true$/,
		sub { $cen->safe_psql('site', "SELECT waiting_on || '|' || reason || '|' || (next_attempt_at IS NOT NULL) FROM smsdist.explain('CEN00101')") }),
	'explain() says why, and when the next attempt is');
like($cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE package_id = 'CEN00001' AND message_id = 3102"),
	qr/^Package CEN00001 version 1 waits for room to be compressed: the package store .* is full .*; it is tried again by itself, first at /,
	'status message 3102 says it, once');
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE package_id = 'CEN00001' AND message_id = 3101"),
	'0', 'and no build failed');
my $attempts = $cen->safe_psql('site', "SELECT attempts FROM smsdist.package_builds WHERE package_id = 'CEN00001'");
ok(wait_until($cen, 'site', "SELECT attempts > $attempts FROM smsdist.package_builds WHERE package_id = 'CEN00001'", 30),
	'the build is tried again by itself');
unlink("$small/filler");
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 60),
	'once there is room, the job completes by itself') or diag(job_state($cen, 'CEN00101'));
ok(same_tree($src, "$b/dp/SMS_PKGC/CEN00001"), 'the published tree is identical to the source');
is($cen->safe_psql('site', "SELECT (sha256 = encode(sha256(pg_read_binary_file(file_path)), 'hex'))::text || ' ' || (retrying_since IS NULL AND next_attempt_at IS NULL)::text
	FROM smsdist.package_builds WHERE package_id = 'CEN00001'"), 'true true', 'the package file is whole, and its retry clock cleared');
is(join(' ', grep { !m{/CEN00001\.1\.tar\.gz$} && !m{/incoming$} && !m{/deltas$} } glob("$small/censtore/*")), '',
	'no build temporary is left in the store');

# the central site's store moves off the small file system
$cen->append_conf('postgresql.conf', "smsdist.package_store = '$b/store'\n");
reload_settings($cen, 'site', { 'smsdist.package_store' => "$b/store" }, 'scheduler', 'despooler', 'sender');

# --- (a) a full despool drive: the distribution waits, saying which drive,
# and the version published before keeps being served
$cen->safe_psql('site', "UPDATE smsdist.site_systems SET root_directory = '$small/drive' WHERE role = 'site_server_drive'");
make_path("$small/drive");
new_version(2);
fill();
share_job('CEN00102', 'CEN');
ok(wait_until($cen, 'site', "SELECT state = 'retrying' FROM smsdist.job_site_status WHERE job_id = 'CEN00102'", 60),
	'a full despool drive: the distribution waits, retrying') or diag(job_state($cen, 'CEN00102'));
ok(poll_until(qr/^the despool drive "\Q$small\E\/drive" is full \(\d+ bytes free, 4200000 bytes needed\): .*No space left on device/,
		sub { $cen->safe_psql('site', "SELECT last_error FROM smsdist.job_site_status WHERE job_id = 'CEN00102' AND state = 'retrying'") }),
	'its reason names the drive, what is free and what is needed');
like(job_state($cen, 'CEN00102'), qr/^active: /, 'the job has not failed');
ok(poll_until(qr/^despooler\|not on this site's distribution points yet: the Despooler has been waiting for room since .*the despool drive .* is full .*; next attempt at \S+ \S+\|true$/,
		sub { $cen->safe_psql('site', "SELECT waiting_on || '|' || reason || '|' || (next_attempt_at IS NOT NULL) FROM smsdist.explain('CEN00102')") }),
	'explain() says why, and when the next attempt is');
like($cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN00102' AND message_id = 3211"),
	qr/^Distribution of package CEN00001 version 2 at site CEN waits for room: the despool drive .* is full .*; it is tried again by itself, first at [^|]+$/,
	'status message 3211 says it, once');
ok(!-e "$b/dp/SMS_PKGC/CEN00001/bin/v2.bin" && -e "$b/dp/SMS_PKGC/CEN00001/bin/app.bin",
	'version 1 stays published meanwhile');
$attempts = $cen->safe_psql('site', "SELECT attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00102'");
ok(wait_until($cen, 'site', "SELECT attempts > $attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00102'", 30),
	'the distribution is tried again by itself');
unlink("$small/filler");
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 60),
	'once there is room, the job completes by itself') or diag(job_state($cen, 'CEN00102'));
ok(same_tree($src, "$b/dp/SMS_PKGC/CEN00001"), 'version 2 is published, identical to the source');
is(join(' ', glob("$small/drive/smsdist-despool/*")), '', 'no temporary directory is left on the drive');

# --- nothing waits for ever: a disk full for longer than
# smsdist.disk_full_give_up_after fails the item and its job
$cen->append_conf('postgresql.conf', "smsdist.disk_full_give_up_after = '3s'\n");
reload_settings($cen, 'site', { 'smsdist.disk_full_give_up_after' => '3s' }, 'despooler');
new_version(4);
fill();
share_job('CEN00104', 'CEN');
ok(wait_until($cen, 'site', "SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN00104'", 60),
	'a drive full for longer than smsdist.disk_full_give_up_after fails the job') or diag(job_state($cen, 'CEN00104'));
like(job_state($cen, 'CEN00104'), qr/^failed: distribution at site CEN gave up after 3 s: the despool drive "\Q$small\E\/drive" is full /,
	'saying why');
ok(-e "$b/dp/SMS_PKGC/CEN00001/bin/v2.bin" && !-e "$b/dp/SMS_PKGC/CEN00001/bin/v4.bin",
	'version 2 stays published');
is(join(' ', glob("$small/drive/smsdist-despool/*")), '', 'no temporary directory is left on the drive');
unlink("$small/filler");
$cen->append_conf('postgresql.conf', "smsdist.disk_full_give_up_after = '1d'\n");
reload_settings($cen, 'site', { 'smsdist.disk_full_give_up_after' => '1d' }, 'despooler');
$cen->safe_psql('site', "UPDATE smsdist.site_systems SET root_directory = '$b/drive' WHERE role = 'site_server_drive'");

# --- (d) a full file system under the child's receiving side: the child's
# receive fails with the reason and removes its part file; the parent's
# Sender tries again with back-off, and the transfer completes once freed
new_version(5);
fill();
share_job('CEN00103', 'CH1');
ok(wait_until($cen, 'site', "SELECT state = 'retrying' AND next_attempt_at IS NOT NULL FROM smsdist.job_site_status WHERE job_id = 'CEN00103' AND phase = 'send'", 90),
	'a full package store at the child: the send waits, retrying') or diag(job_state($cen, 'CEN00103'));
ok(poll_until(qr/the package store of site CH1 "\Q$small\E\/ch1store" is full \(\d+ bytes free, \d+ bytes needed\): could not write .*No space left on device/,
		sub { $cen->safe_psql('site', "SELECT last_error FROM smsdist.job_site_status WHERE job_id = 'CEN00103' AND phase = 'send' AND state = 'retrying'") }),
	'the child\'s reason reaches the parent: its store, what is free and what is needed');
like(job_state($cen, 'CEN00103'), qr/^active: /, 'the job has not failed');
ok(poll_until(qr/^child site\|site CH1 has no room for the package since .*the package store of site CH1 .* is full .*; next attempt at \S+ \S+\|true$/,
		sub { $cen->safe_psql('site', "SELECT waiting_on || '|' || reason || '|' || (next_attempt_at IS NOT NULL) FROM smsdist.explain('CEN00103')") }),
	'explain() at the parent says why, and when the next attempt is');
ok(eventually(sub { my @part = glob("$small/ch1store/incoming/*"); !@part }, 30), 'the child removed its part file');
$attempts = $cen->safe_psql('site', "SELECT attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00103' AND phase = 'send'");
ok(wait_until($cen, 'site', "SELECT attempts > $attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00103' AND phase = 'send'", 90),
	'the Sender tries again by itself');
unlink("$small/filler");
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00103'", 120),
	'once there is room, the transfer and the job complete by themselves')
  or diag(job_state($cen, 'CEN00103'), $cen->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || coalesce(last_error, ''), E'\\n') FROM smsdist.job_site_status WHERE job_id = 'CEN00103'"));
ok(same_tree($src, "$cb/dp/SMS_PKGC/CEN00001"), 'the child publishes version 5, identical to the source');
is($ch1->safe_psql('site', "SELECT count(*) FROM smsdist.package_transfers"), '0', 'no transfer is left open at the child');
is(join(' ', glob("$small/ch1store/incoming/*")), '', 'nor a part file');

$cen->stop;
$ch1->stop;
remove_tree(glob("$small/*"));
done_testing();
