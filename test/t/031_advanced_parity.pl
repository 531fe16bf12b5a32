# Advanced-mode parity: an agent that reads its policy from the management
# point is offered, and runs, what a legacy agent of the same machine and
# user reads from the shares -- the machine's run-command job (PCM file),
# an advertisement to a collection with the machine (system lookup), one to
# a collection with only the user (user lookup) and one to a collection
# with only the user's group (user-group lookup).  The same scenario runs
# in both modes and the offers, the programs run and the status messages
# are compared; another user gets neither user advertisement.  The stored
# policy (machine_policies) follows what rewrites the PCM file: a new job
# target, a changed program, a cancelled job.  Bad user and group names
# and too many groups are refused with clear errors.
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

my $agent = agent_path();
$ENV{TZ} = 'UTC';

my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
make_path("$b/src", "$b/marks");
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }
# a program gets a clean environment: the marks' place is in the script
spew("$b/src/run.sh", "echo \"\$1\" >> '$b/marks/ran.txt'\n");
$node->safe_psql('postgres', 'CREATE ROLE agent LOGIN IN ROLE smsdist_client');
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'),
  ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent', 'CEN00001');
INSERT INTO smsdist.users VALUES ('CORP', 'alice', 'Alice'), ('CORP', 'bob', 'Bob');
INSERT INTO smsdist.user_groups VALUES ('CORP', 'staff');
INSERT INTO smsdist.collections (collection_id, name) VALUES
  ('CEN00A01', 'Workstation'), ('CEN00A02', 'Alice'), ('CEN00A03', 'Staff');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A01', 'direct', 'CEN00001');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name) VALUES ('CEN00A02', 'direct', 'CORP', 'alice');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, group_domain, group_name) VALUES ('CEN00A03', 'direct', 'CORP', 'staff');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES
  ('CEN00B01', 'Job', 'sh run.sh job'), ('CEN00B01', 'Machine', 'sh run.sh machine'),
  ('CEN00B01', 'User', 'sh run.sh user'), ('CEN00B01', 'Group', 'sh run.sh group');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
my $keyfile = machine_key_file($node, 'CEN00001');
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time) VALUES
  ('CEN00C01', 'Machine', 'CEN00B01', 'Machine', 'CEN00A01', '2026-11-01 00:00'),
  ('CEN00C02', 'User', 'CEN00B01', 'User', 'CEN00A02', '2026-11-01 00:00'),
  ('CEN00C03', 'Group', 'CEN00B01', 'Group', 'CEN00A03', '2026-11-01 00:00');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time) VALUES
  ('CEN00C01', '2026-12-01 10:00'), ('CEN00C02', '2026-12-01 10:00'), ('CEN00C03', '2026-12-01 10:00');});
ok(wait_until($node, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.machine_policies
                                               WHERE sms_id = 'CEN00001' AND policy->'advertisements'->0->>'advert_id' = 'CEN00C01')}, 60),
	'the Offer Manager stored the machine\'s policy, with the advertisement for its collection');

# the job comes after: only the PCM writer can put it in the stored policy.
# It also targets CEN00002, whose agent says nothing until both agents of
# CEN00001 have polled: the legacy agent's success, taken in whenever the
# Status Manager wakes (an advanced agent's cache report wakes it), must not
# end the job before the advanced agent reads its policy.
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Job', 'machines', '{CEN00001,CEN00002}', '2026-01-01 00:00+00', '2026-01-01 00:00+00',
        '2026-12-01 10:00+00');});
ok(wait_until($node, 'site', qq{SELECT position('[job CEN000D1]' IN coalesce(pg_read_file('$b/logon/pcins.box/CEN00001', 0, 100000, true), '')) > 0
                                  AND position('CEN00C02' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENUSR.LKP', 0, 100000, true), '')) > 0
                                  AND position('CEN00C03' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENUSRGRP.LKP', 0, 100000, true), '')) > 0
                                  AND position('CEN00C01' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0
                                  AND (pg_stat_file('$b/cap/pkginfo.box/CEN00B01.NAL', true)).size IS NOT NULL
                                  AND (pg_stat_file('$b/cap/offerinf.box/CEN00C03.OFR', true)).size IS NOT NULL}, 60),
	'the legacy agent\'s files are written: PCM file with the job, three lookup files, offers, NAL');
ok(wait_until($node, 'site', q{SELECT policy->'jobs'->0->>'job_id' = 'CEN000D1' FROM smsdist.machine_policies WHERE sms_id = 'CEN00001'}, 30),
	'the stored policy gained the run-command job when the PCM file was written');

# the job in the policy says what the PCM file says
my $job = $node->safe_psql('site', q{SELECT p->>'job_id', p->>'package_id', p->>'package_name', p->>'package_version', p->>'program',
                                             p->>'command_line', p->>'mandatory_at', p->>'run_with', p->'locations'->>0,
                                             length(p->>'package_sha256')
                                        FROM (SELECT smsdist.machine_policy('CEN00001')->'jobs'->0 AS p) x});
is($job, "CEN000D1|CEN00B01|Tools|1|Job|sh run.sh job|2026-12-01T10:00:00+00:00|administrative_rights|$b/dp/SMS_PKGC/CEN00B01|64",
	'the policy\'s job: ID, package, version, program, command line, mandatory time, run mode, location, manifest hash');
my $pcm = slurp("$b/logon/pcins.box/CEN00001");
like($pcm, qr/\Q$b\E\/dp\/SMS_PKGC\/CEN00B01/, 'the PCM file names the same location');

# ---- one scenario, both modes
my $mp = 'host=' . $node->host . ' port=' . $node->port . ' dbname=site user=agent';
my @who = ('--user', 'CORP\\alice', '--group', 'CORP\\staff');
sub agent
{
	my ($mode, $ws, $now, @more) = @_;
	my @where = $mode eq 'legacy'
	  ? ('--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $keyfile)
	  : ('--management-point', $mp);
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws/$ws", @where, '--now', $now, '--once', @more ], '>', \$out, '2>', \$err);
	return ($?, $out, $err);
}
# what a poll offered and ran, without the paths that differ (state dirs)
sub summary
{
	my ($out) = @_;
	return join("\n", sort grep { /^(offer|waiting|ran|waiting to run) / } map { s/^$AGENT_INFO//r } split /\n/, $out);
}

# ---- another user, before the mandatory time: the user's and the group's
# advertisements are not his
for my $mode ('legacy', 'advanced')
{
	my ($r, $out, $err) = agent($mode, "bob-$mode", $mode eq 'legacy' ? '2026-12-01T09:00:00Z' : '2026-12-01T09:00:01Z',
		'--user', 'CORP\\bob');
	is($r, 0, "$mode agent with bob logged on: the poll runs") or diag($err);
	is(join(',', map { /^offer (\S+ \S+)/ ? $1 : () } sort map { s/^$AGENT_INFO//r } split /\n/, $out), 'advert CEN00C01,job CEN000D1',
		"$mode: bob is offered the machine's job and advertisement only, not alice's or staff's");
}

# (each agent its own test clock: status messages are one per machine,
# sequence and client time)
my ($rc, $lout, $lerr) = agent('legacy', 'legacy', '2026-12-01T12:00:00Z', @who);
is($rc, 0, 'legacy agent: the poll runs') or diag($lerr);
my ($rc2, $aout, $aerr) = agent('advanced', 'advanced', '2026-12-01T12:00:01Z', @who);
is($rc2, 0, 'advanced agent: the poll runs') or diag($aerr);
my $expected = join("\n",
	'offer advert CEN00C01 package CEN00B01 program "Machine": sh run.sh machine',
	'offer advert CEN00C02 package CEN00B01 program "User": sh run.sh user',
	'offer advert CEN00C03 package CEN00B01 program "Group": sh run.sh group',
	'offer job CEN000D1 package CEN00B01 program "Job": sh run.sh job',
	'ran advert CEN00C01: Program "Machine" of package CEN00B01 succeeded (exit code 0).',
	'ran advert CEN00C02: Program "User" of package CEN00B01 succeeded (exit code 0).',
	'ran advert CEN00C03: Program "Group" of package CEN00B01 succeeded (exit code 0).',
	'ran job CEN000D1: Program "Job" of package CEN00B01 succeeded (exit code 0).');
is(summary($lout), $expected, 'legacy: the job, the machine, user and group advertisements are offered and run');
is(summary($aout), summary($lout), 'advanced: exactly the same offers and runs') or diag("legacy:\n$lout\nadvanced:\n$aout\n$aerr");
is(join(',', sort split /\n/, slurp("$b/marks/ran.txt")), 'group,group,job,job,machine,machine,user,user',
	'each program ran once per agent');
is(slurp("$b/ws/advanced/offers"), slurp("$b/ws/legacy/offers"), 'both keep the same current offers');

$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS')}, 30),
	'the legacy agent\'s status files are taken in');
my $msgs = sub {
	my ($at) = @_;
	return $node->safe_psql('site', qq{SELECT string_agg(message_id || ':' || coalesce(job_id, advert_id, '-'), ',' ORDER BY message_id, coalesce(job_id, advert_id))
	                                     FROM smsdist.status_messages WHERE machine = 'CEN00001' AND client_at = '$at'});
};
my $lmsgs = $msgs->('2026-12-01 12:00:00+00');
is($lmsgs, '10001:CEN00C01,10001:CEN00C02,10001:CEN00C03,10002:CEN000D1,10003:CEN000D1,'
	  . '10005:CEN000D1,10005:CEN00C01,10005:CEN00C02,10005:CEN00C03,'
	  . '10008:CEN000D1,10008:CEN00C01,10008:CEN00C02,10008:CEN00C03',
	'legacy: offered (10001, 10002 with the job ID), downloaded (10003), started (10005), succeeded (10008)');
is($msgs->('2026-12-01 12:00:01+00'), $lmsgs, 'advanced: the same status message IDs for the same job and advertisements');

# ---- the SQL interface
is($node->safe_psql('site', q{SELECT string_agg((a->>'advert_id') || ':' || (a->>'target'), ',')
                                FROM jsonb_array_elements(smsdist.machine_policy('CEN00001', 'corp\ALICE', ARRAY['CORP\Staff'])->'advertisements') a}),
	'CEN00C01:machine,CEN00C02:user,CEN00C03:user_group',
	'machine_policy(machine, user, groups): names match ignoring case, as the lookup files do; each entry says why');
is($node->safe_psql('site', q{SELECT jsonb_array_length(smsdist.machine_policy('CEN00001')->'advertisements')}), '1',
	'the one-argument call still works: the machine\'s own advertisements');
for my $bad ([ q{'CEN00001', 'alice'}, 'invalid user name "alice"', '22023' ],
	[ q{'CEN00001', E'CORP\\\\al\tice'}, 'invalid user name', '22023' ],
	[ q{'CEN00001', NULL, ARRAY[NULL]::text[]}, 'invalid group name "NULL"', '22023' ],
	[ q{'CEN00001', NULL, array_fill('CORP\x'::text, ARRAY[257])}, 'too many groups: 257 (at most 256)', '54000' ],
	[ q{'CEN00001', repeat('x', 300)}, 'invalid user name', '22023' ])
{
	my ($r, $out, $err) = $node->psql('site', "\\set VERBOSITY verbose\nSELECT smsdist.machine_policy($bad->[0])");
	like($err, qr/ERROR:  $bad->[2]: \Q$bad->[1]\E/, "machine_policy($bad->[0]) is refused: $bad->[1] ($bad->[2])");
}
my ($r, $out, $err) = $node->psql('site', q{SELECT smsdist.machine_policy('CEN00002', 'CORP\alice')}, extra_params => [ '-U', 'agent' ]);
like($err, qr/speaks for machine CEN00001, not for machine CEN00002/, 'an agent\'s login still reads only its own machine\'s policy');
($r, $out, $err) = agent('advanced', 'bad', '2026-12-01T09:00:00Z', '--user', 'alice');
is($r >> 8, 2, 'the agent refuses a --user that is not DOMAIN\\NAME (bad usage)');
like($err, qr/--user wants DOMAIN\\NAME/, 'and says what it wants');

# ---- the stored policy follows what rewrites the PCM file
# the job ended (every target final): it leaves the PCM file and the policy
# CEN00002's agent reports that the job does not apply to it: every target is final
$node->safe_psql('site', q{SELECT smsdist.client_status('CEN00002', 1, now(), 10007, 'informational', 'Client Agent',
                                                        'the program does not apply here', NULL, 'CEN000D1')});
ok(wait_until($node, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN000D1'}, 30),
	'the run-command job completed');
ok(wait_until($node, 'site', qq{SELECT NOT (pg_stat_file('$b/logon/pcins.box/CEN00001', true)).size IS NOT NULL
                                  AND (SELECT policy->'jobs' = '[]' FROM smsdist.machine_policies WHERE sms_id = 'CEN00001')}, 30),
	'its PCM file is removed, and the stored policy has no job any more');
$node->safe_psql('site', q{
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Later', 'sh run.sh later');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after)
VALUES ('CEN000D2', 'run_command', 'CEN00B01', 'Later', 'machines', '{CEN00001}', '2026-01-01 00:00+00', '2026-01-01 00:00+00');});
ok(wait_until($node, 'site', q{SELECT policy->'jobs'->0->>'job_id' = 'CEN000D2' FROM smsdist.machine_policies WHERE sms_id = 'CEN00001'}, 60),
	'a new job for the machine: the stored policy gains it');
$node->safe_psql('site', q{UPDATE smsdist.programs SET max_run_minutes = 7 WHERE package_id = 'CEN00B01' AND program_name = 'Later'});
ok(wait_until($node, 'site', q{SELECT policy->'jobs'->0->>'max_run_minutes' = '7' FROM smsdist.machine_policies WHERE sms_id = 'CEN00001'}, 30),
	'a changed program: the stored policy has the new maximum run time');
ok(wait_until($node, 'site', qq{SELECT position('max_run_minutes=7' IN coalesce(pg_read_file('$b/logon/pcins.box/CEN00001', 0, 100000, true), '')) > 0}, 30),
	'as the PCM file has');
($r, $out, $err) = agent('advanced', 'advanced', '2026-12-01T13:00:00Z', @who);
like($out, qr/^${AGENT_INFO}offer job CEN000D2 package CEN00B01 program "Later": sh run\.sh later$/m, 'the advanced agent is offered the new job');
$node->safe_psql('site', q{UPDATE smsdist.jobs SET state = 'cancelled' WHERE job_id = 'CEN000D2'});
ok(wait_until($node, 'site', qq{SELECT NOT (pg_stat_file('$b/logon/pcins.box/CEN00001', true)).size IS NOT NULL
                                  AND (SELECT policy->'jobs' = '[]' FROM smsdist.machine_policies WHERE sms_id = 'CEN00001')}, 30),
	'a cancelled job: the PCM file is removed and the stored policy has no job');
($r, $out, $err) = agent('advanced', 'advanced', '2026-12-01T13:00:01Z', @who);
unlike($out, qr/^${AGENT_INFO}offer job CEN000D2 /m, 'the advanced agent is no longer offered it');
like($out, qr/^${AGENT_INFO}no longer targeted job CEN000D2: /m,
	'and says once that it left before its program ran (the agent cannot tell a cancel from a machine taken out)');
like($out, qr/^${AGENT_INFO}offer advert CEN00C02 /m, 'its user\'s advertisement is still offered');

# a window for a collection no advertisement targets: a machine in it with
# a stored policy (CEN00002's, from its job) gets the window there, as the
# Offer Manager finds such machines from the windows
$node->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A04', 'Night shift');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A04', 'direct', 'CEN00002');});
ok(wait_until($node, 'site', q{SELECT EXISTS (SELECT 1 FROM smsdist.collection_members WHERE collection_id = 'CEN00A04' AND sms_id = 'CEN00002')}, 30),
	'a machine with a stored policy joins a collection without advertisements');
$node->safe_psql('site', q{
INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
VALUES ('CEN00A04', 'Nights', '22:00', 240, '{mon,tue}')});
ok(wait_until($node, 'site', q{SELECT policy->'maintenance_windows'->0->>'name' = 'Nights' AND policy->'advertisements' = '[]'
                                 FROM smsdist.machine_policies WHERE sms_id = 'CEN00002'}, 30),
	'a window for that collection: the stored policy gains it, with no advertisement');
$node->safe_psql('site', q{DELETE FROM smsdist.maintenance_windows WHERE collection_id = 'CEN00A04'});
ok(wait_until($node, 'site', q{SELECT policy->'maintenance_windows' = '[]' FROM smsdist.machine_policies WHERE sms_id = 'CEN00002'}, 30),
	'the window removed: the stored policy loses it');

done_testing();
