# The client agent in advanced mode (issue 5): smsdist-agent reads its
# policy from the management point (the site database, as a member of
# smsdist_client), LISTENs for changes so that a new advertisement reaches
# a connected agent at once, sends its status messages through
# smsdist.client_status(), checks schedules on the site's clock (a clock set
# back does not revive an expired offer; the skew is reported), and falls
# back to polling when its connection is cut.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $agent = agent_path();

# a long poll interval: only wake-ups and NOTIFY can explain a quick change
my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '300s'\n");
my $b = $node->basedir;
make_path("$b/dp", "$b/drive", "$b/src", "$b/ws");
system("echo setup > '$b/src/setup.exe'") == 0 or die;
$node->safe_psql('postgres', 'CREATE ROLE agent LOGIN IN ROLE smsdist_client');
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('agent', 'CEN00001');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'name LIKE ''WKS%''');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES
  ('CEN00B01', 'Install', 'setup.exe /q'), ('CEN00B01', 'Repair', 'setup.exe /repair'), ('CEN00B01', 'Old', 'setup.exe /old');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
VALUES ('CEN00C01', 'Editor', 'CEN00B01', 'Install', 'CEN00A01', '2026-01-01 00:00');
-- expired by the site's clock, not by a clock set back to 2020
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, expires_time)
VALUES ('CEN00C09', 'Old offer', 'CEN00B01', 'Old', 'CEN00A01', '2019-01-01 00:00', '2026-01-01 00:00');});
ok(wait_until($node, 'site', q{SELECT jsonb_array_length(smsdist.machine_policy('CEN00001')->'advertisements') = 2}, 60),
	'the machine\'s policy has both advertisements');

my $mp = 'host=' . $node->host . ' port=' . $node->port . ' dbname=site user=agent';
my @base = ($agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
	'--state-dir', "$b/ws/CEN00001", '--management-point', $mp);

my ($out, $err) = ('', '');
IPC::Run::run([ @base, '--once' ], '>', \$out, '2>', \$err);
is($?, 0, 'advanced mode: one poll runs (exit 0, no signal)') or diag($err);
like($out, qr/^${AGENT_INFO}offer advert CEN00C01 package CEN00B01 program "Install": setup\.exe \/q$/m,
	'the advertisement from the policy is offered') or diag("out: $out\nerr: $err");
unlike($out, qr/CEN00C09/, 'the expired one is not');
is($node->safe_psql('site', q{SELECT string_agg(machine || ':' || message_id || ':' || advert_id, ',' ORDER BY client_sequence)
                               FROM smsdist.status_messages WHERE client_sequence IS NOT NULL}),
	'CEN00001:10001:CEN00C01,CEN00001:10003:CEN00C01',
	'its status messages (offered, downloaded) arrived through smsdist.client_status()');

# a clock set back: the site's clock decides, and the skew is reported
($out, $err) = ('', '');
IPC::Run::run([ @base, '--once', '--clock-offset', '-200000000' ], '>', \$out, '2>', \$err);
unlike($out, qr/CEN00C09/, 'with this machine\'s clock set back six years the expired offer stays expired');
like($out, qr/^${AGENT_INFO}offer advert CEN00C01 /m, 'and the current one is still offered');
like($node->safe_psql('site', q{SELECT message FROM smsdist.status_messages WHERE message_id = 10020 AND machine = 'CEN00001'}),
	qr/^This machine's clock is (?:199999|200000)\d{3} s behind the site's; schedules are checked on the site's clock\.$/,
	'and the skew is reported (10020)');

# a connected agent learns of a new advertisement at once
my ($bg_out, $bg_err) = ('', '');
my $h = IPC::Run::start([ @base, '--interval', '60' ], '>', \$bg_out, '2>', \$bg_err);
my $t0 = time;
$h->pump_nb while time - $t0 < 180 && $bg_out !~ /CEN00C01/ && select(undef, undef, undef, 0.05) >= 0;
like($bg_out, qr/offer advert CEN00C01/, 'the background agent made its first poll');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
VALUES ('CEN00C02', 'Repair', 'CEN00B01', 'Repair', 'CEN00A01', '2026-01-01 00:00');});
my $t1 = time;
$h->pump_nb while time - $t1 < 50 && $bg_out !~ /CEN00C02/ && select(undef, undef, undef, 0.02) >= 0;
my $took = time - $t1;
like($bg_out, qr/offer advert CEN00C02 package CEN00B01 program "Repair"/, 'the new advertisement reaches the connected agent');
ok($took < 45, sprintf('within %.3f s of the commit (its next poll is about 60 s away: only the NOTIFY explains it)', $took));
diag(sprintf('new advertisement to a connected agent: %.3f s', $took));

# the connection is cut: the agent polls until it is back
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'agent'});
$h->kill_kill;
($bg_out, $bg_err) = ('', '');
$h = IPC::Run::start([ @base, '--interval', '1' ], '>', \$bg_out, '2>', \$bg_err);
$t0 = time;
$h->pump_nb while time - $t0 < 180 && $bg_out !~ /CEN00C02/ && select(undef, undef, undef, 0.05) >= 0;
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'agent'});
$node->safe_psql('site', q{UPDATE smsdist.advertisements SET name = 'Repair (2)' WHERE advert_id = 'CEN00C02';
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
VALUES ('CEN00C03', 'Third', 'CEN00B01', 'Install', 'CEN00A01', '2026-01-01 00:00');});
$t0 = time;
$h->pump_nb while time - $t0 < 180 && $bg_out !~ /CEN00C03/ && select(undef, undef, undef, 0.05) >= 0;
like($bg_out, qr/offer advert CEN00C03/, 'after its connection was cut the agent polls, reconnects and sees the change');
like($bg_err, qr/lost the management point|could not read the policy/, 'and said that it lost the connection');
$h->kill_kill;

# bad usage in advanced mode
($out, $err) = ('', '');
IPC::Run::run([ $agent, '--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86', '--state-dir', "$b/ws/x" ],
	'>', \$out, '2>', \$err);
is($? >> 8, 2, 'neither shares nor a management point: bad usage');

done_testing();
