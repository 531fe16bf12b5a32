# Crashes in the middle of writing files (docs/reliability.md), on one site:
#
# - the inflater (inflate.c) while it inflates a large package for the
#   Despooler: it is stopped (SIGSTOP) the moment it appears, the Despooler
#   then waits for more of the stream in the middle of the distribution
#   (the inflater has not finished), and the inflater is killed there;
# - the PCM writer (the Despooler's Run phase) with a batch written under
#   temporary names, not yet renamed: the Despooler is stopped the moment
#   a temporary PCM file is seen, the file is checked to be still there,
#   and the Despooler is killed; temporary files an earlier crash left for
#   machines that have left the site (an earlier version's name without a
#   process ID, and one of a process that is gone) are removed too;
# - the Inbox Manager while it copies the outbox to three CAPs: it takes no
#   lock, so it is stopped the moment its temporary file is seen in a CAP's
#   box, the file is checked to be still there, and it is killed.  If the
#   copy ends before one is seen, the CAPs' copies are spoiled and the
#   Inbox Manager woken to copy them again.
#
# Each kill makes the server restart (restart_after_crash).  After each:
# the job completes once, the published package is byte-identical to the
# source, every PCM file is on disk once per place with its row's content,
# every CAP holds exactly the outbox's files, and no temporary file or
# directory is left.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use File::Find;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(usleep time);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $machines = 2500;
my $node = site_node('cen', site_code => 'CEN',
	conf => "smsdist.poll_interval = '5s'\nrestart_after_crash = on\n");
my $b = $node->basedir;
my @caps = map { "$b/cap$_" } (1 .. 3);
make_path(map { "$b/$_" } qw(dp drive logon1 src/bin src/doc));
make_path(@caps);
system("head -c 6000000 /dev/urandom > '$b/src/bin/setup.exe'") == 0 or die;
system("yes 'a line of the manual, to be inflated' | head -c 80000000 > '$b/src/doc/manual.txt'") == 0 or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$b/logon1'),
  ('CEN', 'client_access_point', 'CAP1', '$caps[0]'), ('CEN', 'client_access_point', 'CAP2', '$caps[1]'),
  ('CEN', 'client_access_point', 'CAP3', '$caps[2]');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT ('CEN' || lpad(i::text, 5, '0'))::smsdist.sms_id, ('WKS-' || i)::smsdist.netbios_name, 'CORP', 'CEN', 'WINNT_X86'
  FROM generate_series(1, $machines) i;
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'setup.exe /q');});

sub leftovers
{
	my @found;
	find(sub { push @found, $File::Find::name if /^\.(?!\.?$)/ || /\.tmp(\.\d+)?$/ || /\.part$/ || $File::Find::dir =~ m{/smsdist-despool$}; }, @_);
	return join(', ', @found);
}

sub component_pid
{
	my ($c) = @_;
	wait_until($node, 'site', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist $c'", 60)
	  or die "no $c";
	return $node->safe_psql('site', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist $c'");
}

# The server restarted after a kill -9: a new process of the component,
# and the log says so for the nth time.
my $kills = 0;
sub restarted
{
	my ($c, $old, $what) = @_;
	$kills++;
	ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist $c' AND pid <> $old", 60),
		"$what: the server restarted with a new $c");
	my $n = () = slurp_file($node->logfile) =~ /terminated by signal 9/g;
	is($n, $kills, "$what: the server saw the kill");
}

# Polls the directories until a file whose name matches $re appears (no
# sleep: the window is the few milliseconds a file is written); then stops
# $pid, and if the file is still there (the process, stopped, cannot
# rename it any more) returns its path with the process stopped.  Otherwise
# lets it go on and polls again, until $deadline or $more says there is no
# more to write.
sub stop_while_file
{
	my ($pid, $re, $dirs, $deadline, $more) = @_;
	while (time() < $deadline)
	{
		for my $dir (@$dirs)
		{
			opendir(my $dh, $dir) or next;
			my @hits = grep { $_ =~ $re } readdir($dh);
			closedir($dh);
			next unless @hits;
			kill 'STOP', $pid;
			for my $f (@hits)
			{
				return "$dir/$f" if -e "$dir/$f";
			}
			kill 'CONT', $pid;
		}
		return undef if $more && !$more->();
	}
	return undef;
}

# --- the inflater.  It is stopped (SIGSTOP) the moment it appears (a
# child of the postmaster); the Despooler then reads what the queue between
# them holds and waits on its latch for more, in the middle of its step,
# the distribution still running: the inflater has not sent the end of the
# package, it is in the middle.  (Had it sent it, the Despooler would go on
# to publish and end the step.)  The inflater has no database connection:
# it is not in pg_stat_activity, but in the postmaster's children.
sub inflaters
{
	my $pm = $node->{_pid};
	my $list = -r "/proc/$pm/task/$pm/children" ? slurp_file("/proc/$pm/task/$pm/children") : `ps -o pid= --ppid $pm`;
	return grep { (eval { slurp_file("/proc/$_/cmdline") } // '') =~ /smsdist inflater/ } split ' ', $list;
}
my $despooler = component_pid('despooler');
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00C01', 'share_package', 'CEN00B01', 'sites', '{CEN}')});
my $inflater;
my $deadline = time() + 90;
while (!$inflater && time() < $deadline)
{
	($inflater) = inflaters();
}
ok($inflater && kill('STOP', $inflater), 'the inflater is stopped the moment it starts');
ok(wait_until($node, 'site', "SELECT state = 'active' AND wait_event = 'Extension' FROM pg_stat_activity WHERE pid = $despooler", 60)
	&& $node->safe_psql('site', q{SELECT state FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND phase = 'distribute'}) eq 'running'
	&& kill(0, $inflater),
	'the Despooler waits for more of the package, the distribution running: the inflater is in the middle')
  or diag($node->safe_psql('site', "SELECT pid, backend_type, wait_event_type, wait_event, state FROM pg_stat_activity WHERE pid = $despooler"));
ok(kill('KILL', $inflater), 'the inflater is killed');
restarted('despooler', $despooler, 'inflater');
ok(wait_until($node, 'site', q{SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00C01'}, 120),
	'inflater: the job completes')
  or diag($node->safe_psql('site', q{SELECT state, detail, last_error FROM smsdist.job_site_status WHERE job_id = 'CEN00C01'}));
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.job_transitions WHERE job_id = 'CEN00C01' AND to_state = 'completed'}),
	'1', 'inflater: once');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE job_id = 'CEN00C01' AND message_id = 3200}), '1',
	'inflater: distributed once');
is(system('diff', '-r', "$b/src", "$b/dp/SMS_PKGC/CEN00B01"), 0, 'inflater: the published package is byte-identical to the source');
my $left = '';
ok(eventually(sub { $left = leftovers("$b/dp", "$b/drive"); $left eq '' }, 30), 'inflater: no despool directory or temporary file is left')
  or diag($left);
is(scalar(inflaters()), 0, 'no inflater is left');

# --- the PCM writer with a batch under temporary names.  Beforehand, what
# an earlier crash would have left for two machines that have since left
# the site: an earlier version's name without a process ID, and the name
# of a process that is gone.
my @pcm_places = ("$b/drive/mancfg.box/pcmdom.box/CORP.000", "$b/logon1/pcins.box");
make_path(@pcm_places);
for my $dir (@pcm_places)
{
	for my $f (".CEN99998.tmp", ".CEN99999.tmp.999999")
	{
		open(my $fh, '>', "$dir/$f") or die "$dir/$f: $!";
		print $fh "[half a PCM file\n";
		close $fh;
	}
}
$despooler = component_pid('despooler');
my $all = q{(SELECT array_agg(sms_id ORDER BY sms_id) FROM smsdist.system_resources)};
$node->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, expires_at)
VALUES ('CEN00C02', 'run_command', 'CEN00B01', 'Install', 'machines', $all, now() + interval '7 days')});
# (an earlier version's temporary names carry no process ID)
my $tmp = stop_while_file($despooler, qr/^\.CEN0\d{4}\.tmp(\.$despooler)?$/, \@pcm_places, time() + 90);
ok($tmp, 'the Despooler is stopped with a PCM file of its batch under its temporary name') or diag('none seen');
ok(kill('KILL', $despooler), 'and killed');
restarted('despooler', $despooler, 'PCM writer');
ok(wait_until($node, 'site', q{SELECT count(*) = 0 FROM smsdist.pcm_queue}, 120)
	&& wait_until($node, 'site', qq{SELECT count(*) = $machines FROM smsdist.pcm_files WHERE jobs = '{CEN00C02}'}, 60),
	'PCM writer: every machine\'s PCM file is recorded');
my %sha = map { split /\|/ } split /\n/, $node->safe_psql('site', 'SELECT sms_id, sha256 FROM smsdist.pcm_files');
for my $dir (@pcm_places)
{
	my ($n, $bad) = (0, 0);
	for my $f (glob("$dir/*"))
	{
		$n++;
		my ($id) = $f =~ m{/([^/]+)$};
		$bad++ unless defined $sha{$id} && sha256_hex(slurp_file($f)) eq $sha{$id};
	}
	is("$n $bad", "$machines 0", "PCM writer: $dir holds $machines files, each the content its row records");
}
$left = '';
ok(eventually(sub { $left = leftovers(@pcm_places); $left eq '' }, 30),
	'PCM writer: no temporary PCM file is left, not even of the machines that left') or diag($left);
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.machine_policies WHERE policy::text LIKE '%CEN00C02%'}), "$machines",
	'PCM writer: every policy has the job');

# --- the Inbox Manager while it copies the outbox to three CAPs: 40
# advertisements for a collection of every machine (a lookup file naming
# each machine with its 40 advertisements, an offer and an install file of
# each advertisement)
my $outbox = "$b/drive/inboxes";
$node->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'All');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'platform = ''WINNT_X86''');});
ok(wait_until($node, 'site', qq{SELECT count(*) = $machines FROM smsdist.collection_members WHERE collection_id = 'CEN00A01'}, 60),
	'the collection has every machine');
my $inbox = component_pid('inbox_manager');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
SELECT 'CEN00D' || lpad(i::text, 2, '0'), 'Editor ' || i, 'CEN00B01', 'Install', 'CEN00A01' FROM generate_series(1, 40) i});
my @boxes = map { ("$_/offerinf.box", "$_/pkginfo.box") } @caps;
my $lkp = "$outbox/offerinf.box/CENSYSTM.LKP";

# the instruction files of a box (name => content)
sub box_files
{
	my ($dir) = @_;
	my %f;
	opendir(my $dh, $dir) or return {};
	for my $n (grep { /^[A-Z0-9]+\.(OFR|INS|LKP|PKG|ICO|NAL)$/ } readdir($dh))
	{
		$f{$n} = slurp_file("$dir/$n");
	}
	closedir($dh);
	return \%f;
}
sub same_boxes
{
	for my $cap (@caps)
	{
		for my $box (qw(offerinf.box pkginfo.box))
		{
			my ($want, $have) = (box_files("$outbox/$box"), box_files("$cap/$box"));
			return 0 unless join(',', sort keys %$want) eq join(',', sort keys %$have);
			for (keys %$want) { return 0 unless $want->{$_} eq $have->{$_}; }
		}
	}
	return 1;
}
ok(eventually(sub { -f $lkp && (() = slurp_file($lkp) =~ /^adverts=/mg) == $machines
	&& slurp_file($lkp) =~ /CEN00D40/ }, 90), 'the Offer Manager wrote the outbox');
$tmp = undef;
for my $round (1 .. 20)
{
	$tmp = stop_while_file($inbox, qr/^\..+\.tmp\.$inbox$/, \@boxes, time() + 60, sub { !same_boxes() });
	last if $tmp;
	# the copy ended unseen: spoil the CAPs' lookup files, copy again
	for my $cap (@caps)
	{
		open(my $fh, '>', "$cap/offerinf.box/CENSYSTM.LKP") or die;
		print $fh "spoiled\n";
		close $fh;
	}
	$node->safe_psql('site', q{SELECT smsdist.wake('inbox_manager')});
}
ok($tmp, 'the Inbox Manager is stopped with a file under its temporary name in a CAP') or diag('none seen');
ok(kill('KILL', $inbox), 'and killed');
restarted('inbox_manager', $inbox, 'Inbox Manager');
ok(eventually(\&same_boxes, 60), 'Inbox Manager: every CAP holds exactly the outbox\'s files');
$left = '';
ok(eventually(sub { $left = leftovers(@caps); $left eq '' }, 60), 'Inbox Manager: no temporary file is left in a CAP')
  or diag($left);
is(join(',', map { -f "$_/offerinf.box/CEN.HBT" ? 1 : 0 } @caps), '1,1,1', 'each CAP has the heartbeat');

$node->stop;
done_testing();
