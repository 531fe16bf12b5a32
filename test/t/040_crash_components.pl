# kill -9 of a component in the middle of its work, at one site with 6,000
# machines (docs/reliability.md): the Collection Evaluator between two
# collections of a full evaluation, the PCM writer (the Despooler's Run
# phase) with a batch's files renamed into place but not recorded, and the
# Offer Manager with the outbox written but the policies not stored.  Each
# is held at its point by a session that holds a lock it needs next, so the
# kill lands there however busy the machine is; the server restarts and
# the component does the work again.  After each: every collection has
# exactly its members, every PCM file is on disk once per place with the
# content its row records, every machine once in the lookup file and the
# policies, and no temporary file is left (leftovers of a writer killed
# between create and rename included).
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
use SmsTest qw(:DEFAULT eventually wait_quiescent);

my $machines = 6000;
my $node = site_node('cen', site_code => 'CEN',
	conf => "smsdist.poll_interval = '300s'\nrestart_after_crash = on\n");
my $b = $node->basedir;
make_path(map { "$b/$_" } qw(dp drive logon1 logon2 cap src/bin));
system("head -c 300000 /dev/urandom > '$b/src/bin/setup.exe'") == 0 or die;
system("echo 'read me' > '$b/src/readme.txt'") == 0 or die;
# machines CEN00001..: a third WIN95, the rest WINNT_X86; half CORP, half SALES
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$b/logon1'), ('CEN', 'logon_server', 'LOGON2', '$b/logon2'),
  ('CEN', 'client_access_point', 'CAP1', '$b/cap');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT ('CEN' || lpad(i::text, 5, '0'))::smsdist.sms_id, ('WKS-' || i)::smsdist.netbios_name, CASE WHEN i % 2 = 0 THEN 'CORP' ELSE 'SALES' END::smsdist.netbios_name, 'CEN',
       CASE WHEN i % 3 = 0 THEN 'WIN95' ELSE 'WINNT_X86' END::smsdist.platform
  FROM generate_series(1, $machines) i;
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe /q');});

my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;

# A session that runs sql in an open transaction and keeps it open (the
# restart after the kill ends it).
sub hold
{
	my ($sql) = @_;
	my ($in, $out, $err) = ("BEGIN;\n$sql;\n", '', '');
	my $h = IPC::Run::start([ $psql, '-X', '-d', $node->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
	$h->pump while length $in;
	return $h;
}

sub component_pid
{
	my ($c) = @_;
	wait_until($node, 'site', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist $c'", 60)
	  or die "no $c";
	return $node->safe_psql('site', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist $c'");
}

# Waits until the component waits for a lock with the activity given, then
# kills it with signal 9 and waits until the server has restarted.
my $kills = 0;
sub kill_while_waiting
{
	my ($c, $activity, $locker) = @_;
	my $pid = component_pid($c);
	ok(wait_until($node, 'site', "SELECT wait_event_type = 'Lock' AND query LIKE '$activity' FROM pg_stat_activity WHERE pid = $pid", 60),
		"the $c waits in the middle of its work ($activity)");
	return $pid;
}
sub kill_and_restart
{
	my ($c, $pid, $locker) = @_;
	kill 'KILL', $pid;
	$locker->kill_kill;
	$kills++;
	ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist $c' AND pid <> $pid", 60),
		"after the kill -9 the server restarted with a new $c");
	my $n = () = slurp_file($node->logfile) =~ /terminated by signal 9/g;
	is($n, $kills, 'the server saw the kill');
}

# every file under the directories that is a temporary one: a dot name
# (box and PCM files, publish copies), a part file, a despool directory
sub leftovers
{
	my @found;
	find(sub { push @found, $File::Find::name if /^\.(?!\.?$)/ || /\.tmp(\.\d+)?$/ || /\.part$/ || $File::Find::dir =~ m{/smsdist-despool$}; }, @_);
	return join(', ', @found);
}

# --- the Collection Evaluator between two collections of a full evaluation.
# Five collections; CEN00A05 includes CEN00A01 and excludes CEN00A02, so it
# comes last.  A session holds CEN00A03's row: the evaluator commits
# CEN00A01 and CEN00A02 and waits for CEN00A03, its queue row taken.
my %expected = (
	CEN00A01 => q{platform = 'WINNT_X86'},
	CEN00A02 => q{domain = 'CORP'},
	CEN00A03 => q{domain = 'SALES'},
	CEN00A04 => q{platform = 'WIN95'},
	CEN00A05 => q{platform = 'WINNT_X86' AND domain <> 'CORP'});
# (its row first, evaluated empty, so that the session can hold it)
$node->safe_psql('site', q{INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A03', 'Sales')});
wait_until($node, 'site', q{SELECT count(*) = 0 FROM smsdist.collection_evaluation_queue}, 60) or die 'CEN00A03 was not evaluated';
my $hold = hold(q{SELECT 1 FROM smsdist.collections WHERE collection_id = 'CEN00A03' FOR NO KEY UPDATE});
# (one transaction: the evaluator sees the five queued at once)
$node->safe_psql('site', q{
BEGIN;
INSERT INTO smsdist.collections (collection_id, name) VALUES
  ('CEN00A01', 'NT'), ('CEN00A02', 'Corp'), ('CEN00A04', 'Win95'), ('CEN00A05', 'NT not Corp');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES
  ('CEN00A01', 'query', 'platform = ''WINNT_X86'''), ('CEN00A02', 'query', 'domain = ''CORP'''),
  ('CEN00A03', 'query', 'domain = ''SALES'''), ('CEN00A04', 'query', 'platform = ''WIN95''');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, ref_collection_id) VALUES
  ('CEN00A05', 'include', 'CEN00A01'), ('CEN00A05', 'exclude', 'CEN00A02');
COMMIT;});
my $pid = kill_while_waiting('collection_evaluator', 'evaluating collection %', $hold);
is($node->safe_psql('site', q{SELECT string_agg(collection_id || ':' || n, ',' ORDER BY collection_id)
                                FROM (SELECT collection_id, count(*) AS n FROM smsdist.collection_members GROUP BY 1) m}),
	'CEN00A01:4000,CEN00A02:3000', 'two collections were evaluated before the kill, three were not');
kill_and_restart('collection_evaluator', $pid, $hold);
ok(wait_until($node, 'site', q{SELECT count(*) = 0 FROM smsdist.collection_evaluation_queue}, 60),
	'after the restart the evaluation queue is empty');
my $wrong = join(' UNION ALL ', map {
	"(SELECT '$_' AS c, sms_id FROM smsdist.system_resources WHERE $expected{$_}
	  EXCEPT ALL SELECT '$_', sms_id FROM smsdist.collection_members WHERE collection_id = '$_')
	 UNION ALL
	 (SELECT '$_', sms_id FROM smsdist.collection_members WHERE collection_id = '$_'
	  EXCEPT ALL SELECT '$_', sms_id FROM smsdist.system_resources WHERE $expected{$_})" } sort keys %expected);
is($node->safe_psql('site', "SELECT count(*) FROM ($wrong) w"), '0',
	'every collection has exactly its members, none missing, none twice');
is($node->safe_psql('site', q{SELECT string_agg(collection_id || ':' || n, ',' ORDER BY collection_id)
                                FROM (SELECT collection_id, count(*) AS n FROM smsdist.collection_members GROUP BY 1) m}),
	'CEN00A01:4000,CEN00A02:3000,CEN00A03:3000,CEN00A04:2000,CEN00A05:2000', 'the counts say so too');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.collections WHERE evaluation_error IS NOT NULL}), '0',
	'no evaluation failed');

# --- the PCM writer mid-batch.  A run-command job for CEN00A01 (4,000
# machines, two batches); a session holds pcm_files: the first batch's
# files are written and renamed into place, and the writer waits to record
# them, with its queue rows taken.
$hold = hold(q{LOCK TABLE smsdist.pcm_files IN SHARE MODE});
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id,
                          offer_after, mandatory_at, expires_at)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01',
        now() + interval '1 hour', now() + interval '2 hours', now() + interval '30 days')});
$pid = kill_while_waiting('despooler', 'writing 2000 PCM files', $hold);
my $on_disk = () = glob("$b/logon1/pcins.box/CEN*");
ok($on_disk > 0 && $node->safe_psql('site', 'SELECT count(*) FROM smsdist.pcm_files') == 0,
	"killed with files on disk ($on_disk) and none recorded");
kill_and_restart('despooler', $pid, $hold);
ok(wait_until($node, 'site', q{SELECT count(*) = 0 FROM smsdist.pcm_queue}, 120)
	&& wait_until($node, 'site', q{SELECT count(*) = 4000 FROM smsdist.pcm_files}, 60),
	'after the restart every machine has its PCM file recorded')
  or diag($node->safe_psql('site', 'SELECT count(*) FROM smsdist.pcm_files'));
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.pcm_files f
                               WHERE f.sms_id NOT IN (SELECT sms_id FROM smsdist.collection_members WHERE collection_id = 'CEN00A01')
                                  OR f.jobs <> '{CEN00C01}' OR f.copies <> 3}), '0',
	'one row per machine of the collection, the job once in each, three copies each');
my %sha = map { split /\|/ } split /\n/, $node->safe_psql('site', 'SELECT sms_id, sha256 FROM smsdist.pcm_files');
for my $place ("$b/drive/mancfg.box/pcmdom.box/*.000", "$b/logon1/pcins.box", "$b/logon2/pcins.box")
{
	my ($n, $bad) = (0, 0);
	for my $f (glob("$place/*"))
	{
		$n++;
		open(my $fh, '<', $f) or die "$f: $!";
		binmode $fh;
		local $/;
		my $text = <$fh>;
		close $fh;
		my ($id) = $f =~ m{/([^/]+)$};
		$bad++ unless defined $sha{$id} && sha256_hex($text) eq $sha{$id};
	}
	is("$n $bad", '4000 0', ($place =~ s{^\Q$b\E/}{}r) . ': 4,000 files, each the content its row records');
}
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.machine_policies WHERE policy::text LIKE '%CEN00C01%'}), '4000',
	'every machine has the job in its policy');
is(system('diff', '-r', "$b/src", $node->safe_psql('site', q{SELECT path FROM smsdist.package_locations WHERE package_id = 'CEN00B01'})), 0,
	'the published package is byte-identical to the source');
is(leftovers("$b/drive", "$b/logon1", "$b/logon2", "$b/dp"), '', 'no temporary file is left');

# --- the Offer Manager mid-write.  An advertisement for CEN00A01; a session
# holds the machine policies' lock: the outbox is written and the Offer
# Manager waits to store the policies.  A temporary file beside the outbox
# files stands for one whose writer was killed between create and rename
# (its process ID is no live one).
my $outbox = "$b/drive/inboxes/offerinf.box";
make_path($outbox, "$b/cap/offerinf.box");
for my $stale ("$outbox/.CEN00C02.OFR.tmp.999999", "$b/cap/offerinf.box/.CENSYSTM.LKP.tmp.999999")
{
	open(my $fh, '>', $stale) or die "$stale: $!";
	print $fh "[half written\n";
	close $fh;
}
# a step begun before the advertisement (woken by the work above) would
# write the outbox without it and then wait on the same lock: the Offer
# Manager is quiescent first
ok(wait_quiescent($node, 'offer_manager'), 'the offer_manager is idle before the advertisement');
my $policies_lock = q{SELECT pg_advisory_xact_lock(hashtextextended('smsdist machine_policies', 0))};
$hold = hold($policies_lock);
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN00C02', 'Editor', 'CEN00B01', 'Install', 'CEN00A01')});
# A wake-up from elsewhere between the check above and the lock still
# starts a step that cannot see the advertisement.  Such a step is let
# through: a second session queues for the lock behind it, the first lets
# go, the step stores its policies, and the step the advertisement's
# insert woke waits on the second session.
my $om = component_pid('offer_manager');
my $queued = q{(SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND wait_event_type = 'Lock'
                   AND query LIKE '%smsdist machine_policies%')};
for my $stale (1 .. 5)
{
	wait_until($node, 'site', "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $om", 60)
	  or last;
	last if -f "$outbox/CEN00C02.OFR";
	diag("a step begun before the advertisement waits for the policies' lock ($stale): let through");
	my $next = hold($policies_lock);
	wait_until($node, 'site', "SELECT $queued = 1", 60) or die 'the second session did not queue';
	$hold->kill_kill;
	$hold = $next;
	wait_until($node, 'site', "SELECT $queued = 0", 60) or die 'the second session did not get the lock';
}
$pid = kill_while_waiting('offer_manager', '%', $hold);
ok(-f "$outbox/CENSYSTM.LKP" && -f "$outbox/CEN00C02.OFR", 'killed with the outbox written');
kill_and_restart('offer_manager', $pid, $hold);
ok(eventually(sub { -f "$b/cap/offerinf.box/CEN00C02.INS" && !-e "$b/cap/offerinf.box/.CENSYSTM.LKP.tmp.999999" }, 60),
	'after the restart the Inbox Manager copied the files to the CAP');
ok(wait_until($node, 'site', q{SELECT count(*) = 4000 FROM smsdist.machine_policies WHERE policy::text LIKE '%CEN00C02%'}, 60),
	'every machine of the collection has the advertisement in its policy');
for my $dir ($outbox, "$b/cap/offerinf.box")
{
	open(my $fh, '<', "$dir/CENSYSTM.LKP") or die "$dir/CENSYSTM.LKP: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	my %seen;
	$seen{$1}++ while $text =~ /^name=(CEN\d{5})$/mg;
	my $twice = grep { $_ > 1 } values %seen;
	is(scalar(keys %seen) . " $twice", '4000 0', ($dir =~ s{^\Q$b\E/}{}r) . ': the lookup file names each of the 4,000 machines once');
}
is(leftovers("$b/drive", "$b/cap"), '', 'no temporary file is left in the outbox or the CAP');

done_testing();
