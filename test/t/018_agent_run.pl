# The client agent runs programs (issue 5): a mandatory assignment runs the
# program from the verified copy in the cache once its time has come (once
# per assignment; a missed time runs at the next poll), inside the
# machine's maintenance window when it has one; a user can run an offered
# program at any time; the exit code maps to success or failure; a program
# that exceeds its maximum run time is stopped; each step is a status
# message; the package unlocks 24 hours after its program ran.
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
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die; print $fh $t; close $fh; }
# a program gets a clean environment: the marks' place is in the scripts
spew("$b/src/install.sh", "echo \"\$1 from \$(pwd)\" >> '$b/marks/ran.txt'\n");
spew("$b/src/fail.sh", "exit 3\n");
spew("$b/src/slow.sh", "echo started >> '$b/marks/slow.txt'; sleep 60; echo finished >> '$b/marks/slow.txt'\n");
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations'), ('CEN00A02', 'Night shift');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES
  ('CEN00A01', 'direct', 'CEN00001'), ('CEN00A02', 'direct', 'CEN00001');
-- Monday 22:00 to Tuesday 02:00, the machine's local time
INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
VALUES ('CEN00A02', 'Monday night', '22:00', 240, '{mon}');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, max_run_minutes) VALUES
  ('CEN00B01', 'Install', 'sh install.sh mandatory', NULL), ('CEN00B01', 'Broken', 'sh fail.sh', NULL),
  ('CEN00B01', 'Slow', 'sh slow.sh', 1), ('CEN00B01', 'Optional', 'sh install.sh asked', NULL),
  ('CEN00B01', 'Nightly', 'sh install.sh nightly', NULL);
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
my $keyfile = machine_key_file($node, 'CEN00001');
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time) VALUES
  ('CEN00C01', 'Install', 'CEN00B01', 'Install', 'CEN00A01', '2026-11-01 00:00'),
  ('CEN00C02', 'Broken', 'CEN00B01', 'Broken', 'CEN00A01', '2026-11-01 00:00'),
  ('CEN00C03', 'Slow', 'CEN00B01', 'Slow', 'CEN00A01', '2026-11-01 00:00'),
  ('CEN00C04', 'Optional', 'CEN00B01', 'Optional', 'CEN00A01', '2026-11-01 00:00'),
  ('CEN00C05', 'Nightly', 'CEN00B01', 'Nightly', 'CEN00A02', '2026-11-01 00:00');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time) VALUES
  ('CEN00C01', '2026-12-01 10:00'), ('CEN00C02', '2026-12-01 10:00'), ('CEN00C03', '2026-12-01 10:00'),
  ('CEN00C05', '2026-12-01 10:00');});
ok(wait_until($node, 'site', qq{SELECT position('CEN00C05' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0
                                  AND coalesce(pg_read_file('$b/cap/offerinf.box/CEN00C05.OFR', 0, 100000, true), '') LIKE '%[window 1]%'
                                  AND coalesce(pg_read_file('$b/cap/pkginfo.box/CEN00B01.NAL', 0, 100000, true), '') LIKE '%[location%'
                                  AND (pg_stat_file('$b/cap/pkginfo.box/CEN00B01.PKG', true)).size IS NOT NULL}, 60),
	'the offer files have reached the CAP, with the window of the night-shift collection');

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }
$ENV{TZ} = 'UTC';
sub agent
{
	my ($now, @more) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $keyfile, '--test-minute', '2',
		'--now', $now, '--once', @more ], '>', \$out, '2>', \$err);
	return ($?, $out, $err);
}

# before the mandatory time: nothing runs
my ($rc, $out, $err) = agent('2026-12-01T09:00:00Z');
is($rc, 0, 'the poll runs') or diag($err);
like($out, qr/^${AGENT_INFO}cached CEN00B01 version 1:/m, 'the package is in the cache');
unlike($out, qr/^${AGENT_INFO}ran /m, 'before the mandatory time nothing runs');
is(slurp("$b/marks/ran.txt"), '', 'no program has run');

# after it (a Tuesday, 12:00): the mandatory programs run, from the cache
my $t0 = time;
($rc, $out, $err) = agent('2026-12-01T12:00:00Z');
my $took = time - $t0;
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: Program "Install" of package CEN00B01 succeeded \(exit code 0\)\.$/m,
	'the mandatory assignment that was missed runs at the next poll, and succeeds');
like(slurp("$b/marks/ran.txt"), qr/^mandatory from \Q$b\E\/ws\/cache\/CEN00B01\.1$/m, 'from the verified copy in the cache');
like($out, qr/^${AGENT_INFO}ran advert CEN00C02: Program "Broken" of package CEN00B01 failed with exit code 3\.$/m,
	'exit code 3 is a failure');
like($out, qr/^${AGENT_INFO}ran advert CEN00C03: Program "Slow" of package CEN00B01 ran longer than its maximum run time \(1 minutes\) and was stopped\.$/m,
	'a program that exceeds its maximum run time is stopped');
ok($took < 55, "it was stopped after its maximum run time (a test minute of 2 s), not left to finish its 60 s ($took s)");
is(slurp("$b/marks/slow.txt"), "started\n", 'the slow program was killed, with its process group');
like($out, qr/^${AGENT_INFO}waiting to run advert CEN00C05: outside its maintenance windows$/m,
	'the advertisement for the night-shift collection waits for its maintenance window');
unlike($out, qr/^${AGENT_INFO}ran advert CEN00C04/m, 'the advertisement without an assignment does not run by itself');

($rc, $out) = agent('2026-12-01T13:00:00Z');
unlike($out, qr/^${AGENT_INFO}ran advert CEN00C0[123]/m, 'a program runs once per assignment: not again at the next poll');

# Monday night, inside the window
($rc, $out) = agent('2026-12-07T23:00:00Z');
like($out, qr/^${AGENT_INFO}ran advert CEN00C05: Program "Nightly" of package CEN00B01 succeeded/m, 'inside its window it runs');

# a user runs an offered program
($rc, $out) = agent('2026-12-07T23:30:00Z', '--run', 'CEN00C04');
like($out, qr/^${AGENT_INFO}ran advert CEN00C04: Program "Optional" of package CEN00B01 succeeded/m, 'a user can run an offered program at any time');
like(slurp("$b/marks/ran.txt"), qr/^asked from /m, 'it ran');

# the package unlocks 24 hours after its program ran
my ($out2, $err2) = ('', '');
IPC::Run::run([ $agent, '--state-dir', "$b/ws", '--now', '2026-12-07T23:30:00Z', 'cache', 'show' ], '>', \$out2, '2>', \$err2);
like($out2, qr/^CEN00B01 version 1: \d+ bytes, downloaded 2026-12-01T09:00:00Z, locked until 2026-12-08T23:30:00Z \(its program ran\)$/m,
	'the cached package is locked until 24 hours after its program last ran');

# the site sees each step
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS')}, 30),
	'the status messages reach the site');
is($node->safe_psql('site', q{SELECT string_agg(advert_id || ':' || message_id, ',' ORDER BY client_sequence)
                               FROM smsdist.status_messages WHERE message_id IN (10005, 10008, 10009)}),
	'CEN00C01:10005,CEN00C01:10008,CEN00C02:10005,CEN00C02:10009,CEN00C03:10005,CEN00C03:10009,'
	  . 'CEN00C05:10005,CEN00C05:10008,CEN00C04:10005,CEN00C04:10008',
	'started (10005), succeeded (10008) and failed (10009), for each run');
is($node->safe_psql('site', q{SELECT string_agg(advert_id || ':' || targeted || ':' || offered || ':' || downloaded || ':' || succeeded || ':' || failed, ',' ORDER BY advert_id)
                               FROM smsdist.advertisement_status}),
	'CEN00C01:1:0:0:1:0,CEN00C02:1:0:0:0:1,CEN00C03:1:0:0:0:1,CEN00C04:1:0:0:1:0,CEN00C05:1:0:0:1:0',
	'advertisement_status: targeted machines, and each in its current state (offered, downloaded, succeeded, failed)');

done_testing();
