# Concurrency: an operator holding a due job's row lock does not block the
# Scheduler (it skips the row, activates the others, and comes back for it
# once the lock is gone); two sessions moving sites cannot make a cycle.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('concurrency');
basic_inventory($node, 'site');
ok(wait_until($node, 'site', "SELECT state = 'idle' FROM smsdist.workers WHERE component = 'scheduler'"),
	'scheduler idle');

# --- a locked due job is skipped, not waited for.  The job must be locked
# before the Scheduler first sees it due, whatever the machine's speed: the
# Scheduler is held back meanwhile by a version mismatch (it then touches no
# job, t/003), and let go once the lock is taken.
$node->safe_psql('site', q{
UPDATE pg_extension SET extversion = '0.0' WHERE extname = 'smsdist';
SELECT smsdist.wake('scheduler');});
ok(wait_until($node, 'site', "SELECT state LIKE 'waiting for ALTER EXTENSION%' FROM smsdist.workers WHERE component = 'scheduler'", 30),
	'the scheduler is held back');
insert_job($node, 'site', 'CEN00010');
my $editor = $node->background_psql('site');
$editor->query_safe('BEGIN');
$editor->query_safe("UPDATE smsdist.jobs SET comment = 'being edited' WHERE job_id = 'CEN00010'");
$node->safe_psql('site', q{
UPDATE pg_extension SET extversion = smsdist.library_version() WHERE extname = 'smsdist';
SELECT smsdist.wake('scheduler');});
ok(wait_until($node, 'site', "SELECT state = 'idle' FROM smsdist.workers WHERE component = 'scheduler'", 30),
	'let go, the scheduler has taken a step with CEN00010 due and locked');
insert_job($node, 'site', 'CEN00011');
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00011'", 5),
	'another due job is activated while CEN00010 is locked');
is($node->safe_psql('site', "SELECT state FROM smsdist.jobs WHERE job_id = 'CEN00010'"), 'pending',
	'the locked job waits');
is($node->safe_psql('site', "SELECT state FROM smsdist.workers WHERE component = 'scheduler'"), 'idle',
	'the scheduler is not stuck behind the lock');
$editor->query_safe('COMMIT');
$editor->quit;
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00010'", 5),
	'once the lock is released the job is activated');
is($node->safe_psql('site', "SELECT comment FROM smsdist.jobs WHERE job_id = 'CEN00010'"), 'being edited',
	'with the edit kept');

# --- two concurrent moves of sites cannot make a cycle
$node->safe_psql('site', "INSERT INTO smsdist.sites VALUES ('RA1', 'A', 'CEN'), ('RB1', 'B', 'CEN')");
my $s1 = $node->background_psql('site');
my $s2 = $node->background_psql('site', on_error_stop => 0);
$s1->query_safe('BEGIN');
$s1->query_safe("UPDATE smsdist.sites SET parent_site_code = 'RB1' WHERE site_code = 'RA1'");
$s2->query_safe('BEGIN');
$s2->query_until(qr/sent/, "\\echo sent\nUPDATE smsdist.sites SET parent_site_code = 'RA1' WHERE site_code = 'RB1';\n");
ok(wait_until($node, 'site', "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", 5),
	'the second move waits for the first');
$s1->query_safe('COMMIT');
$s2->query('SELECT 1');
like($s2->{stderr}, qr/site RB1 cannot have parent RA1: RA1 is already below RB1/,
	'and is refused once the first has committed');
$s2->query('ROLLBACK');
$s1->quit;
$s2->quit;
is($node->safe_psql('site',
		"SELECT string_agg(site_code || '>' || coalesce(parent_site_code, '-'), ',' ORDER BY site_code) FROM smsdist.sites WHERE site_code IN ('RA1', 'RB1')"),
	'RA1>RB1,RB1>CEN', 'no cycle');

$node->stop;
done_testing();
