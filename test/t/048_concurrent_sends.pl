# The Sender sends to several child sites at once (docs/packages.md,
# "Sending to child sites"): a central site CEN and three child sites, one
# package sent to all three, the link to CH3 throttled (pulse mode).
#
# - CH1 and CH2 have the package while CH3's transfer is still under way:
#   a slow site does not hold up the others;
# - the limits hold: smsdist.max_concurrent_sends = 3 and
#   smsdist.max_concurrent_sends_per_site = 1, with a second package for
#   CH1 at the same time; the running transfers are sampled all along (the
#   send helpers in pg_stat_activity, and the send rows in state running)
#   and never exceed them;
# - kill -9 of the Sender while three throttled transfers are in the
#   middle: the site restarts, every transfer resumes from the child's
#   offset, and the job completes once with the package byte-identical at
#   every child.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

# (the chunks' bytes stay out of the server logs)
my $conf = "smsdist.poll_interval = '5s'\nrestart_after_crash = on\nlog_parameter_max_length = 0\n";
my $cen = site_node('cen', site_code => 'CEN',
	conf => $conf . "smsdist.max_concurrent_sends = 3\nsmsdist.max_concurrent_sends_per_site = 1\n"
	  # the finished file, not a stream: a stream is the Sender's own
	  . "smsdist.send_while_compressing = off\n");
my @codes = qw(CH1 CH2 CH3);
my %child;
$child{$_} = site_node(lc $_, site_code => $_, conf => $conf) for @codes;
for my $n ($cen, values %child)
{
	$n->safe_psql('site', q{INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL),
	  ('CH1', 'Child 1', 'CEN'), ('CH2', 'Child 2', 'CEN'), ('CH3', 'Child 3', 'CEN')});
}
for my $code (@codes)
{
	my $n = $child{$code};
	link_sites($cen, 'CEN', $n, $code, child_login => lc("rep_$code"));
	my $b = $n->basedir;
	make_path("$b/dp1", "$b/drive");
	$n->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'distribution_point', 'DP1', '$b/dp1'), ('$code', 'site_server_drive', 'D', '$b/drive');
INSERT INTO smsdist.sender_addresses (target_site_code, conninfo)
  VALUES ('CEN', 'host=} . $cen->host . ' port=' . $cen->port . qq{ dbname=site user=rep_} . lc($code) . q{')});
}

# pulse: block_kb every delay_ms (undef: unthrottled)
sub address
{
	my ($code, $delay) = @_;
	my $ci = 'host=' . $child{$code}->host . ' port=' . $child{$code}->port . ' dbname=site user=parent_sender';
	$cen->safe_psql('site', "DELETE FROM smsdist.sender_addresses WHERE target_site_code = '$code'");
	$cen->safe_psql('site', defined $delay
		? "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo, throttle, pulse_block_kb, pulse_delay_ms)
		   VALUES ('$code', '$ci', 'pulse', 64, $delay)"
		: "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('$code', '$ci')");
}

my %src;
# a package of mb MB of random bytes
sub new_package
{
	my ($id, $mb) = @_;
	my $s = $cen->basedir . "/src-$id";
	make_path("$s/bin");
	system("head -c ${mb}000000 /dev/urandom > '$s/bin/setup.exe'") == 0 or die;
	system("echo 'read me' > '$s/readme.txt'") == 0 or die;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$id', '$id', '$s');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('$id', 'Install', 'setup.exe /q');});
	$src{$id} = $s;
}

sub share_job
{
	my ($job, $package, $sites) = @_;
	$cen->safe_psql('site', qq{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('$job', 'share_package', '$package', 'sites', '$sites')});
}

sub rows
{
	my ($job) = @_;
	return $cen->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || coalesce(detail, ''), E'\\n' ORDER BY site_code, phase) FROM smsdist.job_site_status WHERE job_id = '$job'");
}

# The running transfers, sampled: the most at once in all and to one site,
# from the send helpers and (rows => 1) from the send rows in state running.
my %most = (helpers => 0, helpers_site => 0, rows => 0, rows_site => 0);
sub sample
{
	my (%opt) = @_;
	my ($rc, $out) = eval { $cen->psql('site', q{
SELECT coalesce(sum(n), 0), coalesce(max(n), 0) FROM (
  SELECT split_part(application_name, ' ', 4) AS hop, count(*) AS n FROM pg_stat_activity
   WHERE backend_type = 'smsdist send' GROUP BY 1) h}) };
	if (defined $rc && $rc == 0 && $out =~ /^(\d+)\|(\d+)$/)
	{
		$most{helpers} = $1 if $1 > $most{helpers};
		$most{helpers_site} = $2 if $2 > $most{helpers_site};
	}
	return unless $opt{rows};
	($rc, $out) = eval { $cen->psql('site', q{
SELECT coalesce(sum(n), 0), coalesce(max(n), 0) FROM (
  SELECT hop, count(*) AS n FROM (SELECT DISTINCT job_id, smsdist.route_hop(site_code) AS hop
    FROM smsdist.job_site_status WHERE phase = 'send' AND state = 'running') r GROUP BY 1) h}) };
	if (defined $rc && $rc == 0 && $out =~ /^(\d+)\|(\d+)$/)
	{
		$most{rows} = $1 if $1 > $most{rows};
		$most{rows_site} = $2 if $2 > $most{rows_site};
	}
}

# Wait for sql to answer true, sampling the running transfers meanwhile.
sub wait_sampling
{
	my ($sql, $timeout, %opt) = @_;
	return eventually(sub {
		sample(%opt);
		my ($rc, $out) = eval { $cen->psql('site', $sql) };
		return defined $rc && $rc == 0 && defined $out && $out eq 't';
	}, $timeout);
}

sub delivered_once
{
	my ($job, $package, $sites, $what) = @_;
	ok(wait_sampling("SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = '$job'", 180),
		"$what: the job completes") or diag(rows($job));
	is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.job_transitions WHERE job_id = '$job' AND to_state = 'completed'"),
		'1', "$what: once");
	is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE job_id = '$job' AND message_id = 3302"),
		scalar(@$sites), "$what: CEN said each send done once");
	for my $code (@$sites)
	{
		is(system('diff', '-r', $src{$package}, $child{$code}->basedir . "/dp1/SMS_PKGC/$package"), 0,
			"$what: the package at $code is byte-identical to the source");
	}
}

# --- a slow site does not hold up the others
address('CH1');
address('CH2');
address('CH3', 50);				# 64 KB every 50 ms: about 1.3 MB/s
new_package('CEN00B01', 12);
new_package('CEN00B02', 4);
share_job('CEN00C01', 'CEN00B01', '{CH1,CH2,CH3}');
share_job('CEN00C02', 'CEN00B02', '{CH1}');
ok(wait_sampling(q{
SELECT count(*) FILTER (WHERE site_code IN ('CH1', 'CH2') AND state = 'done') = 2
   AND count(*) FILTER (WHERE site_code = 'CH3' AND state = 'running' AND bytes_done < bytes_total) = 1
  FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND phase = 'send'}, 120, rows => 1),
	'CH1 and CH2 have the package while the transfer to CH3 is still running') or diag(rows('CEN00C01'));
ok(wait_sampling("SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00C02'", 120, rows => 1),
	'the second package reaches CH1 meanwhile') or diag(rows('CEN00C02'));
is($cen->safe_psql('site', q{
SELECT s3.started_at < s1.finished_at AND s3.started_at < s2.finished_at
  FROM smsdist.job_site_status s1, smsdist.job_site_status s2, smsdist.job_site_status s3
 WHERE s1.job_id = 'CEN00C01' AND s1.phase = 'send' AND s1.site_code = 'CH1'
   AND s2.job_id = 'CEN00C01' AND s2.phase = 'send' AND s2.site_code = 'CH2'
   AND s3.job_id = 'CEN00C01' AND s3.phase = 'send' AND s3.site_code = 'CH3'}), 't',
	'the transfer to CH3 began before those to CH1 and CH2 ended');
delivered_once('CEN00C01', 'CEN00B01', \@codes, 'throttled CH3');
delivered_once('CEN00C02', 'CEN00B02', ['CH1'], 'second package');
is($cen->safe_psql('site', "SELECT attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00C01' AND phase = 'send' AND site_code = 'CH3'"),
	'1', 'the transfer to CH3 took one attempt');

# --- kill -9 of the Sender while three throttled transfers are in the middle
address($_, 50) for @codes;
new_package('CEN00B03', 12);
share_job('CEN00C03', 'CEN00B03', '{CH1,CH2,CH3}');
ok(wait_sampling(q{
SELECT count(*) FILTER (WHERE state = 'running' AND bytes_done > 0 AND bytes_done < bytes_total) = 3
  FROM smsdist.job_site_status WHERE job_id = 'CEN00C03' AND phase = 'send'}, 120),
	'three transfers are in the middle at once') or diag(rows('CEN00C03'));
# bytes of each are durable at its child (every 0.5 s of a transfer):
# resuming is then from there
for my $code (@codes)
{
	ok(wait_until($child{$code}, 'site', "SELECT bytes_received > 0 FROM smsdist.package_transfers WHERE package_id = 'CEN00B03'", 60),
		"bytes of the transfer are durable at $code");
}
ok(wait_until($cen, 'site', q{SELECT count(*) = 3 FROM smsdist.job_site_status
  WHERE job_id = 'CEN00C03' AND phase = 'send' AND state = 'running' AND bytes_done < bytes_total}, 10),
	'and the three are still running');
my $pid = $cen->safe_psql('site', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'smsdist sender'});
ok($pid =~ /^\d+$/ && kill('KILL', $pid), 'the Sender is killed (kill -9)');
ok(eventually(sub { slurp_file($cen->logfile) =~ /smsdist sender.*terminated by signal 9/ }, 60),
	'CEN saw it, and restarts');
ok(wait_until($cen, 'site', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'smsdist sender' AND pid <> $pid", 60),
	'a new Sender runs');
# each site takes the rest from its offset: less than the whole file this time
address($_) for @codes;
delivered_once('CEN00C03', 'CEN00B03', \@codes, 'Sender killed mid-transfer');
my $bytes = $cen->safe_psql('site', "SELECT bytes FROM smsdist.package_builds WHERE package_id = 'CEN00B03'");
for my $code (@codes)
{
	my $d = $cen->safe_psql('site', "SELECT detail FROM smsdist.job_site_status WHERE job_id = 'CEN00C03' AND phase = 'send' AND site_code = '$code'");
	ok($d =~ /\((\d+) bytes this time\)/ && $1 < $bytes, "$code resumed from its offset ($d of $bytes)");
}

# the limits held all along
ok($most{helpers} <= 3 && $most{rows} <= 3, "never more than 3 transfers at once (helpers $most{helpers}, rows $most{rows})");
ok($most{helpers_site} <= 1 && $most{rows_site} <= 1,
	"never more than 1 transfer to a site at once (helpers $most{helpers_site}, rows $most{rows_site})");
ok($most{helpers} >= 2, "transfers ran at once (at most $most{helpers} seen)");

done_testing();
