# What a job would cost before it is committed (smsdist.preview), and the
# download-cache inventories it reads.  Two servers: CEN with a distribution
# point, a logon server and a CAP; its child CH1.  Agents report their
# caches (legacy: a signed <MACHINE>.INV in the status inbox; advanced:
# client_cache_inventory()): one with room, one that would have to evict an
# unlocked package, one whose locked package leaves no room, one that never
# reported.  CH1 holds version 1 of the package, so a delta is proposed; the
# Sender measured the link on an earlier transfer; the address is
# throttled.  Each figure is checked against what the sites and agents hold
# (the delta estimate against the delta the Sender then really makes,
# within 25 %).  Bad inventory files are refused one by one while a good
# one after them is taken in.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use POSIX qw(strftime ceil);
use Digest::SHA qw(hmac_sha256_hex);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT wait_quiescent);

my $agent = agent_path();
my $cen = agent_site(conf => "max_worker_processes = 16\n");
my $ch1 = site_node('ch1', site_code => 'CH1', conf => "smsdist.poll_interval = '5s'\n");
my $b = $cen->basedir;
my $c = $ch1->basedir;
make_path("$c/dp", "$c/drive");
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$c/dp'), ('CH1', 'site_server_drive', 'D', '$c/drive');});
$cen->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CH1', 'Child', 'CEN')});
link_sites($cen, 'CEN', $ch1, 'CH1');
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");

# package A (CEN00B01): 8 files of 100 KB of random bytes; B (CEN00B02): 3
for my $p (['A', 8], ['B', 3])
{
	make_path("$b/src$p->[0]");
	system("head -c 102400 /dev/urandom > '$b/src$p->[0]/f$_.bin'") == 0 or die for 1 .. $p->[1];
}
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
  ('CEN00B01', 'App', '$b/srcA'), ('CEN00B02', 'Small', '$b/srcB');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES
  ('CEN00B01', 'Install', 'f1.bin'), ('CEN00B02', 'Install', 'f1.bin');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86'),
  ('CEN00003', 'WKS-03', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00004', 'WKS-04', 'CORP', 'CEN', 'WINNT_X86'),
  ('CEN00005', 'WKS-05', 'CORP', 'CH1', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'All five'), ('CEN00A02', 'Three at CEN');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id)
SELECT 'CEN00A01', 'direct'::smsdist.rule_type, 'CEN0000' || i FROM generate_series(1, 5) i
UNION ALL SELECT 'CEN00A02', 'direct', 'CEN0000' || i FROM generate_series(1, 3) i;
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES
  ('share_package', 'CEN00B01', 'sites', '{CEN}'), ('share_package', 'CEN00B02', 'sites', '{CEN}');});
ok(wait_until($cen, 'site', "SELECT count(*) = 2 FROM smsdist.package_locations WHERE site_code = 'CEN'", 120),
	'both packages are built and published at CEN');
ok(wait_until($cen, 'site', "SELECT count(*) = 8 FROM smsdist.collection_members", 60), 'the collections are evaluated');

sub q1 { my ($n, $sql) = @_; return $n->safe_psql('site', $sql); }
my $cols = q{site_code || '|' || coalesce(sent_via, '-') || '|' || machines || '|' || coalesce(bytes_to_send::text, 'NULL') || '|' || coalesce(delta_from_version::text, '-') || '|' || coalesce(estimated_seconds::text, 'NULL') || '|' || cache_evictions || '|' || cache_no_room || '|' || cache_unknown};
sub preview_of
{
	my ($insert, $id) = @_;
	return q1($cen, "BEGIN; $insert; SELECT string_agg($cols || '|' || note, E'\\n' ORDER BY site_code) FROM smsdist.preview('$id'); ROLLBACK;");
}
my $full1 = q1($cen, q{SELECT bytes FROM smsdist.package_builds WHERE package_id = 'CEN00B01' AND source_version = 1});

# ---- the link was never measured: the size, but no time
my $p = preview_of(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
	VALUES ('CEN00F01', 'share_package', 'CEN00B01', 'sites', '{CH1}')}, 'CEN00F01');
like($p, qr/^CH1\|CH1\|0\|$full1\|-\|NULL\|0\|0\|0\|version 1 is built: $full1 bytes; the link to CH1 was never measured: no time estimate$/,
	'a link never measured: the full package, no estimated time, and the note says why') or diag($p);
# a package never built: its source tree, as if it did not compress
make_path("$b/srcC/sub");
system("head -c 102400 /dev/urandom > '$b/srcC/$_'") == 0 or die for qw(c1.bin c2.bin);
system("head -c 51200 /dev/urandom > '$b/srcC/sub/c3.bin'") == 0 or die;
$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B03', 'New', '$b/srcC')");
$p = preview_of(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
	VALUES ('CEN00F06', 'share_package', 'CEN00B03', 'sites', '{CH1}')}, 'CEN00F06');
like($p, qr/^CH1\|CH1\|0\|256000\|-\|NULL\|0\|0\|0\|version 1 is not built yet: estimated from its source tree \(256000 bytes in 3 files\), as if it did not compress; /,
	'a package never built: its source tree measured (256000 bytes in 3 files)') or diag($p);
is(q1($cen, q{SELECT count(*) FROM smsdist.package_builds WHERE package_id = 'CEN00B03'}), '0', 'and nothing was built for it');
is(q1($cen, q{SELECT count(*) FROM smsdist.jobs WHERE job_id = 'CEN00F01'}) . '/'
	. q1($cen, q{SELECT count(*) FROM smsdist.job_transitions WHERE job_id = 'CEN00F01'}), '0/0',
	'the rolled-back job left nothing behind');

# ---- version 1 goes to CH1, unthrottled: the Sender measures the link
$cen->safe_psql('site', q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
	VALUES ('CEN00F03', 'share_package', 'CEN00B01', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00F03'}, 120),
	'version 1 reaches CH1');
is(q1($cen, q{SELECT count(*) || ' ' || sum(bytes) || ' ' || bool_and(seconds > 0) FROM smsdist.link_measurements}),
	"1 $full1 true", 'the transfer is measured: the whole package file, in some seconds');
ok(wait_until($cen, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.package_locations WHERE site_code = 'CH1' AND source_version = 1)}, 60),
	'CEN knows CH1 holds version 1');

# ---- version 2: one file of eight changed
system("head -c 102400 /dev/urandom > '$b/srcA/f3.bin'") == 0 or die;
$cen->safe_psql('site', q{UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00B01';
	INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}')});
ok(wait_until($cen, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.package_locations WHERE site_code = 'CEN' AND package_id = 'CEN00B01' AND source_version = 2)}, 120),
	'version 2 is built and published at CEN');

# ---- agents download B (300 KB) and report their caches
my $site_key = site_key_file($cen);
my %key = map { $_ => machine_key_file($cen, $_) } qw(CEN00001 CEN00002 CEN00004);
my $t = time;
my $iso = sub { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) };
my $T0 = $iso->($t - 86400);
$cen->safe_psql('site', "INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
	VALUES ('CEN00C01', 'Small', 'CEN00B02', 'Install', 'CEN00A02', '" . strftime('%Y-%m-%d %H:%M', gmtime($t - 100 * 86400)) . "')");
ok(wait_until($cen, 'site', "SELECT position('CEN00C01' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0
	AND position('[location' IN coalesce(pg_read_file('$b/cap/pkginfo.box/CEN00B02.NAL', 0, 100000, true), '')) > 0", 60),
	'the advertisement reaches the CAP');
$cen->safe_psql('postgres', 'CREATE ROLE agent3 LOGIN IN ROLE smsdist_client');
$cen->safe_psql('site', q{INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent3', 'CEN00003')});
ok(wait_until($cen, 'site', q{SELECT jsonb_array_length(smsdist.machine_policy('CEN00003')->'advertisements') = 1}, 60),
	'and the policy of the advanced agent');
sub legacy
{
	my ($id, $tz, $mb, $now, @more) = @_;
	my ($out, $err) = ('', '');
	local $ENV{TZ} = $tz;
	IPC::Run::run([ $agent, '--sms-id', $id, '--site', 'CEN', '--platform', 'WINNT_X86', '--state-dir', "$b/ws/$id",
		'--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $key{$id},
		'--cache-size', $mb, '--now', $now, '--once', @more ], '>', \$out, '2>', \$err);
	return ($?, $out, $err);
}
sub take_in
{
	$cen->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
	return wait_until($cen, 'site', qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.INV' OR f LIKE '%.SMS')}, 30);
}
# (the inbox is looked at below before the test wakes the Status Manager:
# it takes the files at any step)
ok(wait_quiescent($cen, 'status_manager', 120), 'the Status Manager is quiescent before the agents run');
# WKS-01: a 2 MB cache, in India (UTC+05:30)
my ($rc, $out, $err) = legacy('CEN00001', 'Asia/Kolkata', 2, $T0);
like($out, qr/^${AGENT_INFO}cached CEN00B02 version 1:/m, 'WKS-01 downloads B') or diag("$out\n$err");
ok(-f "$b/cap/statmsgs.box/CEN00001.INV", 'and leaves its inventory in the status inbox');
# WKS-02: a 1 MB cache (UTC-05:00); B downloaded 40 days ago, so unlocked since 10 days ago
($rc, $out, $err) = legacy('CEN00002', 'Etc/GMT+5', 1, $iso->($t - 40 * 86400));
like($out, qr/^${AGENT_INFO}cached CEN00B02 version 1:/m, 'WKS-02 downloads B, 40 days ago') or diag("$out\n$err");
($rc, $out, $err) = legacy('CEN00002', 'Etc/GMT+5', 1, $iso->($t - 5 * 86400));
is($rc, 0, 'and polls again 5 days ago: B has been unlocked for 5 days (30 days without a run)') or diag($err);
# WKS-03: advanced mode, a 1 MB cache, UTC
{
	local $ENV{TZ} = 'UTC';
	my $mp = 'host=' . $cen->host . ' port=' . $cen->port . ' dbname=site user=agent3';
	IPC::Run::run([ $agent, '--sms-id', 'CEN00003', '--site', 'CEN', '--platform', 'WINNT_X86', '--state-dir', "$b/ws/CEN00003",
		'--management-point', $mp, '--cache-size', '1', '--now', $T0, '--once' ], '>', \$out, '2>', \$err);
	like($out, qr/^${AGENT_INFO}cached CEN00B02 version 1:/m, 'WKS-03 (advanced) downloads B') or diag("$out\n$err");
}
ok(take_in(), 'the Status Manager takes the inventory files in');
is(q1($cen, q{SELECT string_agg(concat_ws(' ', sms_id, site_code, size_limit_bytes, used_bytes, locked_bytes, utc_offset_seconds, package_count), ', ' ORDER BY sms_id) FROM smsdist.machine_caches}),
	'CEN00001 CEN 2097152 307200 307200 19800 1, CEN00002 CEN 1048576 307200 0 -18000 1, CEN00003 CEN 1048576 307200 307200 0 1',
	'each cache as its agent reported it: size limit, bytes used and locked, UTC offset (India, UTC-5, UTC), one package');
is(q1($cen, qq{SELECT string_agg(concat_ws(' ', sms_id, package_id, source_version, bytes, downloaded_at = '$T0', locked_until - downloaded_at, coalesce(last_run_at::text, 'never ran')), ', ' ORDER BY sms_id)
	FROM smsdist.machine_cache_packages}),
	"CEN00001 CEN00B02 1 307200 t 30 days never ran, CEN00002 CEN00B02 1 307200 f never ran, CEN00003 CEN00B02 1 307200 t 30 days never ran",
	'and each package: bytes, downloaded, locked for 30 days (WKS-02\'s is unlocked: no locked_until)');
{
	local $ENV{TZ} = 'Asia/Kolkata';
	my ($o, $e) = ('', '');
	IPC::Run::run([ $agent, '--state-dir', "$b/ws/CEN00001", '--now', $T0, 'cache', 'show' ], '>', \$o, '2>', \$e);
	my ($until) = $o =~ /^CEN00B02 version 1: 307200 bytes, downloaded \S+, locked until (\S+)$/m;
	is(q1($cen, qq{SELECT locked_until = '$until' FROM smsdist.machine_cache_packages WHERE sms_id = 'CEN00001'}), 't',
		"the lock expiry is the one 'cache show' gives ($until)") or diag($o);
}

# ---- not at every poll: unchanged, nothing is written; at least every N polls
ok(wait_quiescent($cen, 'status_manager', 120), 'the Status Manager is quiescent again');
($rc, $out, $err) = legacy('CEN00001', 'Asia/Kolkata', 2, $T0);
ok(!-e "$b/cap/statmsgs.box/CEN00001.INV", 'a poll whose cache did not change reports nothing');
($rc, $out, $err) = legacy('CEN00001', 'Asia/Kolkata', 2, $T0, '--inventory-every', '2');
ok(-f "$b/cap/statmsgs.box/CEN00001.INV", 'the second unchanged poll reports again with --inventory-every 2');
ok(take_in(), 'taken in');

# ---- a machine of CH1 reports to CH1 (advanced mode); CH1 passes it up to CEN
$ch1->safe_psql('postgres', 'CREATE ROLE agent5 LOGIN IN ROLE smsdist_client');
$ch1->safe_psql('site', "INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES ('CEN00005', 'WKS-05', 'CORP', 'CH1', 'WINNT_X86');
	INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent5', 'CEN00005');
	INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', 'host=" . $cen->host . ' port=' . $cen->port . " dbname=site user=child_reporter')");
{
	local $ENV{TZ} = 'Asia/Tokyo';
	my $mp = 'host=' . $ch1->host . ' port=' . $ch1->port . ' dbname=site user=agent5';
	IPC::Run::run([ $agent, '--sms-id', 'CEN00005', '--site', 'CH1', '--platform', 'WINNT_X86', '--state-dir', "$b/ws/CEN00005",
		'--management-point', $mp, '--cache-size', '1', '--now', $T0, '--once' ], '>', \$out, '2>', \$err);
	is($?, 0, 'WKS-05 (advanced, at CH1) polls and reports its empty cache') or diag($err);
}
is(q1($ch1, q{SELECT concat_ws(' ', sms_id, site_code, size_limit_bytes, used_bytes, utc_offset_seconds) FROM smsdist.machine_caches}),
	'CEN00005 CH1 1048576 0 32400', 'CH1 has its inventory (Tokyo: UTC+09:00)');
ok(wait_until($cen, 'site', q{SELECT concat_ws(' ', site_code, size_limit_bytes, used_bytes, utc_offset_seconds, package_count) = 'CH1 1048576 0 32400 0'
	FROM smsdist.machine_caches WHERE sms_id = 'CEN00005'}, 60), 'and CEN has it from CH1, at its site');
ok(wait_until($ch1, 'site', q{SELECT NOT report_pending FROM smsdist.machine_caches WHERE sms_id = 'CEN00005'}, 30),
	'CH1 knows CEN has it: not sent again');

# ---- the preview of a run-command job for the five machines, the address throttled
$cen->safe_psql('site', q{UPDATE smsdist.sender_addresses SET throttle = 'pulse', pulse_block_kb = 64, pulse_delay_ms = 1000});
my ($full2, $src2) = split /\|/, q1($cen, q{SELECT bytes || '|' || source_bytes FROM smsdist.package_builds WHERE package_id = 'CEN00B01' AND source_version = 2});
is($src2, 819200, 'version 2 holds 800 KB of files');
my ($mbytes, $msecs) = split /\|/, q1($cen, q{SELECT sum(bytes) || '|' || sum(seconds) FROM smsdist.link_measurements});
my $delta = ceil($full2 * 102400 / 819200);
my $secs = sprintf('%.1f', $delta / ($mbytes / $msecs) + (ceil($delta / 65536) - 1) * 1.0);
$p = preview_of(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id)
	VALUES ('CEN00F02', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01')}, 'CEN00F02');
# the worked example of docs/preview.md, as psql prints it
note("worked example:\n" . $cen->safe_psql('site', q{BEGIN;
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id)
VALUES ('CEN00F02', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01');
SELECT site_code, sent_via, machines, bytes_to_send, delta_from_version AS delta_from, estimated_seconds, cache_evictions AS evict, cache_no_room AS no_room, cache_unknown AS unknown FROM smsdist.preview('CEN00F02');
SELECT site_code, note FROM smsdist.preview('CEN00F02');
ROLLBACK;
SELECT address_id, target_site_code, throttle, transfers, bytes, seconds, bytes_per_second FROM smsdist.link_throughput;
SELECT sms_id, site_code, size_limit_bytes, used_bytes, locked_bytes, utc_offset_seconds FROM smsdist.machine_caches ORDER BY sms_id;
SELECT sms_id, package_id, source_version, bytes, locked_until FROM smsdist.machine_cache_packages ORDER BY sms_id;},
	extra_params => [ '-P', 'format=aligned', '-P', 'tuples_only=off' ]));
my @rows = split /\n/, $p;
is(scalar(@rows), 2, 'one row per site the job would reach') or diag($p);
like($rows[0], qr/^CEN\|-\|4\|0\|-\|0\|1\|1\|1\|this site: nothing to send; version 2 is built: $full2 bytes$/,
	'CEN: 4 machines, nothing to send; WKS-02 would evict its unlocked package, WKS-03 has no room (its package is locked), WKS-04 never reported');
like($rows[1], qr/^CH1\|CH1\|1\|$delta\|1\|\Q$secs\E\|0\|0\|0\|the delta from version 1 \(estimated from the manifests: 102400 of 819200 source bytes changed\); \d+ bytes\/s measured to CH1, pulses of 64 kB every 1000 ms$/,
	"CH1: the delta from version 1 ($delta bytes, an eighth of $full2), $secs s at the measured rate with the pulses' pauses; WKS-05's cache (reported through CH1) has room")
  or diag($rows[1]);
is(q1($cen, q{SELECT count(*) FROM smsdist.jobs WHERE job_id = 'CEN00F02'}), '0', 'rolled back: no job');

# ---- the real send: the delta it makes, and the pauses not measured as link time
$cen->safe_psql('site', q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
	VALUES ('CEN00F04', 'share_package', 'CEN00B01', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00F04'}, 120),
	'version 2 reaches CH1');
my $real = q1($cen, q{SELECT bytes FROM smsdist.package_deltas WHERE package_id = 'CEN00B01' AND base_version = 1 AND source_version = 2});
is(q1($cen, q{SELECT delta_base FROM smsdist.job_site_status WHERE job_id = 'CEN00F04' AND phase = 'send'}), '1',
	'the Sender sent the delta from version 1, as previewed');
ok(abs($real - $delta) <= 0.25 * $real, "the estimate ($delta bytes) is within 25 % of the delta made ($real bytes)");
my ($lb, $ls) = split /\|/, q1($cen, q{SELECT bytes || '|' || seconds FROM smsdist.link_measurements ORDER BY measured_at DESC LIMIT 1});
ok($lb > 65536 && $ls < 1.0, "measured: $lb bytes in $ls s, at least two pulses: the 1 s pause between them is not link time");
is(q1($cen, q{BEGIN READ ONLY; SELECT count(*) FROM smsdist.preview('CEN00F04'); COMMIT;}), '1',
	'preview() of a committed job runs in a read-only transaction: it writes nothing');
$p = preview_of(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
	VALUES ('CEN00F05', 'share_package', 'CEN00B01', 'sites', '{CH1}')}, 'CEN00F05');
like($p, qr/^CH1\|CH1\|0\|0\|-\|0\|0\|0\|0\|every target site behind CH1 holds version 2 already/,
	'a site that holds the version already: nothing to send') or diag($p);

# ---- version 3 not built yet: its source tree, compressed as version 2 was
system("head -c 102400 /dev/urandom > '$b/srcA/f9.bin'") == 0 or die;
$cen->safe_psql('site', q{UPDATE smsdist.packages SET source_version = 3 WHERE package_id = 'CEN00B01'});
my $est3 = ceil(921600 * $full2 / 819200);
$p = preview_of(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
	VALUES ('CEN00F07', 'share_package', 'CEN00B01', 'sites', '{CH1}')}, 'CEN00F07');
like($p, qr/^CH1\|CH1\|0\|$est3\|-\|[0-9.]+\|0\|0\|0\|version 3 is not built yet: estimated from its source tree \(921600 bytes in 9 files\) compressed as version 2 was;/,
	"version 3 not built: 921600 source bytes at version 2's ratio, $est3 bytes, in full (no manifest for a delta)") or diag($p);

# ---- bad inventory files fail alone; a good one after them is taken in
my $box = "$b/cap/statmsgs.box";
my $hex = sub { my $f = $key{$_[0]}; open(my $fh, '<', $f) or die; my $k = <$fh>; chomp $k; return $k; };
sub inv_file
{
	my ($id, $inv, $k) = @_;
	my $text = "[smsdist]\nformat=status\nversion=1\nmachine=$id\nsite=CEN\nsequence=0\nat=" . strftime('%Y-%m-%dT%H:%M:%SZ', gmtime)
	  . "\nmessage_id=10030\nseverity=info\ncomponent=Client Agent\ninventory=$inv\ntext=inventory\n";
	$text .= 'hmac=' . hmac_sha256_hex($text, pack('H*', $k)) . "\n";
	open(my $fh, '>', "$box/.$id.tmp") or die;
	print $fh $text;
	close $fh;
	rename("$box/.$id.tmp", "$box/$id.INV") or die;
}
my $good = '{"size_limit_bytes": 5000, "used_bytes": 100, "locked_bytes": 0, "utc_offset_seconds": -3600, "packages": [{"package_id": "CEN00B07", "source_version": 3, "bytes": 100, "downloaded_at": "2026-11-01T00:00:00Z", "locked_until": null, "last_run_at": "2026-11-02T00:00:00Z"}]}';
inv_file('CEN00001', $good, $hex->('CEN00002'));	# another machine's key
inv_file('CEN00002', '{"size_limit_bytes": 5000, "used_bytes": -1, "locked_bytes": 0, "utc_offset_seconds": 0, "packages": []}', $hex->('CEN00002'));
inv_file('CEN00004', $good, $hex->('CEN00004'));
ok(take_in(), 'the Status Manager goes through them');
is(q1($cen, q{SELECT string_agg(machine || ': ' || regexp_replace(message, '^.*\.INV\.bad\): ', ''), ' | ' ORDER BY machine) FROM smsdist.status_messages WHERE message_id = 3400}),
	'CEN00001: its hmac does not verify with the key of machine CEN00001 | CEN00002: its cache inventory was refused: used_bytes must be a whole number of bytes from 0 to 1125899906842624, not -1',
	'a file signed with another machine\'s key and a negative size are refused, each with its reason (3400)');
ok(-f "$box/CEN00001.INV.bad" && -f "$box/CEN00002.INV.bad", 'and kept as .bad');
is(q1($cen, q{SELECT string_agg(concat_ws(' ', sms_id, size_limit_bytes, used_bytes, utc_offset_seconds), ', ' ORDER BY sms_id) FROM smsdist.machine_caches}),
	'CEN00001 2097152 307200 19800, CEN00002 1048576 307200 -18000, CEN00003 1048576 307200 0, CEN00004 5000 100 -3600, CEN00005 1048576 0 32400',
	'the refused reports changed nothing; the good one after them was recorded');
is(q1($cen, q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 501}), '0', 'no component step failed');

done_testing();
