# kill -9 of the client agent while a mandatory program runs
# (docs/reliability.md, docs/agent.md "Running programs"): the agent records
# a run only after its program ended, so the next poll runs the program
# again -- at least once per due time -- records that run once, reports it,
# and the poll after that does not run it a third time.  The program itself
# outlives the agent (a session of its own).  No temporary file is left in
# the agent's state directory: the next run removes those of writers that
# are gone.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use File::Find;
use IPC::Run;
use POSIX ();
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $agent = agent_path();
my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
make_path("$b/src", "$b/marks");
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }
# the program says it started, then waits for the test's go (a file)
spew("$b/src/install.sh", "echo started >> '$b/marks/ran.txt'\n"
	  . "while [ ! -f '$b/marks/go' ]; do sleep 0.05; done\necho finished >> '$b/marks/ran.txt'\n");
$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A01', 'direct', 'CEN00001');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES ('CEN00B01', 'Install', 'sh install.sh');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');});
my $keyfile = machine_key_file($node, 'CEN00001');
ok(wait_until($node, 'site', 'SELECT count(*) = 1 FROM smsdist.package_locations', 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
VALUES ('CEN00C01', 'Install', 'CEN00B01', 'Install', 'CEN00A01', '2026-11-01 00:00');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time) VALUES ('CEN00C01', '2026-12-01 10:00');});
ok(wait_until($node, 'site', qq{SELECT position('CEN00C01' IN coalesce(pg_read_file('$b/cap/offerinf.box/CENSYSTM.LKP', 0, 100000, true), '')) > 0
                                  AND (pg_stat_file('$b/cap/pkginfo.box/CEN00B01.PKG', true)).size IS NOT NULL
                                  AND (pg_stat_file('$b/cap/pkginfo.box/CEN00B01.NAL', true)).size IS NOT NULL}, 60),
	'the offer files have reached the CAP');

$ENV{TZ} = 'UTC';
my @args = ('--sms-id', 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86', '--state-dir', "$b/ws",
	'--logon-server', "$b/logon", '--cap', "$b/cap", '--site-key', $site_key, '--machine-key', $keyfile, '--once');
sub agent
{
	my ($now) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $agent, @args, '--now', $now ], '>', \$out, '2>', \$err);
	return ($?, $out, $err);
}

# the poll after the mandatory time downloads the package and runs the
# program; the agent is killed while it runs
my ($out, $err) = ('', '');
my $h = IPC::Run::start([ $agent, @args, '--now', '2026-12-01T12:00:00Z' ], '>', \$out, '2>', \$err);
ok(eventually(sub { slurp("$b/marks/ran.txt") eq "started\n" }, 60), 'the program runs');
kill 'KILL', $h->{KIDS}[0]{PID};
# (the program holds the agent's output open: it must end before finish)
spew("$b/marks/go", '');
$h->finish;
is($h->full_result(0) & 127, 9, 'the agent was killed with signal 9 while it ran');
ok(eventually(sub { slurp("$b/marks/ran.txt") eq "started\nfinished\n" }, 60), 'the program outlived the agent and ended');
unlike(slurp("$b/ws/runs"), qr/CEN00C01/, 'no run was recorded');

# what a writer killed between create and rename leaves: the temporaries
# of a process that is gone go at the next run (in the state directory,
# the cache, the icons and, this machine's only, the CAP's status inbox); a live
# process's and another machine's stay
my $gone = fork() // die "fork: $!";
POSIX::_exit(0) if $gone == 0;
waitpid($gone, 0);
my %left = (
	"$b/ws/.offers.tmp.$gone" => 0,
	"$b/ws/cache/.cache.state.tmp.$gone" => 0,
	"$b/ws/icons/.CEN00B01.ICO.tmp.$gone" => 0,
	"$b/cap/statmsgs.box/.CEN00001.0000000099.SMS.tmp.$gone" => 0,
	"$b/ws/cache/.cache.state.tmp.$$" => 1,
	"$b/cap/statmsgs.box/.CEN00002.0000000001.SMS.tmp.$gone" => 1);
ok(-d "$b/ws/cache" && -d "$b/cap/statmsgs.box", 'the cache and the status inbox exist');
make_path("$b/ws/icons");
spew($_, 'half') for sort keys %left;
# a directory so named is not a temporary file: left, and the cache opens
mkdir("$b/ws/cache/.odd.tmp.$gone") or die;

# the next poll runs it again, once
my ($rc, $out2, $err2) = agent('2026-12-01T12:05:00Z');
for my $f (sort keys %left)
{
	is(-e $f ? 1 : 0, $left{$f}, ($left{$f} ? 'kept: ' : 'removed: ') . substr($f, length($b) + 1));
	unlink($f);
}
ok(-d "$b/ws/cache/.odd.tmp.$gone", 'a directory named like a temporary file is left alone');
rmdir("$b/ws/cache/.odd.tmp.$gone");
is($rc, 0, 'the next poll runs') or diag($err2);
like($out2, qr/^${AGENT_INFO}ran advert CEN00C01: Program "Install" of package CEN00B01 succeeded \(exit code 0\)\.$/m,
	'it runs the program again: at least once per due time');
is(slurp("$b/marks/ran.txt"), "started\nfinished\nstarted\nfinished\n", 'the program ran twice in all');
is(scalar(() = slurp("$b/ws/runs") =~ /^advert CEN00C01 /mg), 1, 'the run is recorded once');
($rc, $out2) = agent('2026-12-01T13:00:00Z');
unlike($out2, qr/^${AGENT_INFO}ran advert CEN00C01/m, 'the poll after that does not run it again');
is(slurp("$b/marks/ran.txt"), "started\nfinished\nstarted\nfinished\n", 'so it ran no third time');

my @tmp;
find(sub { push @tmp, $File::Find::name if /^\.(?!\.?$)/ || /\.tmp(\.\d+)?$/ || /\.part$/; }, "$b/ws");
is(join(', ', @tmp), '', 'no temporary file is left in the state directory');

# the site sees the result once
$node->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
ok(wait_until($node, 'site', qq{SELECT NOT EXISTS (SELECT 1 FROM pg_ls_dir('$b/cap/statmsgs.box') f WHERE f LIKE '%.SMS')}, 30),
	'the status messages reach the site');
is($node->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE advert_id = 'CEN00C01' AND message_id = 10008}), '1',
	'one success message');
is($node->safe_psql('site', q{SELECT state FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C01' AND sms_id = 'CEN00001'}),
	'succeeded', 'the target succeeded');

done_testing();
