# Advertisements: the Offer Manager writes the offer (.OFR),
# installation (.INS) and lookup (.LKP) files and the package files (.PKG,
# .NAL) to the site server's boxes, and the Inbox Manager copies them to
# both client access points; the files follow membership, and a disabled
# advertisement leaves them.  Bad advertisements are refused.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $node = site_node('cen', site_code => 'CEN', conf => "smsdist.poll_interval = '5s'\n");
my $b = $node->basedir;
make_path("$b/dp", "$b/drive", "$b/cap1", "$b/cap2", "$b/src");
system("echo setup > '$b/src/setup.exe'") == 0 or die;
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL);
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CEN', 'distribution_point', 'CENDP1', '$b/dp'), ('CEN', 'site_server_drive', 'D', '$b/drive'),
  ('CEN', 'client_access_point', 'CAP1', '$b/cap1'), ('CEN', 'client_access_point', 'CAP2', '$b/cap2');
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86'), ('CEN00002', 'WKS-02', 'CORP', 'CEN', 'WIN95'),
  ('CEN00003', 'LAB-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.users VALUES ('CORP', 'alice', 'Alice');
INSERT INTO smsdist.user_groups VALUES ('CORP', 'staff');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations'), ('CEN00A02', 'Lab');
INSERT INTO smsdist.collection_subcollections VALUES ('CEN00A01', 'CEN00A02');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES
  ('CEN00A01', 'query', 'name LIKE ''WKS%'' AND platform = ''WINNT_X86'''),
  ('CEN00A02', 'query', 'name LIKE ''LAB%''');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, user_domain, user_name) VALUES ('CEN00A01', 'direct', 'CORP', 'alice');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, group_domain, group_name) VALUES ('CEN00A01', 'direct', 'CORP', 'staff');
INSERT INTO smsdist.packages (package_id, name, version, source_directory) VALUES ('CEN00B01', 'Editor', '2.0', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms) VALUES ('CEN00B01', 'Install', 'setup.exe /q', '{WINNT_X86}');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published here');

$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, include_subcollections,
                                    offer_time, offer_time_utc, expires_time, expires_time_utc)
VALUES ('CEN00C01', 'Editor for workstations', 'CEN00B01', 'Install', 'CEN00A01', true,
        '2026-12-01 08:00', false, '2027-01-01 00:00', false);
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time, assign_time_utc, recur_every)
VALUES ('CEN00C01', '2026-12-02 18:00', true, interval '1 day');
});

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return undef; local $/; my $t = <$fh>; close $fh; return $t; }
my @caps = ("$b/cap1", "$b/cap2");
for my $box ("$b/drive/inboxes", @caps)
{
	ok(eventually(sub { -f "$box/offerinf.box/CEN00C01.OFR" && -f "$box/offerinf.box/CEN00C01.INS"
				&& -f "$box/offerinf.box/CENSYSTM.LKP" && -f "$box/offerinf.box/CENUSR.LKP"
				&& -f "$box/offerinf.box/CENUSRGRP.LKP" && -f "$box/pkginfo.box/CEN00B01.PKG"
				&& -f "$box/pkginfo.box/CEN00B01.NAL" }),
		"$box has the offer, installation, three lookup, package and NAL files");
}
my $ofr = slurp("$b/cap1/offerinf.box/CEN00C01.OFR");
like($ofr, qr/format=offer\n/, 'the .OFR is an offer file');
like($ofr, qr/advert_id=CEN00C01\n/, 'for the advertisement');
like($ofr, qr/command_line=setup.exe \/q\n/, 'with the command line');
like($ofr, qr/offer_time=2026-12-01T08:00:00\noffer_time_utc=false\n/, 'the offer time, in client-local time');
like($ofr, qr/\[assignment 1\]\ntime=2026-12-02T18:00:00Z\ntime_utc=true\nrecur_every_minutes=1440\n/, 'and the mandatory assignment');
like(slurp("$b/cap1/offerinf.box/CEN00C01.INS"), qr/advert_id=CEN00C01\ncollection_id=CEN00A01\n/, 'the .INS names advertisement and collection');
# (membership settles while the files are first written: wait for it)
ok(eventually(sub { (slurp("$b/cap2/offerinf.box/CENSYSTM.LKP") // '') =~ /name=CEN00003\n/ }),
	'the lookup file on the CAPs settles with every member');
my $lkp = slurp("$b/cap2/offerinf.box/CENSYSTM.LKP");
like($lkp, qr/name=CEN00001\nadverts=CEN00C01\n/, 'the system lookup lists the member');
like($lkp, qr/name=CEN00003\nadverts=CEN00C01\n/, 'and the member of the subcollection');
unlike($lkp, qr/CEN00002/, 'and not the WIN95 machine');
like(slurp("$b/cap2/offerinf.box/CENUSR.LKP"), qr/name=CORP%5Calice|name=CORP\\alice/, 'the user lookup lists the user');
like(slurp("$b/cap2/offerinf.box/CENUSRGRP.LKP"), qr/staff/, 'the group lookup lists the group');
my $pkg = slurp("$b/cap1/pkginfo.box/CEN00B01.PKG");
like($pkg, qr/package_id=CEN00B01\n/, 'the .PKG describes the package');
like($pkg, qr/icon=none\n/, 'without an icon (none: no .ICO is written)');
like(slurp("$b/cap1/pkginfo.box/CEN00B01.NAL"), qr/path=\Q$b\E\/dp\/SMS_PKGC\/CEN00B01\n/, 'the .NAL names the distribution point');

# --- the management point: an agent (smsdist_client) reads its machine's policy
$node->safe_psql('postgres', 'CREATE ROLE agent LOGIN IN ROLE smsdist_client');
# (the Offer Manager stores the policies after it writes the files, and the
# Inbox Manager may copy them to the CAPs before that commit)
wait_until($node, 'site', q{SELECT smsdist.machine_policy('CEN00001')::text LIKE '%"advert_id": "CEN00C01"%'}, 60);
my $pol = $node->safe_psql('site', "SET ROLE agent; SELECT smsdist.machine_policy('CEN00001')");
like($pol, qr/"advert_id": "CEN00C01"/, 'the policy of CEN00001 has the advertisement');
like($pol, qr/"command_line": "setup.exe \/q"/, 'with its command line');
like($pol, qr/"locations": \["\Q$b\E\/dp\/SMS_PKGC\/CEN00B01"\]/, 'and where the package is');
like($node->safe_psql('site', "SET ROLE agent; SELECT smsdist.machine_policy('CEN00002')"), qr/"advertisements": \[\]/,
	'CEN00002, not a member yet, has none');

# --- membership: a machine joins; its agent, listening, is told.  The
# listener is listening before the change (LISTEN has returned), and is
# asked until the notification has come: psql prints one after the command
# during which it arrived.
my $listener = $node->background_psql('site');
$listener->query_safe('LISTEN smsdist_policy_CEN00002');
$node->safe_psql('site', "UPDATE smsdist.system_resources SET platform = 'WINNT_X86' WHERE sms_id = 'CEN00002'");
my $lout = '';
eventually(sub { $lout .= $listener->query_safe('SELECT 1'); $lout =~ /Asynchronous notification/ });
$listener->quit;
like($lout, qr/Asynchronous notification "smsdist_policy_cen00002"/, 'the listening agent of the machine that joined is notified');
like($node->safe_psql('site', "SET ROLE agent; SELECT smsdist.machine_policy('CEN00002')"), qr/"advert_id": "CEN00C01"/,
	'and its policy now has the advertisement');
ok(eventually(sub { (slurp("$b/cap2/offerinf.box/CENSYSTM.LKP") // '') =~ /name=CEN00002\n/ }),
	'a machine that joins the collection appears in the lookup file on the CAPs');

# --- disabled: the offer files leave the CAPs
$node->safe_psql('site', "UPDATE smsdist.advertisements SET enabled = false WHERE advert_id = 'CEN00C01'");
ok(eventually(sub { !-e "$b/cap1/offerinf.box/CEN00C01.OFR" && !-e "$b/cap2/offerinf.box/CEN00C01.INS"
			&& !-e "$b/cap1/offerinf.box/CENSYSTM.LKP" && !-e "$b/cap2/pkginfo.box/CEN00B01.PKG" }),
	'a disabled advertisement leaves the CAPs, with its lookup entries and package files');

# --- bad input
my ($ret, $out, $err) = $node->psql('site', q{
INSERT INTO smsdist.advertisements (name, package_id, program_name, collection_id)
VALUES ('No such program', 'CEN00B01', 'Uninstall', 'CEN00A01')});
like($err, qr/violates foreign key constraint/, 'an advertisement for a program its package lacks is refused');
($ret, $out, $err) = $node->psql('site', q{
INSERT INTO smsdist.advertisements (name, package_id, program_name, collection_id, offer_time, expires_time)
VALUES ('Backwards', 'CEN00B01', 'Install', 'CEN00A01', '2026-12-01', '2026-11-01')});
like($err, qr/expiry_is_after_offer_time/, 'an expiry before the offer time is refused');
($ret, $out, $err) = $node->psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id)
VALUES ('../../x', 'Escape', 'CEN00B01', 'Install', 'CEN00A01')});
like($err, qr/invalid SMS ID/, 'an advertisement ID that would escape a directory is refused');

$node->stop;
done_testing();
