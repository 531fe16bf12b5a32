# The Send phase across real sites: central CEN -> child CH1 -> grandchild
# GC1, three PostgreSQL servers on loopback.  A share job for CH1 and the
# sites below it is compressed at CEN, sent to CH1 over libpq in chunks,
# published on CH1's two distribution points, sent on by CH1's Sender to
# GC1 and published there; the reports come back up and the job completes
# at CEN.  A child that is down makes the transfer retry with the reason and
# finish when it returns; a corrupted chunk is refused and sent again.
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

my ($cen, $ch1, $gc1, $dps_ref) = three_sites();
my %dps = %$dps_ref;

my $src = $cen->basedir . '/source/app';
make_path("$src/bin", "$src/doc");
system("head -c 3000000 /dev/urandom > '$src/bin/app.bin'") == 0 or die;
system("yes 'documentation line' | head -c 2000000 > '$src/doc/manual.txt'") == 0 or die;
$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src')");

sub rows_of { my ($like) = @_; $cen->safe_psql('site', "SELECT string_agg(job_id || ' ' || state || ' ' || coalesce(retrying_since::text, '-') || ' ' || coalesce(detail, ''), E'\\n' ORDER BY job_id) FROM smsdist.job_site_status WHERE job_id LIKE '$like' AND phase = 'send'") }
sub job_state { my ($n, $id) = @_; $n->safe_psql('site', "SELECT state || ': ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = '$id'") }
sub everywhere
{
	my ($what) = @_;
	for my $code ('CH1', 'GC1')
	{
		for my $dp (@{ $dps{$code} })
		{
			ok(system("diff -r '$src' '$dp/SMS_PKGC/CEN00001' >/dev/null 2>&1") == 0, "$what: $code $dp is identical to the source");
		}
	}
}

# --- CEN -> CH1 -> GC1
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 90),
	'the job completes at the central site') or diag(job_state($cen, 'CEN00101'),
	$cen->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || coalesce(detail, '') || ' ' || coalesce(last_error, ''), E'\\n') FROM smsdist.job_site_status"));
everywhere('version 1');
is($cen->safe_psql('site', "SELECT string_agg(site_code || ':' || phase || ':' || state, ',' ORDER BY site_code, phase) FROM smsdist.job_site_status WHERE job_id = 'CEN00101'"),
	'CH1:send:done,CH1:distribute:done,GC1:send:done,GC1:distribute:done', 'CEN sees each site sent and distributed');
is($cen->safe_psql('site', "SELECT string_agg(site_code || ':' || source_version, ',' ORDER BY site_code, site_system_id) FROM smsdist.package_locations WHERE package_id = 'CEN00001'"),
	'CH1:1,CH1:1,GC1:1,GC1:1', 'the locations at CH1 and GC1 are reported back to CEN');
is($ch1->safe_psql('site', "SELECT state FROM smsdist.package_builds WHERE package_id = 'CEN00001'"), 'ready',
	'CH1 holds the package file, verified');
is($ch1->safe_psql('site', "SELECT count(*) FROM smsdist.package_transfers"), '0', 'no transfer left open at CH1');

# --- the child is down: the transfer waits, says why, and finishes when it returns
system("head -c 2000000 /dev/urandom > '$src/bin/patch.bin'") == 0 or die;
$ch1->stop;
$cen->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00102', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($cen, 'site', q{SELECT last_error LIKE '%could not connect%' AND state = 'retrying'
	FROM smsdist.job_site_status WHERE job_id = 'CEN00102' AND site_code = 'CH1' AND phase = 'send'}, 60),
	'while CH1 is down the send row is retrying, with the reason');
like($cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN00102' AND message_id = 3301"),
	qr/to site CH1 failed: could not connect/, 'and a status message says so');
$ch1->start;
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 120),
	'once CH1 is back the job completes') or diag(job_state($cen, 'CEN00102'));
everywhere('version 2 after the outage');

# --- ten jobs for a child that is down: one connection attempt and one
# warning per back-off for all of them, not one per job
# (a package CH1 has never had: each transfer begins one there)
my $src2 = $cen->basedir . '/source/tool';
make_path($src2);
system("echo 'a small tool' > '$src2/tool.txt'") == 0 or die;
$ch1->stop;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00002', 'Tool', '$src2');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
SELECT 'CEN0021' || i, 'share_package', 'CEN00002', 'sites', '{CH1}' FROM generate_series(0, 9) i});
ok(wait_until($cen, 'site', q{SELECT count(*) = 10 FROM smsdist.job_site_status
                               WHERE job_id LIKE 'CEN0021_' AND phase = 'send' AND state = 'retrying'
                                 AND last_error LIKE '%could not connect%' AND next_attempt_at IS NOT NULL}, 60),
	'while CH1 is down the ten send rows are retrying, with the reason');
# (a connection kept from before the stop may be found lost first: that
# failure is the job's own)
my ($warnings, $counted) = split /\|/, $cen->safe_psql('site', q{SELECT count(*), count(*) FILTER (WHERE message ~ 'to site CH1 failed: could not connect.*; trying again, with the 9 other jobs that wait for the site\.$')
                                                                FROM smsdist.status_messages
                                                               WHERE job_id LIKE 'CEN0021_' AND message_id = 3301});
ok($warnings > 0 && $warnings < 10, "fewer warnings than jobs ($warnings): each attempt counts for every job");
ok($counted >= 1, 'a warning says how many other jobs wait for the site')
  or diag($cen->safe_psql('site', q{SELECT string_agg(message, E'\n') FROM smsdist.status_messages WHERE job_id LIKE 'CEN0021_' AND message_id = 3301}));
ok(wait_until($cen, 'site', q{SELECT count(DISTINCT s.job_id) = 10
                               FROM smsdist.job_site_status s, smsdist.explain(s.job_id::text) e
                              WHERE s.job_id LIKE 'CEN0021_' AND s.phase = 'send'
                                AND e.reason ~ '^site CH1 cannot be reached since .*: could not connect.*; next attempt at \S+ \S+$'}, 60),
	'every job, tried or not, says the site cannot be reached, since when and until when');
# CH1 answers again, and a session there holds package_transfers: the
# first transfer that reaches it waits to begin.  By then the other jobs'
# run of failures has ended with the site's: they wait to be sent, with
# no clock that would make them give up with the next failure.
$ch1->start;
my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my ($in, $out, $err) = ("BEGIN;\nLOCK TABLE smsdist.package_transfers IN SHARE MODE;\n", '', '');
my $hold = IPC::Run::start([ $psql, '-X', '-d', $ch1->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$hold->pump while length $in;
ok(wait_until($ch1, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = 'parent_sender' AND wait_event_type = 'Lock'}, 60),
	'a transfer reaches CH1 again');
is($cen->safe_psql('site', q{SELECT count(*) FILTER (WHERE state = 'retrying') || ' ' || count(*) FILTER (WHERE retrying_since IS NOT NULL)
                               FROM smsdist.job_site_status WHERE job_id LIKE 'CEN0021_' AND phase = 'send'}),
	'0 0', 'the site answers: no job is retrying, none has a failure clock running')
  or diag(rows_of('CEN0021_'));
$hold->kill_kill;
ok(wait_until($cen, 'site', q{SELECT count(*) = 10 FROM smsdist.jobs WHERE job_id LIKE 'CEN0021_' AND state = 'completed'}, 120),
	'once CH1 is back the ten jobs complete')
  or diag($cen->safe_psql('site', q{SELECT string_agg(job_id || ' ' || state || ' ' || coalesce(detail, ''), E'\n') FROM smsdist.job_site_status WHERE job_id LIKE 'CEN0021_'}));

# --- a chunk damaged on the way is refused and sent again
system("head -c 2500000 /dev/urandom > '$src/bin/patch2.bin'") == 0 or die;
$cen->safe_psql('site', "UPDATE smsdist.packages SET source_version = 3 WHERE package_id = 'CEN00001'");
$cen->append_conf('postgresql.conf', "smsdist.test_corrupt_next_chunk = on\n");
reload_settings($cen, 'site', { 'smsdist.test_corrupt_next_chunk' => 'on' }, 'sender');
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00103', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($cen, 'site', "SELECT count(*) > 0 FROM smsdist.status_messages WHERE job_id = 'CEN00103' AND message_id = 3301", 60),
	'a damaged chunk makes the send fail once');
like($cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN00103' AND message_id = 3301"),
	qr/is corrupt/, 'because CH1 found the chunk corrupt');
$cen->append_conf('postgresql.conf', "smsdist.test_corrupt_next_chunk = off\n");
$cen->reload;
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00103'", 120),
	'the job completes after the chunk is sent again') or diag(job_state($cen, 'CEN00103'));
everywhere('version 3 after a corrupted chunk');

# --- kill -9 of the Sender mid-transfer, with pulse throttling: the
# transfer resumes from CH1's last acknowledged byte, not from zero
system("head -c 6000000 /dev/urandom > '$src/bin/patch3.bin'") == 0 or die;
$cen->safe_psql('site', q{
UPDATE smsdist.sender_addresses SET throttle = 'pulse', pulse_block_kb = 256, pulse_delay_ms = 150
 WHERE target_site_code = 'CH1';
UPDATE smsdist.packages SET source_version = 4 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00104', 'share_package', 'CEN00001', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT bytes_done > 1000000 FROM smsdist.job_site_status
	WHERE job_id = 'CEN00104' AND site_code = 'CH1' AND phase = 'send'}, 60),
	'a throttled transfer is under way');
# resuming needs a durable offset at CH1: its row, updated once the bytes
# are fsynced (every 32 MB or 0.5 s), not the bytes CEN has had acknowledged
ok(wait_until($ch1, 'site', "SELECT bytes_received > 0 FROM smsdist.package_transfers WHERE package_id = 'CEN00001' AND source_version = 4", 60),
	'CH1 has a durable part of the transfer');
my $total = $cen->safe_psql('site', "SELECT bytes FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 4");
my $sender = $cen->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist sender'");
$cen->safe_psql('postgres', "ALTER SYSTEM SET restart_after_crash = on");
reload_settings($cen, 'site', { restart_after_crash => 'on' });
kill 'KILL', $sender;
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00104'", 120),
	'after kill -9 of the Sender the job completes') or diag(job_state($cen, 'CEN00104'));
my ($sent) = $cen->safe_psql('site', "SELECT message FROM smsdist.status_messages WHERE job_id = 'CEN00104' AND message_id = 3302")
  =~ /\((\d+) bytes sent\)/;
ok(defined $sent && $sent < $total, "the restarted Sender sent $sent of $total bytes: it resumed")
  or diag("sent: " . ($sent // 'none'));
for my $dp (@{ $dps{CH1} })
{
	ok(system("diff -r '$src' '$dp/SMS_PKGC/CEN00001' >/dev/null 2>&1") == 0, "version 4 on CH1 $dp is identical to the source");
}

# --- rate-limited at 0 % in every hour: nothing is sent, the rows say why,
# and the Sender is not held; at 100 % the job completes
system("head -c 1000000 /dev/urandom > '$src/bin/patch4.bin'") == 0 or die;
$cen->safe_psql('site', q{
UPDATE smsdist.sender_addresses SET throttle = 'rate_limited', hourly_rate_pct = array_fill(0::smallint, ARRAY[24])
 WHERE target_site_code = 'CH1';
UPDATE smsdist.packages SET source_version = 5 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00106', 'share_package', 'CEN00001', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT state = 'retrying' AND last_error LIKE 'paused: the rate limit of this hour is 0 %'
	FROM smsdist.job_site_status WHERE job_id = 'CEN00106' AND site_code = 'CH1' AND phase = 'send'}, 60),
	'at 0 % the transfer is paused, with the reason');
ok(wait_until($cen, 'site', "SELECT state = 'idle' FROM smsdist.workers WHERE component = 'sender'", 10),
	'and the Sender is free for other work, not asleep in the transfer');
$cen->safe_psql('site', q{
UPDATE smsdist.sender_addresses SET hourly_rate_pct = array_fill(100::smallint, ARRAY[24])
 WHERE target_site_code = 'CH1'});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00106'", 120),
	'at 100 % it completes') or diag(job_state($cen, 'CEN00106'));

# --- Remove Package across sites: gone from every distribution point below,
# and its locations at CEN with it
$cen->safe_psql('site', q{
UPDATE smsdist.sender_addresses SET throttle = 'unlimited' WHERE target_site_code = 'CH1';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00105', 'remove_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00105'", 60),
	'the Remove Package job completes at CEN') or diag(job_state($cen, 'CEN00105'));
ok(wait_until($gc1, 'site', "SELECT count(*) = 0 FROM smsdist.package_locations WHERE package_id = 'CEN00001'", 60),
	'GC1 has removed it');
ok(!-e "$dps{CH1}[0]/SMS_PKGC/CEN00001" && !-e "$dps{GC1}[1]/SMS_PKGC/CEN00001",
	'the package is gone from the distribution points of CH1 and GC1');
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.package_locations WHERE package_id = 'CEN00001'"),
	'0', 'and CEN no longer lists locations for it');

# --- nothing waits forever: after smsdist.send_give_up_after the transfer
# and its job fail, with the reason
$cen->safe_psql('postgres', "ALTER SYSTEM SET smsdist.send_give_up_after = '3s'");
$cen->reload;
$ch1->stop;
$cen->safe_psql('site', q{
UPDATE smsdist.sender_addresses SET throttle = 'unlimited' WHERE target_site_code = 'CH1';
UPDATE smsdist.packages SET source_version = 6 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00107', 'share_package', 'CEN00001', 'sites', '{CH1}'), ('CEN00108', 'share_package', 'CEN00001', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', "SELECT count(*) = 2 FROM smsdist.jobs WHERE job_id IN ('CEN00107', 'CEN00108') AND state = 'failed'", 60),
	'a site that stays unreachable fails the jobs in the end');
like(job_state($cen, 'CEN00107'), qr/gave up sending to site CH1 after 3 s: could not connect/, 'saying why');
like(job_state($cen, 'CEN00108'), qr/gave up sending to site CH1 after 3 s: could not connect/, 'both');
is($cen->safe_psql('site', q{SELECT string_agg(job_id || ' ' || n, ', ' ORDER BY job_id)
                               FROM (SELECT job_id, count(*) AS n FROM smsdist.status_messages
                                      WHERE job_id IN ('CEN00107', 'CEN00108') AND message_id = 3301 AND severity = 'error'
                                      GROUP BY 1) m}),
	'CEN00107 1, CEN00108 1', 'each job says once that it gave up');
$ch1->start;

$_->stop for ($cen, $ch1, $gc1);
done_testing();
