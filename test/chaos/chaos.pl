# The chaos run (docs/reliability.md "Chaos run"): three sites CEN -> CH1
# -> GC1, legacy agents at the two child sites polling in loops, and for
# CHAOS_SECONDS (default 600) a stream of run-command and share jobs,
# advertisements, package updates and cancellations made at CEN while,
# every few seconds, a random smsdist process gets signal 9: a component
# worker, a helper (package builder, compressor, inflater, early
# extractor), a backend receiving from the parent site's Sender, an agent,
# and now and then a whole site (postmaster and every process, then
# started again).  Then the stream and the kills stop, the run waits for
# quiet and checks convergence:
#   every job final at every site, every target and per-site row final,
#   every advertisement at every site and its pushes recorded, no transfer
#   left open, every distribution point's tree identical to the source of
#   the version its package_locations row names, every agent's cache entry
#   verified (smsdist-agent cache verify), no temporary file left (boxes,
#   store, distribution points, drives, caches, despool directories), and
#   each component worker's anonymous memory (RssAnon) at the end within
#   10 % of its sample after warm-up (a worker restarted in between is
#   compared from its own warm-up sample).
# It prints the seed (CHAOS_SEED replays the same choices), the kills by
# kind, the jobs by final state, the bytes, and each worker's memory.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use File::Find;
use POSIX ();
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually crash_site site_processes component_workers memory_context_total);

my $seed = $ENV{CHAOS_SEED} // (time() * 1000 % 1_000_000_000);
my $seconds = $ENV{CHAOS_SECONDS} // 600;
# Memory: every kill restarts the site's server, so only the workers'
# last incarnations live long enough to show a trend.  After the last
# kill the stream goes on for a calm stretch (CHAOS_CALM, default 45 s)
# that starts with the heaviest work there is -- a new version of the
# large package sent to both sites and run on every machine -- so that
# buffers kept for good (libpq's for a kept link to a child, 8 MB chunks
# in flight; the extraction's) are in use before the warm-up sample, taken
# 20 s into the calm (or 20 s after a later start).  Earlier incarnations
# are reported from their 20th second to their last sample.
my $warmup = 20;
my $calm = $ENV{CHAOS_CALM} // 45;
my $settle_limit = $ENV{CHAOS_SETTLE} // 600;
srand($seed);
diag("chaos run: CHAOS_SEED=$seed CHAOS_SECONDS=$seconds");
note("chaos run: CHAOS_SEED=$seed CHAOS_SECONDS=$seconds");
my $agent = agent_path();
local $SIG{PIPE} = 'IGNORE';

my ($cen, $ch1, $gc1, $dps) = three_sites();
my %node = (CEN => $cen, CH1 => $ch1, GC1 => $gc1);
my @codes = qw(CEN CH1 GC1);
# a killed process makes the server restart (the TAP default is off)
for my $n (values %node)
{
	$n->safe_psql('site', 'ALTER SYSTEM SET restart_after_crash = on');
	$n->reload;
	wait_until($n, 'site', q{SELECT current_setting('restart_after_crash') = 'on'}, 60) or die 'no restart_after_crash';
}

# a query's answer, or undef (a server restarting after a kill may cut
# psql off before it has written its query)
sub answer
{
	my ($n, $sql) = @_;
	my ($rc, $out) = eval { $n->psql('site', $sql) };
	return defined $rc && $rc == 0 ? $out : undef;
}
my %base = map { $_ => $node{$_}->basedir } @codes;

# status travels up (each child's login at its parent); logon servers and
# CAPs at the children; agents' status on the real clock
my $to = sub { my ($n) = @_; return 'host=' . $n->host . ' port=' . $n->port . ' dbname=site user=child_reporter'; };
$ch1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', '" . $to->($cen) . "')");
$gc1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', '" . $to->($ch1) . "')");
for my $code (qw(CH1 GC1))
{
	my $b = $base{$code};
	make_path("$b/logon1", "$b/cap1");
	$node{$code}->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'logon_server', 'LOGON1', '$b/logon1'), ('$code', 'client_access_point', 'CAP1', '$b/cap1');});
}

# machines: three at each child site
my @machines;
for my $code (qw(CH1 GC1))
{
	for my $i (1 .. 3)
	{
		my $id = sprintf('%s%05d', $code, $i);
		push @machines, { id => $id, site => $code };
		# at each site on its way (a child learns of machines with its jobs,
		# but its agents need their keys before that)
		for my $n ($code eq 'CH1' ? ($cen, $ch1) : ($cen, $ch1, $gc1))
		{
			$n->safe_psql('site', "INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
			                       VALUES ('$id', 'WKS-$id', 'CORP', '$code', 'WINNT_X86')");
		}
	}
}
$cen->safe_psql('site', q{
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Everyone');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CEN00A01', 'query', 'name LIKE ''WKS-%''');});

# packages: each version a directory of its own (a source is never changed
# under a build), so the version a distribution point holds can be
# compared with its source.  Package 1 large (builder, compressors,
# inflater, early extractor), 2 middling, 3 small.
my %pkg = (CEN00B01 => 12, CEN00B02 => 5, CEN00B03 => 0);
my %version;
sub make_version
{
	my ($id, $v) = @_;
	my $dir = "$base{CEN}/source/$id.$v";
	make_path("$dir/bin", "$dir/doc");
	my $mb = $pkg{$id};
	for my $i (1 .. int($mb / 4))
	{
		system("head -c 4000000 /dev/urandom > '$dir/bin/part$i.bin'") == 0 or die;
	}
	system("yes 'version $v of $id' 2>/dev/null | head -c " . ($mb ? 1000000 : 20000) . " > '$dir/doc/readme.txt'") == 0 or die;
	open(my $fh, '>', "$dir/setup.sh") or die;
	print $fh "echo installing $id version $v\nexit 0\n";
	close $fh;
	return $dir;
}
for my $id (sort keys %pkg)
{
	my $dir = make_version($id, 1);
	$version{$id} = 1;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$id', 'Package $id', '$dir');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('$id', 'Install', 'sh setup.sh');});
}

# agents: one loop per machine, a poll a second; the loop outlives the
# agents the run kills
my %site_key = map { $_ => site_key_file($node{$_}, "$base{$_}/site-key.pub") } qw(CH1 GC1);
my $stop = "$base{CEN}/agents.stop";
# the agents' loops end with the run, however it ends
END
{
	if (defined $stop && open(my $sfh, '>', $stop)) { close($sfh); }
	kill 'KILL', grep { defined } map { $_->{loop} } @machines;
}

for my $m (@machines)
{
	my ($id, $code) = ($m->{id}, $m->{site});
	my $b = $base{$code};
	$m->{ws} = "$b/ws-$id";
	my @cmd = ($agent, '--sms-id', $id, '--site', $code, '--platform', 'WINNT_X86', '--state-dir', $m->{ws},
		'--logon-server', "$b/logon1", '--cap', "$b/cap1", '--site-key', $site_key{$code},
		'--machine-key', machine_key_file($node{$code}, $id), '--once');
	my $line = join(' ', map { "'$_'" } @cmd);
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		exec('bash', '-c', "while [ ! -e '$stop' ]; do $line >>'$b/agent-$id.log' 2>&1; sleep 1; done");
		die "exec: $!";
	}
	$m->{loop} = $pid;
}

# --- the processes that can be killed
my $workers = qr/smsdist (scheduler|sender|despooler|offer_manager|inbox_manager|collection_evaluator|status_manager|supervisor)\b/;
my $helpers = qr/smsdist (package builder|compressor|inflater|early extractor)/;

my %kills;
my @kinds = (('worker') x 4, ('helper') x 3, ('receiver') x 3, ('agent') x 3, 'postmaster');
sub kill_one
{
	# try the kinds in a random order from a random first one, so a kind
	# with nothing running (no build, no transfer) passes to the next
	my $first = int(rand(@kinds));
	for my $k (0 .. $#kinds)
	{
		my $kind = $kinds[($first + $k) % @kinds];
		my $code = $codes[int(rand(@codes))];
		my $n = $node{$code};
		my @pick;
		if ($kind eq 'worker') { @pick = map { $_->[0] } grep { $_->[1] =~ $workers } site_processes($n); }
		elsif ($kind eq 'helper')
		{
			# helpers live for a build or an extraction: look for up to 2 s
			my $until = time() + 2;
			do
			{
				@pick = map { $_->[0] } grep { $_->[1] =~ $helpers } map { site_processes($_) } values %node;
			} while (!@pick && time() < $until && (usleep(50_000) || 1));
		}
		elsif ($kind eq 'receiver') { @pick = map { $_->[0] } grep { $_->[1] =~ /parent_sender/ } map { site_processes($_) } $ch1, $gc1; }
		elsif ($kind eq 'agent')
		{
			# a poll lasts a moment of each second: look for one for up to 2 s
			my $until = time() + 2;
			do
			{
				@pick = map { /^\s*(\d+)\s+smsdist-agent/ ? $1 : () }
				  map { `ps -o pid=,comm= --ppid $_->{loop} 2>/dev/null` } @machines;
			} while (!@pick && time() < $until && (usleep(20_000) || 1));
		}
		else
		{
			# a whole site now and then: at most one per 30 s
			next if ($kills{postmaster} // 0) >= (time() - $::started) / 30 - 0.5;
			crash_site($n);
			$kills{postmaster}++;
			return "postmaster $code";
		}
		next unless @pick;
		my $pid = $pick[int(rand(@pick))];
		kill 'KILL', $pid;
		$kills{$kind}++;
		return "$kind $pid";
	}
	return 'nothing';
}

# --- memory: each component worker's RssAnon (kB), by site and component
my %mem;    # "$code $component" => { pid => { born, base, last } }
sub sample_memory
{
	my ($now) = @_;
	for my $code (@codes)
	{
		for my $c (site_processes($node{$code}))
		{
			my ($pid, $args) = @$c;
			next unless $args =~ $workers;
			my $key = "$code $1";
			my $st = slurp_or_empty("/proc/$pid/status");
			next unless $st =~ /^RssAnon:\s+(\d+)/m;
			my $kb = $1;
			my $r = $mem{$key}{$pid} //= { born => $now };
			$r->{last} = $kb;
			my $from = $::calm_start && $r->{born} < $::calm_start ? $::calm_start : $r->{born};
			$r->{base} //= $kb if $now - $from >= $warmup;
		}
	}
}

# every component worker alive now: "$code $component" => pid
sub workers_now
{
	my %w;
	for my $code (@codes)
	{
		my %c = component_workers($node{$code});
		$w{"$code $_"} = $c{$_} for keys %c;
	}
	return %w;
}
my %ctx_base;    # "$code $component" => [ pid, bytes ] after the calm's warm-up

sub slurp_or_empty { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t // ''; }

# --- the stream of changes at CEN
my %made = (jobs => 0, shares => 0, adverts => 0, updates => 0, cancels => 0);
my $job_seq = 0;
my $advert_seq = 0;
sub safe_cen
{
	my ($sql) = @_;
	return defined answer($cen, $sql);
}
sub change_one
{
	my $r = rand();
	my @ids = sort keys %pkg;
	my $id = $ids[int(rand(@ids))];
	if ($r < 0.45)
	{
		my @to = grep { rand() < 0.5 } map { $_->{id} } @machines;
		@to = ($machines[int(rand(@machines))]{id}) unless @to;
		my $job = sprintf('CEN0%04X', ++$job_seq);
		my $to = '{' . join(',', @to) . '}';
		$made{jobs}++ if safe_cen(qq{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, mandatory_at)
		                          VALUES ('$job', 'run_command', '$id', 'Install', 'machines', '$to', now())});
	}
	elsif ($r < 0.55)
	{
		my $job = sprintf('CEN0%04X', ++$job_seq);
		my @sites = grep { rand() < 0.6 } qw(CH1 GC1);
		@sites = ('GC1') unless @sites;
		my $to = '{' . join(',', @sites) . '}';
		$made{shares}++ if safe_cen(qq{INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
		                            VALUES ('$job', 'share_package', '$id', 'sites', '$to')});
	}
	elsif ($r < 0.70)
	{
		my $ad = sprintf('CEN1%04X', ++$advert_seq);
		$made{adverts}++ if safe_cen(qq{INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
		                             VALUES ('$ad', 'Offer $ad', '$id', 'Install', 'CEN00A01')});
	}
	elsif ($r < 0.85)
	{
		my $v = $version{$id} + 1;
		my $dir = make_version($id, $v);
		if (safe_cen(qq{UPDATE smsdist.packages SET source_directory = '$dir', source_version = $v WHERE package_id = '$id'}))
		{
			$version{$id} = $v;
			$made{updates}++;
		}
	}
	else
	{
		$made{cancels}++ if safe_cen(q{UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'chaos'
		     WHERE job_id = (SELECT job_id FROM smsdist.jobs WHERE state IN ('pending', 'active') AND source_site IS NULL
		                      ORDER BY random() LIMIT 1)});
	}
}

# --- the run: kills and the stream, then the stream alone (calm)
$::started = time();
my $kills_end = $::started + $seconds;
my $end = $kills_end + $calm;
my $next_kill = $::started + 3;
my $next_change = $::started;
while (time() < $end)
{
	my $now = time();
	if ($now >= $kills_end && !$::calm_start)
	{
		# the calm begins with the heaviest work, and every worker's
		# warm-up begins again
		$::calm_start = $now;
		for my $r (map { values %$_ } values %mem) { $r->{early} = delete $r->{base}; }
		my $v = $version{CEN00B01} + 1;
		my $dir = make_version('CEN00B01', $v);
		my $all = '{' . join(',', map { $_->{id} } @machines) . '}';
		my $job = sprintf('CEN0%04X', ++$job_seq);
		if (safe_cen(qq{UPDATE smsdist.packages SET source_directory = '$dir', source_version = $v WHERE package_id = 'CEN00B01';
		                INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, mandatory_at)
		                VALUES ('$job', 'run_command', 'CEN00B01', 'Install', 'machines', '$all', now())}))
		{
			$version{CEN00B01} = $v;
			$made{updates}++;
			$made{jobs}++;
		}
		else
		{
			fail('the calm\'s first job was not taken');
		}
		# and one change of every other kind, so that each worker has run
		# each of its paths (and cached its functions) before its warm-up
		# sample: a job to cancel, the cancellation, a share, an offer
		my $cancel = sprintf('CEN0%04X', ++$job_seq);
		my $share = sprintf('CEN0%04X', ++$job_seq);
		my $ad = sprintf('CEN1%04X', ++$advert_seq);
		if (safe_cen(qq{INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
		                VALUES ('$cancel', 'run_command', 'CEN00B03', 'Install', 'machines', '$all', now() + interval '1 day');
		                INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
		                VALUES ('$share', 'share_package', 'CEN00B02', 'sites', '{CH1,GC1}');
		                INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
		                VALUES ('$ad', 'Offer $ad', 'CEN00B02', 'Install', 'CEN00A01')}))
		{
			@made{qw(jobs shares adverts)} = ($made{jobs} + 1, $made{shares} + 1, $made{adverts} + 1);
			$made{cancels}++ if safe_cen(qq{UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'chaos' WHERE job_id = '$cancel'});
			# and one the children hold, so that the cancellation travels
			$made{cancels}++ if (answer($cen, q{WITH c AS (UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'chaos'
			     WHERE job_id = (SELECT j.job_id FROM smsdist.jobs j JOIN smsdist.job_site_status s USING (job_id)
			                      WHERE j.state = 'active' AND s.phase = 'send' AND s.state = 'done' LIMIT 1) RETURNING 1)
			     SELECT count(*) FROM c}) // 0) > 0;
		}
		$next_change = $now + 3;
	}
	if ($now >= $next_change)
	{
		change_one();
		$next_change = $now + 1 + rand(2);
	}
	if ($now >= $next_kill && $now < $kills_end)
	{
		my $what = kill_one();
		note(sprintf('%6.1f s: kill %s', $now - $::started, $what));
		$next_kill = time() + 2 + rand(4);
	}
	sample_memory(time());
	if ($::calm_start && !%ctx_base && time() >= $::calm_start + $warmup)
	{
		my %w = workers_now();
		$ctx_base{$_} = [ $w{$_}, memory_context_total($node{ substr($_, 0, 3) }, 'site', $w{$_}) ] for keys %w;
	}
	usleep(200_000);
}
diag(sprintf('the kills stopped after %.0f s, the stream %.0f s later; waiting for quiet', $seconds, $calm));

# --- quiet: every site settled, each a query that must say t
my %final = (
	'jobs final' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.jobs WHERE state IN ('pending', 'active'))},
	'per-site rows final' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_site_status WHERE state IN ('waiting', 'running', 'retrying'))},
	'targets final' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_target_status WHERE state < 'succeeded')},
	'pushes recorded' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.advertisement_pushes WHERE payload_md5 IS NULL OR last_error IS NOT NULL)
	                       AND NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes)},
	'no transfer open' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.package_transfers)},
	'no build under way' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.package_builds WHERE state = 'building')},
	'PCM queue empty' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.pcm_queue)},
	'nothing to report up' => q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_target_status WHERE report_pending)},
);
my $settle_start = time();
my $quiet = eventually(sub {
		sample_memory(time());
		for my $code (@codes)
		{
			for my $sql (values %final)
			{
				return 0 unless (answer($node{$code}, $sql) // '') eq 't';
			}
		}
		return 1;
	}, $settle_limit);
diag(sprintf('quiet after %.0f s', time() - $settle_start)) if $quiet;
for my $code (@codes)
{
	for my $what (sort keys %final)
	{
		is(answer($node{$code}, $final{$what}), 't', "$code: $what");
	}
}
ok($quiet, "every site converged within $settle_limit s of the end of the chaos")
  or diag(join("\n", map { "$_: " . $node{$_}->safe_psql('site', q{SELECT string_agg(job_id || ' ' || state, ', ') FROM smsdist.jobs WHERE state IN ('pending', 'active')}) } @codes));

# the leftover pushes' and jobs' reasons, for a failed run
for my $code (@codes)
{
	my $open = $node{$code}->safe_psql('site', q{
SELECT string_agg(format('%s %s %s %s', job_id, phase, state, coalesce(detail, '')), E'\n') FROM smsdist.job_site_status
 WHERE state IN ('waiting', 'running', 'retrying')});
	diag("$code open per-site rows:\n$open") if $open ne '';
}

# every advertisement at every site
my $ads = $cen->safe_psql('site', q{SELECT string_agg(advert_id, ',' ORDER BY advert_id) FROM smsdist.advertisements});
for my $code (qw(CH1 GC1))
{
	is($node{$code}->safe_psql('site', q{SELECT string_agg(advert_id, ',' ORDER BY advert_id) FROM smsdist.advertisements}),
		$ads, "$code holds every advertisement, once");
}

# a copy at a child of a job cancelled at CEN is cancelled, or had ended
# before the cancellation reached it (it then stays as it is,
# docs/data-model.md); a copy of a job CEN did not cancel is not cancelled
my $states = $cen->safe_psql('site', q{SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM
  (SELECT state, count(*) n FROM smsdist.jobs GROUP BY state) s});
diag("CEN jobs: $states");
my %parent = map { split /\|/ } split /\n/, $cen->safe_psql('site', q{SELECT job_id, state FROM smsdist.jobs});
for my $code (qw(CH1 GC1))
{
	my @differ;
	my $ended = 0;
	for (split /\n/, $node{$code}->safe_psql('site', q{SELECT job_id, state FROM smsdist.jobs}))
	{
		my ($j, $s) = split /\|/;
		my $p = $parent{$j} // 'none';
		$ended++ if $p eq 'cancelled' && $s ne 'cancelled';
		push @differ, "$j $s (CEN: $p)"
		  if ($p eq 'cancelled' && $s !~ /^(cancelled|completed)$/) || ($p ne 'cancelled' && $s eq 'cancelled');
	}
	is(join(', ', @differ), '', "$code: each copy of a job cancelled at CEN is cancelled or had completed, no other is cancelled");
	note("$code: $ended copies had completed before CEN's cancellation reached them");
}

# every distribution point's tree is the source of its version
for my $code (qw(CH1 GC1))
{
	my @bad;
	my $rows = $node{$code}->safe_psql('site', q{SELECT package_id, source_version, path FROM smsdist.package_locations ORDER BY 1, 3});
	my $n = 0;
	for (split /\n/, $rows)
	{
		my ($id, $v, $path) = split /\|/;
		$n++;
		my $src = "$base{CEN}/source/$id.$v";
		push @bad, "$path ($id.$v)" if system('diff', '-rq', $src, $path) != 0;
	}
	ok($n > 0, "$code has $n published package copies");
	is(join(', ', @bad), '', "$code: every distribution point holds exactly the source of its version");
}

# every agent's cache entry verified
my $stopfh;
open($stopfh, '>', $stop) and close($stopfh);
for my $m (@machines) { waitpid($m->{loop}, 0); $m->{loop} = (); }
my $cached = 0;
for my $m (@machines)
{
	my $out = `'$agent' --state-dir '$m->{ws}' cache verify 2>&1`;
	my $rc = $? >> 8;
	$cached += () = $out =~ /: verified$/mg;
	is($rc, 0, "$m->{id}: every cache entry verified") or diag($out);
}

# no temporary file
sub leftovers
{
	my @found;
	find(sub { push @found, $File::Find::name if /^\.(?!\.?$)/ || /\.tmp(\.\d+)?$/ || /\.part$/ || $File::Find::dir =~ m{/smsdist-despool$}; },
		grep { -d } @_);
	return join(', ', @found);
}
for my $code (@codes)
{
	my $b = $base{$code};
	my @dirs = ((map { @$_ } $code eq 'CEN' ? () : $dps->{$code}), "$b/drive", "$b/logon1", "$b/cap1",
		$node{$code}->data_dir . '/pg_smsdist', glob("$b/ws-*/cache"));
	is(leftovers(@dirs), '', "$code: no temporary file left");
}

# A worker keeps up to 64 MB of freed heap instead of giving it back
# (sms_keep_freed_memory() in src/core/smsdist.c: large chunks are served
# from the heap), so its RssAnon moves within that much with the chunks it
# last handled; the memory it holds in use is what its memory contexts
# hold, checked below to 10 %.
my $kept_heap_kb = 64 * 1024;

# memory: the last incarnation of each worker now against its warm-up
# sample (checked); earlier incarnations, killed, from their warm-up to
# their last sample (reported)
sample_memory(time());
my (@report, @grew, @earlier);
for my $key (sort keys %mem)
{
	my ($code) = split / /, $key;
	my $alive = { map { $_->[0] => 1 } site_processes($node{$code}) };
	for my $pid (sort { $mem{$key}{$a}{born} <=> $mem{$key}{$b}{born} } keys %{ $mem{$key} })
	{
		my $r = $mem{$key}{$pid};
		if (!$alive->{$pid})
		{
			my $b = $r->{early} // $r->{base};
			push @earlier, sprintf('%s %+.1f', $key =~ s/ /:/r, 100 * ($r->{last} - $b) / $b) if defined $b;
			next;
		}
		next unless defined $r->{base};
		my $pct = 100 * ($r->{last} - $r->{base}) / $r->{base};
		push @report, sprintf('%-26s pid %-7d %6d kB after warm-up, %6d kB at the end (%+.1f %%, %.0f s old)',
			$key, $pid, $r->{base}, $r->{last}, $pct, time() - $r->{born});
		push @grew, "$key pid $pid $r->{base} -> $r->{last} kB" if $r->{last} > $r->{base} * 1.1 + $kept_heap_kb;
	}
	push @grew, "$key: no warm-up sample of its last incarnation" unless grep { $alive->{$_} && defined $mem{$key}{$_}{base} } keys %{ $mem{$key} };
}
diag("worker memory (RssAnon):\n" . join("\n", @report)
	  . "\nearlier incarnations (killed), from their 20th second to their last sample, %:\n" . join(', ', @earlier));
is(join('; ', @grew), '', 'every worker\'s RssAnon at the end is within 10 % of its warm-up sample, plus the free heap it keeps');

# and what each holds in its memory contexts, at the calm's warm-up and now
my (@ctx, @ctx_grew);
my %w_end = workers_now();
for my $key (sort keys %ctx_base)
{
	my ($pid, $b, $bw) = @{ $ctx_base{$key} };
	if (($w_end{$key} // 0) != $pid)
	{
		push @ctx_grew, "$key: pid $pid did not live to the end";
		next;
	}
	my ($e, $ew) = memory_context_total($node{ substr($key, 0, 3) }, 'site', $pid);
	if (!defined $b || !defined $e)
	{
		push @ctx_grew, "$key: pid $pid logged no memory context total";
		next;
	}
	# Checked: what the worker holds outside the caches of code and
	# catalog (SmsTest::working_memory).  The caches are reported: a worker
	# that reaches a path for the first time after the warm-up (a function
	# it had not called, a statement it had not planned) adds to them once.
	my $pct = 100 * ($ew - $bw) / $bw;
	push @ctx, sprintf('%-26s pid %-7d %8d bytes outside the caches after warm-up, %8d at the end (%+.1f %%); in all %9d -> %9d (%+.1f %%)',
		$key, $pid, $bw, $ew, $pct, $b, $e, 100 * ($e - $b) / $b);
	# (growth: a warm-up sample in the middle of a step holds that step's
	# memory too, so the end, idle, may be lower; 64 kB: the statistics
	# and error contexts a worker keeps are a few blocks that come and go)
	push @ctx_grew, "$key pid $pid $bw -> $ew bytes outside the caches" if $ew > $bw * 1.1 + 65536;
}
diag("worker memory contexts (pg_log_backend_memory_contexts):\n" . join("\n", @ctx));
ok(%ctx_base > 0, 'the memory contexts of the workers were sampled after warm-up');
is(join('; ', @ctx_grew), '', 'every worker\'s memory contexts outside the caches at the end are within 10 % (plus 64 kB) of their total after warm-up');

# the counts
my $bytes = 0;
$bytes += $node{$_}->safe_psql('site', q{SELECT coalesce(sum(bytes_done), 0) FROM smsdist.job_site_status WHERE phase = 'send'}) for qw(CEN CH1);
my $targets = $cen->safe_psql('site', q{SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM
  (SELECT state, count(*) n FROM smsdist.job_target_status GROUP BY state) s});
diag(sprintf("chaos run: CHAOS_SEED=%s, %d s; kills: %s (%d in all)\n"
	  . "made: %d run-command jobs, %d share jobs, %d advertisements, %d package updates, %d cancellations\n"
	  . "CEN jobs: %s; CEN targets: %s\nbytes sent to the child sites (send rows, each its last attempt): %d; cache entries verified: %d",
	$seed, $seconds, join(', ', map { "$_ $kills{$_}" } sort keys %kills), eval { my $s = 0; $s += $_ for values %kills; $s },
	@made{qw(jobs shares adverts updates cancels)}, $states, $targets // '', $bytes, $cached));
ok(($kills{worker} // 0) + ($kills{receiver} // 0) + ($kills{agent} // 0) > 0 || $seconds < 10, 'processes were killed');

$_->stop('immediate') for values %node;
done_testing();
