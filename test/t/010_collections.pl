# The Collection Evaluator: membership from query, direct, include, exclude
# and limiting rules in ConfigMgr's order, kept current incrementally when a
# machine joins, changes or leaves; users and groups; a bulk load; a machine
# in thousands of collections; run-command jobs that follow their
# collection.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '5s'\n");
$node->safe_psql('site', q{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform, memory_mb, ip_address) VALUES
  ('CEN00001', 'LAB-01', 'CORP', 'CEN', 'WINNT_X86', 256, '10.1.0.1'),
  ('CEN00002', 'LAB-02', 'CORP', 'CEN', 'WINNT_X86', 1024, '10.1.0.2'),
  ('CEN00003', 'OFFICE-01', 'CORP', 'CH1', 'WIN95', 512, '10.2.0.1'),
  ('CEN00004', 'OFFICE-02', 'SALES', 'CH1', 'WINNT_X86', 2048, '10.2.0.2'),
  ('CEN00005', 'SERVER-01', 'CORP', 'CEN', 'WINNT_X86', 4096, '10.9.0.1');
INSERT INTO smsdist.users VALUES ('CORP', 'alice', 'Alice'), ('CORP', 'bob', 'Bob');
INSERT INTO smsdist.user_groups VALUES ('CORP', 'staff'), ('CORP', 'admins');
-- A: NT machines with at least 512 MB; B: the 10.1 subnet plus OFFICE-01;
-- C: A and B, without B's members in the 10.1 subnet... (see below)
INSERT INTO smsdist.collections (collection_id, name) VALUES
  ('CEN00A01', 'NT 512'), ('CEN00A02', 'Lab and office'), ('CEN00A03', 'Everyone'),
  ('CEN00A04', 'Everyone but the lab'), ('CEN00A05', 'NT 512 within Everyone but the lab'),
  ('CEN00A06', 'People');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES
  ('CEN00A01', 'query', 'platform = ''WINNT_X86'' AND memory_mb >= 512'),
  ('CEN00A02', 'query', 'ip_address IN SUBNET ''10.1.0.0/16''');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES
  ('CEN00A02', 'direct', 'CEN00003');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES
  ('CEN00A03', 'query', 'name LIKE ''%''');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, ref_collection_id) VALUES
  ('CEN00A04', 'include', 'CEN00A03'), ('CEN00A04', 'exclude', 'CEN00A02'),
  ('CEN00A05', 'include', 'CEN00A01');
UPDATE smsdist.collections SET limiting_collection_id = 'CEN00A04' WHERE collection_id = 'CEN00A05';
INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name) VALUES
  ('CEN00A06', 'direct', 'CORP', 'alice');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, group_domain, group_name) VALUES
  ('CEN00A06', 'direct', 'CORP', 'staff');
});

sub members
{
	my ($c) = @_;
	return $node->safe_psql('site', "SELECT coalesce(string_agg(sms_id, ',' ORDER BY sms_id), '') FROM smsdist.collection_members WHERE collection_id = '$c'");
}
sub settled
{
	return wait_until($node, 'site', q{SELECT count(*) = 0 FROM (SELECT 1 FROM smsdist.collection_evaluation_queue
	  UNION ALL SELECT 1 FROM smsdist.system_evaluation_queue) q}, 60);
}
sub expect
{
	my ($c, $want, $what) = @_;
	ok(wait_until($node, 'site', "SELECT coalesce(string_agg(sms_id, ',' ORDER BY sms_id), '') = '$want' FROM smsdist.collection_members WHERE collection_id = '$c'", 30),
		"$c: $what") or diag("members of $c: " . members($c));
}

ok(settled(), 'the evaluator empties its queues');
expect('CEN00A01', 'CEN00002,CEN00004,CEN00005', 'a query rule');
expect('CEN00A02', 'CEN00001,CEN00002,CEN00003', 'a query rule and a direct rule');
expect('CEN00A03', 'CEN00001,CEN00002,CEN00003,CEN00004,CEN00005', 'everyone');
expect('CEN00A04', 'CEN00004,CEN00005', 'include minus exclude');
expect('CEN00A05', 'CEN00004,CEN00005', 'include, then limit (CEN00002 is in A01 but not in the limit)');
is($node->safe_psql('site', "SELECT string_agg(domain || '\\' || user_name, ',') FROM smsdist.collection_user_members WHERE collection_id = 'CEN00A06'"),
	'CORP\\alice', 'a user is a member by a direct rule');
is($node->safe_psql('site', "SELECT string_agg(domain || '\\' || group_name, ',') FROM smsdist.collection_group_members WHERE collection_id = 'CEN00A06'"),
	'CORP\\staff', 'so is a user group');
ok($node->safe_psql('site', "SELECT bool_and(evaluated_at IS NOT NULL) FROM smsdist.collections") eq 't',
	'every collection records when it was evaluated');

# --- a run-command job for collection A05 follows its membership
my $src = $node->basedir . '/src';
mkdir $src;
mkdir $node->basedir . '/dp';
open(my $fh, '>', "$src/setup.exe") or die;
print $fh "setup\n";
close $fh;
$node->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory)
VALUES ('CEN', 'distribution_point', 'DP', '} . $node->basedir . qq{/dp');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tool', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A05');
});
ok(wait_until($node, 'site', "SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN00C01'", 30), 'the job is active');
is($node->safe_psql('site', "SELECT string_agg(sms_id, ',' ORDER BY sms_id) FROM smsdist.job_target_status WHERE job_id = 'CEN00C01'"),
	'CEN00004,CEN00005', 'it targets the members of its collection');

# --- incremental: a machine joins (a new one, and one whose memory grows),
# then one leaves (its platform changes), then one is deleted
$node->safe_psql('site', q{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform, memory_mb, ip_address)
VALUES ('CEN00006', 'OFFICE-03', 'CORP', 'CH1', 'WINNT_X86', 8192, '10.2.0.3');
UPDATE smsdist.system_resources SET memory_mb = 640 WHERE sms_id = 'CEN00003';
});
expect('CEN00A03', 'CEN00001,CEN00002,CEN00003,CEN00004,CEN00005,CEN00006', 'a new machine joins');
expect('CEN00A05', 'CEN00004,CEN00005,CEN00006', 'and reaches the collections that include and limit');
expect('CEN00A01', 'CEN00002,CEN00004,CEN00005,CEN00006', 'CEN00003 is still WIN95: not in A01');
ok(wait_until($node, 'site', "SELECT string_agg(sms_id, ',' ORDER BY sms_id) = 'CEN00004,CEN00005,CEN00006' FROM smsdist.job_target_status WHERE job_id = 'CEN00C01'", 30),
	'the job gained the machine that joined its collection');
$node->safe_psql('site', "UPDATE smsdist.system_resources SET platform = 'WIN95' WHERE sms_id = 'CEN00004'");
expect('CEN00A01', 'CEN00002,CEN00005,CEN00006', 'a machine whose platform changed leaves A01');
expect('CEN00A05', 'CEN00005,CEN00006', 'and the collections built on it');
ok(wait_until($node, 'site', "SELECT string_agg(sms_id || ':' || state, ',' ORDER BY sms_id) = 'CEN00004:not_applicable,CEN00005:waiting,CEN00006:waiting' FROM smsdist.job_target_status WHERE job_id = 'CEN00C01'", 30),
	'the machine that left the job\'s collection before its program ran is not applicable to the job');
like($node->safe_psql('site', "SELECT detail FROM smsdist.job_target_status WHERE job_id = 'CEN00C01' AND sms_id = 'CEN00004'"),
	qr/^the machine left collection CEN00A05 before its program ran$/, 'and its detail says why');
$node->safe_psql('site', "DELETE FROM smsdist.system_resources WHERE sms_id = 'CEN00006'");
expect('CEN00A03', 'CEN00001,CEN00002,CEN00003,CEN00004,CEN00005', 'a deleted machine is in no collection');

# --- a rule change re-evaluates the collection and what depends on it
$node->safe_psql('site', "UPDATE smsdist.collection_rules SET query_expression = 'platform = ''WINNT_X86''' WHERE collection_id = 'CEN00A01'");
expect('CEN00A01', 'CEN00001,CEN00002,CEN00005', 'a changed query rule');
expect('CEN00A05', 'CEN00005', 'and the collection that includes it');
$node->safe_psql('site', "DELETE FROM smsdist.collection_rules WHERE collection_id = 'CEN00A04' AND rule_type = 'exclude'");
expect('CEN00A04', 'CEN00001,CEN00002,CEN00003,CEN00004,CEN00005', 'a removed exclude rule');
expect('CEN00A05', 'CEN00001,CEN00002,CEN00005', 'and the collection limited by it');

# --- evaluate_collections() for schedules, by an operator
$node->safe_psql('site', q{
CREATE ROLE op LOGIN IN ROLE smsdist_operator;
});
is($node->safe_psql('site', "SET ROLE op; SELECT smsdist.evaluate_collections()"), '6', 'an operator can queue a full evaluation');
ok(settled(), 'and it is done');

# --- a bulk load with COPY: 20,000 systems, then a full evaluation
my $t0 = time;
$node->safe_psql('site', q{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform, memory_mb)
SELECT 'CE' || lpad(upper(to_hex(i)), 6, '0'), 'BULK-' || i, 'BULK', 'CEN', 'WINNT_X86', 1024
  FROM generate_series(65536, 65536 + 19999) i;
});
ok(settled(), 'a bulk load of 20,000 systems is evaluated');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.collection_members WHERE collection_id = 'CEN00A03'"),
	'20005', 'every loaded system is in the collection of everyone');
diag(sprintf('bulk load of 20,000 systems evaluated in %.1f s', time - $t0));

# --- a machine in 2,000 collections
$node->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name)
SELECT 'CEN' || lpad(upper(to_hex(4096 + i)), 5, '0'), 'many ' || i FROM generate_series(1, 2000) i;
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
SELECT 'CEN' || lpad(upper(to_hex(4096 + i)), 5, '0'), 'query', 'name = ''MANY-1'' OR memory_mb = ' || (100000 + i)
  FROM generate_series(1, 2000) i;
});
ok(settled(), '2,000 new collections are evaluated');
$t0 = time;
$node->safe_psql('site', q{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform, memory_mb)
VALUES ('CEN000FF', 'MANY-1', 'CORP', 'CEN', 'WINNT_X86', 1)});
ok(wait_until($node, 'site', "SELECT count(*) = 2000 FROM smsdist.collection_members WHERE sms_id = 'CEN000FF' AND collection_id >= 'CEN01001'", 60),
	'a new machine joins 2,000 collections');
diag(sprintf('a machine joined 2,000 collections in %.1f s', time - $t0));

# --- a collection deleted while the evaluator fills it: the deletion waits
# for the evaluation (or the evaluation finds the collection gone), never a
# deadlock.  (Before: the cascade and the evaluation took the members and
# the collection row in opposite orders.)
# how long one such evaluation takes, to aim the deletions inside it
$t0 = time;
$node->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CENDD000', 'timed');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CENDD000', 'query', 'name LIKE ''%''');});
ok(wait_until($node, 'site', q{SELECT evaluated_at IS NOT NULL FROM smsdist.collections WHERE collection_id = 'CENDD000'}, 60),
	'a collection of 20,000 members is evaluated');
my $span = time - $t0;
$node->safe_psql('site', q{DELETE FROM smsdist.collections WHERE collection_id = 'CENDD000'});
my @refused;
for my $i (1 .. 8)
{
	my $id = sprintf('CENDD%03X', $i);
	$node->safe_psql('site', qq{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('$id', 'deleted while evaluated $i');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('$id', 'query', 'name LIKE ''%''');});
	Time::HiRes::sleep($span * $i / 9);
	my ($rc, $out, $err) = $node->psql('site', "DELETE FROM smsdist.collections WHERE collection_id = '$id'");
	push @refused, "$id: $err" if $rc != 0;
}
is(join("\n", @refused), '', 'eight collections deleted at different moments while the evaluator fills them (20,000 members each): every deletion succeeds');
ok(settled(), 'the evaluator goes on');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.collection_members WHERE collection_id LIKE 'CENDD%'}), '0',
	'nothing is left of them');

# --- a job activated while an evaluation of its collection has changed its
# members and not committed: the Scheduler waits for the evaluation, so the
# machine that joined is a target (before, it belonged to neither: the
# evaluation saw the job pending, the activation did not see the member)
$node->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN0FFF1', 'Race');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN0FFF1', 'direct', 'CEN00001');});
ok(wait_until($node, 'site', q{SELECT string_agg(sms_id, ',') = 'CEN00001' FROM smsdist.collection_members WHERE collection_id = 'CEN0FFF1'}, 60),
	'a collection of one machine');
my $evaluation = $node->background_psql('site');
# what the Collection Evaluator does: lock the collection, change its members
$evaluation->query_safe(q{BEGIN;
SELECT 1 FROM smsdist.collections WHERE collection_id = 'CEN0FFF1' FOR NO KEY UPDATE;
INSERT INTO smsdist.collection_members VALUES ('CEN0FFF1', 'CEN00002');});
$node->safe_psql('site', q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id)
                           VALUES ('CEN0FFF3', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN0FFF1')});
my $scheduler = scheduler_pid($node);
ok(wait_until($node, 'site', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $scheduler", 30),
	'the Scheduler activating the job waits for the evaluation of its collection');
$evaluation->query_safe('COMMIT');
$evaluation->quit;
ok(wait_until($node, 'site', q{SELECT state = 'active' FROM smsdist.jobs WHERE job_id = 'CEN0FFF3'}, 30), 'then activates it');
is($node->safe_psql('site', q{SELECT string_agg(sms_id, ',' ORDER BY sms_id) FROM smsdist.job_target_status WHERE job_id = 'CEN0FFF3'}),
	'CEN00001,CEN00002', 'with the machine the evaluation added as a target');

# --- one query rule: its candidates are taken as they come (one scan of
# the systems, no DISTINCT); a direct rule or an include that names a
# machine the query already has makes the evaluator deduplicate again
$node->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN0FFF4', 'Query, then more');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
VALUES ('CEN0FFF4', 'query', 'name LIKE ''LAB-%''');});
expect('CEN0FFF4', 'CEN00001,CEN00002', 'one query rule');
$node->safe_psql('site', q{
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN0FFF4', 'direct', 'CEN00002');});
ok(settled(), 'a direct rule for a machine the query has');
is(members('CEN0FFF4'), 'CEN00001,CEN00002', 'which is a member once');
$node->safe_psql('site', q{
INSERT INTO smsdist.collection_rules (collection_id, rule_type, ref_collection_id) VALUES ('CEN0FFF4', 'include', 'CEN00A02');});
expect('CEN0FFF4', 'CEN00001,CEN00002,CEN00003', 'and an include of a collection that has them too: each machine once');
is($node->safe_psql('site', q{SELECT evaluation_error IS NULL FROM smsdist.collections WHERE collection_id = 'CEN0FFF4'}),
	't', 'without an evaluation error');

$node->stop;
done_testing();
