# Rerun behaviour, recurrence, not applicable, exit codes.  An
# advertisement's rerun behaviour (never_rerun, always_rerun,
# rerun_if_failed, rerun_if_succeeded) reaches the offer files, the
# advanced policy and the child sites; the agent follows it at each
# mandatory time (each recurrence of a recurring assignment, on a test
# clock), says a skipped run (10012), and still runs a program a user asks
# for.  A machine whose platform a program does not support reports the
# advertisement or run-command job once as not applicable (10007), and an
# offer that leaves before it ran because the machine is no longer targeted
# is reported once too (not one whose advertisement was disabled).  The
# program's exit code travels in the status file (and through
# client_status) into status_messages.exit_code.
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
# each program writes what ran into marks/<first argument>.txt
spew("$b/src/count.sh", "echo \"\$2\" >> '$b/marks/'\"\$1\".txt\n");
spew("$b/src/fail.sh", "echo \"\$2\" >> '$b/marks/'\"\$1\".txt; exit 3\n");
# fails (exit 4) the first time on each machine, then succeeds
spew("$b/src/flaky.sh", "if [ -f '$b/marks/'\"\$1\".flag ]; then echo \"\$2 ok\" >> '$b/marks/'\"\$1\".txt; exit 0; fi\n"
	  . "touch '$b/marks/'\"\$1\".flag; echo \"\$2 failed\" >> '$b/marks/'\"\$1\".txt; exit 4\n");
$node->safe_psql('postgres', 'CREATE ROLE agent3 LOGIN IN ROLE smsdist_client; CREATE ROLE agent4 LOGIN IN ROLE smsdist_client');
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'OLD-02', 'CORP', 'CEN', 'WIN95'),
  ('CEN00003', 'WKS-03', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00004', 'OLD-04', 'CORP', 'CEN', 'WIN95');
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent3', 'CEN00003'), ('agent4', 'CEN00004');
INSERT INTO smsdist.collections (collection_id, name) VALUES
  ('CEN00A01', 'Workstations'), ('CEN00A02', 'Leaving'), ('CEN00A03', 'Old machines');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES
  ('CEN00A01', 'direct', 'CEN00001'), ('CEN00A01', 'direct', 'CEN00003'), ('CEN00A02', 'direct', 'CEN00001'),
  ('CEN00A03', 'direct', 'CEN00002'), ('CEN00A03', 'direct', 'CEN00004');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms) VALUES
  ('CEN00B01', 'Always', 'sh count.sh M always', NULL),
  ('CEN00B01', 'Never', 'sh count.sh M never', NULL),
  ('CEN00B01', 'IfFailedOk', 'sh count.sh M iffailed-ok', NULL),
  ('CEN00B01', 'IfFailedFlaky', 'sh flaky.sh M iffailed-flaky', NULL),
  ('CEN00B01', 'IfSucceededFail', 'sh fail.sh M ifsucceeded-fail', NULL),
  ('CEN00B01', 'IfSucceededOk', 'sh count.sh M ifsucceeded-ok', NULL),
  ('CEN00B01', 'NT only', 'sh count.sh M ntonly', '{WINNT_X86,WIN_X64}'),
  ('CEN00B01', 'Optional', 'sh count.sh M optional', NULL);
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, rerun_behaviour) VALUES
  ('CEN00C01', 'Always', 'CEN00B01', 'Always', 'CEN00A01', '2026-11-01 00:00', 'always_rerun'),
  ('CEN00C02', 'Never', 'CEN00B01', 'Never', 'CEN00A01', '2026-11-01 00:00', 'never_rerun'),
  ('CEN00C04', 'If failed, flaky', 'CEN00B01', 'IfFailedFlaky', 'CEN00A01', '2026-11-01 00:00', 'rerun_if_failed'),
  ('CEN00C05', 'If succeeded, failing', 'CEN00B01', 'IfSucceededFail', 'CEN00A01', '2026-11-01 00:00', 'rerun_if_succeeded'),
  ('CEN00C06', 'If succeeded', 'CEN00B01', 'IfSucceededOk', 'CEN00A01', '2026-11-01 00:00', 'rerun_if_succeeded'),
  ('CEN00C07', 'NT only', 'CEN00B01', 'NT only', 'CEN00A03', '2026-11-01 00:00', 'rerun_if_failed'),
  ('CEN00C08', 'Optional, leaving', 'CEN00B01', 'Optional', 'CEN00A02', '2026-11-01 00:00', 'rerun_if_failed'),
  ('CEN00C09', 'Optional, disabled', 'CEN00B01', 'Optional', 'CEN00A02', '2026-11-01 00:00', 'rerun_if_failed');
-- the default: rerun_if_failed
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time) VALUES
  ('CEN00C03', 'If failed', 'CEN00B01', 'IfFailedOk', 'CEN00A01', '2026-11-01 00:00');
-- every day at 10:00 from 2026-12-01
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, recur_every)
SELECT a, '2026-12-01 10:00', '1 day' FROM unnest('{CEN00C01,CEN00C02,CEN00C03,CEN00C04,CEN00C05,CEN00C06,CEN00C07}'::text[]) a;
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'NT only', 'machines', '{CEN00002}', '2026-01-01 00:00+00', '2026-01-01 00:00+00');
});

is($node->safe_psql('site', q{SELECT rerun_behaviour FROM smsdist.advertisements WHERE advert_id = 'CEN00C03'}),
	'rerun_if_failed', 'rerun_behaviour defaults to rerun_if_failed');
my ($ok, $out, $err) = $node->psql('site', q{UPDATE smsdist.advertisements SET rerun_behaviour = 'sometimes' WHERE advert_id = 'CEN00C03'});
like($err, qr/advertisements_rerun_behaviour_check/, 'an unknown rerun behaviour is refused');

ok(wait_until($node, 'site', qq{SELECT position('CEN00C09' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0
                                  AND coalesce(pg_read_file('$b/cap/offerinf.box/CEN00C07.OFR', 0, 100000, true), '') LIKE '%recur_every_minutes=1440%'
                                  AND coalesce(pg_read_file('$b/cap/pkginfo.box/CEN00B01.NAL', 0, 100000, true), '') LIKE '%[location%'
                                  AND coalesce(pg_read_file('$b/logon/pcins.box/CEN00002', 0, 100000, true), '') LIKE '%[job CEN000D1]%'
                                  AND coalesce(pg_read_file('$b/cap/offerinf.box/CEN00C02.OFR', 0, 100000, true), '') LIKE '%rerun_behaviour=%'
                                  AND coalesce(pg_read_file('$b/cap/offerinf.box/CEN00C03.OFR', 0, 100000, true), '') LIKE '%rerun_behaviour=%'}, 60),
	'the offer, lookup, NAL and PCM files are written');
like(slurp("$b/cap/offerinf.box/CEN00C02.OFR"), qr/^rerun_behaviour=never_rerun$/m, 'the offer file carries the rerun behaviour');
like(slurp("$b/cap/offerinf.box/CEN00C03.OFR"), qr/^rerun_behaviour=rerun_if_failed$/m, 'the default one too');

# legacy agents: one run each; returns (exit code, stdout, stderr)
my %keys = map { $_ => machine_key_file($node, $_) } qw(CEN00001 CEN00002);
sub agent
{
	my ($id, $platform, $now, @more) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', $id, '--site', 'CEN', '--platform', $platform,
		'--state-dir', "$b/ws/$id", '--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key,
		'--machine-key', $keys{$id}, '--now', $now, '--once', @more ], '>', \$o, '2>', \$e);
	return ($?, $o, $e);
}
my $mp = 'host=' . $node->host . ' port=' . $node->port . ' dbname=site';
sub advanced
{
	my ($id, $login, $platform, $now, @more) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ $agent, '--sms-id', $id, '--site', 'CEN', '--platform', $platform,
		'--state-dir', "$b/ws/$id", '--management-point', "$mp user=$login", '--now', $now, '--once', @more ],
		'>', \$o, '2>', \$e);
	return ($?, $o, $e);
}
# how often each program ran on a machine: "tag:count,..."
sub runs
{
	my ($id) = @_;
	my %n;
	$n{$_}++ for split /\n/, slurp("$b/marks/$id.txt");
	return join(',', map { "$_:$n{$_}" } sort keys %n);
}

# ---- recurrence and rerun behaviour (legacy mode, test clock)
my ($rc);
($rc, $out, $err) = agent('CEN00001', 'WINNT_X86', '2026-12-01T10:30:00Z');
is($rc, 0, 'day 1: the poll runs') or diag($err);
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: .*succeeded/m, 'day 1: always_rerun runs');
like($out, qr/^${AGENT_INFO}ran advert CEN00C04: Program "IfFailedFlaky" of package CEN00B01 failed with exit code 4\.$/m,
	'day 1: the flaky program fails (exit code 4)');
like($out, qr/^${AGENT_INFO}ran advert CEN00C05: .*failed with exit code 3/m, 'day 1: the failing program fails');
unlike($out, qr/^${AGENT_INFO}skipped /m, 'day 1: nothing is skipped: no program ran before');
is(runs('M'), 'always:1,iffailed-flaky failed:1,iffailed-ok:1,ifsucceeded-fail:1,ifsucceeded-ok:1,never:1',
	'day 1: each mandatory program ran once');

($rc, $out, $err) = agent('CEN00001', 'WINNT_X86', '2026-12-02T10:30:00Z');
like($out, qr/^${AGENT_INFO}skipped advert CEN00C02: Program "Never" of package CEN00B01 was not run again at its mandatory time 2026-12-02T10:00:00Z: its rerun behaviour is never_rerun and its last run, at 2026-12-01T10:30:00Z, succeeded \(exit code 0\)\.$/m,
	'day 2: never_rerun is skipped, saying why') or diag($out);
like($out, qr/^${AGENT_INFO}skipped advert CEN00C03: .*its rerun behaviour is rerun_if_failed and its last run, at 2026-12-01T10:30:00Z, succeeded \(exit code 0\)\.$/m,
	'day 2: rerun_if_failed after a success is skipped');
like($out, qr/^${AGENT_INFO}ran advert CEN00C04: Program "IfFailedFlaky" of package CEN00B01 succeeded/m,
	'day 2: rerun_if_failed after a failure runs again (and succeeds)');
like($out, qr/^${AGENT_INFO}skipped advert CEN00C05: .*its rerun behaviour is rerun_if_succeeded and its last run, at 2026-12-01T10:30:00Z, failed \(exit code 3\)\.$/m,
	'day 2: rerun_if_succeeded after a failure is skipped');
like($out, qr/^${AGENT_INFO}ran advert CEN00C06: .*succeeded/m, 'day 2: rerun_if_succeeded after a success runs again');
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: .*succeeded/m, 'day 2: always_rerun runs again');

($rc, $out, $err) = agent('CEN00001', 'WINNT_X86', '2026-12-03T10:30:00Z');
like($out, qr/^${AGENT_INFO}skipped advert CEN00C04: .*rerun_if_failed and its last run, at 2026-12-02T10:30:00Z, succeeded/m,
	'day 3: rerun_if_failed after the success of day 2 is skipped');
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: .*succeeded/m, 'day 3: always_rerun runs a third time');
my ($rc2, $out2) = agent('CEN00001', 'WINNT_X86', '2026-12-03T11:00:00Z');
unlike($out2, qr/^(ran|skipped) /m, 'day 3, later: each recurrence is decided once, not at every poll');
is(runs('M'), 'always:3,iffailed-flaky failed:1,iffailed-flaky ok:1,iffailed-ok:1,ifsucceeded-fail:1,ifsucceeded-ok:3,never:1',
	'after three recurrences: always_rerun and rerun_if_succeeded (succeeding) ran three times, the others as their behaviour says');
($rc, $out) = agent('CEN00001', 'WINNT_X86', '2026-12-03T12:00:00Z', '--run', 'CEN00C02');
like($out, qr/^${AGENT_INFO}ran advert CEN00C02: .*succeeded/m, 'a user can still run a never_rerun program that already ran');
like(slurp("$b/ws/CEN00001/runs"), qr/^advert CEN00C02 \d+ skipped \d+$/m, 'the runs file records the skipped times');

# ---- not applicable: a platform the program does not support
($rc, $out, $err) = agent('CEN00002', 'WIN95', '2026-12-01T10:30:00Z');
is($rc, 0, 'the WIN95 machine polls') or diag($err);
like($out, qr/^${AGENT_INFO}not applicable advert CEN00C07: Advertisement CEN00C07 \(package CEN00B01, program "NT only"\) does not apply to this machine: the program runs on WINNT_X86, WIN_X64; this machine is WIN95\.$/m,
	'an advertisement for other platforms is reported as not applicable, with both platforms');
like($out, qr/^${AGENT_INFO}not applicable job CEN000D1: Run-command job CEN000D1 \(package CEN00B01, program "NT only"\) does not apply to this machine: the program runs on WINNT_X86, WIN_X64; this machine is WIN95\.$/m,
	'so is a run-command job of its PCM file');
unlike($out, qr/^(offer|ran) /m, 'nothing is offered or run');
is(slurp("$b/ws/CEN00002/not_applicable"), "job CEN000D1\nadvert CEN00C07\n", 'the state directory remembers what was reported');
($rc, $out) = agent('CEN00002', 'WIN95', '2026-12-02T10:30:00Z');
unlike($out, qr/not applicable/, 'the next poll (the next recurrence too) does not report it again');

# ---- no longer targeted: the machine leaves the collection before the program ran
($rc, $out) = agent('CEN00001', 'WINNT_X86', '2026-12-03T12:30:00Z');
like($out, qr/^${AGENT_INFO}offer advert CEN00C08 /m, 'an optional advertisement is offered');
like($out, qr/^${AGENT_INFO}offer advert CEN00C09 /m, 'and another');
$node->safe_psql('site', q{UPDATE smsdist.advertisements SET enabled = false WHERE advert_id = 'CEN00C09';
                          DELETE FROM smsdist.collection_rules WHERE collection_id = 'CEN00A02';});
ok(wait_until($node, 'site', qq{SELECT position('CEN00C08' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) = 0
                                  AND (pg_stat_file('$b/cap/offerinf.box/CEN00C09.OFR', true)).size IS NULL}, 60),
	'the machine leaves the collection; the other advertisement is disabled');
($rc, $out) = agent('CEN00001', 'WINNT_X86', '2026-12-03T13:00:00Z');
like($out, qr/^${AGENT_INFO}no longer targeted advert CEN00C08: Advertisement CEN00C08 is no longer targeted at this machine and its program did not run here: the lookup files no longer name this machine, its user or its groups for it\.$/m,
	'the offer that left before its program ran is reported as no longer targeted');
unlike($out, qr/CEN00C09/, 'not the disabled advertisement (the agent sees its offer file gone)');
unlike($out, qr/no longer targeted advert CEN00C0[1-6]/, 'nor the offers still targeted');
($rc, $out) = agent('CEN00001', 'WINNT_X86', '2026-12-03T13:30:00Z');
unlike($out, qr/no longer targeted/, 'once');

# ---- the site: skipped runs, not applicable and exit codes
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS')}, 30),
	'the status messages reach the site');
is($node->safe_psql('site', q{SELECT string_agg(advert_id || ':' || message_id || ':' || coalesce(exit_code::text, 'none'), ',' ORDER BY client_sequence)
                               FROM smsdist.status_messages WHERE machine = 'CEN00001' AND message_id IN (10008, 10009) AND advert_id IN ('CEN00C04', 'CEN00C05')}),
	'CEN00C04:10009:4,CEN00C05:10009:3,CEN00C04:10008:0',
	'10008 and 10009 carry the program\'s exit code into status_messages.exit_code');
is($node->safe_psql('site', q{SELECT string_agg(advert_id || ':' || n, ',' ORDER BY advert_id) FROM (
                                SELECT advert_id, count(*) n FROM smsdist.status_messages
                                 WHERE machine = 'CEN00001' AND message_id = 10012 GROUP BY advert_id) x}),
	'CEN00C02:2,CEN00C03:2,CEN00C04:1,CEN00C05:2',
	'each skipped mandatory time is a status message 10012');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id IN (10005, 10008, 10009, 10012) AND exit_code IS NOT NULL AND message_id NOT IN (10008, 10009)}),
	'0', 'no other message has an exit code');
is($node->safe_psql('site', q{SELECT string_agg(machine || ':' || coalesce(advert_id, job_id) || ':' || severity, ',' ORDER BY machine, client_sequence)
                               FROM smsdist.status_messages WHERE message_id = 10007}),
	'CEN00001:CEN00C08:informational,CEN00002:CEN000D1:informational,CEN00002:CEN00C07:informational',
	'not applicable (10007): by platform, and no longer targeted; each once');

# ---- advanced mode: the policy carries the rerun behaviour, exit codes go through client_status
is($node->safe_psql('site', q{SELECT string_agg(a->>'advert_id' || ':' || (a->>'rerun_behaviour'), ',' ORDER BY a->>'advert_id')
                               FROM jsonb_array_elements(smsdist.compute_machine_policy('CEN00003')->'advertisements') a}),
	'CEN00C01:always_rerun,CEN00C02:never_rerun,CEN00C03:rerun_if_failed,CEN00C04:rerun_if_failed,CEN00C05:rerun_if_succeeded,CEN00C06:rerun_if_succeeded',
	'the policy carries each advertisement\'s rerun behaviour');
($rc, $out, $err) = advanced('CEN00003', 'agent3', 'WINNT_X86', '2026-12-01T10:30:00Z');
is($rc, 0, 'advanced mode: day 1') or diag($err);
like($out, qr/^${AGENT_INFO}ran advert CEN00C02: .*succeeded/m, 'day 1: never_rerun runs the first time');
($rc, $out, $err) = advanced('CEN00003', 'agent3', 'WINNT_X86', '2026-12-02T10:30:00Z');
like($out, qr/^${AGENT_INFO}skipped advert CEN00C02: .*never_rerun/m, 'day 2: never_rerun is skipped');
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: .*succeeded/m, 'day 2: always_rerun runs again');
is($node->safe_psql('site', q{SELECT string_agg(advert_id || ':' || message_id || ':' || coalesce(exit_code::text, 'none'), ',' ORDER BY client_sequence)
                               FROM smsdist.status_messages WHERE machine = 'CEN00003' AND message_id IN (10008, 10009, 10012) AND advert_id IN ('CEN00C02', 'CEN00C05')}),
	'CEN00C02:10008:0,CEN00C05:10009:3,CEN00C02:10012:none,CEN00C05:10012:none',
	'advanced mode: exit codes and skipped runs through client_status');
($rc, $out, $err) = advanced('CEN00004', 'agent4', 'WIN95', '2026-12-01T10:30:00Z');
like($out, qr/^${AGENT_INFO}not applicable advert CEN00C07: .*this machine is WIN95\.$/m, 'advanced mode: not applicable') or diag($err);
($rc, $out) = advanced('CEN00004', 'agent4', 'WIN95', '2026-12-02T10:30:00Z');
unlike($out, qr/not applicable/, 'advanced mode: once');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE machine = 'CEN00004' AND message_id = 10007 AND advert_id = 'CEN00C07'}),
	'1', 'advanced mode: one 10007 at the site');


# ---- a child site: the advertisement it is sent carries the rerun behaviour
my $ch1 = site_node('ch1', site_code => 'CH1');
$ch1->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');});
$node->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CH1', 'Child', 'CEN');});
link_sites($node, 'CEN', $ch1, 'CH1');
$node->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
$node->safe_psql('site', q{SELECT smsdist.wake('sender')});
ok(wait_until($ch1, 'site', q{SELECT count(*) = 2 FROM smsdist.advertisements
                               WHERE (advert_id, rerun_behaviour) IN (('CEN00C02', 'never_rerun'), ('CEN00C03', 'rerun_if_failed'))}, 60),
	'the child site takes each advertisement with its rerun behaviour');
$node->safe_psql('site', q{UPDATE smsdist.advertisements SET rerun_behaviour = 'rerun_if_succeeded' WHERE advert_id = 'CEN00C02';
                          SELECT smsdist.wake('sender');});
ok(wait_until($ch1, 'site', q{SELECT rerun_behaviour = 'rerun_if_succeeded' FROM smsdist.advertisements WHERE advert_id = 'CEN00C02'}, 60),
	'a changed rerun behaviour follows to the child');
is($node->safe_psql('site', q{SELECT smsdist.advertisement_details('CEN00C02', 'CH1')->'advert'->>'rerun_behaviour'}),
	'rerun_if_succeeded', 'advertisement_details carries it');

done_testing();
