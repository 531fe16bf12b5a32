# Advertisements across sites (issue 4): an advertisement made at the central
# site reaches its child and grandchild with its collection, members,
# schedule and maintenance windows; each site's Offer Manager and Inbox
# Manager write the files for its own two client access points, and each
# site's Despooler writes the PCM files of a run-command job on its two
# logon servers.  Membership changes at the central site follow to the
# children's lookup files; disabling and deleting follow too.  An
# unreachable child is retried and reported; a child's own collection is
# never overwritten by its parent's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my ($cen, $ch1, $gc1) = three_sites();
my %base = (CEN => $cen->basedir, CH1 => $ch1->basedir, GC1 => $gc1->basedir);

# two logon servers and two CAPs at CEN and at CH1, one CAP at GC1; CEN gets
# a distribution point and a drive too (three_sites gives CH1 and GC1 theirs)
make_path("$base{CEN}/dp1", "$base{CEN}/drive", "$base{CEN}/src/art");
system("echo setup > '$base{CEN}/src/setup.exe'") == 0 or die;
# the package's icon: a 16x16 32-bit icon (ICONDIR, one entry, a DIB with
# its AND mask), which every site's Offer Manager writes beside the .PKG
my $dib = pack('V l l v v V V l l V V', 40, 16, 32, 1, 32, 0, 16 * 16 * 4 + 64, 0, 0, 0, 0)
  . ("\x40" x (16 * 16 * 4)) . ("\0" x 64);
my $icon = pack('v v v', 0, 1, 1) . pack('C C C C v v V V', 16, 16, 0, 0, 1, 32, length($dib), 22) . $dib;
{
	open(my $fh, '>:raw', "$base{CEN}/src/art/app.ico") or die;
	print $fh $icon;
	close $fh;
}
$cen->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'DP1', '$base{CEN}/dp1'), ('CEN', 'site_server_drive', 'D', '$base{CEN}/drive');});
for my $pair ([$cen, 'CEN', 2], [$ch1, 'CH1', 2], [$gc1, 'GC1', 1])
{
	my ($n, $code, $count) = @$pair;
	my $b = $n->basedir;
	for my $i (1 .. $count)
	{
		make_path("$b/logon$i", "$b/cap$i");
		$n->safe_psql('site', qq{
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'logon_server', 'LOGON$i', '$b/logon$i'), ('$code', 'client_access_point', 'CAP$i', '$b/cap$i');});
	}
}

# the central site's inventory holds every machine of the hierarchy
$cen->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-CEN', 'CORP', 'CEN', 'WINNT_X86'), ('CH100001', 'WKS-CH1', 'BRANCH', 'CH1', 'WINNT_X86'),
  ('GC100001', 'WKS-GC1', 'FIELD', 'GC1', 'WINNT_X86'), ('CH100009', 'SRV-CH1', 'BRANCH', 'CH1', 'WINNT_X86');
INSERT INTO smsdist.users VALUES ('CORP', 'alice', 'Alice');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations'), ('CEN00A02', 'Servers');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES
  ('CEN00A01', 'query', 'name LIKE ''WKS%'''), ('CEN00A02', 'query', 'name LIKE ''SRV%''');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name) VALUES ('CEN00A01', 'direct', 'CORP', 'alice');
INSERT INTO smsdist.maintenance_windows (collection_id, name, start_time, duration_minutes, days)
VALUES ('CEN00A01', 'Nights', '22:00', 240, '{mon,tue,wed,thu,fri}'), ('CEN00A01', 'Weekend', '01:30', 90, '{sun,sat}');
INSERT INTO smsdist.packages (package_id, name, version, source_directory, icon_file) VALUES ('CEN00B01', 'Editor', '2.0', '$base{CEN}/src', 'art/app.ico');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms) VALUES ('CEN00B01', 'Install', 'setup.exe /q', '{WINNT_X86}');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN,CH1,GC1}');
});
ok(wait_until($cen, 'site', "SELECT count(*) = 5 FROM smsdist.package_locations WHERE package_id = 'CEN00B01'", 120),
	'the package is published at CEN (one DP), CH1 and GC1 (two each)');

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return undef; local $/; my $t = <$fh>; close $fh; return $t; }

# ---- the Run phase on two logon servers at each of two sites
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_collection_id,
                          start_after, offer_after)
VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Install', 'collection', 'CEN00A01',
        '2026-11-30 00:00+00', '2026-12-01 00:00+00');});    # offered by the agents' test clock below
for my $f ("$base{CEN}/logon1/pcins.box/CEN00001", "$base{CEN}/logon2/pcins.box/CEN00001",
	"$base{CH1}/logon1/pcins.box/CH100001", "$base{CH1}/logon2/pcins.box/CH100001")
{
	ok(eventually(sub { (slurp($f) // '') =~ /\[job CEN000D1\]\n/ }, 120), "PCM file $f has the job");
}

# ---- the advertisement, at CEN
$cen->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time, offer_time_utc)
VALUES ('CEN00C01', 'Editor for workstations', 'CEN00B01', 'Install', 'CEN00A01', '2026-12-01 08:00', false);
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc) VALUES ('CEN00C01', '2026-12-02 18:00', true);});

my %caps = (CEN => ["$base{CEN}/cap1", "$base{CEN}/cap2"], CH1 => ["$base{CH1}/cap1", "$base{CH1}/cap2"],
	GC1 => ["$base{GC1}/cap1"]);
my %member = (CEN => 'CEN00001', CH1 => 'CH100001', GC1 => 'GC100001');
for my $site ('CEN', 'CH1', 'GC1')
{
	for my $cap (@{ $caps{$site} })
	{
		ok(eventually(sub {
					-f "$cap/offerinf.box/CEN00C01.OFR" && -f "$cap/offerinf.box/CEN00C01.INS"
					  && (slurp("$cap/offerinf.box/${site}SYSTM.LKP") // '') =~ /name=$member{$site}\nadverts=CEN00C01\n/
					  && -f "$cap/pkginfo.box/CEN00B01.PKG" && -f "$cap/pkginfo.box/CEN00B01.NAL" }, 120),
			"$site: $cap has the offer, the installation file, a system lookup naming $member{$site}, .PKG and .NAL");
	}
}
# the icon at every site: the child sites took icon_file with the
# advertisement and read the icon from their own copy of the package
for my $site ('CEN', 'CH1', 'GC1')
{
	my $cap = $caps{$site}[0];
	ok(eventually(sub { -f "$cap/pkginfo.box/CEN00B01.ICO" }, 60), "$site: $cap has the package's icon");
	my $got = do { open(my $fh, '<:raw', "$cap/pkginfo.box/CEN00B01.ICO") or die; local $/; <$fh> };
	ok($got eq $icon, "$site: the .ICO is the package's icon, byte for byte");
	my $pkg = slurp("$cap/pkginfo.box/CEN00B01.PKG");
	ok($pkg =~ /^icon=CEN00B01\.ICO$/m && $pkg =~ /^icon_sha256=[0-9a-f]{64}$/m,
		"$site: the .PKG names the icon and its hash") or diag($pkg);
}
is($gc1->safe_psql('site', q{SELECT icon_file || ' ' || (sha256 IS NOT NULL) FROM smsdist.package_icons WHERE package_id = 'CEN00B01'}),
	'art/app.ico true', 'GC1 (two hops down) records the icon it read');

my $ofr = slurp("$base{CH1}/cap2/offerinf.box/CEN00C01.OFR");
like($ofr, qr/offer_time=2026-12-01T08:00:00\noffer_time_utc=false\n/, 'CH1 offer file: the offer time, client-local');
like($ofr, qr/\[assignment 1\]\ntime=2026-12-02T18:00:00Z\ntime_utc=true\n/, 'CH1 offer file: the mandatory assignment');
like($ofr, qr/\[window 1\]\nstart=01:30\nduration_minutes=90\ndays=sat,sun\n\n\[window 2\]\nstart=22:00\nduration_minutes=240\ndays=mon,tue,wed,thu,fri\n/,
	'CH1 offer file: both maintenance windows of the collection, sorted, days in week order');
like(slurp("$base{CEN}/cap1/offerinf.box/CEN00C01.OFR"), qr/\[window 1\]\nstart=01:30\n/, 'the central site\'s offer file has them too');
like(slurp("$base{CH1}/cap1/offerinf.box/CH1USR.LKP") // '', qr/name=CORP\\alice\nadverts=CEN00C01\n/,
	'CH1 user lookup: the user targeted at CEN');
unlike(slurp("$base{CH1}/cap1/offerinf.box/CH1SYSTM.LKP"), qr/CEN00001|GC100001/,
	'CH1 system lookup: only machines of CH1');
unlike(slurp("$base{CH1}/cap1/offerinf.box/CH1SYSTM.LKP"), qr/CH100009/, 'not the server outside the collection');

is($ch1->safe_psql('site', q{SELECT source_site || ' ' || enabled FROM smsdist.advertisements WHERE advert_id = 'CEN00C01'}),
	'CEN true', 'CH1 holds the advertisement, marked as made at CEN');
is($gc1->safe_psql('site', q{SELECT source_site FROM smsdist.collections WHERE collection_id = 'CEN00A01'}),
	'CH1', 'GC1 holds the collection, kept by its parent CH1');
# (CH1's Offer Manager stores the policies after it writes the files, which
# its Inbox Manager may copy to the CAPs first)
wait_until($ch1, 'site', q{SELECT smsdist.machine_policy('CH100001')::text LIKE '%"advert_id": "CEN00C01"%'}, 60);
my $policy = $ch1->safe_psql('site', q{SELECT smsdist.machine_policy('CH100001')});
like($policy, qr/"advert_id": "CEN00C01"/, 'the management point at CH1: the advertisement is in the policy of CH100001');
like($policy, qr/"maintenance_windows": \[\{"days": \["sat", "sun"\], "name": "Weekend", "start": "01:30"/,
	'with the maintenance windows of its collections');
# (a Sender records a push once the child has answered: after the child
# committed what its CAPs now show)
ok($cen->poll_query_until('site', q{SELECT string_agg(hop || ':' || (payload_md5 IS NOT NULL) || ':' || coalesce(last_error, ''), ',' ORDER BY hop)
                              FROM smsdist.advertisement_pushes WHERE advert_id = 'CEN00C01'}, 'CH1:true:'),
	'CEN records what CH1 has (GC1 is CH1\'s to serve)');
ok($ch1->poll_query_until('site', q{SELECT string_agg(hop, ',') FROM smsdist.advertisement_pushes WHERE payload_md5 IS NOT NULL}, 'GC1'),
	'CH1 sent it on to GC1');

# ---- status travels up: workstations at CH1 and GC1 report to their own
# site, and each site sends its parent the summaries (CH1 passes GC1's on)
my $to = sub { my ($n) = @_; return 'host=' . $n->host . ' port=' . $n->port . ' dbname=site user=child_reporter'; };
$ch1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CEN', '" . $to->($cen) . "')");
$gc1->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('CH1', '" . $to->($ch1) . "')");
for my $w (['CH1', 'CH100001', $ch1], ['GC1', 'GC100001', $gc1])
{
	my ($site, $id, $n) = @$w;
	my ($out, $err) = ('', '');
	# the agents run on a test clock (--now) that may be far from the real one
	$n->safe_psql('site', q{ALTER SYSTEM SET smsdist.client_time_window = '20000d'});
	reload_settings($n, 'site', { 'smsdist.client_time_window' => '20000d' }, 'status_manager');
	ok(wait_until($n, 'site', "SELECT (pg_stat_file('$base{$site}/cap1/statmsgs.box', true)).isdir", 60), "$site has made its CAP's status inbox");
	IPC::Run::run([ agent_path(), '--sms-id', $id, '--site', $site, '--platform', 'WINNT_X86',
		'--state-dir', "$base{$site}/ws-$id", '--logon-server', "$base{$site}/logon1", '--cap', "$base{$site}/cap1", '--once',
		'--machine-key', machine_key_file($n, $id),
		'--site-key', site_key_file($n, "$base{$site}/site-key.pub"),
		# the offer times of the advertisement (2026-12-01 08:00, local) and
		# of the job (2026-12-01) have come: a day from now, or later
		'--now', POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time() + 86400 > 1796169600 ? time() + 86400 : 1796169600)) ],
		'>', \$out, '2>', \$err);
	note("$id: $out$err");
	like($out, qr/^${AGENT_INFO}offer advert CEN00C01 /m, "$id, a workstation of $site, is offered the central site's advertisement") or diag($err);
	$n->safe_psql('site', q{SELECT smsdist.wake('status_manager')});
}
# (an agent downloads the package when it is at its site's distribution
# points already: each site reports what its agent did, once its Status
# Manager has taken in every status file the agent wrote)
my %want;
for my $w (['CH1', $ch1, 'CH100001'], ['GC1', $gc1, 'GC100001'])
{
	my ($site, $n, $id) = @$w;
	ok(eventually(sub { !glob("$base{$site}/cap1/statmsgs.box/*.SMS") }, 60), "$site has taken in its agent's status files");
	# what the site itself says of its machine's target of the advertisement
	$want{$site} = $n->safe_psql('site', qq{SELECT state FROM smsdist.advertisement_target_status
	                                         WHERE advert_id = 'CEN00C01' AND sms_id = '$id'});
	ok($want{$site} ne 'waiting', "$site: its machine's target of the advertisement moved ($want{$site})");
}
my $summary = sub {
	my ($site) = @_;
	my $st = $want{$site};
	return join(':', $site, 1, map { $st eq $_ ? 1 : 0 } qw(offered downloaded succeeded failed)) . ':CH1';
};
ok(wait_until($cen, 'site', q{SELECT string_agg(site_code || ':' || targeted || ':' || offered || ':' || downloaded || ':' || succeeded || ':' || failed || ':' || reported_by, ',' ORDER BY site_code)
                                 = '} . $summary->('CH1') . ',' . $summary->('GC1') . q{'
                                FROM smsdist.site_status_reports WHERE kind = 'advertisement' AND object_id = 'CEN00C01'}, 60),
	'CEN holds the summaries of CH1 and of GC1 (passed on by CH1): one machine targeted at each, in the state its site says')
  or diag($cen->safe_psql('site', 'SELECT * FROM smsdist.site_status_reports'),
	"\nCH1:\n", $ch1->safe_psql('site', 'SELECT message_id, machine, job_id, advert_id, message FROM smsdist.status_messages ORDER BY status_id'),
	"\nGC1:\n", $gc1->safe_psql('site', 'SELECT message_id, machine, job_id, advert_id, message FROM smsdist.status_messages ORDER BY status_id'));
is($cen->safe_psql('site', q{SELECT string_agg(site_code || ':' || targeted, ',' ORDER BY site_code) FROM smsdist.site_status_reports
                              WHERE kind = 'job' AND object_id = 'CEN000D1'}),
	'CH1:1,GC1:1', 'and of the run-command job');
ok(wait_until($cen, 'site', qq{SELECT string_agg(sms_id || ':' || state, ',' ORDER BY sms_id) = 'CH100001:$want{CH1},GC100001:$want{GC1}'
                               FROM smsdist.advertisement_target_status WHERE advert_id = 'CEN00C01' AND site_code <> 'CEN'}, 60),
	'CEN holds the state of each child machine\'s target of the advertisement, as the children reported it')
  or diag($cen->safe_psql('site', 'SELECT * FROM smsdist.advertisement_target_status'));

# ---- membership at CEN follows to the children: a machine joins, then leaves
$cen->safe_psql('site', q{INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
                          VALUES ('CH100002', 'WKS-NEW', 'BRANCH', 'CH1', 'WINNT_X86')});
ok(eventually(sub { (slurp("$base{CH1}/cap2/offerinf.box/CH1SYSTM.LKP") // '') =~ /name=CH100002\nadverts=CEN00C01\n/ }, 60),
	'a machine that joins the collection at CEN appears in CH1\'s lookup file on both CAPs') or
  diag($ch1->safe_psql('site', 'SELECT * FROM smsdist.status_messages ORDER BY status_id DESC LIMIT 5'));
ok(eventually(sub { (slurp("$base{CH1}/cap1/offerinf.box/CH1SYSTM.LKP") // '') =~ /name=CH100002\n/ }, 30), '(the other CAP too)');
$cen->safe_psql('site', q{UPDATE smsdist.system_resources SET name = 'SRV-NEW' WHERE sms_id = 'CH100002'});
ok(eventually(sub { (slurp("$base{CH1}/cap2/offerinf.box/CH1SYSTM.LKP") // '') !~ /CH100002/ }, 60),
	'and leaves it when it no longer matches');

# ---- a window changed at CEN reaches the child's offer file
$cen->safe_psql('site', q{UPDATE smsdist.maintenance_windows SET duration_minutes = 120 WHERE name = 'Weekend'});
ok(eventually(sub { (slurp("$base{GC1}/cap1/offerinf.box/CEN00C01.OFR") // '') =~ /start=01:30\nduration_minutes=120\n/ }, 60),
	'a changed maintenance window reaches the grandchild\'s offer file');

# ---- an unreachable child: retried, reported, then delivered
$ch1->stop;
$cen->safe_psql('site', q{UPDATE smsdist.advertisements SET name = 'Editor (wave 2)' WHERE advert_id = 'CEN00C01'});
ok(wait_until($cen, 'site', q{SELECT last_error IS NOT NULL AND attempts >= 1 FROM smsdist.advertisement_pushes
                                WHERE advert_id = 'CEN00C01' AND hop = 'CH1'}, 60),
	'with CH1 down, the push fails and the reason is recorded');
ok($cen->safe_psql('site', q{SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3311 AND advert_id = 'CEN00C01'}) > 0,
	'and reported as status message 3311');
$ch1->start;
ok(eventually(sub { (slurp("$base{CH1}/cap1/offerinf.box/CEN00C01.OFR") // '') =~ /name=Editor \(wave 2\)\n/ }, 120),
	'once CH1 is back the change arrives');
is($cen->safe_psql('site', q{SELECT coalesce(last_error, 'none') FROM smsdist.advertisement_pushes WHERE advert_id = 'CEN00C01' AND hop = 'CH1'}),
	'none', 'and the error is cleared');

# ---- a child's own collection is never replaced by the parent's
$ch1->safe_psql('site', q{INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A02', 'CH1 own servers')});
$cen->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('CEN00C02', 'Editor for servers', 'CEN00B01', 'Install', 'CEN00A02');});
ok(wait_until($cen, 'site', q{SELECT last_error LIKE '%collection CEN00A02 of advertisement CEN00C02 exists at site CH1 as a collection of its own%'
                                FROM smsdist.advertisement_pushes WHERE advert_id = 'CEN00C02' AND hop = 'CH1'}, 60),
	'an advertisement whose collection ID is taken by one of the child\'s own collections is refused there, with the reason');
is($ch1->safe_psql('site', q{SELECT name || ' ' || (source_site IS NULL) FROM smsdist.collections WHERE collection_id = 'CEN00A02'}),
	'CH1 own servers true', 'and the child\'s collection is untouched');
$cen->safe_psql('site', q{DELETE FROM smsdist.advertisements WHERE advert_id = 'CEN00C02'});

# ---- disabled, then deleted, at CEN
$cen->safe_psql('site', q{UPDATE smsdist.advertisements SET enabled = false WHERE advert_id = 'CEN00C01'});
ok(eventually(sub { !-e "$base{CH1}/cap1/offerinf.box/CEN00C01.OFR" && !-e "$base{CH1}/cap2/offerinf.box/CEN00C01.OFR"
			  && !-e "$base{GC1}/cap1/offerinf.box/CEN00C01.OFR" }, 60),
	'disabled at CEN: the offer files leave the CAPs of CH1 and GC1');
is($ch1->safe_psql('site', q{SELECT enabled FROM smsdist.advertisements WHERE advert_id = 'CEN00C01'}), 'f',
	'CH1 holds it disabled');
$cen->safe_psql('site', q{DELETE FROM smsdist.advertisements WHERE advert_id = 'CEN00C01'});
ok(wait_until($gc1, 'site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.advertisements WHERE advert_id = 'CEN00C01')
                                AND NOT EXISTS (SELECT 1 FROM smsdist.collections WHERE collection_id = 'CEN00A01')}, 60),
	'deleted at CEN: gone at GC1, with the copy of its collection');
ok(wait_until($cen, 'site', q{SELECT NOT EXISTS (SELECT 1 FROM smsdist.advertisement_pushes WHERE advert_id IN ('CEN00C01', 'CEN00C02'))}, 60),
	'and CEN forgets what it had sent');

done_testing();
