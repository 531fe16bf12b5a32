# Progress that can be trusted, on real sites: CEN -> CH1 -> GC1, a package
# compressed slowly (smsdist.test_compress_delay_ms) and sent while it is
# compressed, CH1's link to GC1 throttled so that its leg lasts.
#
# - build_progress moves while the build runs, about once a second, with a
#   percent from the start, seen from another session;
# - a send while the package is compressed has an estimated total (and says
#   so), replaced by the true one;
# - the grandchild's leg keeps moving at the central site (bytes, detail),
#   with an eta from CH1;
# - a send's rate is its attempt's bytes over its time;
# - relayed details are not prefixed twice, job_overview counts sites, a
#   removal says it removed;
# - a failed build names every path that failed, bounded.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use POSIX qw(mkfifo);
use IPC::Run;
use File::Path;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my ($cen, $ch1, $gc1, $dps_ref) = three_sites();
$cen->append_conf('postgresql.conf', "smsdist.test_compress_delay_ms = 700\n");
# (a builder has the postmaster's settings when it starts)
reload_settings($cen, 'site', { 'smsdist.test_compress_delay_ms' => '700ms' });
# CH1 -> GC1: 512 kB every 150 ms, so that the leg lasts a few seconds
$ch1->safe_psql('site', q{UPDATE smsdist.sender_addresses SET throttle = 'pulse', pulse_block_kb = 512, pulse_delay_ms = 150});

sub rows
{
	my ($node, $job) = @_;
	return $node->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || bytes_done || '/' || coalesce(bytes_total::text, '-') || ' ' || coalesce(detail, '') || ' ' || coalesce(last_error, ''), E'\\n' ORDER BY site_code, phase) FROM smsdist.job_site_status WHERE job_id = '$job'");
}

# --- the build: progress while it runs
my $src = make_source($cen, 'app', 48);
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});

# Polled from this session (another than the builder's) until the build ends.
my (%seen_done, $seen_percent, $seen_early, $seen_estimate, $est_row, $polls);
my $deadline = time() + 120;
while (time() < $deadline)
{
	my $r = $cen->safe_psql('site', q{
SELECT b.state, b.bytes_done, coalesce(b.percent::text, ''), coalesce(b.source_bytes, 0),
       coalesce((SELECT s.bytes_total_estimated || ':' || coalesce(s.bytes_total::text, '') || ':' || s.bytes_done || ':' || coalesce(s.percent::text, '')
                   FROM smsdist.job_progress s
                  WHERE s.job_id = 'CEN00101' AND s.site_code = 'CH1' AND s.phase = 'send' AND s.state = 'running'), '')
  FROM smsdist.build_progress b WHERE b.package_id = 'CEN00001' AND b.source_version = 1});
	$polls++;
	if ($r eq '') { usleep(50_000); next; }
	my ($state, $done, $pct, $size, $send) = split /\|/, $r;
	last if $state ne 'building';
	if ($done > 0)
	{
		$seen_done{$done} = 1;
		$seen_percent = 1 if $pct ne '' && $pct > 0 && $pct < 100;
		$seen_early = 1 if $size > 0 && $done < $size / 2;
	}
	if ($send =~ /^true:(\d+):(\d+):([\d.]+)$/ && $1 >= $2 && $2 > 0 && $3 < 100)
	{
		$seen_estimate = 1;
		$est_row = $send;
	}
	usleep(100_000);
}
is($cen->safe_psql('site', "SELECT state FROM smsdist.package_builds WHERE package_id = 'CEN00001'"), 'ready', 'the build is ready');
ok(keys(%seen_done) >= 2, 'bytes_done moved while the package was being built (' . join(', ', sort { $a <=> $b } keys %seen_done) . ')');
ok($seen_early, 'progress was recorded early in the build (less than half done), not just at its end');
ok($seen_percent, 'build_progress had a percent between 0 and 100 while building');
ok($seen_estimate, 'while streaming, the send row had an estimated total, flagged as such, with a percent below 100' . ($est_row ? " ($est_row)" : ''));

# --- the grandchild's leg, seen at the central site as it goes
my ($first, $later, $eta_seen, $rate_seen);
$deadline = time() + 120;
while (time() < $deadline && !(defined $later && $eta_seen))
{
	my $r = $cen->safe_psql('site', q{
SELECT p.state || '|' || p.bytes_done || '|' || coalesce(p.bytes_total::text, '') || '|'
       || coalesce((p.eta > clock_timestamp() AND p.eta < clock_timestamp() + interval '10 minutes')::text, '') || '|'
       || coalesce(p.bytes_per_second::text, '') || '|' || coalesce(p.detail, '')
  FROM smsdist.job_progress p WHERE p.job_id = 'CEN00101' AND p.site_code = 'GC1' AND p.phase = 'distribute'});
	if ($r eq '') { usleep(100_000); next; }	# not sent to CH1 yet
	my ($state, $done, $total, $eta_ok, $rate, $detail) = split /\|/, $r, 6;
	last if $state eq 'done' || $state eq 'failed';
	if ($state eq 'running' && $done > 0 && $total ne '' && $done < $total && $detail =~ /sending to GC1: (\d+) of \d+ bytes/)
	{
		if (!defined $first) { $first = [$done, $1]; }
		elsif ($done > $first->[0] && $1 > $first->[1]) { $later = [$done, $1]; }
		$eta_seen = 1 if $eta_ok eq 'true';
		$rate_seen = $rate if $rate ne '' && $rate > 0;
	}
	usleep(100_000);
}
ok(defined $first, 'CEN shows the bytes of the CH1 -> GC1 leg') or diag(rows($cen, 'CEN00101'));
ok(defined $later, 'and they keep moving at CEN (bytes_done and the detail), not frozen at the first report'
	. (defined $later ? " ($first->[0] then $later->[0])" : '')) or diag(rows($cen, 'CEN00101'));
ok($eta_seen, 'the leg has an eta at CEN, from CH1, within the next minutes');
# 512 kB every 150 ms: at most 3.5 MB/s
ok(defined $rate_seen && $rate_seen < 3_600_000, 'and a rate, from CH1\'s attempt (' . ($rate_seen // 'none') . ' B/s)');

ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 180),
	'the job completes') or diag(rows($cen, 'CEN00101'));

# --- figures after the fact
my ($bytes) = $cen->safe_psql('site', "SELECT bytes FROM smsdist.package_builds WHERE package_id = 'CEN00001'");
is($cen->safe_psql('site', q{SELECT bytes_total || ' ' || bytes_total_estimated || ' ' || percent
	FROM smsdist.job_progress WHERE job_id = 'CEN00101' AND site_code = 'CH1' AND phase = 'send'}),
	"$bytes false 100.0", 'once sent, the send row has the true total, no longer an estimate');
my ($sent) = $cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = 'CEN00101' AND message_id = 3302")
  =~ /\((\d+) bytes sent\)/;
ok(defined $sent && $sent > 0, "the Sender says how many bytes it sent ($sent)");
my ($attempt_bytes, $rate, $expected) = split /\|/, $cen->safe_psql('site', q{
SELECT p.attempt_bytes, p.bytes_per_second,
       round(p.attempt_bytes / extract(epoch FROM s.finished_at - s.attempt_started_at))
  FROM smsdist.job_progress p JOIN smsdist.job_site_status s USING (job_id, site_code, phase)
 WHERE p.job_id = 'CEN00101' AND p.site_code = 'CH1' AND p.phase = 'send'});
# a stream stepped out of is claimed again: its attempt's bytes are those since
ok($attempt_bytes > 0 && $attempt_bytes <= $sent, "the attempt's bytes ($attempt_bytes) are at most the bytes sent ($sent)");
is($rate, $expected, "bytes_per_second is the attempt's bytes over its time ($rate)");
unlike($cen->safe_psql('site', "SELECT string_agg(detail, ' | ') FROM smsdist.job_site_status WHERE job_id = 'CEN00101'"),
	qr/at the site: at the site:/, 'a detail relayed from GC1 through CH1 is not prefixed twice');
like($cen->safe_psql('site', "SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN00101' AND site_code = 'GC1' AND phase = 'distribute'"),
	qr/^at the site: published on 2 distribution points/, 'the grandchild\'s detail at CEN');
is($cen->safe_psql('site', "SELECT sites || ' ' || sites_done FROM smsdist.job_overview WHERE job_id = 'CEN00101'"),
	'2 2', 'job_overview: 2 sites (CH1, GC1), both done -- sites, not status rows');
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.job_site_status WHERE job_id = 'CEN00101'"),
	'4', '(the job has 4 status rows)');
is($cen->safe_psql('site', "SELECT eta = finished_at FROM smsdist.job_progress WHERE job_id = 'CEN00101' AND site_code = 'CH1' AND phase = 'send'"),
	't', 'a finished row\'s eta is its finished_at');

# --- a removal says it removed
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00102', 'remove_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 120),
	'the removal completes') or diag(rows($cen, 'CEN00102'));
is($cen->safe_psql('site', "SELECT state_reason FROM smsdist.jobs WHERE job_id = 'CEN00102'"),
	'removed from every target site', 'a completed removal says it removed, not "distributed"');
ok(wait_until($ch1, 'site', "SELECT state_reason = 'removed from every target site' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 60),
	'so does the copy of the job at CH1');

# --- a child's progress report is checked: a bad row is refused alone
# (GC1 down: the job's leg to it stays open, so CEN keeps asking CH1)
$gc1->stop;
$ch1->safe_psql('site', q{
CREATE OR REPLACE FUNCTION smsdist.progress_report(p_job_id text)
RETURNS TABLE (site_code text, bytes_done bigint, bytes_total bigint, bytes_total_estimated boolean,
               attempt_bytes bigint, attempt_seconds numeric, eta_seconds numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    VALUES ('GC1', -5::bigint, 100::bigint, false, 1::bigint, 1::numeric, 10::numeric),
           ('GC1', 500, 100, false, 1, 1, 10),
           ('GC1', 50, 100, false, 1, 99999999, 10),
           ('ZZ9', 50, 100, false, 1, 1, 10)
$$});
$cen->safe_psql('site', q{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00005', 'Small', '} . $cen->basedir . q{/source/app/doc');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00107', 'share_package', 'CEN00005', 'sites', '{GC1}')});
ok(wait_until($cen, 'site', q{SELECT count(DISTINCT message) = 4 FROM smsdist.status_messages
	WHERE job_id = 'CEN00107' AND message_id = 3304 AND message LIKE '%progress report%'}, 90),
	'each bad row of the progress report is refused with its own message (3304)')
  or diag($cen->safe_psql('site', "SELECT string_agg(message, E'\n') FROM smsdist.status_messages WHERE message_id = 3304"));
my $refusals = $cen->safe_psql('site', q{SELECT string_agg(message, E'\n' ORDER BY message) FROM smsdist.status_messages
	WHERE job_id = 'CEN00107' AND message_id = 3304});
like($refusals, qr/its byte counts are not non-negative integers/, 'a negative count is refused');
like($refusals, qr/it has done 500 of 100 bytes/, 'more done than the total is refused');
like($refusals, qr/its times are not numbers of seconds within a month/, 'an attempt of three years is refused');
like($refusals, qr/"ZZ9" is not a site code|site ZZ9 is not behind CH1/, 'a site CH1 does not speak for is refused');
is($cen->safe_psql('site', "SELECT bytes_done || ' ' || coalesce(bytes_total::text, '-') FROM smsdist.job_site_status WHERE job_id = 'CEN00107' AND site_code = 'GC1' AND phase = 'distribute'"),
	'0 -', 'and nothing of it reaches the row');
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'CEN00107'");

# --- after a removal, an agent says the package was removed, not "not here yet"
{
	my $b = $cen->basedir;
	File::Path::make_path("$b/dp", "$b/drive", "$b/src4", "$b/ws", "$b/cap", "$b/logon");
	system("echo setup > '$b/src4/setup.exe'") == 0 or die;
	$cen->safe_psql('postgres', 'CREATE ROLE agent LOGIN IN ROLE smsdist_client');
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'client_access_point', 'CAP1', '$b/cap'), ('CEN', 'logon_server', 'LOGON1', '$b/logon');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent', 'CEN00001');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'name LIKE ''WKS%''');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00004', 'Editor', '$b/src4');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00004', 'Install', 'setup.exe /q');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00105', 'share_package', 'CEN00004', 'sites', '{CEN}');
});
	ok(wait_until($cen, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations WHERE package_id = 'CEN00004'", 60), 'the package is published at CEN');
	$cen->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
VALUES ('CEN00C01', 'Editor', 'CEN00004', 'Install', 'CEN00A01', '2026-01-01 00:00')});
	ok(wait_until($cen, 'site', q{SELECT jsonb_array_length(smsdist.machine_policy('CEN00001')->'advertisements') = 1}, 60),
		'the machine\'s policy has the advertisement');
	my $mp = 'host=' . $cen->host . ' port=' . $cen->port . ' dbname=site user=agent';
	my @agent = (agent_path(), '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws/CEN00001", '--management-point', $mp, '--once');
	my ($out, $err) = ('', '');
	IPC::Run::run(\@agent, '>', \$out, '2>', \$err);
	like($out, qr/^${AGENT_INFO}offer advert CEN00C01 package CEN00004 /m, 'the agent is offered the program') or diag("out: $out\nerr: $err");
	$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00106', 'remove_package', 'CEN00004', 'sites', '{CEN}')});
	ok(wait_until($cen, 'site', q{SELECT state = 'completed' AND state_reason = 'removed from every target site' FROM smsdist.jobs WHERE job_id = 'CEN00106'}, 60),
		'the removal at CEN completes, and says it removed') or diag(rows($cen, 'CEN00106'));
	ok(wait_until($cen, 'site', q{SELECT (smsdist.machine_policy('CEN00001')->'advertisements'->0->>'package_removed')::boolean}, 60),
		'the policy says the package was removed');
	($out, $err) = ('', '');
	IPC::Run::run(\@agent, '>', \$out, '2>', \$err);
	like($out, qr/^${AGENT_INFO}waiting advert CEN00C01 package CEN00004 program "Install": its package was removed from this site$/m,
		'the agent says the package was removed from the site') or diag("out: $out\nerr: $err");

	# a legacy agent reads it from the CAP: a NAL file that says removed
	ok(wait_until($cen, 'site', qq{SELECT coalesce(pg_read_file('$b/cap/pkginfo.box/CEN00004.NAL', 0, 100000, true), '') LIKE '%removed=true%'
	                                 AND pg_stat_file('$b/cap/pkginfo.box/CEN00004.PKG', true) IS NULL}, 60),
		'the CAP has a NAL file that says the package was removed, and no package file');
	($out, $err) = ('', '');
	IPC::Run::run([ agent_path(), '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws/legacy", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', site_key_file($cen),
		'--machine-key', machine_key_file($cen, 'CEN00001'), '--once' ], '>', \$out, '2>', \$err);
	like($out, qr/^${AGENT_INFO}waiting advert CEN00C01 package CEN00004 program "Install": its package was removed from this site$/m,
		'a legacy agent says so too') or diag("out: $out\nerr: $err");
}

# --- a failed build names every path that failed
sub bad_source
{
	my ($name, $unreadable) = @_;
	my $dir = $cen->basedir . "/source/$name";
	File::Path::make_path("$dir/sub");
	for my $i (1 .. $unreadable)
	{
		my $f = sprintf("%s/sub/locked%03d.bin", $dir, $i);
		open my $fh, '>', $f or die "$f: $!";
		print $fh "secret $i\n";
		close $fh;
		chmod 0000, $f or die;
	}
	mkfifo("$dir/a.fifo", 0600) or die "mkfifo: $!";
	open my $fh, '>', "$dir/readable.txt" or die;
	print $fh "fine\n";
	close $fh;
	return $dir;
}
my $bad1 = bad_source('bad1', 2);
my $bad2 = bad_source('bad2', 104);
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
    ('CEN00002', 'Bad one', '$bad1'), ('CEN00003', 'Bad two', '$bad2');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES
    ('CEN00103', 'share_package', 'CEN00002', 'sites', '{CH1}'),
    ('CEN00104', 'share_package', 'CEN00003', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', "SELECT count(*) = 2 FROM smsdist.package_builds WHERE package_id IN ('CEN00002', 'CEN00003') AND state = 'failed'", 60),
	'both builds fail');
my $err1 = $cen->safe_psql('site', "SELECT error FROM smsdist.package_builds WHERE package_id = 'CEN00002'");
like($err1, qr/^package source "\Q$bad1\E" has 3 paths that cannot be packaged: /, 'the error counts the 3 paths') or diag($err1);
like($err1, qr/"sub\/locked001\.bin" \(could not open: Permission denied\)/, 'it names the first unreadable file');
like($err1, qr/"sub\/locked002\.bin" \(could not open: Permission denied\)/, 'and the second');
like($err1, qr/"a\.fifo" \(a FIFO\)/, 'and the FIFO');
unlike($err1, qr/readable\.txt/, 'not the readable file');
like($cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE package_id = 'CEN00002' AND message_id = 3101"),
	qr/locked001\.bin.*locked002\.bin|locked002\.bin.*locked001\.bin/, 'the status message names them too');
like($cen->safe_psql('site', "SELECT state_reason FROM smsdist.jobs WHERE job_id = 'CEN00103'"),
	qr/a\.fifo/, 'and the job\'s reason');
my $err2 = $cen->safe_psql('site', "SELECT error FROM smsdist.package_builds WHERE package_id = 'CEN00003'");
like($err2, qr/^package source "\Q$bad2\E" has 105 paths that cannot be packaged: .*; and 5 more$/, 'bounded: 105 paths, the first 100 named and 5 more counted');
my @named = $err2 =~ /"[^"]+" \(/g;
is(scalar @named, 100, 'exactly 100 paths are named');

done_testing();
