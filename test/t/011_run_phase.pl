# The Run phase at one site: a run-command job for a collection gets one PCM
# instruction file per target workstation, named by its SMS ID, in the site
# server's mancfg.box/pcmdom.box/<DOMAIN>.000 and on both logon servers'
# pcins.box; two jobs for one machine share its file; a machine that joins
# the collection gets a file, one that leaves loses it; an expired or
# cancelled job leaves the files.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '5s'\n");
my $base = $node->basedir;
make_path("$base/dp", "$base/drive", "$base/logon1", "$base/logon2", "$base/src");
system("echo setup > '$base/src/setup.exe'") == 0 or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP', '$base/dp'),
  ('CEN', 'site_server_drive', 'D', '$base/drive'),
  ('CEN', 'logon_server', 'LOGON1', '$base/logon1'),
  ('CEN', 'logon_server', 'LOGON2', '$base/logon2');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform, memory_mb) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86', 512),
  ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WINNT_X86', 512),
  ('CEN00003', 'WKS-03', 'SALES', 'CEN', 'WINNT_X86', 512),
  ('CEN00004', 'WKS-04', 'CORP', 'CEN', 'WIN95', 512);
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'NT');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
VALUES ('CEN00A01', 'query', 'platform = ''WINNT_X86''');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Editor', '$base/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, max_run_minutes)
VALUES ('CEN00B01', 'Install', 'setup.exe /q', '{WINNT_X86}', 30),
       ('CEN00B01', 'Repair', 'setup.exe /repair', NULL, NULL);
});
ok(wait_until($node, 'site', "SELECT count(*) = 3 FROM smsdist.collection_members WHERE collection_id = 'CEN00A01'", 30),
	'the collection has its three NT machines');

sub pcm_path
{
	my ($where, $id, $domain) = @_;
	return $where eq 'site' ? "$base/drive/mancfg.box/pcmdom.box/$domain.000/$id" : "$base/$where/pcins.box/$id";
}
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return undef; local $/; my $t = <$fh>; close $fh; return $t; }
sub has_files
{
	my ($id, $domain, $timeout) = @_;
	my $deadline = time + ($timeout // 180);
	while (time < $deadline)
	{
		return 1 if -f pcm_path('site', $id, $domain) && -f pcm_path('logon1', $id) && -f pcm_path('logon2', $id);
		select(undef, undef, undef, 0.1);
	}
	return 0;
}
sub no_files
{
	my ($id, $domain, $timeout) = @_;
	my $deadline = time + ($timeout // 180);
	while (time < $deadline)
	{
		return 1 if !-e pcm_path('site', $id, $domain) && !-e pcm_path('logon1', $id) && !-e pcm_path('logon2', $id);
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# --- a run-command job for the collection
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id,
                          offer_after, mandatory_at, expires_at)
VALUES ('CEN00C01', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01',
        now() + interval '1 hour', now() + interval '2 hours', now() + interval '30 days')});
ok(has_files('CEN00001', 'CORP'), 'CEN00001 has its PCM file on the site server and both logon servers');
ok(has_files('CEN00002', 'CORP'), 'so has CEN00002');
ok(has_files('CEN00003', 'SALES'), 'and CEN00003, under its own domain SALES.000');
ok(!-e pcm_path('logon1', 'CEN00004'), 'the WIN95 machine, not in the collection, has none');
my $pcm = slurp(pcm_path('logon1', 'CEN00001'));
like($pcm, qr/^\[smsdist\]\nformat=pcm\nversion=1\nmachine=CEN00001\nsite=CEN\n/, 'the file is a PCM file for its machine');
like($pcm, qr/\[job CEN00C01\]\npackage_id=CEN00B01\npackage_name=Editor\npackage_version=1\nprogram=Install\ncommand_line=setup.exe \/q\nplatforms=WINNT_X86\n/,
	'it names the job, package, program, command line and platforms');
like($pcm, qr/offer_after=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\nmandatory_at=.*Z\nexpires_at=.*Z\nmax_run_minutes=30\n/,
	'the Offer After, mandatory and expiry times and the maximum run time');
like($pcm, qr/locations=\Q$base\E\/dp\/SMS_PKGC\/CEN00B01\n/, 'and the distribution point location');
like($pcm, qr/package_sha256=[0-9a-f]{64}\n/, 'and the hash that vouches for the package');
is(slurp(pcm_path('site', 'CEN00001', 'CORP')), $pcm, 'the site server copy and the logon server copies are the same');
# the rows are committed just after the files are renamed into place
ok($node->poll_query_until('site', "SELECT count(*) FROM smsdist.pcm_files WHERE jobs = '{CEN00C01}' AND copies = 3", '3'),
	'pcm_files lists the three files and their copies');

# --- a second job for one machine shares its file
$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN00C02', 'run_command', 'CEN00B01', 'Repair', 'machines', '{CEN00001}')});
ok(wait_until($node, 'site', "SELECT jobs = '{CEN00C01,CEN00C02}' FROM smsdist.pcm_files WHERE sms_id = 'CEN00001'", 30),
	'a second job for CEN00001 is added to its file');
$pcm = slurp(pcm_path('logon2', 'CEN00001'));
like($pcm, qr/\[job CEN00C01\].*\[job CEN00C02\]\n.*program=Repair\ncommand_line=setup.exe \/repair\nplatforms=\n/s,
	'both jobs are in the one file, in job order');

# --- membership: a machine joins, another leaves
$node->safe_psql('site', "UPDATE smsdist.system_resources SET platform = 'WINNT_X86' WHERE sms_id = 'CEN00004'");
ok(has_files('CEN00004', 'CORP'), 'a machine that joins the collection gets its file');
$node->safe_psql('site', "UPDATE smsdist.system_resources SET platform = 'WIN95' WHERE sms_id = 'CEN00002'");
ok(no_files('CEN00002', 'CORP'), 'a machine that leaves the collection loses its file');

# --- a cancelled job leaves the files, the other job stays
$node->safe_psql('site', "UPDATE smsdist.jobs SET state = 'cancelled', state_reason = 'test' WHERE job_id = 'CEN00C01'");
ok(no_files('CEN00003', 'SALES'), 'CEN00003, whose only job was cancelled, has no file any more');
ok(wait_until($node, 'site', "SELECT jobs = '{CEN00C02}' FROM smsdist.pcm_files WHERE sms_id = 'CEN00001'", 30),
	'CEN00001 keeps the file of its other job');
unlike(slurp(pcm_path('logon1', 'CEN00001')), qr/CEN00C01/, 'without the cancelled job');

# --- a logon server added later gets every file
make_path("$base/logon3");
$node->safe_psql('site', "INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CEN', 'logon_server', 'LOGON3', '$base/logon3')");
ok(eventually(sub { -f "$base/logon3/pcins.box/CEN00001" }), 'a logon server added later receives the existing PCM files');

# --- a deleted machine's file goes
$node->safe_psql('site', "DELETE FROM smsdist.system_resources WHERE sms_id = 'CEN00001'");
ok(no_files('CEN00001', 'CORP'), 'a deleted machine has no file');
ok($node->poll_query_until('site', "SELECT count(*) FROM smsdist.pcm_files WHERE sms_id = 'CEN00001'", '0'), 'nor a pcm_files row');

# --- a full logon server: the others are served, and it catches up by
# itself once it has room again
SKIP:
{
	my $small = $ENV{SMSDIST_TEST_SMALLFS};
	skip 'no small file system (run the tests as root to get one)', 10 unless $small && -w $small;
	make_path("$small/logon");
	# (fails once the file system is full: that is the point)
	system("head -c 40000000 /dev/zero > '$small/filler' 2>/dev/null");
	$node->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES ('CEN', 'logon_server', 'FULL', '$small/logon');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN00C03', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00004}');});
	ok(wait_until($node, 'site', "SELECT jobs = '{CEN00C03}' FROM smsdist.pcm_files WHERE sms_id = 'CEN00004'", 60)
		  && (slurp(pcm_path('logon1', 'CEN00004')) // '') =~ /\[job CEN00C03\]/,
		'with one logon server full, the file reaches the site server and the other logon servers');
	ok(!-e "$small/logon/pcins.box/CEN00004", 'not the full one');
	is($node->safe_psql('site', "SELECT copies FROM smsdist.pcm_files WHERE sms_id = 'CEN00004'"), '4',
		'pcm_files counts the copies made');
	like($node->safe_psql('site', "SELECT message FROM smsdist.status_messages WHERE message_id = 3210 ORDER BY 1 LIMIT 1"),
		qr/could not be written to the logon server "\Q$small\E\/logon\/pcins\.box".*No space left on device/,
		'status message 3210 says which logon server and why');
	unlink("$small/filler");
	ok(wait_until($node, 'site', "SELECT copies = 5 FROM smsdist.pcm_files WHERE sms_id = 'CEN00004'", 90)
		  && (slurp("$small/logon/pcins.box/CEN00004") // '') =~ /\[job CEN00C03\]/,
		'once it has room, the full logon server gets the file by itself');
	is(scalar(() = glob("$small/logon/pcins.box/.*.tmp")), 0, 'no temporary file is left there');

	# the logon server fills up in the middle of a batch: the room for one
	# more file is left, and a job for two machines writes both in one
	# batch; each file's row counts its own copies
	my $avail = `df -B1 --output=avail '$small' | tail -1` + 0;
	system("head -c " . ($avail - 4096) . " /dev/zero > '$small/filler' 2>/dev/null");
	$node->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines)
VALUES ('CEN00C05', 'run_command', 'CEN00B01', 'Install', 'machines', '{CEN00002,CEN00003}');});
	ok(wait_until($node, 'site', "SELECT count(*) = 2 FROM smsdist.pcm_files WHERE 'CEN00C05' = ANY (jobs)", 60),
		'a job for two machines while the logon server has room for one file');
	is($node->safe_psql('site', "SELECT string_agg(sms_id || ':' || copies, ',' ORDER BY sms_id) FROM smsdist.pcm_files WHERE 'CEN00C05' = ANY (jobs)"),
		'CEN00002:5,CEN00003:4', 'each file counts its own copies: the first reached the full logon server, the second did not');
	ok(-e "$small/logon/pcins.box/CEN00002" && !-e "$small/logon/pcins.box/CEN00003", 'as the files there say');
	unlink("$small/filler");
	ok(wait_until($node, 'site', "SELECT count(*) = 2 FROM smsdist.pcm_files WHERE 'CEN00C05' = ANY (jobs) AND copies = 5", 90),
		'once it has room again, both have their five copies');
	$node->safe_psql('site', "DELETE FROM smsdist.site_systems WHERE name = 'FULL'");
	system("rm -rf '$small/logon'");
}

$node->stop;
done_testing();
