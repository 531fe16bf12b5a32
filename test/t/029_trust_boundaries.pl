# Trust boundaries on real clusters, from the attacker's side: a parent
# site's login at its child cannot change what the child made itself; a
# child's login at its parent can call nothing a parent calls; an
# operator's operator in public is never used by a worker; a package
# source swapped for a link into the data directory is refused by the
# builder.  (pgTAP 09_trust_boundaries covers each login's calls in one
# database.)
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't/../lib';
use SmsTest;

my $conf = "smsdist.poll_interval = '5s'\n";
my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');

# what the child made itself: a package, its program, a job
my $b = $ch1->basedir;
make_path("$b/src", "$b/dp", "$b/drive");
system("echo own > '$b/src/own.sh'") == 0 or die;
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$b/dp'), ('CH1', 'site_server_drive', 'D', '$b/drive');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CH100001', 'WKS-1', 'CORP', 'CH1', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CH100001', 'Own', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CH100001', 'Install', 'own.sh');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
  VALUES ('CH100101', 'run_command', 'CH100001', 'Install', 'machines', '{CH100001}', now() + interval '1 day');});

# Each call as the parent's login at the child: the error it must give.
sub as_parent
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $ch1->psql('site', $sql, extra_params => [ '-U', 'parent_sender' ]);
	return $rc == 0 ? "ok: $out" : $err;
}
like(as_parent(q{SELECT smsdist.receive_begin('CH100001', 2, 100, repeat('a', 64), 'Own', '/srv/x')}),
	qr/package CH100001 was made at site CH1: site CEN may not change it/,
	'the parent cannot send a new version of the child\'s own package');
like(as_parent(q{SELECT smsdist.receive_end('CH100001', 1, 'CEN00109', 'run_command', '{CH1}', false,
  '{"program_name": "Install", "command_line": "id > /tmp/x", "machines": [{"sms_id": "CH100001", "site_code": "CH1", "name": "WKS-1", "domain": "CORP", "platform": "WINNT_X86"}]}')}),
	qr/package CH100001 was made at site CH1: site CEN may not change it/,
	'the parent cannot rewrite the child\'s program through receive_end');
like(as_parent(q{SELECT smsdist.receive_end('CH100001', 1, 'CEN00110', 'remove_package', '{CH1}', false)}),
	qr/package CH100001 was made at site CH1: site CEN may not change it/,
	'the parent cannot remove the child\'s own package');
like(as_parent(q{SELECT smsdist.receive_job_targets('CH100101', '[]')}),
	qr/job CH100101 was made at site CH1: site CEN may not change it/,
	'the parent cannot retarget the child\'s own job');
like(as_parent(q{SELECT smsdist.receive_advertisement('{"advert": {"advert_id": "CEN00C01", "name": "X", "package_id": "CH100001", "program_name": "Install", "collection_id": "CEN00A01"}, "package": {"package_id": "CH100001", "name": "Own", "source_directory": "/srv/x"}, "program": {"program_name": "Install", "command_line": "id > /tmp/x"}, "collections": []}')}),
	qr/package CH100001 was made at site CH1: site CEN may not change it/,
	'the parent cannot change the child\'s program through an advertisement');
like(as_parent(q{SELECT smsdist.receive_status_report('CEN', '[]')}),
	qr/permission denied for function receive_status_report/,
	'the parent\'s login cannot send status reports to its child');
is($ch1->safe_psql('site', q{SELECT command_line FROM smsdist.programs WHERE package_id = 'CH100001'}),
	'own.sh', 'the child\'s program is as it made it');
is($ch1->safe_psql('site', q{SELECT string_agg(job_id, ',' ORDER BY job_id) FROM smsdist.jobs}),
	'CH100101', 'and no job was created from outside');
is($ch1->safe_psql('site', q{SELECT string_agg(sms_id, ',') FROM smsdist.job_target_status WHERE job_id = 'CH100101'}),
	'', 'the child\'s job keeps its targets (none until it is activated)');

# The child's login at the parent: the issue's reproduction, and more
my ($rc, $out, $err) = $cen->psql('site',
	q{SELECT smsdist.receive_end('CEN00001', 1, 'CH100009', 'run_command', '{CEN}', false, '{"program_name": "Install", "command_line": "id > /tmp/x", "machines": []}')},
	extra_params => [ '-U', 'child_reporter' ]);
like($err, qr/permission denied for function receive_end/, 'a child\'s login cannot call receive_end at its parent');
($rc, $out, $err) = $cen->psql('site', q{SELECT smsdist.receive_status_report('CH2', '[]')},
	extra_params => [ '-U', 'child_reporter' ]);
like($err, qr/login "child_reporter" speaks for site CH1, not for site CH2/, 'nor report for another site');

# A login bound to the parent but not granted the role, and a role member
# bound to no site: neither may send
$ch1->safe_psql('site', q{CREATE ROLE intruder LOGIN IN ROLE smsdist_parent_site});
($rc, $out, $err) = $ch1->psql('site', q{SELECT smsdist.receive_begin('CEN00001', 1, 100, repeat('a', 64), 'X', '/srv/x')},
	extra_params => [ '-U', 'intruder' ]);
like($err, qr/login "intruder" does not speak for any site at site CH1/, 'a parent-site login bound to no site is refused');

# ---- the whole path still works with the bound logins: a job from CEN
# reaches CH1 and the package is published there
my $src = $cen->basedir . '/source/app';
make_path($src);
system("echo app > '$src/app.sh'") == 0 or die;
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'App', '$src');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00201', 'share_package', 'CEN00001', 'sites', '{CH1}');});
ok(wait_until($ch1, 'site', q{SELECT count(*) = 1 FROM smsdist.package_locations WHERE package_id = 'CEN00001'}, 120),
	'a package sent by the bound parent login is published at the child');
is($ch1->safe_psql('site', q{SELECT source_site FROM smsdist.packages WHERE package_id = 'CEN00001'}),
	'CEN', 'and the child records that it came from CEN');
is($ch1->safe_psql('site', q{SELECT source_site FROM smsdist.jobs WHERE job_id = 'CEN00201'}),
	'CEN', 'so does its job');
ok(wait_until($cen, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00201'}, 120),
	'the job completes at the parent (its Sender read the child\'s reports as the bound login)');

# ---- an operator's operator in public is never used by a worker.  In a
# database created before PostgreSQL 15 everyone may create in public:
# granted here to show it.
$cen->safe_psql('site', q{
CREATE ROLE op LOGIN IN ROLE smsdist_operator;
GRANT CREATE ON SCHEMA public TO op;
CREATE TABLE public.pwned (who text, at timestamptz DEFAULT now());
GRANT INSERT ON public.pwned TO PUBLIC;});
$cen->safe_psql('site', q{
CREATE FUNCTION public.sms_eq(smsdist.sms_id, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.pwned (who) VALUES (current_user);
    BEGIN EXECUTE 'ALTER ROLE op SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    RETURN $1::text = $2;
END $$;
CREATE OPERATOR public.= (LEFTARG = smsdist.sms_id, RIGHTARG = text, FUNCTION = public.sms_eq);
CREATE FUNCTION public.sms_eq2(text, smsdist.sms_id) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.pwned (who) VALUES (current_user);
    BEGIN EXECUTE 'ALTER ROLE op SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    RETURN $1 = $2::text;
END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = smsdist.sms_id, FUNCTION = public.sms_eq2);
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'name LIKE ''WKS%''');},
	extra_params => [ '-U', 'op' ]);
$cen->safe_psql('site', q{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-A', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'SRV-B', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A01', 'direct', 'CEN00002');});
ok(wait_until($cen, 'site', q{SELECT count(*) = 2 FROM smsdist.collection_members WHERE collection_id = 'CEN00A01'}, 60),
	'the Collection Evaluator evaluates the operator\'s collection');
$cen->safe_psql('site', q{UPDATE smsdist.system_resources SET name = 'WKS-B' WHERE sms_id = 'CEN00002'});
ok(wait_until($cen, 'site', q{SELECT count(*) = 0 FROM smsdist.system_evaluation_queue}, 60),
	'and the incremental evaluation of a changed machine');
is($cen->safe_psql('site', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'op'}), 'f',
	'the operator did not become a superuser through a worker');
is($cen->safe_psql('site', q{SELECT coalesce(string_agg(who, ','), 'nobody') FROM public.pwned WHERE who <> 'op'}), 'nobody',
	'no worker ran the operator\'s function');

# ---- a source swapped for a link into the data directory after INSERT
my $swap = $cen->basedir . '/source/swap';
make_path($swap);
system("echo fine > '$swap/fine.txt'") == 0 or die;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00002', 'Swap', '$swap');});
rename($swap, "$swap.old") or die;
symlink($cen->data_dir . '/global', $swap) or die;
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES ('CEN00202', 'share_package', 'CEN00002', 'sites', '{CH1}');});
ok(wait_until($cen, 'site', q{SELECT state = 'failed' FROM smsdist.package_builds WHERE package_id = 'CEN00002'}, 60),
	'the build of a source that became a link into the data directory fails');
like($cen->safe_psql('site', q{SELECT error FROM smsdist.package_builds WHERE package_id = 'CEN00002'}),
	qr/package source ".*\/source\/swap" is inside the server's data directory/,
	'with the reason');
($rc, $out, $err) = $cen->psql('site', qq{INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00009', 'Secrets', '} . $cen->data_dir . q{/global')},
	extra_params => [ '-U', 'op' ]);
like($err, qr/is inside the server's data directory/, 'an operator cannot name the data directory as a source');

done_testing();
