# Delta updates across real sites (CEN -> CH1 -> GC1).  A site that already
# holds an earlier version gets only the added and changed files plus the
# deletions, and ends with a tree identical to a full send; a site with no
# earlier version gets everything; a site whose base copy is damaged asks
# for the full package and gets it -- also when it sits behind a child that
# itself only received the delta.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my ($cen, $ch1, $gc1, $dps_ref) = three_sites();
my %dps = %$dps_ref;

# version 1: 100 files of 40 KB of random bytes, a text file, a file that
# will go, a script whose mode will change, an empty directory
my $src = $cen->basedir . '/source/app';
make_path("$src/lib", "$src/doc", "$src/empty", "$src/old");
for my $i (1 .. 100)
{
	system("head -c 40000 /dev/urandom > '$src/lib/part$i.dat'") == 0 or die;
}
system("yes 'manual line' | head -c 500000 > '$src/doc/manual.txt'") == 0 or die;
system("echo obsolete > '$src/old/gone.txt'") == 0 or die;
system("printf '#!/bin/sh\\necho setup\\n' > '$src/setup.sh'") == 0 or die;
chmod 0644, "$src/setup.sh";
$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src')");

sub job_state { my ($n, $id) = @_; $n->safe_psql('site', "SELECT state || ': ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = '$id'") }
sub rows
{
	my ($n, $id) = @_;
	return $n->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' delta ' || coalesce(delta_base::text, '-') || ' ' || coalesce(detail, '') || ' ' || coalesce(last_error, ''), E'\\n' ORDER BY site_code, phase) FROM smsdist.job_site_status WHERE job_id = '$id'");
}
my $job = 100;
sub run_job
{
	my ($version, $sites, $what) = @_;
	$job++;
	$cen->safe_psql('site', qq{
UPDATE smsdist.packages SET source_version = $version WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00$job', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});
	ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00$job'", 120),
		"$what: the job completes") or diag(job_state($cen, "CEN00$job"), "\n", rows($cen, "CEN00$job"),
		"\nCH1:\n", rows($ch1, "CEN00$job"), "\nGC1:\n", rows($gc1, "CEN00$job"));
	for my $code (@$sites)
	{
		for my $dp (@{ $dps{$code} })
		{
			ok(system("diff -r '$src' '$dp/SMS_PKGC/CEN00001' >/dev/null 2>&1") == 0,
				"$what: $code $dp is identical to the source");
		}
	}
	return "CEN00$job";
}
sub send_row
{
	my ($n, $id, $site, $col) = @_;
	return $n->safe_psql('site', "SELECT coalesce(${col}::text, 'null') FROM smsdist.job_site_status WHERE job_id = '$id' AND site_code = '$site' AND phase = 'send'");
}

# --- version 1: nobody has the package, everything is sent
my $j1 = run_job(1, ['CH1', 'GC1'], 'version 1 (full)');
is(send_row($cen, $j1, 'CH1', 'delta_base'), 'null', 'version 1 went in full to CH1');
my $full1 = send_row($cen, $j1, 'CH1', 'bytes_total');

# --- version 2: one file changed, one added, one deleted (with its
# directory), a mode changed, the empty directory gone and another made
system("head -c 40000 /dev/urandom > '$src/lib/part7.dat'") == 0 or die;
system("head -c 30000 /dev/urandom > '$src/lib/new.dat'") == 0 or die;
remove_tree("$src/old", "$src/empty");
make_path("$src/cache");
chmod 0755, "$src/setup.sh";
my $j2 = run_job(2, ['CH1', 'GC1'], 'version 2 (delta)');
is(send_row($cen, $j2, 'CH1', 'delta_base'), '1', 'CEN sent CH1 a delta from version 1');
is(send_row($ch1, $j2, 'GC1', 'delta_base'), '1', 'and CH1 passed the delta on to GC1');
my $delta2 = send_row($cen, $j2, 'CH1', 'bytes_total');
ok($delta2 * 20 < $full1, "the delta ($delta2 bytes) is a small part of the full file ($full1 bytes)");
is($cen->safe_psql('site', "SELECT files_sent || ' sent, ' || files_deleted || ' deleted, ' || files_kept || ' kept' FROM smsdist.package_deltas WHERE package_id = 'CEN00001' AND source_version = 2 AND base_version = 1"),
	'3 sent, 3 deleted, 100 kept', 'the delta holds the changed, added and re-moded files and lists the deletions (old/file, old/, empty/)');
for my $dp (@{ $dps{CH1} }, @{ $dps{GC1} })
{
	ok(!-e "$dp/SMS_PKGC/CEN00001/old/gone.txt" && !-e "$dp/SMS_PKGC/CEN00001/empty" && -d "$dp/SMS_PKGC/CEN00001/cache",
		"$dp: the deleted file and directory are gone, the new empty directory is there");
	is(sprintf('%04o', (stat "$dp/SMS_PKGC/CEN00001/setup.sh")[2] & 07777), '0755', "$dp: the changed mode arrived");
}
like($cen->safe_psql('site', "SELECT message FROM smsdist.status_messages WHERE job_id = '$j2' AND message_id = 3302"),
	qr/as a delta from version 1/, 'the status message says it was a delta');
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.job_progress WHERE job_id = '$j2' AND phase = 'send' AND bytes_per_second > 0"),
	'2', 'job_progress shows the throughput of each send');

# --- a site with no earlier version gets everything: remove the package
# from GC1, then version 3 goes to CH1 (delta-able) and GC1 (not)
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00199', 'remove_package', 'CEN00001', 'sites', '{GC1}')});
ok(wait_until($gc1, 'site', "SELECT count(*) = 0 FROM smsdist.package_locations WHERE package_id = 'CEN00001'", 60),
	'the package is removed from GC1');
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00199'", 60),
	'the removal job completes');
system("head -c 40000 /dev/urandom > '$src/lib/part9.dat'") == 0 or die;
my $j3 = run_job(3, ['CH1', 'GC1'], 'version 3 with GC1 empty');
is(send_row($cen, $j3, 'CH1', 'delta_base'), 'null', 'CEN sent the full file, since GC1 behind CH1 has no version');

# --- damage the base at CH1 (a file version 4 keeps): CH1 cannot apply the
# delta, asks for the full package, and gets it
system("head -c 40000 /dev/urandom > '$src/lib/part11.dat'") == 0 or die;
system("echo tampered >> '$dps{CH1}[0]/SMS_PKGC/CEN00001/lib/part50.dat'") == 0 or die;
my $j4 = run_job(4, ['CH1', 'GC1'], 'version 4 over a damaged base at CH1');
is(send_row($cen, $j4, 'CH1', 'delta_base'), 'null', 'in the end CEN sent CH1 the full file');
like($ch1->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = '$j4' AND message_id = 3203"),
	qr/lib\/part50\.dat.*waiting for the full package/, 'CH1 said why it needed the full package');
like($cen->safe_psql('site', "SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE job_id = '$j4' AND message_id = 3303"),
	qr/Site CH1 cannot use the delta/, 'CEN said it sends the full package');

# --- damage the base at GC1, which gets its package through CH1: CH1 has
# only the delta, so the request goes up to CEN, which sends CH1 the full
# file, which CH1 sends on
system("head -c 40000 /dev/urandom > '$src/lib/part12.dat'") == 0 or die;
unlink("$dps{GC1}[0]/SMS_PKGC/CEN00001/lib/part60.dat") or die;
my $j5 = run_job(5, ['CH1', 'GC1'], 'version 5 over a damaged base at GC1');
is(send_row($ch1, $j5, 'GC1', 'delta_base'), 'null', 'CH1 sent GC1 the full file in the end');
is($ch1->safe_psql('site', "SELECT coalesce(base_version::text, 'full') FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 5"),
	'full', 'after CEN sent it the full file');
is($gc1->safe_psql('site', "SELECT count(*) > 0 FROM smsdist.status_messages WHERE job_id = '$j5' AND message_id = 3203"),
	't', 'GC1 asked for the full package');
is($ch1->safe_psql('site', "SELECT count(*) FROM smsdist.package_transfers"), '0', 'no transfer left open at CH1');

# --- kill -9 of the receiving side mid-transfer: the child's backend that
# serves the parent's Sender dies (the child server restarts all its
# backends); the transfer resumes from the child's durable offset
system("head -c 8000000 /dev/urandom > '$src/lib/big.dat'") == 0 or die;
$cen->safe_psql('site', q{
UPDATE smsdist.sender_addresses SET throttle = 'pulse', pulse_block_kb = 256, pulse_delay_ms = 100
 WHERE target_site_code = 'CH1';
UPDATE smsdist.packages SET source_version = 6 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00160', 'share_package', 'CEN00001', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT bytes_done > 1000000 FROM smsdist.job_site_status
	WHERE job_id = 'CEN00160' AND site_code = 'CH1' AND phase = 'send'}, 60),
	'a throttled transfer to CH1 is under way');
my $total6 = send_row($cen, 'CEN00160', 'CH1', 'bytes_total');
# resuming needs a durable offset at CH1: its row, updated once the bytes
# are fsynced (every 32 MB or 0.5 s), not the bytes CEN has had acknowledged
ok(wait_until($ch1, 'site', "SELECT bytes_received > 0 FROM smsdist.package_transfers WHERE package_id = 'CEN00001' AND source_version = 6", 60),
	'CH1 has recorded part of the transfer');
# the chunk's commit does not wait for the WAL flush (synchronous_commit
# off): the offset is durable once the flush has passed that commit
my $recorded = $ch1->safe_psql('site', 'SELECT pg_current_wal_insert_lsn()');
ok(wait_until($ch1, 'site', "SELECT pg_current_wal_flush_lsn() >= '$recorded'::pg_lsn"),
	'and that record is durable');
my $receiver = $ch1->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE usename = 'parent_sender' AND datname = 'site' LIMIT 1");
ok($receiver =~ /^\d+$/, "the receiving backend at CH1 is process $receiver");
$ch1->safe_psql('postgres', "ALTER SYSTEM SET restart_after_crash = on");
reload_settings($ch1, 'site', { restart_after_crash => 'on' });
kill 'KILL', $receiver;
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00160'", 120),
	'after kill -9 of the receiving backend at CH1 the job completes') or diag(job_state($cen, 'CEN00160'), rows($cen, 'CEN00160'));
my ($sent6) = $cen->safe_psql('site', "SELECT message FROM smsdist.status_messages WHERE job_id = 'CEN00160' AND message_id = 3302")
  =~ /\((\d+) bytes sent\)/;
ok(defined $sent6 && $sent6 < $total6, "the last attempt sent " . ($sent6 // 'none') . " of $total6 bytes: it resumed");
for my $dp (@{ $dps{CH1} })
{
	ok(system("diff -r '$src' '$dp/SMS_PKGC/CEN00001' >/dev/null 2>&1") == 0, "version 6 on CH1 $dp is identical to the source");
}

# --- SIGTERM while the Sender sleeps between throttled blocks: it stops at
# once (a latch wait, not a sleep), and its successor finishes the job
system("head -c 3000000 /dev/urandom > '$src/lib/big2.dat'") == 0 or die;
$cen->safe_psql('site', q{
UPDATE smsdist.sender_addresses SET pulse_block_kb = 64, pulse_delay_ms = 30000
 WHERE target_site_code = 'CH1';
UPDATE smsdist.packages SET source_version = 7 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00170', 'share_package', 'CEN00001', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', q{SELECT bytes_done > 0 FROM smsdist.job_site_status
	WHERE job_id = 'CEN00170' AND site_code = 'CH1' AND phase = 'send'}, 60),
	'a transfer with 30 s between blocks is under way');
my $sender = $cen->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist sender'");
# a Sender killed while making a delta leaves its temporary file: the
# next Sender removes those of processes that are gone, and only those
my $deltas = $cen->data_dir . '/pg_smsdist/packages/deltas';
ok(-d $deltas, 'CEN keeps its deltas in pg_smsdist/packages/deltas');
my $gone = `sh -c 'echo \$\$'`;
chomp $gone;
my $stale = "$deltas/.CEN00001.4.from1.tar.gz.tmp.$gone";
my $live = "$deltas/.CEN00001.4.from1.tar.gz.tmp.$$";
for my $f ($stale, $live)
{
	open(my $fh, '>', $f) or die "$f: $!";
	print $fh "half a delta\n";
	close $fh;
}
my $t0 = time;
$cen->safe_psql('postgres', "SELECT pg_terminate_backend($sender)");
ok(wait_until($cen, 'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $sender", 10),
	'the throttled Sender exits on SIGTERM');
ok(time - $t0 < 25, 'before the 30 s delay between blocks ends (' . (time - $t0) . ' s)');
$cen->safe_psql('site', "UPDATE smsdist.sender_addresses SET throttle = 'unlimited' WHERE target_site_code = 'CH1'");
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00170'", 120),
	'the next Sender finishes the job') or diag(job_state($cen, 'CEN00170'), rows($cen, 'CEN00170'));
ok(!-e $stale, 'the next Sender removed the delta temporary of a process that is gone');
ok(-e $live, 'and left the one of a live process');
unlink $live;

# --- bad input: a full package (extract_package takes no base) may not
# carry a delta description at all; the description's own checks, applied
# to a delta with its base, are in t/027_quarantine
{
	my $dir = $cen->basedir . '/bad';
	make_path("$dir/t", "$dir/out");
	system("echo hi > '$dir/t/a.txt'") == 0 or die;
	my $sha = `sha256sum '$dir/t/a.txt'`;
	$sha =~ s/\s.*//s;
	open(my $m, '>', "$dir/t/.smsdist-manifest") or die;
	print $m "$sha 3 0644 a.txt\n";
	close $m;
	for my $case (['delete a.txt', qr/may not contain the name reserved for a delta's description/],
				  ['delete ../etc/passwd', qr/may not contain the name reserved for a delta's description/])
	{
		open(my $d, '>', "$dir/t/.smsdist-delta") or die;
		print $d "smsdist-delta 1\nbase-version 1\n$case->[0]\n";
		close $d;
		system("cd '$dir/t' && tar -czf ../bad.tar.gz a.txt .smsdist-delta .smsdist-manifest") == 0 or die;
		remove_tree("$dir/out");
		make_path("$dir/out");
		my ($ret, $out, $err) = $cen->psql('site',
			"SELECT smsdist.extract_package('$dir/bad.tar.gz', '$dir/out')");
		like($err, $case->[1], "a delta that says \"$case->[0]\" is refused");
	}
}

# The reports of earlier jobs name where the package is now, a later
# version: that is no hostile row (3304 is for those)
is($cen->safe_psql('site', q{SELECT string_agg(message, ' | ') FROM smsdist.status_messages WHERE message_id = 3304}),
	'', 'no row of the children\'s reports was refused');

$_->stop for ($cen, $ch1, $gc1);
done_testing();
