# The load run (docs/reliability.md "Load run"): a central site CEN and a
# child CH1, LOAD_MACHINES machines (default 4,000: three quarters at CEN)
# in collections made by query rules over the system rows, and many agent
# processes: legacy agents polling in loops (LOAD_LEGACY, default 40) and
# advanced agents connected over libpq (LOAD_ADVANCED, default 20, each its
# own login).  For LOAD_SECONDS (default 300) a stream of run-command jobs
# for the agents' machines (they complete), run-command jobs for whole
# collections of thousands of machines (they expire after 90 s: most of
# their machines have no agent) and advertisements to the collections.
# Then the stream stops and the run waits until every job has ended.
# Checks: every job ended (completed for the agents' jobs, expired or
# completed for the collections'), every target final, nothing lost (each
# job and advertisement at CH1 that CEN sent there, every agent job's
# status messages), each worker's memory (RssAnon, sampled every 5 s) at
# the end within 10 % of its sample after warm-up (memory contexts; RssAnon
# plus the free heap a worker keeps), and no worker slot
# exhausted (the most background workers alive at once against
# max_worker_processes, no "no free background worker slot" in the logs).
# Prints throughput, the memory of each worker over time and the slots used.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually crash_site site_processes component_workers memory_context_total);

my $seconds = $ENV{LOAD_SECONDS} // 300;
my $n_machines = $ENV{LOAD_MACHINES} // 4000;
my $n_legacy = $ENV{LOAD_LEGACY} // 40;
my $n_advanced = $ENV{LOAD_ADVANCED} // 20;
my $slots = $ENV{LOAD_WORKER_SLOTS} // 16;
my $settle_limit = $ENV{LOAD_SETTLE} // 600;
# warm-up: two minutes, past the first expiries (90 s), so that every
# path of every worker has run before its sample
my $warmup = 120;
srand($ENV{LOAD_SEED} // 1);
local $SIG{PIPE} = 'IGNORE';
diag("load run: $seconds s, $n_machines machines, $n_legacy legacy and $n_advanced advanced agents, max_worker_processes = $slots");

my $conf = "smsdist.poll_interval = '5s'\nmax_worker_processes = $slots\nmax_connections = 200\n"
  . "smsdist.client_time_window = '20000d'\nlog_min_messages = warning\n";
my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
my %node = (CEN => $cen, CH1 => $ch1);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
my $ci = sub { my ($n, $u) = @_; return 'host=' . $n->host . ' port=' . $n->port . " dbname=site user=$u"; };
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', '" . $ci->($ch1, 'parent_sender') . "')");
$ch1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', '" . $ci->($cen, 'child_reporter') . "')");
my %base = (CEN => $cen->basedir, CH1 => $ch1->basedir);
for my $code (qw(CEN CH1))
{
	my $b = $base{$code};
	make_path(map { "$b/$_" } qw(dp1 drive logon1 cap1));
	$node{$code}->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'distribution_point', 'DP1', '$b/dp1'), ('$code', 'site_server_drive', 'D', '$b/drive'),
  ('$code', 'logon_server', 'LOGON1', '$b/logon1'), ('$code', 'client_access_point', 'CAP1', '$b/cap1');});
}

# machines: WKS-<n>, three quarters at CEN, the rest at CH1 (also at CH1,
# so that its agents have their keys from the start)
my $at_cen = int($n_machines * 3 / 4);
my $rows = sub { my ($from, $to) = @_; return qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
SELECT (CASE WHEN i <= $at_cen THEN 'CEN' ELSE 'CH1' END || lpad(i::text, 5, '0'))::smsdist.sms_id,
       ('WKS-' || i)::smsdist.netbios_name, 'CORP', CASE WHEN i <= $at_cen THEN 'CEN' ELSE 'CH1' END, 'WINNT_X86'
  FROM generate_series($from, $to) i}; };
$cen->safe_psql('site', $rows->(1, $n_machines));
$ch1->safe_psql('site', $rows->($at_cen + 1, $n_machines));
# collections by query rules: WKS-1..., WKS-2..., ..., and all
$cen->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) SELECT 'CEN00A0' || d, 'Names starting WKS-' || d FROM generate_series(1, 4) d;
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
  SELECT 'CEN00A0' || d, 'query', format('name LIKE %L', 'WKS-' || d || '%') FROM generate_series(1, 4) d;
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A09', 'Everyone');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A09', 'query', 'name LIKE ''WKS-%''');});

# packages: a large one (builder, compressors, inflater), two small
my @packages;
for my $p ([ 'CEN00B01', 8 ], [ 'CEN00B02', 0 ], [ 'CEN00B03', 0 ])
{
	my ($id, $mb) = @$p;
	my $dir = "$base{CEN}/source/$id";
	make_path($dir);
	system("head -c " . ($mb * 1000000 || 30000) . " /dev/urandom > '$dir/data.bin'") == 0 or die;
	system("echo 'exit 0' > '$dir/setup.sh'") == 0 or die;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$id', 'Package $id', '$dir');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('$id', 'Install', 'sh setup.sh');});
	push @packages, $id;
}

# agents: machine i of each site's first ones
my $agent = agent_path();
my %site_key = map { $_ => site_key_file($node{$_}, "$base{$_}/site-key.pub") } qw(CEN CH1);
my $stop = "$base{CEN}/agents.stop";
my (@agent_ids, @loops, @advanced);
# the agents' loops end with the run, however it ends
END
{
	if (defined $stop && open(my $sfh, '>', $stop)) { close($sfh); }
	kill 'KILL', @loops, @advanced if @loops || @advanced;
}

sub machine_id { my ($i) = @_; return ($i <= $at_cen ? 'CEN' : 'CH1') . sprintf('%05d', $i); }
for my $k (1 .. $n_legacy)
{
	# every fourth legacy agent at CH1, the others at CEN
	my $i = $k % 4 == 0 ? $at_cen + $k : $k;
	my $id = machine_id($i);
	my $code = substr($id, 0, 3);
	my $b = $base{$code};
	my $line = join(' ', map { "'$_'" } ($agent, '--sms-id', $id, '--site', $code, '--platform', 'WINNT_X86',
		'--state-dir', "$b/ws-$id", '--logon-server', "$b/logon1", '--cap', "$b/cap1", '--site-key', $site_key{$code},
		'--machine-key', machine_key_file($node{$code}, $id), '--once'));
	my $pid = fork() // die;
	if ($pid == 0)
	{
		exec('bash', '-c', "while [ ! -e '$stop' ]; do $line >>'$b/agent-$id.log' 2>&1; sleep 2; done");
		die;
	}
	push @loops, $pid;
	push @agent_ids, $id;
}
for my $k (1 .. $n_advanced)
{
	my $id = machine_id(1000 + $k);
	my $role = lc("agent_$id");
	$cen->safe_psql('site', "CREATE ROLE $role LOGIN IN ROLE smsdist_client;
	                         INSERT INTO smsdist.machine_logins (role_name, sms_id) VALUES ('$role', '$id')");
	my $pid = fork() // die;
	if ($pid == 0)
	{
		open(STDOUT, '>>', "$base{CEN}/agent-$id.log");
		open(STDERR, '>&', \*STDOUT);
		exec($agent, '--sms-id', $id, '--site', 'CEN', '--platform', 'WINNT_X86', '--state-dir', "$base{CEN}/ws-$id",
			'--management-point', $ci->($cen, $role), '--interval', '30');
		die;
	}
	push @advanced, $pid;
	push @agent_ids, $id;
}

# --- sampling: worker memory every 5 s, background workers every second
my %mem;        # "$code $component" => [ [t, kB, pid], ... ]
my %most = (CEN => 0, CH1 => 0);
my $t0;
my $last_mem = 0;
sub sample
{
	my $now = time();
	for my $code (qw(CEN CH1))
	{
		my @c = site_processes($node{$code});
		# background workers: smsdist's and parallel query's
		my $bg = grep { $_->[1] =~ /smsdist |parallel worker/ } @c;
		$most{$code} = $bg if $bg > $most{$code};
		next if $now - $last_mem < 5;
		for (@c)
		{
			my ($pid, $args) = @$_;
			next unless $args =~ /smsdist (scheduler|sender|despooler|offer_manager|inbox_manager|collection_evaluator|status_manager|supervisor)\b/;
			my $key = "$code $1";
			open(my $fh, '<', "/proc/$pid/status") or next;
			my ($kb) = join('', <$fh>) =~ /^RssAnon:\s+(\d+)/m;
			close $fh;
			push @{ $mem{$key} }, [ $now - $t0, $kb, $pid ] if defined $kb;
		}
	}
	$last_mem = $now if $now - $last_mem >= 5;
}

# every component worker alive now: "$code $component" => pid
sub workers_now
{
	my %w;
	for my $code (qw(CEN CH1))
	{
		my %c = component_workers($node{$code});
		$w{"$code $_"} = $c{$_} for keys %c;
	}
	return %w;
}
my %ctx_base;

# --- the stream
my %made = (agent_jobs => 0, collection_jobs => 0, adverts => 0);
my ($job_seq, $ad_seq) = (0, 0);
my @agent_list = @agent_ids;
$t0 = time();
my $end = $t0 + $seconds;
my ($next_job, $next_coll, $next_ad) = ($t0, $t0 + 5, $t0 + 2);
while (time() < $end)
{
	my $now = time();
	my @sql;
	if ($now >= $next_job)
	{
		# a run-command job for a few agents' machines: two a second
		my @to = map { $agent_list[ int(rand(@agent_list)) ] } 1 .. 1 + int(rand(5));
		my %u = map { $_ => 1 } @to;
		push @sql, sprintf(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, mandatory_at)
		                     VALUES ('CEN%05X', 'run_command', '%s', 'Install', 'machines', '{%s}', now())},
			++$job_seq, $packages[ int(rand(@packages)) ], join(',', sort keys %u));
		$made{agent_jobs}++;
		$next_job += 0.5;
	}
	if ($now >= $next_coll)
	{
		# a job for a whole collection (about 1,000 or all machines): one
		# per 5 s, expiring after 90 s
		push @sql, sprintf(q{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id, expires_at)
		                     VALUES ('CEN%05X', 'run_command', '%s', 'Install', 'collection', 'CEN00A0%d', now() + interval '90 s')},
			++$job_seq, $packages[ 1 + int(rand(2)) ], 1 + int(rand(4)));
		$made{collection_jobs}++;
		$next_coll += 5;
	}
	if ($now >= $next_ad)
	{
		push @sql, sprintf(q{INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
		                     VALUES ('CEN1%04X', 'Offer', '%s', 'Install', '%s')},
			++$ad_seq, $packages[ int(rand(@packages)) ], rand() < 0.2 ? 'CEN00A09' : 'CEN00A0' . (1 + int(rand(4))));
		$made{adverts}++;
		$next_ad += 3;
	}
	$cen->safe_psql('site', join(";\n", @sql)) if @sql;
	sample();
	if (!%ctx_base && time() - $t0 >= $warmup)
	{
		my %w = workers_now();
		$ctx_base{$_} = [ $w{$_}, memory_context_total($node{ substr($_, 0, 3) }, 'site', $w{$_}) ] for keys %w;
	}
	usleep(200_000);
}
my $stream_s = time() - $t0;
diag(sprintf('the stream stopped after %.0f s: %d jobs for agents, %d for collections, %d advertisements; waiting for every job to end',
	$stream_s, @made{qw(agent_jobs collection_jobs adverts)}));
my $quiet = eventually(sub {
		sample();
		return $cen->safe_psql('site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.jobs WHERE state IN ('pending', 'active'))}) eq 't'
		  && $ch1->safe_psql('site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.jobs WHERE state IN ('pending', 'active'))}) eq 't';
	}, $settle_limit);
my $all_s = time() - $t0;
ok($quiet, sprintf('every job ended, %.0f s after the stream stopped', $all_s - $stream_s))
  or diag($cen->safe_psql('site', q{SELECT string_agg(job_id || ' ' || state, ', ') FROM smsdist.jobs WHERE state IN ('pending', 'active')}));

# every job ended the way it should
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.jobs WHERE target_type = 'machines' AND state <> 'completed'}), '0',
	'every job for agents\' machines completed');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.jobs WHERE target_type = 'collection' AND state NOT IN ('completed', 'expired')}), '0',
	'every job for a collection completed or expired');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.jobs}), $made{agent_jobs} + $made{collection_jobs}, 'no job lost at CEN');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.job_target_status WHERE state < 'succeeded'}), '0', 'every target at CEN is final');
is($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.job_target_status t JOIN smsdist.jobs j USING (job_id)
                              WHERE j.target_type = 'machines' AND t.state <> 'succeeded'}), '0',
	'every agent machine\'s target succeeded (its agent ran the program and it was heard)');
# what CEN sent to CH1 is there, once
# (a job that expired while it was sent may be at CH1 with its send row
# cancelled at CEN: CH1's copy then expired too)
my %sent = map { split /\|/ } split /\n/, $cen->safe_psql('site', q{SELECT job_id, state FROM smsdist.job_site_status WHERE site_code = 'CH1' AND phase = 'send'});
my %at_ch1 = map { split /\|/ } split /\n/, $ch1->safe_psql('site', q{SELECT job_id, state FROM smsdist.jobs});
is(join(',', grep { $sent{$_} eq 'done' && !exists $at_ch1{$_} } sort keys %sent), '', 'CH1 holds every job whose send CEN recorded done');
is(join(',', grep { !exists $sent{$_} || ($sent{$_} ne 'done' && $at_ch1{$_} !~ /^(expired|cancelled)$/) } sort keys %at_ch1), '',
	'and no other, but copies of jobs that ended while they were sent, ended too');
ok(wait_until($cen, 'site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.advertisement_pushes WHERE payload_md5 IS NULL OR last_error IS NOT NULL)}, 120),
	'every advertisement push is recorded');
is($ch1->safe_psql('site', q{SELECT count(*) FROM smsdist.advertisements}), $made{adverts}, 'CH1 holds every advertisement');

# stop the agents
if (open(my $sfh, ">", $stop)) { close($sfh); }
kill 'TERM', @advanced;
waitpid($_, 0) for @loops, @advanced;
@loops = @advanced = ();

# figures
my $fig = $cen->safe_psql('site', q{SELECT
  (SELECT count(*) FROM smsdist.jobs WHERE state = 'completed') || ' completed, '
  || (SELECT count(*) FROM smsdist.jobs WHERE state = 'expired') || ' expired; targets: '
  || (SELECT count(*) FROM smsdist.job_target_status) || ' ('
  || (SELECT count(*) FROM smsdist.job_target_status WHERE state = 'succeeded') || ' succeeded); status messages: '
  || (SELECT count(*) FROM smsdist.status_messages) || '; PCM files: '
  || (SELECT count(*) FROM smsdist.pcm_files) || '; collection members: '
  || (SELECT count(*) FROM smsdist.collection_members)});
my $agent_msgs = $cen->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE machine IS NOT NULL});
my $ch1_fig = $ch1->safe_psql('site', q{SELECT count(*) || ' jobs, ' || (SELECT count(*) FROM smsdist.status_messages) || ' status messages' FROM smsdist.jobs});
diag(sprintf("CEN: %s\nCH1: %s\nthroughput: %.1f jobs/min made, %.1f status messages/s from agents (over %.0f s)",
	$fig, $ch1_fig, 60 * ($made{agent_jobs} + $made{collection_jobs}) / $stream_s, $agent_msgs / $all_s, $all_s));

# memory over time: per worker, a sample each minute, and the check
my (@lines, @grew);
for my $key (sort keys %mem)
{
	my @s = @{ $mem{$key} };
	my $pid = $s[-1][2];
	@s = grep { $_->[2] == $pid } @s;    # its last process (one, unless it restarted)
	my ($base) = grep { $_->[0] - $s[0][0] >= $warmup } @s;
	my @minute = map { my $m = $_; (grep { $_->[0] >= $m * 60 } @s)[0] // () } 0 .. int($s[-1][0] / 60);
	push @lines, sprintf('%-24s %s', $key, join(' ', map { sprintf('%.0fs:%d', $_->[0], $_->[1]) } @minute, $s[-1]));
	next unless $base;
	my $pct = 100 * ($s[-1][1] - $base->[1]) / $base->[1];
	$lines[-1] .= sprintf('  (%+.1f %% from %.0f s)', $pct, $base->[0]);
	# (a worker keeps up to 64 MB of freed heap: sms_keep_freed_memory())
	push @grew, "$key $base->[1] -> $s[-1][1] kB" if $s[-1][1] > $base->[1] * 1.1 + 64 * 1024;
}
diag("worker memory over time (RssAnon kB at seconds since the start):\n" . join("\n", @lines));
is(join('; ', @grew), '', 'every worker\'s RssAnon stays within 10 % of its sample after warm-up, plus the free heap it keeps');
my (@ctx, @ctx_grew);
my %w_end = workers_now();
for my $key (sort keys %ctx_base)
{
	my ($pid, $b, $bw) = @{ $ctx_base{$key} };
	my ($e, $ew) = ($w_end{$key} // 0) == $pid ? memory_context_total($node{ substr($key, 0, 3) }, 'site', $pid) : ();
	if (!defined $b || !defined $e)
	{
		push @ctx_grew, "$key: pid $pid not sampled at both ends";
		next;
	}
	# checked outside the caches of code and catalog, as in the chaos run
	my $pct = 100 * ($ew - $bw) / $bw;
	push @ctx, sprintf('%-24s pid %-7d %8d bytes outside the caches after warm-up, %8d at the end (%+.1f %%); in all %9d -> %9d (%+.1f %%)',
		$key, $pid, $bw, $ew, $pct, $b, $e, 100 * ($e - $b) / $b);
	# (growth: a sample taken in the middle of a step holds that step's
	# memory too, so the end, idle, may be lower)
	push @ctx_grew, "$key $bw -> $ew bytes outside the caches" if $ew > $bw * 1.1 + 65536;
}
diag("worker memory contexts (pg_log_backend_memory_contexts):\n" . join("\n", @ctx));
is(join('; ', @ctx_grew), '', 'every worker\'s memory contexts outside the caches at the end are within 10 % (plus 64 kB) of their total after warm-up');

# worker slots
diag("background workers alive at once (most): CEN $most{CEN}, CH1 $most{CH1}, of max_worker_processes = $slots");
my $log = join('', map { slurp_file($_->logfile) } $cen, $ch1);
my @exhausted = $log =~ /^.*(?:no free background worker slot|out of background worker slots).*$/mg;
is(scalar(@exhausted), 0, 'no worker slot ran out') or diag(join("\n", @exhausted[0 .. ($#exhausted > 4 ? 4 : $#exhausted)]));
ok($most{CEN} < $slots && $most{CH1} < $slots, 'a free slot was left at every sample');

$_->stop('immediate') for $cen, $ch1;
done_testing();
