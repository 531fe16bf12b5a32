# Crashes across sites (docs/reliability.md): a child's receive_end killed
# while it creates the child's copy of the job; an advertisement push
# killed at the parent after the child took it in, and at the child while
# it records it; and a whole site -- its postmaster and every process, as
# a power cut -- killed while the Despooler records a despool it has
# published, and again in the middle of a PCM batch of 4,000 machines.
# Each is held at its point by a session that holds the lock it needs next.
# After each: the job or advertisement is at the child exactly once and its
# send said done exactly once, the published package is byte-identical to
# the source and recorded once per distribution point, every PCM file is on
# disk once per place with its row's content, the child's lookup file names
# each machine once, and no temporary file or directory is left.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use File::Find;
use Digest::SHA qw(sha256_hex);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually crash_site);

my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my $conf = "smsdist.poll_interval = '5s'\nrestart_after_crash = on\n";

# A session that runs sql in an open transaction and keeps it open (the
# crash ends it).
sub hold
{
	my ($node, $sql) = @_;
	my ($in, $out, $err) = ("BEGIN;\n$sql;\n", '', '');
	my $h = IPC::Run::start([ $psql, '-X', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
	$h->pump while length $in;
	return $h;
}

# every file under the directories that is a temporary one: a dot name
# (box and PCM files, publish copies), a part file, a despool directory
sub leftovers
{
	my @found;
	find(sub { push @found, $File::Find::name if /^\.(?!\.?$)/ || /\.tmp(\.\d+)?$/ || /\.part$/ || $File::Find::dir =~ m{/smsdist-despool$}; }, @_);
	return join(', ', @found);
}

# --- receive_end at the child, killed while it creates the child's job
my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
my $cb = $ch1->basedir;
make_path("$cb/dp1", "$cb/drive", "$cb/logon1");
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$cb/dp1'), ('CH1', 'site_server_drive', 'D', '$cb/drive'),
  ('CH1', 'logon_server', 'LOGON1', '$cb/logon1');});
my $src = $cen->basedir . '/src';
make_path("$src/bin");
system("head -c 2000000 /dev/urandom > '$src/bin/setup.exe'") == 0 or die;
$cen->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CH100001', 'CH-WKS-1', 'BRANCH', 'CH1', 'WINNT_X86'), ('CH100002', 'CH-WKS-2', 'BRANCH', 'CH1', 'WINNT_X86');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe /q');});

my $hold = hold($ch1, 'LOCK TABLE smsdist.jobs IN SHARE MODE');
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, expires_at)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'machines', '{CH100001,CH100002}', now() + interval '7 days')});
ok(wait_until($ch1, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%receive_end%'}, 90),
	"CH1's receive_end waits to create the job, the package verified");
my $pid = $ch1->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%receive_end%'});
kill 'KILL', $pid;
$hold->kill_kill;
ok(wait_until($cen, 'site', q{SELECT state = 'done' FROM smsdist.job_site_status
                               WHERE job_id = 'CEN00C01' AND site_code = 'CH1' AND phase = 'send'}, 120),
	'after CH1 restarted the send is done');
ok(slurp_file($ch1->logfile) =~ /terminated by signal 9/, 'CH1 saw the kill');
ok(wait_until($cen, 'site', q{SELECT state = 'done' FROM smsdist.job_site_status
                               WHERE job_id = 'CEN00C01' AND site_code = 'CH1' AND phase = 'distribute'}, 120),
	'and CH1 distributed the package');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE job_id = 'CEN00C01' AND message_id = 3302}), '1',
	'CEN recorded the send done once');
is($ch1->safe_psql('site', q{SELECT string_agg(job_id || ' ' || job_type || ' ' || source_site || ' ' || array_to_string(target_machines, ','), ',')
                              FROM smsdist.jobs}), 'CEN00C01 run_command CEN CH100001,CH100002', 'CH1 holds the job once');
is($ch1->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE job_id = 'CEN00C01' AND message_id = 3200}), '1',
	'CH1 distributed it once');
is($ch1->safe_psql('site', q{SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'ready') FROM smsdist.package_builds}), '1 1',
	'CH1 holds one build of the package, ready');
is($ch1->safe_psql('site', 'SELECT count(*) FROM smsdist.package_transfers'), '0', 'no transfer is left open at CH1');
is(system('diff', '-r', $src, "$cb/dp1/SMS_PKGC/CEN00B01"), 0, 'the package at CH1 is byte-identical to the source');
ok(eventually(sub { -f "$cb/logon1/pcins.box/CH100001" && -f "$cb/logon1/pcins.box/CH100002" }, 60)
	&& wait_until($ch1, 'site', 'SELECT count(*) = 2 FROM smsdist.pcm_files', 30), "CH1's machines have their PCM files, once");
my $store = $ch1->safe_psql('site', q{SELECT setting FROM pg_settings WHERE name = 'smsdist.package_store'});
is(leftovers("$cb/dp1", "$cb/drive", "$cb/logon1", grep { $_ ne '' && -d $_ } $store), '', 'no temporary file is left at CH1');

# --- an advertisement push: the Sender at CEN killed after CH1 took the
# advertisement in but before CEN recorded the push (CEN's
# advertisement_pushes locked); then CH1's receive_advertisement killed
# while it records the next one (CH1's advertisements locked)
sub lookup_right
{
	my ($adverts) = @_;
	my $lkp = "$cb/drive/inboxes/offerinf.box/CH1SYSTM.LKP";
	ok(eventually(sub { my $t = -f $lkp ? slurp_file($lkp) : ''; $t =~ /^adverts=\Q$adverts\E$/m
		&& (() = $t =~ /^adverts=\Q$adverts\E$/mg) == 2 }, 60),
		"CH1's lookup file gives both its machines $adverts");
	my $t = slurp_file($lkp);
	is(join(',', $t =~ /^name=(\S+)$/mg), 'CH100001,CH100002', 'and names each machine once');
}
$hold = hold($cen, 'LOCK TABLE smsdist.advertisement_pushes IN SHARE MODE');
$cen->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Branch');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES
  ('CEN00A01', 'direct', 'CH100001'), ('CEN00A01', 'direct', 'CH100002');
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN00D01', 'Editor', 'CEN00B01', 'Install', 'CEN00A01');});
ok(wait_until($cen, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist sender' AND wait_event_type = 'Lock'}, 90)
	&& $ch1->safe_psql('site', q{SELECT count(*) FROM smsdist.advertisements WHERE advert_id = 'CEN00D01'}) eq '1',
	'CH1 took the advertisement in; the Sender waits to record the push');
$pid = $cen->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist sender'});
kill 'KILL', $pid;
$hold->kill_kill;
ok(wait_until($cen, 'site', q{SELECT payload_md5 IS NOT NULL AND last_error IS NULL FROM smsdist.advertisement_pushes
                               WHERE advert_id = 'CEN00D01' AND hop = 'CH1'}, 120),
	'after CEN restarted the push is recorded');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE advert_id = 'CEN00D01' AND message_id = 3310}), '1',
	'and said once');
is($ch1->safe_psql('site', q{SELECT count(*) FROM smsdist.advertisements WHERE advert_id = 'CEN00D01'}), '1',
	'CH1 holds the advertisement once');
lookup_right('CEN00D01');

$hold = hold($ch1, 'LOCK TABLE smsdist.advertisements IN SHARE MODE');
$cen->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN00D02', 'Editor again', 'CEN00B01', 'Install', 'CEN00A01');});
ok(wait_until($ch1, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%receive_advertisement%'}, 90),
	"CH1's receive_advertisement waits to record the advertisement");
$pid = $ch1->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%receive_advertisement%'});
kill 'KILL', $pid;
$hold->kill_kill;
ok(wait_until($cen, 'site', q{SELECT payload_md5 IS NOT NULL AND last_error IS NULL FROM smsdist.advertisement_pushes
                               WHERE advert_id = 'CEN00D02' AND hop = 'CH1'}, 120),
	'after CH1 restarted the push is sent again and recorded');
is($ch1->safe_psql('site', q{SELECT string_agg(advert_id, ',' ORDER BY advert_id) FROM smsdist.advertisements}), 'CEN00D01,CEN00D02',
	'CH1 holds both advertisements, once each');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE advert_id = 'CEN00D02' AND message_id = 3310}), '1',
	'the push is said done once');
lookup_right('CEN00D01,CEN00D02');
is(leftovers("$cb/drive"), '', 'no temporary file is left at CH1');
$_->stop for ($cen, $ch1);

# --- a whole site crashes while the Despooler records a despool, then in
# the middle of a PCM batch.  4,000 machines; a run-command job for them.
my $node = site_node('solo', site_code => 'CEN', conf => $conf);
my $b = $node->basedir;
make_path(map { "$b/$_" } qw(dp drive logon1 src/bin));
system("head -c 3000000 /dev/urandom > '$b/src/bin/setup.exe'") == 0 or die;
system("echo 'read me' > '$b/src/readme.txt'") == 0 or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$b/logon1');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT ('CEN' || lpad(i::text, 5, '0'))::smsdist.sms_id, ('WKS-' || i)::smsdist.netbios_name, 'CORP', 'CEN', 'WINNT_X86'
  FROM generate_series(1, 4000) i;
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe /q');});
my $all = q{(SELECT array_agg(sms_id ORDER BY sms_id) FROM smsdist.system_resources)};

$hold = hold($node, 'LOCK TABLE smsdist.package_locations IN SHARE MODE');
$node->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, expires_at)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'machines', $all, now() + interval '7 days')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist despooler' AND wait_event_type = 'Lock'}, 90),
	'the Despooler waits to record the package it published');
ok(crash_site($node), "every process of the site is gone, and it is started again");
ok(wait_until($node, 'site', q{SELECT state = 'done' FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND phase = 'distribute'}, 120),
	'after the restart the package is distributed');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE job_id = 'CEN00C01' AND message_id = 3200}), '1',
	'once');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.package_locations}), '1', 'one location recorded');
is(system('diff', '-r', "$b/src", "$b/dp/SMS_PKGC/CEN00B01"), 0, 'the published package is byte-identical to the source');

# every machine's PCM file, in each place, with its row's content
sub pcm_files_right
{
	my ($jobs) = @_;
	ok(wait_until($node, 'site', q{SELECT count(*) = 0 FROM smsdist.pcm_queue}, 120)
		&& wait_until($node, 'site', qq{SELECT count(*) = 4000 FROM smsdist.pcm_files WHERE jobs = '$jobs'}, 60),
		"every machine's PCM file is recorded, with the jobs $jobs");
	is($node->safe_psql('site', 'SELECT count(*) FROM smsdist.pcm_files'), '4000', 'one row per machine');
	my %sha = map { split /\|/ } split /\n/, $node->safe_psql('site', 'SELECT sms_id, sha256 FROM smsdist.pcm_files');
	for my $place ('drive/mancfg.box/pcmdom.box/CORP.000', 'logon1/pcins.box')
	{
		my ($n, $bad) = (0, 0);
		for my $f (glob("$b/$place/*"))
		{
			$n++;
			my ($id) = $f =~ m{/([^/]+)$};
			$bad++ unless defined $sha{$id} && sha256_hex(slurp_file($f)) eq $sha{$id};
		}
		is("$n $bad", '4000 0', "$place: 4,000 files, each the content its row records");
	}
	is(leftovers(map { "$b/$_" } qw(dp drive logon1)), '', 'no temporary file is left');
}
pcm_files_right('{CEN00C01}');

# a second job for the same machines: every file is written again; the
# site crashes with the first batch renamed into place, not recorded
$hold = hold($node, 'LOCK TABLE smsdist.pcm_files IN SHARE MODE');
$node->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, expires_at)
VALUES ('CEN00C02', 'run_command', 'CEN00B01', 'Install', 'machines', $all, now() + interval '7 days')});
ok(wait_until($node, 'site', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist despooler'
                                AND wait_event_type = 'Lock' AND query LIKE 'writing 2000 PCM files'}, 90),
	'the PCM writer waits to record a batch it has written');
ok(crash_site($node), "every process of the site is gone, and it is started again");
pcm_files_right('{CEN00C01,CEN00C02}');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.machine_policies WHERE policy::text LIKE '%CEN00C02%'}), '4000',
	'every machine has the new job in its policy');

$node->stop;
done_testing();
