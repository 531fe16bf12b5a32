# A job cancelled while the Sender is reading a child's distribution report
# stays cancelled.  The Sender lists the active jobs, then asks the child
# for each one's report; a cancel that commits in between must not be
# undone by what the child then answers: neither a state ("running") nor a
# request for the full package ("needs the full package"), which would
# put the cancelled row back to waiting, where nothing would ever end it.
#
# The race is made deterministic: the child's distribution_report() (CH1's
# function replaced, as a superuser there) first waits for an advisory lock
# the test holds.  The test cancels two jobs while the Sender waits inside
# that call, then lets it go on, and waits until the Sender has come back
# for a third job's report twice since (each pass after the one it was in
# starts after that one committed).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $conf = "smsdist.poll_interval = '5s'\n";
my $cen = site_node('cen', site_code => 'CEN', conf => $conf);
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
for my $pair ([$cen, 'CEN'], [$ch1, 'CH1'])
{
	my ($n, $code) = @$pair;
	my $b = $n->basedir;
	make_path("$b/dp1", "$b/drive");
	$n->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child 1', 'CEN');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'distribution_point', 'DP1', '$b/dp1'), ('$code', 'site_server_drive', 'D', '$b/drive');});
}
link_sites($cen, 'CEN', $ch1, 'CH1', child_login => '');
$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', 'host="
	  . $ch1->host . ' port=' . $ch1->port . " dbname=site user=parent_sender')");
for my $i (1 .. 3)
{
	my $src = $cen->basedir . "/source/p$i";
	make_path($src);
	system("head -c 2000 /dev/urandom > '$src/app$i.bin'") == 0 or die;
	$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0000$i', 'App $i', '$src')");
}

# CH1's reports: CEN00201 asks for the full package, the others say running;
# every call first waits while the test holds advisory lock 4242
$ch1->safe_psql('site', q{
CREATE TABLE public.report_calls (job_id text, called_at timestamptz NOT NULL DEFAULT clock_timestamp());
GRANT INSERT ON public.report_calls TO PUBLIC;
CREATE OR REPLACE FUNCTION smsdist.distribution_report(p_job_id text)
    RETURNS TABLE (site_code text, state text, detail text, last_error text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM pg_advisory_lock_shared(4242);
    PERFORM pg_advisory_unlock_shared(4242);
    INSERT INTO public.report_calls (job_id) VALUES (p_job_id);
    IF p_job_id = 'CEN00201' THEN
        RETURN QUERY SELECT 'CH1'::text, 'waiting'::text,
            'package CEN00001 needs the full package: its delta base is missing'::text, 'base missing'::text;
    ELSE
        RETURN QUERY SELECT 'CH1'::text, 'running'::text, 'extracting'::text, ''::text;
    END IF;
END $$;
});

# the test holds the lock from here
my ($in, $out, $err) = ("SELECT pg_advisory_lock(4242);\n", '', '');
my $holder = IPC::Run::start([ 'psql', '-X', '-At', '-d', $ch1->connstr('site') ], '<', \$in, '>', \$out, '2>', \$err);
$holder->pump while length $in;
ok(wait_until($ch1, 'site', "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted AND mode = 'ExclusiveLock'", 60),
	'the test holds the lock that every report call at CH1 waits for');

$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites) VALUES
  ('CEN00201', 'share_package', 'CEN00001', 'sites', '{CH1}'),
  ('CEN00202', 'share_package', 'CEN00002', 'sites', '{CH1}'),
  ('CEN00203', 'share_package', 'CEN00003', 'sites', '{CH1}')});
ok(wait_until($cen, 'site', "SELECT count(*) = 3 FROM smsdist.job_site_status WHERE phase = 'send' AND state = 'done'", 120),
	'the three packages are sent to CH1');
ok(wait_until($ch1, 'site', "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = 'parent_sender' AND wait_event = 'advisory'", 60),
	"CEN's Sender waits inside CH1's distribution_report()");

# cancelled while the Sender is in the middle of the reports
$cen->safe_psql('site', "UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'race test' WHERE job_id IN ('CEN00201', 'CEN00202')");
is($cen->safe_psql('site', "SELECT string_agg(job_id || ' ' || state, ',' ORDER BY job_id) FROM smsdist.job_site_status WHERE phase = 'distribute' AND job_id IN ('CEN00201', 'CEN00202')"),
	'CEN00201 cancelled,CEN00202 cancelled', 'the cancel takes both jobs\' distribute rows with it');
my $released = $ch1->safe_psql('site', 'SELECT clock_timestamp()');
$in .= "\\q\n";
$holder->pump while length $in;
$holder->finish;

ok(wait_until($ch1, 'site', "SELECT count(*) >= 2 FROM public.report_calls WHERE job_id = 'CEN00203' AND called_at > '$released'", 90),
	"the Sender came back twice for CEN00203's report since: the pass it waited in has committed");
ok(wait_until($cen, 'site', "SELECT NOT EXISTS (SELECT 1 FROM smsdist.job_control_pushes)", 60),
	'the cancellation reached CH1');
is($ch1->safe_psql('site', "SELECT count(*) > 0 FROM public.report_calls WHERE job_id IN ('CEN00201', 'CEN00202') AND called_at > '$released'"),
	't', 'the reports of the two jobs were answered after they were cancelled');
is($cen->safe_psql('site', "SELECT string_agg(job_id || ' ' || phase || ' ' || state, ',' ORDER BY job_id, phase) FROM smsdist.job_site_status WHERE job_id IN ('CEN00201', 'CEN00202')"),
	'CEN00201 send done,CEN00201 distribute cancelled,CEN00202 send done,CEN00202 distribute cancelled',
	'the request for the full package and the running state left the cancelled rows cancelled, and sent nothing again');
is($cen->safe_psql('site', "SELECT string_agg(job_id || ' ' || state, ',' ORDER BY job_id) FROM smsdist.jobs"),
	'CEN00201 cancelled,CEN00202 cancelled,CEN00203 active', 'the jobs: two cancelled, the third still active');
is($cen->safe_psql('site', "SELECT state || ': ' || detail FROM smsdist.job_site_status WHERE job_id = 'CEN00203' AND phase = 'distribute'"),
	'running: at the site: extracting', 'the third job\'s row follows its report');

done_testing();
