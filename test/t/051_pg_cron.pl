# pg_cron beside smsdist: a site that preloads both runs, on pg_cron's
# schedules, a function that creates the nightly job of a package (which
# then goes through its phases to completed, the agent running its
# program), a full evaluation of every collection (which finds a system
# loaded without triggers, as logical replication loads it), and the
# pruning of status messages older than smsdist.status_retention, which
# keeps what unfinished work and each target's state still need.  pg_cron's
# own record (cron.job_run_details) says each run succeeded.
# smsdist.pg_cron_check() says what is missing, and a site whose pg_cron
# must log in over TCP that nothing listens on shows the failure the
# documented settings avoid ("connection failed").
#
# pg_cron 1.5 and later take a schedule in seconds; 1.4 (Debian 12) runs
# jobs each minute at the earliest, so this test then waits for the minute.
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

my $cron_conf = "shared_preload_libraries = 'smsdist, pg_cron'\ncron.database_name = 'site'\n";

# ---- a site whose pg_cron jobs connect over TCP, where nothing listens
my $bad = site_node('bad', site_code => 'BAD', conf => $cron_conf);
$bad->safe_psql('site', 'CREATE EXTENSION pg_cron');
my $version = $bad->safe_psql('site', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'});
my ($major, $minor) = $version =~ /^(\d+)\.(\d+)/;
my $every = ($major > 1 || $minor >= 5) ? '2 seconds' : '* * * * *';
note("pg_cron $version: schedules of '$every'");
$bad->safe_psql('site', qq{SELECT cron.schedule('probe', '$every', 'SELECT 1')});
like($bad->safe_psql('site', q{SELECT ok || ' ' || detail FROM smsdist.pg_cron_check() WHERE check_name = 'connection'}),
	qr/^false cron\.use_background_workers = off: each job logs in over libpq to cron\.host = localhost .*a TCP listener \(listen_addresses = ''\)/,
	'pg_cron_check(): without background workers, a job must log in over TCP, and nothing listens');

# ---- the site: pg_cron runs its jobs in background workers
my $node = agent_site(conf => $cron_conf . qq{
cron.use_background_workers = on
max_worker_processes = 24
smsdist.status_retention = '1h'
});
my $b = $node->basedir;
is($node->safe_psql('site', q{SELECT ok || ' ' || detail FROM smsdist.pg_cron_check() WHERE check_name = 'extension'}),
	'false CREATE EXTENSION pg_cron has not been run in this database', 'pg_cron_check(): the extension is missing');
$node->safe_psql('site', 'CREATE EXTENSION pg_cron');
is($node->safe_psql('site', q{SELECT string_agg(check_name || ': ' || detail, E'\n') FROM smsdist.pg_cron_check() WHERE NOT ok}),
	'', 'pg_cron_check(): nothing is missing');
is($node->safe_psql('site', q{SELECT detail FROM smsdist.pg_cron_check() WHERE check_name = 'connection'}),
	'cron.use_background_workers = on: jobs run in background workers, no login needed', 'jobs run in background workers');

my $site_key = site_key_file($node);
my $keyfile;
make_path("$b/src", "$b/marks");
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die "$f: $!"; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }
spew("$b/src/install.sh", "echo nightly >> '$b/marks/ran.txt'\n");
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'sh install.sh');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Lab machines');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
VALUES ('CEN00A01', 'query', \$\$name LIKE 'LAB-%'\$\$);
-- the administrator's function: the night's job, once a day however often it is called
CREATE FUNCTION public.nightly_tools() RETURNS text LANGUAGE sql AS \$f\$
    INSERT INTO smsdist.jobs (job_type, package_id, program_name, target_type, target_machines,
                              start_after, offer_after, mandatory_at, comment)
    SELECT 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001}',
           date_trunc('minute', now()), date_trunc('minute', now()), date_trunc('minute', now()), 'nightly tools'
     WHERE NOT EXISTS (SELECT 1 FROM smsdist.jobs WHERE comment = 'nightly tools'
                                                     AND created_at >= date_trunc('day', now()))
    RETURNING job_id
\$f\$;
});
$keyfile = machine_key_file($node, 'CEN00001');
ok(wait_until($node, 'site', q{SELECT evaluated_at IS NOT NULL FROM smsdist.collections WHERE collection_id = 'CEN00A01'}, 60),
	'the collection is evaluated once, when it is created');

# a system loaded without triggers, as a logical replication subscription
# or session_replication_role = replica loads it: nothing queues its evaluation
my $loaded_at = $node->safe_psql('site', q{
SET session_replication_role = replica;
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00002', 'LAB-01', 'CORP', 'CEN', 'WINNT_X86');
RESET session_replication_role;
SELECT clock_timestamp()});
is($node->safe_psql('site', q{
SELECT (SELECT count(*) FROM smsdist.system_evaluation_queue) + (SELECT count(*) FROM smsdist.collection_evaluation_queue)
     + (SELECT count(*) FROM smsdist.collection_members WHERE collection_id = 'CEN00A01')}),
	'0', 'a system loaded without triggers is queued for no evaluation and is in no collection');

# ---- the schedules
$node->safe_psql('site', qq{
SELECT cron.schedule('smsdist-nightly-tools', '$every', 'SELECT public.nightly_tools()');
SELECT cron.schedule('smsdist-collections', '$every', 'SELECT smsdist.evaluate_collections()');
SELECT cron.schedule('smsdist-prune-status', '$every', 'SELECT smsdist.prune_status_messages()');
});

# (a) the nightly job, created by the scheduled function, through every phase
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM smsdist.jobs WHERE comment = 'nightly tools'}, 180),
	'pg_cron ran the function: the nightly job is there')
  or diag($node->safe_psql('site', 'SELECT * FROM cron.job_run_details'));
my $job = $node->safe_psql('site', q{SELECT job_id FROM smsdist.jobs WHERE comment = 'nightly tools'});
my $pcm = "$b/logon/pcins.box/CEN00001";
ok(wait_until($node, 'site', qq{SELECT coalesce(pg_read_file('$pcm', 0, 100000, true), '') LIKE '%[job $job]%'}, 60),
	'the package is built and published, and the PCM file offers the job');
my ($out, $err) = ('', '');
IPC::Run::run([ agent_path(), '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key,
	'--machine-key', $keyfile, '--once' ], '>', \$out, '2>', \$err);
like($out, qr/^${AGENT_INFO}ran job \Q$job\E: Program "Install" of package CEN00B01 succeeded/m, 'the agent runs it')
  or diag($err);
is(slurp("$b/marks/ran.txt"), "nightly\n", 'the program ran once');
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', qq{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = '$job'}, 60),
	'the nightly job completes');
is($node->safe_psql('site', qq{
SELECT string_agg(phase || ' ' || state, ', ' ORDER BY phase) FROM smsdist.job_site_status WHERE job_id = '$job'}),
	'distribute done', 'its distribute phase is done (the run phase is its target, below)');
is($node->safe_psql('site', qq{SELECT string_agg(from_state || '>' || to_state, ' ' ORDER BY transition_id)
                                 FROM smsdist.job_transitions WHERE job_id = '$job'}),
	'pending>active active>completed', 'pending, active, completed');
is($node->safe_psql('site', qq{SELECT state || ' ' || exit_code FROM smsdist.job_target_status WHERE job_id = '$job'}),
	'succeeded 0', 'its target succeeded');
ok(wait_until($node, 'site', q{
SELECT count(*) >= 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
 WHERE j.jobname = 'smsdist-nightly-tools' AND d.status = 'succeeded'}, 60),
	"cron.job_run_details: the function's run succeeded");
# (per day: a run after midnight makes the next day's job)
is($node->safe_psql('site', q{SELECT count(*) - count(DISTINCT date_trunc('day', created_at)) FROM smsdist.jobs WHERE comment = 'nightly tools'}),
	'0', 'once a day: later runs of the function create no other job');

# (b) the full evaluation on a schedule finds the system
ok(wait_until($node, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.collection_members
                                               WHERE collection_id = 'CEN00A01' AND sms_id = 'CEN00002')}, 180),
	'the scheduled full evaluation puts the system in its collection');
ok($node->safe_psql('site', qq{SELECT evaluated_at > '$loaded_at' FROM smsdist.collections WHERE collection_id = 'CEN00A01'}) eq 't',
	'evaluated after the system was loaded');
ok(wait_until($node, 'site', q{
SELECT count(*) >= 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
 WHERE j.jobname = 'smsdist-collections' AND d.status = 'succeeded'}, 60),
	'cron.job_run_details: evaluate_collections() succeeded');

# (c) pruning: history older than the retention goes, what is needed stays
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
VALUES ('CEN00C01', 'Lab tools', 'CEN00B01', 'Install', 'CEN00A01', '2026-11-01 00:00')});
ok(wait_until($node, 'site', q{SELECT state = 'waiting' FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C01'}, 60),
	'an advertisement with an open target');
my $keep_ids = $node->safe_psql('site', qq{
-- the nightly job's messages, two hours old
UPDATE smsdist.status_messages SET at = at - interval '2 hours' WHERE job_id = '$job';
-- a job still pending (tomorrow's) and an old message about it
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('CEN000F1', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00001}', now() + interval '1 day');
INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, at, message, job_id) VALUES
  ('CEN', 'scheduler', 'informational', 3000, now() - interval '3 hours', 'pending job, old message', 'CEN000F1'),
  ('CEN', 'scheduler', 'informational', 3000, now() - interval '3 hours', 'old history', NULL),
  ('CEN', 'scheduler', 'informational', 3000, now() - interval '3 hours', 'old history too', NULL),
  ('CEN', 'scheduler', 'informational', 3000, now() - interval '10 minutes', 'recent history', NULL);
INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, at, message, advert_id) VALUES
  ('CEN', 'offer_manager', 'informational', 3000, now() - interval '3 hours', 'open advertisement, old message', 'CEN00C01');
-- two old messages of LAB-01's agent that move nothing: the newer stays
INSERT INTO smsdist.status_messages (site_code, component, machine, severity, message_id, at, message, package_id, client_at, client_sequence)
VALUES ('CEN', 'client_agent', 'CEN00002', 'informational', 10003, now() - interval '3 hours', 'old history, agent 1', 'CEN00B01', now() - interval '3 hours', 1),
       ('CEN', 'client_agent', 'CEN00002', 'informational', 10003, now() - interval '3 hours', 'agent 2, its newest', 'CEN00B01', now() - interval '3 hours', 2);
SELECT string_agg(status_id::text, ',') FROM smsdist.status_messages
 WHERE message IN ('pending job, old message', 'recent history', 'open advertisement, old message', 'agent 2, its newest')
    OR status_id IN (SELECT status_id FROM smsdist.job_target_status WHERE job_id = '$job')});
my $after = $node->safe_psql('site', 'SELECT now()');
ok(wait_until($node, 'site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.status_messages WHERE message LIKE 'old history%')}, 180),
	'the scheduled pruning removes messages older than smsdist.status_retention');
is($node->safe_psql('site', qq{SELECT count(*) FROM smsdist.status_messages WHERE status_id IN ($keep_ids)}),
	'5', "kept: a pending job's message, an open advertisement's, a recent one, the message that set the target's state, and a machine's newest agent message");
my $left = $node->safe_psql('site', qq{
SELECT string_agg(message_id::text, ',' ORDER BY status_id) FROM smsdist.status_messages WHERE job_id = '$job'});
is($left, $node->safe_psql('site', qq{
SELECT m.message_id FROM smsdist.status_messages m JOIN smsdist.job_target_status t USING (status_id) WHERE t.job_id = '$job'}),
	"of the finished job's messages only the one that set its target's state is left");
ok(wait_until($node, 'site', qq{
SELECT count(*) >= 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
 WHERE j.jobname = 'smsdist-prune-status' AND d.status = 'succeeded' AND d.start_time >= '$after'}, 60),
	'cron.job_run_details: prune_status_messages() succeeded');
is($node->safe_psql('site', q{SELECT count(*) FROM cron.job_run_details WHERE status = 'failed'}),
	'0', 'no pg_cron run failed at this site');

# retention 0 keeps everything; the same call by hand
$node->safe_psql('site', q{
INSERT INTO smsdist.status_messages (site_code, component, severity, message_id, at, message)
VALUES ('CEN', 'scheduler', 'informational', 3000, now() - interval '3 hours', 'old again')});
$node->append_conf('postgresql.conf', "smsdist.status_retention = 0\n");
reload_settings($node, 'site', { 'smsdist.status_retention' => '0' });
is($node->safe_psql('site', 'SELECT smsdist.prune_status_messages()'), '0', 'smsdist.status_retention = 0 keeps every message');
$node->append_conf('postgresql.conf', "smsdist.status_retention = '1h'\n");
reload_settings($node, 'site', { 'smsdist.status_retention' => '1h' });
is($node->safe_psql('site', 'SELECT smsdist.prune_status_messages(0)'), '0', 'a limit of 0 removes nothing');
$node->safe_psql('site', q{SELECT cron.unschedule('smsdist-prune-status')});

# ---- the site whose pg_cron cannot log in: pg_cron says why, and so does smsdist
ok(wait_until($bad, 'site', q{SELECT count(*) >= 1 FROM cron.job_run_details WHERE status = 'failed'}, 180),
	'without background workers and a listener, the scheduled job fails');
is($bad->safe_psql('site', q{SELECT return_message FROM cron.job_run_details WHERE status = 'failed' LIMIT 1}),
	'connection failed', "pg_cron's message: connection failed");
like($bad->safe_psql('site', q{SELECT ok || ' ' || detail FROM smsdist.pg_cron_check() WHERE check_name = 'recent runs'}),
	qr/^false \d+ failed runs in the last day; the latest: job \d+( at [^:]+:\d\d:[^:]+)?: connection failed$/,
	'pg_cron_check() reports the failed runs with their message');

$bad->stop;
$node->stop;
done_testing();
