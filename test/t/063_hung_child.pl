# A child site that takes the connection and never answers: what a site
# behind a link that drops packets looks like to the Sender (a server
# powered off across a WAN), here a TCP listener on loopback that accepts
# and says nothing.  docs/packages.md, "Sending to child sites".
#
# - The conninfo's connect_timeout bounds each attempt (libpq enforces it
#   only in its own blocking loop; the links are non-blocking).
# - Jobs queued for that site: one attempt stands for all of them.
# - Jobs sent to a child that stops answering while they are distributed
#   there: the Sender's distribution reports try the site once per
#   back-off, not once per job and round (each attempt waits for the whole
#   timeout, and the Sender sends nothing meanwhile).
# - Once the child answers again, every job completes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IO::Socket::INET;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $conf = "smsdist.poll_interval = '5s'\n";
my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $n ($cen, $ch1)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL),
	  ('CH1', 'Child 1', 'CEN'), ('CH2', 'Child 2', 'CEN'), ('CH3', 'Child 3', 'CEN')});
}
link_sites($cen, 'CEN', $ch1, 'CH1');
my $cb = $ch1->basedir;
make_path("$cb/dp1", "$cb/drive");
$ch1->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$cb/dp1'), ('CH1', 'site_server_drive', 'D', '$cb/drive');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo)
  VALUES ('CEN', 'host=} . $cen->host . ' port=' . $cen->port . q{ dbname=site user=child_reporter')});
my $ch1_conninfo = 'host=' . $ch1->host . ' port=' . $ch1->port . ' dbname=site user=parent_sender';
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', '$ch1_conninfo')");

# A silent site: accepts every connection, keeps it, answers nothing, and
# counts them in a file.  Returns its process, its conninfo and a function
# that reads the count.
sub silent_site
{
	my ($name, $timeout) = @_;
	my $count = $cen->basedir . "/accepts-$name";
	my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128, ReuseAddr => 1)
	  or die "listen: $!";
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		my @held;
		while (my $c = $listener->accept)
		{
			push @held, $c;
			open(my $fh, '>', "$count.tmp") or die;
			print $fh scalar(@held);
			close $fh;
			rename("$count.tmp", $count) or die;
		}
		exit 0;
	}
	my $port = $listener->sockport;
	close $listener;
	my $accepted = sub { open(my $fh, '<', $count) or return 0; my $n = <$fh>; close $fh; return $n + 0; };
	return ($pid, "host=127.0.0.1 port=$port dbname=site user=parent_sender connect_timeout=$timeout", $accepted);
}
my ($silent2, $silent2_conninfo, $accepted2) = silent_site('ch2', 2);
my ($silent1, $silent1_conninfo, $accepted1) = silent_site('ch1', 3);

my $src = $cen->basedir . '/source/tool';
make_path($src);
system("echo 'a small tool' > '$src/tool.txt'") == 0 or die;
$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00001', 'Tool', '$src')");

sub rows
{
	my ($like) = @_;
	return $cen->safe_psql('site', "SELECT string_agg(job_id || ' ' || site_code || ' ' || phase || ' ' || state || ' ' || coalesce(last_error, ''), E'\\n' ORDER BY 1) FROM smsdist.job_site_status WHERE job_id LIKE '$like'");
}

# --- three jobs for a site that never answers
$cen->safe_psql('site', qq{
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH2', '$silent2_conninfo');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
SELECT 'CEN0020' || i, 'share_package', 'CEN00001', 'sites', '{CH2}' FROM generate_series(1, 3) i});
ok(wait_until($cen, 'site', q{SELECT count(*) = 3 FROM smsdist.job_site_status
                               WHERE job_id LIKE 'CEN0020_' AND phase = 'send' AND state = 'retrying'
                                 AND last_error = 'could not connect: timed out'}, 120),
	'the three send rows to CH2 are retrying: could not connect, timed out') or diag(rows('CEN0020_'));
my $n = $accepted2->();
ok($n >= 1 && $n < 3, "one attempt stood for the three jobs ($n connection(s) taken)");
# (from the activation to the first failure: the first attempt and no more)
is($cen->safe_psql('site', q{SELECT (SELECT min(at) FROM smsdist.status_messages WHERE job_id LIKE 'CEN0020_' AND message_id = 3301)
                                  - (SELECT min(at) FROM smsdist.status_messages WHERE job_id LIKE 'CEN0020_' AND message_id = 3000)
                                  < interval '30 s'}), 't',
	'the attempt gave up after the connect_timeout of the conninfo (2 s), not the 60 s default');

# --- three jobs sent to CH1, which stops answering while they are
# distributed there (a session holds CH1's package_locations: its
# Despooler waits to record them)
my ($in, $out, $err) = ("BEGIN;\nLOCK TABLE smsdist.package_locations IN SHARE MODE;\n", '', '');
my $psql = agent_path() =~ s{/smsdist-agent$}{/psql}r;
my $hold = IPC::Run::start([ $psql, '-X', '-d', $ch1->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$hold->pump while length $in;
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
SELECT 'CEN0030' || i, 'share_package', 'CEN00001', 'sites', '{CH1}' FROM generate_series(1, 3) i});
ok(wait_until($cen, 'site', q{SELECT count(*) = 3 FROM smsdist.job_site_status s
                                JOIN smsdist.distribution_report_answers a ON a.job_id = s.job_id AND a.hop = 'CH1'
                               WHERE s.job_id LIKE 'CEN0030_' AND s.phase = 'send' AND s.state = 'done'
                                 AND a.reported_at IS NOT NULL}, 120),
	'the three jobs are sent to CH1, and CEN follows their distribution there') or diag(rows('CEN0030_'));
$cen->safe_psql('site', "UPDATE smsdist.sender_addresses SET conninfo = '$silent1_conninfo' WHERE target_site_code = 'CH1'");
ok(wait_until($cen, 'site', q{SELECT count(*) = 3 FROM smsdist.distribution_report_answers
                               WHERE job_id LIKE 'CEN0030_' AND hop = 'CH1'
                                 AND report_error = 'could not connect: timed out'}, 120),
	'CH1 does not answer: each job says so');
$n = $accepted1->();
ok($n >= 1 && $n < 3, "one attempt stood for the three jobs' reports ($n connection(s) taken)");

# --- CH1 answers again: every job completes
$cen->safe_psql('site', "UPDATE smsdist.sender_addresses SET conninfo = '$ch1_conninfo' WHERE target_site_code = 'CH1'");
$hold->kill_kill;
ok(wait_until($cen, 'site', q{SELECT count(*) = 3 FROM smsdist.jobs WHERE job_id LIKE 'CEN0030_' AND state = 'completed'}, 180),
	'once CH1 answers again the three jobs complete') or diag(rows('CEN0030_'));
# --- a site with no sender address: the operator's to fix, for every job
# waiting for it, tried or not
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
SELECT 'CEN0040' || i, 'share_package', 'CEN00001', 'sites', '{CH3}' FROM generate_series(1, 2) i});
ok(wait_until($cen, 'site', q{SELECT count(*) = 2 FROM smsdist.job_site_status s, smsdist.explain(s.job_id::text) e
                               WHERE s.job_id LIKE 'CEN0040_' AND s.phase = 'send' AND s.state = 'retrying'
                                 AND e.waiting_on = 'operator'
                                 AND e.reason LIKE 'waiting to be sent to site CH3: there is no enabled sender address for site CH3 (since %'}, 60),
	'a site without a sender address: every job waiting for it says so, for the operator')
  or diag($cen->safe_psql('site', q{SELECT string_agg(e.reason, E'\n') FROM smsdist.explain('CEN00401') e}));
kill 'KILL', $silent1, $silent2;
waitpid($_, 0) for ($silent1, $silent2);

done_testing();
