# Backups: pg_dump includes smsdist's tables and sequences, and the documented
# restore (triggers off) brings the site back as it was; the Scheduler then
# carries on: a job that fell due meanwhile is activated, activated jobs are
# not activated again, and new IDs continue the sequences.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('backup');
basic_inventory($node, 'site');
insert_job($node, 'site', 'CEN00001');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00001'"),
	'job active before the backup');
$node->safe_psql('site', q{
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host=ch1 dbname=site');
INSERT INTO smsdist.collections (name) VALUES ('All');
INSERT INTO smsdist.collection_members VALUES ('CEN00001', 'CEN00001');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('CEN00002', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}', clock_timestamp() + interval '3 s');
});

my $snapshot = q{
SELECT string_agg(t, E'\n' ORDER BY t) FROM (
  SELECT 'jobs ' || job_id || ' ' || state FROM smsdist.jobs
  UNION ALL SELECT 'transition ' || job_id || ' ' || coalesce(from_state::text, '-') || '>' || to_state FROM smsdist.job_transitions
  UNION ALL SELECT 'site_status ' || job_id || ' ' || site_code || ' ' || phase || ' ' || state FROM smsdist.job_site_status
  UNION ALL SELECT 'target ' || job_id || ' ' || sms_id || ' ' || state FROM smsdist.job_target_status
  UNION ALL SELECT 'site ' || site_code || ' ' || coalesce(parent_site_code, '-') FROM smsdist.sites
  UNION ALL SELECT 'address ' || address_id || ' ' || conninfo FROM smsdist.sender_addresses
  UNION ALL SELECT 'member ' || collection_id || ' ' || sms_id FROM smsdist.collection_members
  UNION ALL SELECT 'message ' || status_id || ' ' || message_id FROM smsdist.status_messages
) s(t)};
# The workers keep writing (the Sender retries CH1, status messages come):
# read the rows in the very snapshot pg_dump dumps, exported by a session
# that holds it open until the dump is done.
my $holder = $node->background_psql('site');
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $exported = $holder->query_safe('SELECT pg_export_snapshot()');
$exported =~ s/\s+//g;
my $before = $holder->query_safe($snapshot);
$before =~ s/\n+$//;

my $dump = $node->basedir . '/site.dump';
$node->command_ok([ 'pg_dump', '-Fc', "--snapshot=$exported", '-f', $dump, '-d', $node->connstr('site') ], 'pg_dump of the site database');
$holder->query_safe('COMMIT');
$holder->quit;

sub restore
{
	my ($db) = @_;
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$node->command_ok([ 'pg_restore', '--single-transaction', '-d', $node->connstr($db), $dump ],
		"pg_restore --single-transaction into $db with session_replication_role = replica");
}

# a copy in a database no worker serves: exactly what was dumped
$node->safe_psql('postgres', 'CREATE DATABASE copy');
restore('copy');
is($node->safe_psql('copy', $snapshot), $before, 'every row is back as it was');

# lose the site database, wait past job 2's due time, restore it
my $due = $node->safe_psql('site', "SELECT start_after FROM smsdist.jobs WHERE job_id = 'CEN00002'");
$node->safe_psql('postgres', 'DROP DATABASE site');
wait_until($node, 'postgres', "SELECT clock_timestamp() > '$due'::timestamptz", 30)
  or die "job 2's due time $due has not come";
$node->safe_psql('postgres', 'CREATE DATABASE site');
restore('site');

# the Scheduler serves the restored database
$node->safe_psql('site', "SELECT smsdist.wake('scheduler')");
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00002'", 10),
	'the job that fell due while the database was gone is activated');
is($node->safe_psql('site',
		"SELECT count(*) FROM smsdist.job_transitions WHERE job_id = 'CEN00001' AND to_state = 'active'"),
	'1', 'the job activated before the backup is not activated again');
is($node->safe_psql('site',
		"INSERT INTO smsdist.collections (name) VALUES ('Second') RETURNING collection_id"),
	'CEN00002', 'generated IDs continue after the restore');
my $max = $node->safe_psql('site', 'SELECT max(status_id) FROM smsdist.status_messages');
is($node->safe_psql('site',
		"INSERT INTO smsdist.status_messages (component, severity, message_id, message) VALUES ('test', 'informational', 1, 'x') RETURNING status_id > $max"),
	't', 'identity columns continue after the restore');

$node->stop;
done_testing();
