# Upgrades with real data, from every earlier version.  For each version
# that an update script starts from (0.1 ... 0.8), the site database is
# made at that version while the current library is loaded (its workers
# wait for ALTER EXTENSION UPDATE on a version mismatch, so the state stays
# as written), filled with the state of a working site as far as that
# version's schema can hold it, and updated.  Then:
#
#   nothing is lost: every column of every table the old version had holds,
#   right after the update (in the update's own transaction, before any
#   worker may act), what it held before, row for row;
#   the work completes: the pending and the active jobs end, the
#   advertisement's offer files reach the CAP and its policy is stored, the
#   collection is evaluated (a stale member leaves, the rules' members
#   come), and the finished jobs stay as they ended.
#
# How the state is written.  The workers wait, so the test plays them: a
# job is inserted pending (a new job must be) and moved as the Scheduler
# moves it (pending -> active, the per-site rows it creates), a finished job
# is moved on to completed or cancelled, and a workstation's success is the
# status message the Status Manager would record (10008), written once the
# PCM file for it exists.  What each version can hold:
#
#   0.1   sites, site systems, packages, programs, machines, collections with
#         rules and a (stale) member, an advertisement, jobs pending, active
#         (a send row for the child site), completed and cancelled, status
#         messages
#   0.2+  package builds and a transfer half done (its row: the site here is
#         the central site, which no parent sends to, so the transfer
#         itself is not resumed; t/053 sends across versions)
#   0.3+  the collection evaluation queue
#   0.4+  a maintenance window
#   0.7+  machine keys (a trigger issues them with each machine)
#
# One cluster; its site database is dropped and made again per version.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $node = site_node('upg', site_code => 'CEN', create => 0,
	conf => "smsdist.poll_interval = '2s'\n");
my $base = $node->basedir;

# the earlier versions: every "from" version of an update script
my %from;
for my $sqldir ("$FindBin::Bin/../../sql", "$FindBin::Bin/../../sql/updates")
{
	opendir(my $dh, $sqldir) or die "$sqldir: $!";
	$from{$_} = 1 for map { /^smsdist--([0-9.]+)--[0-9.]+\.sql$/ ? ($1) : () } readdir($dh);
	closedir($dh);
}
sub version_key { my ($v) = @_; my ($x, $y) = split /\./, $v; return $x * 1000 + $y; }
my @versions = sort { version_key($a) <=> version_key($b) } keys %from;
ok(@versions >= 8, 'the earlier versions: ' . join(', ', @versions));

# two package sources
for my $p (qw(tool editor))
{
	make_path("$base/source/$p");
	open my $fh, '>', "$base/source/$p/$p.sh" or die $!;
	print $fh "echo installing $p\n" x 20;
	close $fh;
}

sub has_table
{
	my ($t) = @_;
	return $node->safe_psql('site', "SELECT to_regclass('smsdist.$t') IS NOT NULL") eq 't';
}

# The state of a working site, as far as the schema of this version holds it.
sub fill
{
	my ($v) = @_;
	my $s = "$base/site";
	File::Path::remove_tree($s);
	make_path(map { "$s/$_" } qw(dp drive logon cap));
	$node->safe_psql('site', qq{
INSERT INTO smsdist.sites (site_code, name, parent_site_code) VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$s/dp'), ('CEN', 'site_server_drive', 'D', '$s/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$s/logon'), ('CEN', 'client_access_point', 'CAP1', '$s/cap');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES
  ('CEN00001', 'Tool', '$base/source/tool'), ('CEN00002', 'Editor', '$base/source/editor');
INSERT INTO smsdist.programs (package_id, program_name, command_line, max_run_minutes) VALUES
  ('CEN00001', 'Run', 'tool --install', 5), ('CEN00002', 'Setup', 'setup /q', 10);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS1', 'CORP', 'CEN', 'WIN95'), ('CEN00002', 'WKS2', 'CORP', 'CEN', 'WIN95'),
  ('CEN00003', 'WKS3', 'CORP', 'CEN', 'WIN95'), ('CEN00004', 'WKS4', 'CORP', 'CH1', 'WIN95');
INSERT INTO smsdist.users (domain, user_name, full_name) VALUES ('CORP', 'alice', 'Alice');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00001', 'Pilot');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00001', 'direct', 'CEN00001');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00001', 'query', 'name = ''WKS2''');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id) VALUES
  ('CEN00001', 'Editor for the pilots', 'CEN00002', 'Setup', 'CEN00001');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time) VALUES ('CEN00001', '2026-01-01 08:00');
INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, message) VALUES
  ('CEN', 'SMS_SCHEDULER', 'informational', 500, 'a message of the old version'),
  ('CEN', 'SMS_DESPOOLER', 'error', 501, 'another');
});
	# a stale member (no rule names WKS3): written where the evaluator
	# would not remove it before the update (at 0.3 and later a trigger
	# queues the collection, which the waiting evaluator leaves alone)
	$node->safe_psql('site', q{INSERT INTO smsdist.collection_members (collection_id, sms_id) VALUES ('CEN00001', 'CEN00003')});

	# jobs, in each state the Scheduler and an operator leave them
	$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, target_sites) VALUES
  ('CEN00001', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}', NULL),
  ('CEN00002', 'share_package', 'CEN00002', NULL, 'sites', NULL, '{CEN}'),
  ('CEN00003', 'share_package', 'CEN00001', NULL, 'sites', NULL, '{CEN}'),
  ('CEN00004', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00004}', NULL),
  ('CEN00005', 'share_package', 'CEN00001', NULL, 'sites', NULL, '{CEN}'),
  ('CEN00006', 'run_command', 'CEN00002', 'Setup', 'machines', '{CEN00002}', NULL);
-- active: this site's distribute row, as the Scheduler makes it
UPDATE smsdist.jobs SET state = 'active' WHERE job_id IN ('CEN00003', 'CEN00004', 'CEN00005', 'CEN00006');
INSERT INTO smsdist.job_site_status (job_id, site_code, phase, state) VALUES
  ('CEN00003', 'CEN', 'distribute', 'waiting'),
  ('CEN00004', 'CH1', 'send', 'waiting'),
  ('CEN00005', 'CEN', 'distribute', 'done'),
  ('CEN00006', 'CEN', 'distribute', 'done');
INSERT INTO smsdist.job_target_status (job_id, sms_id, site_code, state) VALUES
  ('CEN00004', 'CEN00004', 'CH1', 'waiting'),
  ('CEN00006', 'CEN00002', 'CEN', 'waiting');
-- finished ones
UPDATE smsdist.jobs SET state = 'completed', state_reason = 'done before the upgrade' WHERE job_id = 'CEN00005';
UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'cancelled before the upgrade' WHERE job_id = 'CEN00006';
});
	my @held = ('0.1: sites, systems, packages, machines, collections, advertisements, jobs, status');
	if (has_table('package_builds'))
	{
		# what the Scheduler records when it activates a job: the version
		# and the build (the builder has not finished it)
		$node->safe_psql('site', q{
UPDATE smsdist.jobs SET source_version = 1 WHERE job_id IN ('CEN00003', 'CEN00004', 'CEN00005', 'CEN00006');
INSERT INTO smsdist.package_builds (package_id, source_version) VALUES ('CEN00001', 1)});
		push @held, 'a build';
	}
	if (has_table('package_transfers'))
	{
		$node->safe_psql('site', q{
INSERT INTO smsdist.package_transfers (package_id, source_version, total_bytes, sha256, bytes_received)
VALUES ('CEN00002', 7, 1048576, repeat('ab', 32), 524288)});
		push @held, 'a transfer half done';
	}
	if (has_table('maintenance_windows'))
	{
		$node->safe_psql('site', q{
INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
VALUES ('CEN00001', 'Nights', '22:00', 240, '{mon,tue,wed,thu,fri}')});
		push @held, 'a maintenance window';
	}
	push @held, 'machine keys (issued with each machine)' if has_table('machine_keys');
	return join(', ', @held);
}

# Every column of every table of the schema, as text, in one row per
# table row; the columns given for each table (those of the old version).
sub table_columns
{
	my %cols;
	for (split /\n/, $node->safe_psql('site', q{
SELECT c.relname || ' ' || string_agg(quote_ident(a.attname), ',' ORDER BY a.attname)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'smsdist'::regnamespace AND c.relkind = 'r'
 GROUP BY c.relname}))
	{
		my ($t, $c) = split / /;
		$cols{$t} = $c;
	}
	return \%cols;
}

sub contents_sql
{
	my ($cols) = @_;
	return 'SELECT ' . join(" || E'\\n' || ", map {
		  "(SELECT '$_: ' || count(*) || E'\\n' || coalesce(string_agg(r, E'\\n' ORDER BY r), '') FROM"
		  . " (SELECT ($cols->{$_})::text AS r FROM smsdist.$_) q)"
	} sort keys %$cols);
}

for my $v (@versions)
{
	$node->safe_psql('postgres', 'DROP DATABASE IF EXISTS site');
	$node->safe_psql('postgres', 'CREATE DATABASE site');
	$node->safe_psql('site', "CREATE EXTENSION smsdist VERSION '$v'");
	ok(wait_until($node, 'site',
			"SELECT state LIKE 'waiting for ALTER EXTENSION smsdist UPDATE (installed $v,%' FROM smsdist.workers WHERE component = 'scheduler'", 60),
		"at $v the workers wait for the update");
	my $held = fill($v);
	note("$v holds: $held");

	my $cols = table_columns();
	my $before = $node->safe_psql('site', contents_sql($cols));
	# the update and the reading of the old columns in one transaction: no
	# worker acts between them
	my $after = $node->safe_psql('site', 'BEGIN; ALTER EXTENSION smsdist UPDATE; ' . contents_sql($cols) . '; COMMIT;');
	if ($after eq $before)
	{
		pass("from $v: every row of the old tables is kept (" . length($before) . ' bytes)');
	}
	else
	{
		my %a = map { $_ => 1 } split /\n/, $before;
		my %c = map { $_ => 1 } split /\n/, $after;
		fail("from $v: every row of the old tables is kept");
		diag("only before:\n" . join("\n", grep { !$c{$_} } split /\n/, $before));
		diag("only after:\n" . join("\n", grep { !$a{$_} } split /\n/, $after));
	}

	# the work completes
	ok(wait_until($node, 'site',
			"SELECT extversion = smsdist.library_version() FROM pg_extension WHERE extname = 'smsdist'", 10),
		"from $v: at the library's version");
	ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00002'", 60),
		"from $v: the pending share job completes");
	ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00003'", 60),
		"from $v: the active share job completes");
	ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations WHERE package_id = 'CEN00002' AND site_code = 'CEN'", 60),
		"from $v: the package is published on the distribution point");
	ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.pcm_files WHERE sms_id = 'CEN00001' AND 'CEN00001' = ANY (jobs)", 60),
		"from $v: the pending run-command job's PCM file is written");
	$node->safe_psql('site', q{
INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, message, job_id, client_sequence, client_at)
VALUES ('CEN', 'SMS_CLIENT', 'CEN00001', 'informational', 10008, 'the program succeeded', 'CEN00001', 1, now())});
	ok(wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00001'", 60),
		"from $v: and it completes when its machine succeeds");
	is($node->safe_psql('site', q{SELECT string_agg(job_id || ' ' || state || ' ' || coalesce(state_reason, ''), ', ' ORDER BY job_id)
		FROM smsdist.jobs WHERE job_id IN ('CEN00004', 'CEN00005', 'CEN00006')}),
		'CEN00004 active , CEN00005 completed done before the upgrade, CEN00006 cancelled cancelled before the upgrade',
		"from $v: the job for the child waits for it, the finished ones stay finished");
	ok(wait_until($node, 'site',
			"SELECT array_agg(sms_id::text ORDER BY sms_id) = '{CEN00001,CEN00002}' FROM smsdist.collection_members WHERE collection_id = 'CEN00001'", 60),
		"from $v: the collection is evaluated (the stale member left)");
	ok(eventually(sub { -f "$base/site/cap/offerinf.box/CEN00001.OFR" }),
		"from $v: the advertisement's offer file reaches the CAP");
	ok(wait_until($node, 'site', "SELECT count(*) > 0 FROM smsdist.machine_policies WHERE sms_id = 'CEN00002'", 60),
		"from $v: the advertisement's policy is stored");
}

done_testing();
