# The metrics for Prometheus: the view smsdist.metrics against the real
# state after jobs ran across real sites (CEN -> CH1 -> GC1), and the
# queries file docs/postgres_exporter.yml run as written by a read-only
# monitoring login.  Bytes sent to a child equal the package file sent
# (once, though two send rows share the transfer); jobs, and the targets
# of live jobs, by state equal a count of the tables, in the same
# snapshot; counters only grow (deleting status messages does not lower
# them), survive the folding of their rows and a backup and restore;
# counting never waits for another transaction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use CPAN::Meta::YAML;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my ($cen, $ch1, $gc1) = three_sites();

sub metric
{
	my ($node, $name, $labels) = @_;
	return $node->safe_psql('site',
		"SELECT coalesce(sum(value), 0) FROM smsdist.metrics WHERE metric = '$name' AND labels @> '$labels'");
}

# --- bytes sent: a share job for CH1 and the sites below it
my $src = $cen->basedir . '/source/app';
make_path("$src/bin", "$src/doc");
system("head -c 3000000 /dev/urandom > '$src/bin/app.bin'") == 0 or die;
system("yes 'documentation line' | head -c 2000000 > '$src/doc/manual.txt'") == 0 or die;
$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src')");
is(metric($cen, 'smsdist_bytes_sent_total', '{"site": "CH1"}'), '0', 'nothing sent to CH1 yet: the series is 0');
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00101'"),
	'the share job completes at CEN');
my $size = $cen->safe_psql('site', "SELECT bytes FROM smsdist.package_builds WHERE package_id = 'CEN00001' AND source_version = 1");
ok($size > 0, "the package file is $size bytes");
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.job_site_status WHERE job_id = 'CEN00101' AND phase = 'send'}),
	'2', 'two send rows (CH1, GC1) went through the one transfer to CH1');
is(metric($cen, 'smsdist_bytes_sent_total', '{"site": "CH1"}'), $size,
	'CEN: bytes sent to CH1 equal the package file, counted once');
ok(wait_until($ch1, 'site', q{SELECT count(*) = 1 FROM smsdist.job_site_status
	WHERE job_id = 'CEN00101' AND site_code = 'GC1' AND phase = 'send' AND state = 'done'}),
	'CH1 sent it on to GC1');
is(metric($ch1, 'smsdist_bytes_sent_total', '{"site": "GC1"}'), $size, 'CH1: bytes sent to GC1 equal the package file');
is(metric($cen, 'smsdist_bytes_queued', '{"site": "CH1"}'), '0', 'nothing is queued for CH1 any more');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.metrics
	WHERE metric = 'smsdist_transfer_rate_bytes_per_second' AND labels->>'site' = 'CH1' AND value > 0}),
	'1', 'the transfer rate to CH1 is measured');

# a second version while CH1 is down: queued, failed attempts send nothing,
# and what is sent once CH1 is back (full file or delta) is counted
my $sent_v1 = metric($cen, 'smsdist_bytes_sent_total', '{"site": "CH1"}');
system("head -c 2000000 /dev/urandom > '$src/bin/patch.bin'") == 0 or die;
$ch1->stop;
$cen->safe_psql('site', q{
UPDATE smsdist.packages SET source_version = 2 WHERE package_id = 'CEN00001';
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites, include_subsites)
VALUES ('CEN00103', 'share_package', 'CEN00001', 'sites', '{CH1}', true)});
ok(wait_until($cen, 'site', q{SELECT state = 'retrying' FROM smsdist.job_site_status
	WHERE job_id = 'CEN00103' AND site_code = 'CH1' AND phase = 'send'}),
	'while CH1 is down the send is retrying');
ok(wait_until($cen, 'site', q{SELECT value > 0 FROM smsdist.metrics
	WHERE metric = 'smsdist_bytes_queued' AND labels->>'site' = 'CH1'}),
	'bytes are queued for CH1');
is(metric($cen, 'smsdist_bytes_sent_total', '{"site": "CH1"}'), $sent_v1, 'the failed attempts sent nothing');
$ch1->start;
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00103'"),
	'once CH1 is back the job completes');
my $sent_v2 = $cen->safe_psql('site', q{SELECT bytes_total FROM smsdist.job_site_status
	WHERE job_id = 'CEN00103' AND site_code = 'CH1' AND phase = 'send'});
ok($sent_v2 > 0, "version 2 went as a file of $sent_v2 bytes");
is(metric($cen, 'smsdist_bytes_sent_total', '{"site": "CH1"}'), $sent_v1 + $sent_v2,
	'the counter grew by the file sent');
is(metric($cen, 'smsdist_bytes_queued', '{"site": "CH1"}'), '0', 'and nothing is queued any more');

# --- jobs and targets by state: a run-command job for three machines at CH1
$cen->safe_psql('site', q{
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Run', 'app --install', NULL, 5);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS1', 'CORP', 'CH1', 'WIN95'), ('CEN00002', 'WKS2', 'CORP', 'CH1', 'WIN95'),
  ('CEN00003', 'WKS3', 'CORP', 'CH1', 'WIN95');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN00102', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001,CEN00002,CEN00003}')});
ok(wait_until($cen, 'site', "SELECT count(*) = 3 FROM smsdist.job_target_status WHERE job_id = 'CEN00102'"),
	'the run-command job has its three targets');
my $same_targets = q{SELECT
	(SELECT jsonb_object_agg(labels->>'state', value) FROM smsdist.metrics WHERE metric = 'smsdist_job_targets')
	= (SELECT jsonb_object_agg(st::text, (SELECT count(*) FROM smsdist.job_target_status t JOIN smsdist.jobs j USING (job_id)
	                                       WHERE t.state = st AND j.state IN ('pending', 'active'))::double precision)
	     FROM unnest(enum_range(NULL::smsdist.target_state)) st)};
my $same_jobs = q{SELECT
	(SELECT jsonb_object_agg(labels->>'state', value) FROM smsdist.metrics WHERE metric = 'smsdist_jobs')
	= (SELECT jsonb_object_agg(st::text, (SELECT count(*) FROM smsdist.jobs j WHERE j.state = st)::double precision)
	     FROM unnest(enum_range(NULL::smsdist.job_state)) st)};
is($cen->safe_psql('site', $same_targets), 't', 'targets of live jobs by state equal the table (same snapshot)');
is(metric($cen, 'smsdist_job_targets', '{}'), '3', 'the three targets are counted');
is($cen->safe_psql('site', $same_jobs), 't', 'jobs by state equal the table (same snapshot)');
is(metric($cen, 'smsdist_jobs', '{"state": "completed"}'), '2', 'two jobs completed');

# a machine's messages move its target: offered, downloaded
$cen->safe_psql('site', q{
INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message,
                                     job_id, client_sequence, client_at)
VALUES ('CEN', 'Client Agent', 'CEN00003', 'informational', 10002, 'offered', 'CEN00102', 1, clock_timestamp()),
       ('CEN', 'Client Agent', 'CEN00003', 'informational', 10003, 'downloaded', 'CEN00102', 2, clock_timestamp())});
is($cen->safe_psql('site', $same_targets), 't', 'targets by state follow the messages that move them');
# the job cancelled: every open target ends
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'CEN00102'");
ok(wait_until($cen, 'site', "SELECT count(*) = 3 FROM smsdist.job_target_status WHERE job_id = 'CEN00102' AND state = 'cancelled'"),
	'cancelling the job cancels its targets');
is($cen->safe_psql('site', $same_targets), 't', 'targets by state follow a cancelled job');
is(metric($cen, 'smsdist_job_targets', '{}'), '0', 'whose targets are no longer counted (it ended)');
is($cen->safe_psql('site', $same_jobs), 't', 'jobs by state follow it too');
$cen->safe_psql('site', "DELETE FROM smsdist.jobs WHERE job_id = 'CEN00102'");
is($cen->safe_psql('site', $same_targets), 't', 'targets by state after the job is deleted');

# --- counters: status messages by severity, cache-full reports (10006)
my $same_messages = q{SELECT
	(SELECT jsonb_object_agg(labels->>'severity', value) FROM smsdist.metrics WHERE metric = 'smsdist_status_messages_total')
	= (SELECT jsonb_object_agg(sv::text, (SELECT count(*) FROM smsdist.status_messages m WHERE m.severity = sv)::double precision)
	     FROM unnest(enum_range(NULL::smsdist.severity)) sv)};
is($cen->safe_psql('site', $same_messages), 't', 'status messages by severity equal the table (none deleted yet)');
$cen->safe_psql('site', q{
INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message, client_sequence, client_at)
VALUES ('CEN', 'Client Agent', 'CEN00003', 'warning', 10006, 'the cache is full', 3, clock_timestamp())});
is(metric($cen, 'smsdist_cache_full_reports_total', '{"site": "CEN"}'), '1', 'a cache-full report is counted');
# the workers may write messages at any time: inserts are held off while
# the counter is read and the table emptied, and from then on the counter
# grows by exactly the messages the table holds (read in one snapshot)
my $at_delete = $cen->safe_psql('site', q{BEGIN;
LOCK TABLE smsdist.status_messages IN SHARE ROW EXCLUSIVE MODE;
SELECT sum(value) FROM smsdist.metrics WHERE metric = 'smsdist_status_messages_total';
DELETE FROM smsdist.status_messages;
COMMIT;});
($at_delete) = grep { /^\d+$/ } split /\n/, $at_delete;
ok($at_delete > 0, "$at_delete messages counted before the table was emptied");
my $counted_since = qq{SELECT (SELECT sum(value) FROM smsdist.metrics WHERE metric = 'smsdist_status_messages_total')
	- $at_delete = (SELECT count(*) FROM smsdist.status_messages)};
is($cen->safe_psql('site', $counted_since), 't', 'deleting status messages does not lower the counter');
$cen->safe_psql('site', q{BEGIN;
INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message)
VALUES ('CEN', 'test', 'error', 9999, 'rolled back');
ROLLBACK});
is($cen->safe_psql('site', $counted_since), 't', 'a rolled-back message is not counted');

# counting never waits: a transaction that counted and is still open, and
# holds the lock of a folding (as one that folded does until it ends),
# holds nothing another counting transaction needs
my $open = $cen->background_psql('site');
$open->query_safe('BEGIN');
$open->query_safe(q{INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message)
	SELECT 'CEN', 'test', 'informational', 9999, 'open ' || i FROM generate_series(1, 40) i});
$open->query_safe(q{SELECT pg_advisory_xact_lock(hashtext('smsdist.metric_counts'))});
for my $i (1 .. 32)
{
	# a wait would end in an error here, and safe_psql dies on an error
	$cen->safe_psql('site', q{SET lock_timeout = '60s'; SET statement_timeout = '60s';
INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message)
VALUES ('CEN', 'test', 'informational', 9999, 'beside an open one')});
}
is($cen->safe_psql('site', $counted_since), 't',
	'32 transactions counted beside the open one, none waited: each committed message once');
$open->query_safe('COMMIT');
$open->quit;
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE message LIKE 'open %'"), '40',
	'the open transaction committed its 40 messages');
is($cen->safe_psql('site', $counted_since), 't', 'which count once it commits');

# about one counting transaction in 16 folds the rows into one per series
my ($folded, $tries) = (0, 0);
my $rows = $cen->safe_psql('site', 'SELECT count(*) FROM smsdist.metric_counts');
while (!$folded && $tries < 2000)
{
	$tries++;
	$cen->safe_psql('site', q{INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message)
VALUES ('CEN', 'test', 'informational', 9999, 'fold')});
	$folded = $cen->safe_psql('site', 'SELECT count(*) FROM smsdist.metric_counts') < $rows;
}
ok($folded, "the rows of metric_counts were folded after $tries transactions");
is($cen->safe_psql('site', $counted_since), 't', 'and the counter is still right');

# --- the documented backup and restore (triggers off) brings the counts
# back with the rows they count
my $series = q{SELECT string_agg(metric || labels::text || '=' || value, E'\n' ORDER BY metric, labels::text)
	FROM smsdist.metrics WHERE metric NOT LIKE 'smsdist\_worker\_%'};
my $holder = $cen->background_psql('site');
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $exported = $holder->query_safe('SELECT pg_export_snapshot()');
$exported =~ s/\s+//g;
my $dumped = $holder->query_safe($series);
$dumped =~ s/\n+$//;
my $dump = $cen->basedir . '/site.dump';
$cen->command_ok([ 'pg_dump', '-Fc', "--snapshot=$exported", '-f', $dump, '-d', $cen->connstr('site') ], 'pg_dump of CEN');
$holder->query_safe('COMMIT');
$holder->quit;
$cen->safe_psql('postgres', 'CREATE DATABASE copy');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$cen->command_ok([ 'pg_restore', '--single-transaction', '-d', $cen->connstr('copy'), $dump ],
		'pg_restore into a copy, triggers off');
}
is($cen->safe_psql('copy', $series), $dumped, 'the restored copy has the same metrics');
is($cen->safe_psql('copy', $same_targets), 't', 'and its targets by state equal its table');

# --- the monitoring login: read-only, granted smsdist_reader
$cen->safe_psql('site', 'CREATE ROLE monitor LOGIN IN ROLE smsdist_reader');
my ($rc, $out, $err) = $cen->psql('site', 'SELECT count(*) > 0 FROM smsdist.metrics', extra_params => ['-U', 'monitor']);
is("$rc $out", '0 t', 'a login granted smsdist_reader reads the view') or diag($err);
$cen->safe_psql('site', 'CREATE ROLE nobody LOGIN');
($rc, $out, $err) = $cen->psql('site', 'SELECT count(*) FROM smsdist.metrics', extra_params => ['-U', 'nobody']);
like($err, qr/permission denied/, 'a login without smsdist_reader does not');

# --- docs/postgres_exporter.yml: every query as written, as the monitor
my $yml = CPAN::Meta::YAML->read("$FindBin::Bin/../../docs/postgres_exporter.yml")
  or die CPAN::Meta::YAML->errstr;
my %queries = %{ $yml->[0] };
my %exported;
for my $ns (sort keys %queries)
{
	my $q = $queries{$ns};
	my @declared = map { my ($c) = keys %$_; [ $c, $_->{$c}{usage} ] } @{ $q->{metrics} };
	($rc, $out, $err) = $cen->psql('site', "$q->{query} \\gdesc", extra_params => ['-U', 'monitor']);
	is($rc, 0, "$ns: the query runs as the monitoring login") or diag($err);
	my @columns = map { (split /\|/)[0] } split /\n/, $out;
	is(join(',', @columns), join(',', map { $_->[0] } @declared), "$ns: its columns are the declared metrics, in order");
	my @labels = map { $_->[0] } grep { $_->[1] eq 'LABEL' } @declared;
	for my $d (grep { $_->[1] ne 'LABEL' } @declared)
	{
		my ($col, $usage) = @$d;
		my $name = "${ns}_$col";
		$exported{$name} = 1;
		like($usage, qr/^(GAUGE|COUNTER)$/, "$name: usage $usage");
		is($cen->safe_psql('site', "SELECT string_agg(DISTINCT type, ',') FROM smsdist.metrics WHERE metric = '$name'"),
			lc($usage), "$name is a " . lc($usage) . ' in the view');
		next if $ns eq 'smsdist_worker';    # live figures: they move between two reads
		my $labels = join(', ', map { "'$_', q.$_" } @labels);
		is($cen->safe_psql('site', qq{SELECT count(*) FROM ($q->{query}) q
			WHERE q.$col IS DISTINCT FROM (SELECT value FROM smsdist.metrics m
			                                WHERE m.metric = '$name' AND m.labels = jsonb_build_object($labels))}),
			'0', "$name: each row has the view's value");
	}
}
is(join(',', sort keys %exported),
	$cen->safe_psql('site', q{SELECT string_agg(DISTINCT metric COLLATE "C", ',' ORDER BY metric COLLATE "C") FROM smsdist.metrics}),
	'the queries file exports every metric of the view');
is($cen->safe_psql('site', "SELECT count(*) FROM ($queries{smsdist_worker}{query}) q"),
	$cen->safe_psql('site', 'SELECT count(*) FROM smsdist.workers'), 'smsdist_worker: one row per worker');

done_testing();
