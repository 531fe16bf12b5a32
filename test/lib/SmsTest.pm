# SmsTest: helpers shared by the TAP tests in test/t/.
#
# site_node(name, site_code => 'CEN', database => 'site', conf => '...',
#           install_path => dir)
#   makes, configures and starts a PostgreSQL::Test::Cluster that preloads
#   smsdist, creates the site database and the extension (unless
#   create => 0), and returns the node.  install_path: run the node from
#   another installation (an earlier smsdist, test/lib/build-old-version).
# wait_until(node, db, sql, timeout_s)
#   polls every 10 ms until the query returns 't'; returns true or false.
# eventually(sub, timeout_s)
#   (on request: use SmsTest qw(:DEFAULT eventually)) calls sub every
#   100 ms until it returns true, for state outside the database (files);
#   returns true or false.
#   For both, timeout_s only detects a failure: it is raised to
#   PostgreSQL::Test::Utils' timeout_default (180 s, PG_TEST_TIMEOUT_DEFAULT)
#   so that a busy machine, which is slow, never fails a test that waits
#   for a state.  A test about how fast something happens belongs in
#   bench/, and a test that something does not happen checks it directly.
# crash_site(node)
#   (on request) the whole site at once: the postmaster and each of its
#   processes get signal 9 together; once all are gone the server is
#   started again (tried again for a few seconds while the old one's port
#   or shared memory is still held).  Returns how many processes were
#   killed, 0 if some were still there when the wait failed; dies if the
#   server does not start.
# site_processes(node)
#   (on request) the postmaster's children now: [ pid, command line ], ...
# component_workers(node)
#   (on request) each smsdist component worker alive now (not the
#   supervisor): component name => pid.
# memory_context_total(node, db, pid)
#   (on request) the bytes a backend or worker holds in its memory
#   contexts: the "Grand total" that pg_log_backend_memory_contexts()
#   makes it write to the server log, asked between two of its steps;
#   undef if it could not be asked.
# reload_settings(node, db, { name => value, ... }, component, ...)
#   reloads the configuration and returns once it is in force, so that a
#   test never acts on a worker that still has the old values: a new
#   session shows every value as SHOW does (so the postmaster has read the
#   file and signalled its processes, and every process it starts from now
#   on has the values), and each named component has begun a step since (a
#   worker reads a reload at the top of its loop).  Dies when a wait fails.
# basic_inventory(node, db)
#   a site CEN with a child CH1, one package CEN00001 (program 'Run', a small
#   source tree in the node's directory) and one system CEN00001 at CH1, so
#   jobs can be inserted: they become active and wait for the Sender.
# link_sites(parent, parent code, child, child code, child_login => name)
#   the logins each site uses at the other (see below); child_login names
#   the child's login at the parent ('' for none; one per child).
# site_key_file(node, path)
#   the site's public key (smsdist.site_public_key()) written to path
#   (default <node's directory>/site-key.pub, mode 0644), for
#   smsdist-agent --site-key; returns the path.
# machine_key_file(node, sms_id)
#   the machine's key (smsdist.machine_key(), read as superuser from the
#   site database) in <node's directory>/<sms_id>.key, mode 0600, for the
#   agent's --machine-key; returns its path.
# make_source(node, name, mb)
#   a package source <node's directory>/source/<name>: mb / 8 files of 8 MB
#   of random bytes in bin/, 3 MB of text in doc/, a small file in
#   doc/deep/er/ (mb / 8 + 2 files); returns its path.
package SmsTest;

use strict;
use File::Path ();
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(site_node wait_until basic_inventory scheduler_pid insert_job three_sites link_sites agent_site agent_path make_source site_key_file machine_key_file reload_settings $AGENT_INFO);
# An info line of smsdist-agent's log, before its message: the time (ISO
# 8601 UTC, milliseconds) and the level.
our $AGENT_INFO = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: /;
# Every agent a test runs reads no configuration file unless it names one:
# a machine's own /etc/smsdist/agent.conf must change no test.
$ENV{SMSDIST_AGENT_CONFIG} = '';
our @EXPORT_OK = qw(eventually wait_quiescent crash_site site_processes component_workers memory_context_total);

sub site_node
{
	my ($name, %opt) = @_;
	my $code = $opt{site_code} // 'CEN';
	my $db = $opt{database} // 'site';
	my $node = PostgreSQL::Test::Cluster->new($name,
		$opt{install_path} ? (install_path => $opt{install_path}) : ());
	$node->init;
	my $roots = $opt{source_roots} // $node->basedir . ', /srv';
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'smsdist'
smsdist.database = '$db'
smsdist.site_code = '$code'
smsdist.source_roots = '$roots'
smsdist.poll_interval = '60s'
max_worker_processes = 16
log_min_messages = info
} . ($opt{conf} // ''));
	$node->start;
	if ($opt{create} // 1)
	{
		$node->safe_psql('postgres', "CREATE DATABASE $db");
		$node->safe_psql($db, 'CREATE EXTENSION smsdist');
	}
	return $node;
}

# How long a wait may last before it counts as failed: never less than
# timeout_default, whatever the test asked for (see the header).
sub failure_timeout
{
	my ($asked) = @_;
	my $floor = $PostgreSQL::Test::Utils::timeout_default;
	return (defined $asked && $asked > $floor) ? $asked : $floor;
}

sub wait_until
{
	my ($node, $db, $sql, $timeout) = @_;
	my $deadline = time() + failure_timeout($timeout);
	# a server restarting after a crash may refuse the connection before
	# psql has read its input: the write then fails (EPIPE), which is no
	# answer yet, not a failed test
	local $SIG{PIPE} = 'IGNORE';
	while (time() < $deadline)
	{
		my ($rc, $out) = eval { $node->psql($db, $sql) };
		return 1 if defined $rc && $rc == 0 && defined $out && $out eq 't';
		usleep(10_000);
	}
	return 0;
}

sub eventually
{
	my ($test, $timeout) = @_;
	my $deadline = time() + failure_timeout($timeout);
	while (time() < $deadline)
	{
		return 1 if $test->();
		usleep(100_000);
	}
	return $test->() ? 1 : 0;
}

# Waits until a component of the node is quiescent: idle, no wake-up after
# the start of its last step (idle alone is also seen right before the step
# a pending wake-up starts), and no timed step due within margin seconds
# (default 10).  For a test that must act while the component does nothing;
# it still runs at once when something wakes it.  Prints the worker's row
# and returns 0 if that never happens.
sub wait_quiescent
{
	my ($node, $component, $margin) = @_;
	$margin //= 10;
	return 1 if wait_until($node, 'site', qq{SELECT a.state = 'idle'
                                                AND coalesce(w.last_wake_at, '-infinity') <= w.last_step_at
                                                AND coalesce(w.next_step_at, 'infinity') > now() + interval '$margin seconds'
                                           FROM pg_stat_activity a JOIN smsdist.workers w ON w.pid = a.pid
                                          WHERE a.backend_type = 'smsdist $component'}, 60);
	Test::More::diag($node->safe_psql('site', qq{SELECT * FROM smsdist.workers WHERE component = '$component'}));
	return 0;
}

sub crash_site
{
	my ($node) = @_;
	my $pm = $node->{_pid} or die 'no postmaster';
	my @children = map { $_->[0] } site_processes($node);
	kill 'KILL', $pm, @children;
	my $gone = eventually(sub { !grep { kill 0, $_ } $pm, @children });
	$node->_update_pid(-1);
	for my $try (1 .. 10)
	{
		return $gone ? 1 + @children : 0 if eval { $node->start(fail_ok => 1) };
		Time::HiRes::sleep(1);	# a pause between tries, not a wait for a state
	}
	die 'the crashed site did not start again';
}

sub site_processes
{
	my ($node) = @_;
	my $pm = $node->{_pid} or return ();
	return map { /^\s*(\d+)\s+(.*)$/ ? [ $1, $2 ] : () } `ps -o pid=,args= --ppid $pm 2>/dev/null`;
}

sub component_workers
{
	my ($node) = @_;
	my %w;
	for (site_processes($node))
	{
		$w{$1} = $_->[0]
		  if $_->[1] =~ /smsdist (scheduler|sender|despooler|offer_manager|inbox_manager|collection_evaluator|status_manager)\b/;
	}
	return %w;
}

sub memory_context_total
{
	my ($node, $db, $pid) = @_;
	# a worker is asked between two steps (pg_stat_activity's state idle),
	# so that the total is what it keeps, not what a step holds for a
	# while; one that is never idle is asked anyway
	eventually(sub {
			my ($rc, $out) = eval { $node->psql($db,
				"SELECT coalesce((SELECT state = 'idle' FROM pg_stat_activity WHERE pid = $pid), true)") };
			return defined $rc && $rc == 0 && defined $out && $out eq 't';
		});
	my $log = $node->logfile;
	my $from = -s $log;
	my ($rc, $out) = eval { $node->psql($db, "SELECT pg_log_backend_memory_contexts($pid)") };
	# false: no such server process (it has gone); nothing will be logged
	return undef unless defined $rc && $rc == 0 && defined $out && $out eq 't';
	my ($total, $dump);
	eventually(sub {
			open(my $fh, '<', $log) or return 0;
			seek($fh, $from, 0);
			local $/;
			my $t = <$fh> // '';
			close $fh;
			($dump, $total) = $t =~ /\[$pid\] [^\n]*logging memory contexts of PID $pid\n(.*?)\[$pid\] [^\n]*Grand total: (\d+) bytes/s;
			return defined $total;
		});
	return $total unless wantarray;
	return ($total, defined $total ? working_memory($pid, $dump) : undef);
}

# What a worker's memory contexts hold outside the caches of code and
# catalog: the grand total less every level-1 context below that fills
# once per distinct function, statement, relation or type a process uses
# (with everything under it, and the "N more child contexts" summary line
# printed at the level of the cache that has them).  Those grow as a
# long-lived worker reaches a path for the first time, so they show first
# use, not a leak; a leak in what a step allocates shows here.
my $code_caches = qr/^(?:CacheMemoryContext|PL\/pgSQL function|PLpgSQL function hash|PLpgSQL cast cache|PLpgSQL cast expressions|Relcache by OID|Type information cache|Record information cache|Operator lookup cache|Operator class cache|Btree proof lookup cache|RI compare cache|RI query cache|RI constraint cache|CFuncHash|TableSpace cache|Domain constraints|smgr relation table|Sequence values|Rendezvous variable hash)$/;

sub working_memory
{
	my ($pid, $dump) = @_;
	my ($sum, $in_cache) = (0, 0);
	for my $line (split /\n/, $dump)
	{
		my ($level, $rest) = $line =~ /\[$pid\] [^\n]*level: (\d+); (.*)$/ or next;
		my ($bytes) = $rest =~ /(\d+) total in \d+ blocks/ or next;
		if ($level == 1 && $rest =~ /^\d+ more child contexts/)
		{
			# children of the level-1 context before it
			$sum += $bytes unless $in_cache;
			next;
		}
		if ($level <= 1)
		{
			my ($name) = $rest =~ /^([^:]+):/;
			$in_cache = $level == 1 && defined $name && $name =~ $code_caches;
		}
		$sum += $bytes unless $in_cache;
	}
	return $sum;
}

sub reload_settings
{
	my ($node, $db, $settings, @components) = @_;
	$node->reload;
	my $check = join(' AND ', map { "current_setting('$_') = '$settings->{$_}'" } sort keys %$settings);
	wait_until($node, $db, "SELECT $check", 60)
	  or die 'the reload did not bring ' . join(', ', map { "$_ = $settings->{$_}" } sort keys %$settings);
	for my $c (@components)
	{
		my $steps = $node->safe_psql($db, "SELECT steps FROM smsdist.workers WHERE component = '$c'");
		$node->safe_psql($db, "SELECT smsdist.wake('$c')");
		wait_until($node, $db, "SELECT steps > $steps FROM smsdist.workers WHERE component = '$c'", 60)
		  or die "the $c took no step after the reload";
	}
	return;
}

sub basic_inventory
{
	my ($node, $db) = @_;
	my $src = $node->basedir . '/source/tool';
	mkdir $node->basedir . '/source';
	mkdir $src;
	open my $fh, '>', "$src/tool.sh" or die "$src/tool.sh: $!";
	print $fh "echo installing tool\n";
	close $fh;
	$node->safe_psql($db, qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Tool', '$src');
INSERT INTO smsdist.programs VALUES ('CEN00001', 'Run', 'tool --install', NULL, 5);
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CEN00001', 'WKS1', 'CORP', 'CH1', 'WIN95');
});
}

# insert_job(node, db, job_id, start_after_sql): a run-command job at CEN00001
sub insert_job
{
	my ($node, $db, $id, $start) = @_;
	$start //= 'clock_timestamp()';
	$node->safe_psql($db, qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after)
VALUES ('$id', 'run_command', 'CEN00001', 'Run', 'machines', '{CEN00001}', $start)});
}

sub scheduler_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'smsdist scheduler'");
}

# three_sites(): central CEN -> child CH1 -> grandchild GC1 on three servers,
# each parent with a sender address for its child, and CH1 and GC1 with two
# distribution points and a site-server drive.  Returns ($cen, $ch1, $gc1,
# \%dps), %dps mapping CH1 and GC1 to their two distribution point roots.
sub three_sites
{
	my $conf = "smsdist.poll_interval = '5s'\nmax_worker_processes = 16\n";
	my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
	my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
	my $gc1 = site_node('gc1', site_code => 'GC1', conf => $conf);

	for my $n ($cen, $ch1, $gc1)
	{
		$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN'), ('GC1', 'Grandchild', 'CH1');});
	}
	link_sites($cen, 'CEN', $ch1, 'CH1');
	link_sites($ch1, 'CH1', $gc1, 'GC1');
	my $conninfo = sub { my ($n) = @_; return 'host=' . $n->host . ' port=' . $n->port . ' dbname=site user=parent_sender'; };
	$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', '" . $conninfo->($ch1) . "')");
	$ch1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('GC1', '" . $conninfo->($gc1) . "')");

	my %dps;
	for my $pair ([$ch1, 'CH1'], [$gc1, 'GC1'])
	{
		my ($n, $code) = @$pair;
		my @d = map { $n->basedir . "/dp$_" } (1, 2);
		File::Path::make_path(@d, $n->basedir . '/drive');
		$dps{$code} = \@d;
		$n->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'distribution_point', 'DP1', '$d[0]'), ('$code', 'distribution_point', 'DP2', '$d[1]'),
  ('$code', 'site_server_drive', 'D', '} . $n->basedir . q{/drive');});
	}
	return ($cen, $ch1, $gc1, \%dps);
}


# link_sites(parent node, parent code, child node, child code): the logins
# each side uses at the other.  At the child, parent_sender (a member of
# smsdist_parent_site) speaks for the parent: the parent's sender address
# for the child names it.  At the parent, child_reporter (a member of
# smsdist_child_site) speaks for the child: the child's sender address for
# the parent (status summaries) names it.  A login speaks for one site, so
# a middle site has both, bound to different sites.
sub link_sites
{
	my ($parent, $pcode, $child, $ccode, %opt) = @_;
	my $reporter = $opt{child_login} // 'child_reporter';
	$child->safe_psql('site', qq{
CREATE ROLE parent_sender LOGIN IN ROLE smsdist_parent_site;
INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('parent_sender', '$pcode');});
	return if $reporter eq '';
	$parent->safe_psql('site', qq{
CREATE ROLE $reporter LOGIN IN ROLE smsdist_child_site;
INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('$reporter', '$ccode');});
}

# A central site for the client-agent tests: CEN with one distribution
# point, a drive, a logon server and a client access point under its base
# directory (dp, drive, logon, cap; ws for the agent's state), and a long
# poll interval.  The Status Manager still takes the CAP's status inbox
# whenever a status message is inserted (any worker's), and looks again a
# second after two close steps: a test that counts the files agents leave
# there first waits for it to be quiescent (wait_quiescent).  The agent tests run on test clocks (--now)
# fixed in 2026-2030, so the status messages' client times may be far from
# the real clock: a wide smsdist.client_time_window (conf: more settings).
# Waits until the Status Manager has made the CAP's status inbox (agents
# write only into an inbox the site made).  Returns the node.
sub agent_site
{
	my (%opt) = @_;
	my $node = site_node('cen', site_code => 'CEN',
		conf => "smsdist.poll_interval = '300s'\nsmsdist.client_time_window = '20000d'\n" . ($opt{conf} // ''));
	my $b = $node->basedir;
	File::Path::make_path(map { "$b/$_" } qw(dp drive logon cap ws));
	$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$b/logon'), ('CEN', 'client_access_point', 'CAP1', '$b/cap');});
	$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
	wait_until($node, 'site', "SELECT (pg_stat_file('$b/cap/statmsgs.box', true)).isdir", 60)
	  or die "the Status Manager did not make $b/cap/statmsgs.box";
	return $node;
}

sub machine_key_file
{
	my ($node, $id) = @_;
	my $key = $node->safe_psql('site', "SELECT smsdist.machine_key('$id')");
	my $file = $node->basedir . "/$id.key";
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh "$key\n";
	close $fh;
	chmod 0600, $file or die "$file: $!";
	return $file;
}

# The installed smsdist-agent.
sub agent_path
{
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	return "$bindir/smsdist-agent";
}

sub site_key_file
{
	my ($node, $path) = @_;
	$path //= $node->basedir . '/site-key.pub';
	my $pem = $node->safe_psql('site', 'SELECT smsdist.site_public_key()');
	open my $fh, '>', $path or die "$path: $!";
	print $fh "$pem\n";
	close $fh;
	chmod 0644, $path or die "$path: $!";
	return $path;
}

sub make_source
{
	my ($node, $name, $mb) = @_;
	my $src = $node->basedir . "/source/$name";
	File::Path::make_path("$src/bin", "$src/doc/deep/er");
	for my $i (1 .. $mb / 8)
	{
		system("head -c 8000000 /dev/urandom > '$src/bin/part$i.bin'") == 0 or die;
	}
	system("yes 'documentation line' | head -c 3000000 > '$src/doc/manual.txt'") == 0 or die;
	system("echo 'a small note' > '$src/doc/deep/er/note.txt'") == 0 or die;
	return $src;
}

1;
