# Signed instruction files, from the attacker's side: whoever can write a
# logon server or CAP share must not make a workstation run anything.  The
# site signs every file it writes (smsdist.signing_key); the agent verifies
# each with the site's public key (--site-key) and refuses, with status
# message 10010 and the reason, a hand-edited PCM file, a forged offer, a
# file signed with another key, a file whose signature was stripped,
# truncated or followed by more text, a signed file put under another name,
# a forged year-9999 heartbeat and a replayed older one.  Each case runs
# nothing.  Then the site's key is rotated: an agent that knows only the old
# key refuses the new files, one installed with both accepts them, and
# every PCM file is signed again.  Only smsdist_reader (and the roles
# above it) may read the public key.
#
# The hostile files are planted in a copy of the site's shares (h/logon,
# h/cap) that the site does not manage, so no Inbox Manager step can put
# the genuine files back in the middle of a case.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path remove_tree);
use Digest::SHA qw(sha256_hex);
use MIME::Base64 qw(encode_base64);
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest qw(:DEFAULT eventually);

my $agent = agent_path();
my $node = agent_site();
my $b = $node->basedir;
my $site_key = site_key_file($node);
make_path("$b/src", "$b/marks");
sub spew { my ($f, $t) = @_; open(my $fh, '>', $f) or die "$f: $!"; print $fh $t; close $fh; }
sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return ''; local $/; my $t = <$fh>; close $fh; return $t; }
spew("$b/src/install.sh", "echo \"\$1\" >> \"$b/marks/ran.txt\"\n");	# programs get no variables of the agent's
$ENV{MARKS} = "$b/marks";
$ENV{TZ} = 'UTC';

$node->safe_psql('site', qq{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform) VALUES
  ('CEN00001', 'WKS-01', 'CORP', 'CEN', 'WINNT_X86');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CEN00A01', 'Workstations');
INSERT INTO smsdist.collection_rules (collection_id, rule_type, resource_sms_id) VALUES ('CEN00A01', 'direct', 'CEN00001');
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN00B01', 'Tools', '$b/src');
INSERT INTO smsdist.programs (package_id, program_name, command_line) VALUES
  ('CEN00B01', 'Install', 'sh install.sh advert'), ('CEN00B01', 'Job', 'sh install.sh job');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', 'CEN00B01', 'sites', '{CEN}');
});
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.package_locations", 60), 'the package is published');
$node->safe_psql('site', q{
INSERT INTO smsdist.advertisements (advert_id, name, package_id, program_name, collection_id, offer_time)
  VALUES ('CEN00C01', 'Install', 'CEN00B01', 'Install', 'CEN00A01', '2026-11-01 00:00');
INSERT INTO smsdist.advertisement_assignments (advert_id, assign_time) VALUES ('CEN00C01', '2026-12-01 10:00');
INSERT INTO smsdist.jobs (job_id, job_type, package_id, program_name, target_type, target_machines, start_after, offer_after, mandatory_at)
  VALUES ('CEN000D1', 'run_command', 'CEN00B01', 'Job', 'machines', '{CEN00001}', '2026-01-01 00:00+00', '2026-01-01 00:00+00',
          '2026-12-01 10:00+00');
});
my $sig_re = qr/\n\[signature\]\nkey_id=([0-9a-f]{16})\ned25519=[A-Za-z0-9+\/]{86}==\n\z/;
ok(eventually(sub {
			slurp("$b/cap/offerinf.box/CENSYSTM.LKP") =~ /CEN00C01/
			  && slurp("$b/cap/offerinf.box/CEN00C01.OFR") =~ $sig_re
			  && -f "$b/cap/pkginfo.box/CEN00B01.NAL"
			  && slurp("$b/logon/pcins.box/CEN00001") =~ /\[job CEN000D1\]/ }),
	'the site has written its files to the logon server and the CAP');

# ---- every file the site writes carries the site's signature
my $key_id = substr(sha256_hex(substr(pem_der($site_key), -32)), 0, 16);
for my $f ("$b/logon/pcins.box/CEN00001", map({ "$b/cap/offerinf.box/$_" } qw(CEN00C01.OFR CEN00C01.INS CENSYSTM.LKP CEN.HBT)),
	map({ "$b/cap/pkginfo.box/$_" } qw(CEN00B01.PKG CEN00B01.NAL)))
{
	my ($id) = slurp($f) =~ $sig_re;
	is($id // '', $key_id, "$f is signed with the site's key $key_id");
}
# (the rows are committed just after the files are in place)
ok($node->poll_query_until('site', q{SELECT string_agg(DISTINCT key_id, ',') FROM smsdist.pcm_files}, $key_id),
	'pcm_files records the key that signed each PCM file');

# the DER form of the first public key of a PEM file
sub pem_der
{
	my ($pem) = @_;
	my $der = `openssl pkey -pubin -in '$pem' -outform DER`;
	die "openssl pkey failed" if $? != 0;
	return $der;
}

# ---- the hostile shares and the agent
sub fresh_shares
{
	remove_tree("$b/h");
	make_path("$b/h");
	system("cp -a '$b/logon' '$b/h/logon' && cp -a '$b/cap' '$b/h/cap'") == 0 or die;
	# a status inbox of its own, as the site makes them (agents never do)
	remove_tree("$b/h/cap/statmsgs.box");
	mkdir("$b/h/cap/statmsgs.box") or die;
	chmod 01733, "$b/h/cap/statmsgs.box";
}
my $machine_key = machine_key_file($node, 'CEN00001');
my $ws = 0;
# run the agent once with a fresh state directory (or $opt{ws}); returns (rc, out, err)
sub agent
{
	my (%opt) = @_;
	my ($out, $err) = ('', '');
	my $dir = $opt{ws} // "$b/ws/" . ++$ws;
	my @keys = map { ('--site-key', $_) } @{ $opt{keys} // [$site_key] };
	IPC::Run::run([ $agent, '--sms-id', $opt{id} // 'CEN00001', '--site', 'CEN', '--platform', 'WINNT_X86',
		'--state-dir', $dir, '--logon-server', $opt{logon} // "$b/h/logon", '--cap', $opt{cap} // "$b/h/cap", '--once',
		'--test-minute', '1', @keys, '--machine-key', $machine_key, @{ $opt{more} // [ '--now', '2026-12-01T12:00:00Z' ] } ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}
# the 10010 messages written to the hostile CAP
sub refusals
{
	my @t;
	for my $f (sort glob("$b/h/cap/statmsgs.box/*.SMS"))
	{
		my $m = slurp($f);
		push @t, $1 if $m =~ /^message_id=10010\n/m && $m =~ /^text=(.*)$/m;
	}
	return join("\n", @t);
}
sub body_of { my ($text) = @_; $text =~ s/\n\[signature\]\n.*\z/\n/s or die 'not signed'; return $text; }

# a key of another site, and a signer with it
system("openssl genpkey -algorithm ed25519 -out '$b/other.pem' 2>/dev/null") == 0 or die;
system("openssl pkey -in '$b/other.pem' -pubout -out '$b/other.pub'") == 0 or die;
my $other_id = substr(sha256_hex(substr(pem_der("$b/other.pub"), -32)), 0, 16);
sub sign_other
{
	my ($body) = @_;
	$body .= "\n";
	spew("$b/body.bin", $body);
	system("openssl pkeyutl -sign -rawin -inkey '$b/other.pem' -in '$b/body.bin' -out '$b/sig.bin'") == 0 or die;
	my $sig = slurp("$b/sig.bin");
	return $body . "[signature]\nkey_id=$other_id\ned25519=" . encode_base64($sig, '') . "\n";
}

# ---- first, the genuine files: both programs run
fresh_shares();
my ($rc, $out, $err) = agent();
is($rc, 0, 'the genuine files: the poll runs') or diag($err);
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: .*succeeded/m, 'the advertisement\'s program runs') or diag($out, $err);
like($out, qr/^${AGENT_INFO}ran job CEN000D1: .*succeeded/m, 'and the job\'s') or diag($out);
is(join(',', sort split /\n/, slurp("$b/marks/ran.txt")), 'advert,job', 'their command lines ran');
is(refusals(), '', 'and nothing was refused');
unlink("$b/marks/ran.txt");

my $pcm = "h/logon/pcins.box/CEN00001";
my $ofr = "h/cap/offerinf.box/CEN00C01.OFR";
my $genuine_pcm = slurp("$b/logon/pcins.box/CEN00001");
my $genuine_ofr = slurp("$b/cap/offerinf.box/CEN00C01.OFR");
(my $evil_pcm = $genuine_pcm) =~ s/command_line=sh install\.sh job/command_line=sh install.sh evil/ or die;
(my $evil_ofr = $genuine_ofr) =~ s/command_line=sh install\.sh advert/command_line=sh install.sh evil/ or die;

# each case: what is planted, what must not be offered, the reason expected
my @cases = (
	[ 'a hand-edited PCM file (its command line changed)', sub { spew("$b/$pcm", $evil_pcm) },
	  'job CEN000D1', qr/CEN00001" refused: its signature does not verify with site key $key_id: the file was changed after the site signed it/ ],
	[ 'a forged offer file (well formed, not signed)', sub { spew("$b/$ofr", body_of($evil_ofr)) },
	  'advert CEN00C01', qr/CEN00C01\.OFR" refused: it is not signed: it has no \[signature\] section/ ],
	[ 'an offer file signed with another key', sub { spew("$b/$ofr", sign_other(body_of($evil_ofr))) },
	  'advert CEN00C01', qr/CEN00C01\.OFR" refused: it is signed with key $other_id, which is not a site key this machine trusts \(1 installed with --site-key\)/ ],
	[ 'another key\'s signature under the site\'s key ID', sub { spew("$b/$ofr", sign_other(body_of($evil_ofr)) =~ s/key_id=$other_id/key_id=$key_id/r) },
	  'advert CEN00C01', qr/CEN00C01\.OFR" refused: its signature does not verify with site key $key_id/ ],
	[ 'a PCM file with its signature stripped', sub { spew("$b/$pcm", body_of($evil_pcm)) },
	  'job CEN000D1', qr/CEN00001" refused: it is not signed/ ],
	[ 'an offer file with its signature truncated', sub { spew("$b/$ofr", substr($evil_ofr, 0, length($evil_ofr) - 30)) },
	  'advert CEN00C01', qr/CEN00C01\.OFR" refused: its ed25519 line does not end with a line feed: the file is truncated/ ],
	[ 'a genuine PCM file with a job section added after its signature', sub { spew("$b/$pcm", $genuine_pcm . "\n[job CEN000D9]\ncommand_line=sh install.sh evil\n") },
	  'job CEN000D9', qr/CEN00001" refused: \d+ bytes follow its \[signature\] section: the signature must end the file/ ],
);
for my $c (@cases)
{
	my ($what, $plant, $offer, $why) = @$c;
	fresh_shares();
	$plant->();
	($rc, $out, $err) = agent();
	is($rc, 0, "$what: the poll runs") or diag($err);
	unlike($out, qr/^${AGENT_INFO}offer \Q$offer\E /m, "$what: $offer is not offered");
	unlike(slurp("$b/marks/ran.txt"), qr/evil/, "$what: the forged command line did not run");
	like(refusals(), $why, "$what: status message 10010 names the reason") or diag(refusals(), $err);
}
unlink("$b/marks/ran.txt");

# ---- signed files put under another name
fresh_shares();
system("cp '$b/$pcm' '$b/h/logon/pcins.box/CEN00002'") == 0 or die;
($rc, $out, $err) = agent(id => 'CEN00002');
unlike($out, qr/^${AGENT_INFO}offer job/m, 'CEN00001\'s signed PCM file put as CEN00002\'s: nothing offered to CEN00002');
like(refusals(), qr/CEN00002" refused: it is the PCM file of another machine/, 'and refused (10010): it is the PCM file of another machine');

fresh_shares();
system("cp '$b/h/cap/offerinf.box/CENSYSTM.LKP' '$b/h/cap/offerinf.box/CENUSR.LKP'") == 0 or die;
($rc, $out, $err) = agent(more => [ '--now', '2026-12-01T12:00:00Z', '--user', 'CORP\\CEN00001' ]);
like(refusals(), qr/CENUSR\.LKP" refused: it is another kind of lookup file/,
	'the signed system lookup file put as the user lookup file is refused (10010): another kind of lookup file');

# ---- the heartbeat: a forged one in year 9999 would expire every offer
fresh_shares();
my $hbt = slurp("$b/cap/offerinf.box/CEN.HBT");
(my $future = body_of($hbt)) =~ s/site_time=\S+/site_time=9999-12-31T23:59:59Z/ or die;
spew("$b/h/cap/offerinf.box/CEN.HBT", $future);
($rc, $out, $err) = agent(more => []);    # this machine's clock: the heartbeat would set the site's time
like(refusals(), qr/CEN\.HBT" refused: it is not signed/, 'a forged heartbeat of year 9999 is refused (10010): not signed');
like($out, qr/^${AGENT_INFO}offer advert CEN00C01 /m, 'and the advertisement is still offered: its clock was not taken');
fresh_shares();
spew("$b/h/cap/offerinf.box/CEN.HBT", sign_other($future));
($rc, $out, $err) = agent(more => []);
like(refusals(), qr/CEN\.HBT" refused: it is signed with key $other_id, which is not a site key/,
	'the same heartbeat signed with another key is refused (10010)');

# a replayed older heartbeat: the site's clock must not go back
my ($old_time) = $hbt =~ /^site_time=(\S+)$/m;
ok(eventually(sub {
			$node->safe_psql('site', q{SELECT smsdist.wake('inbox_manager')});
			my ($t) = slurp("$b/cap/offerinf.box/CEN.HBT") =~ /^site_time=(\S+)$/m;
			return defined $t && $t gt $old_time && $node->safe_psql('site', qq{SELECT '$t'::timestamptz - '$old_time'::timestamptz >= '2 s'}) eq 't';
		}), 'the Inbox Manager writes a newer heartbeat, 2 s or more later');
fresh_shares();
my $hb_ws = "$b/ws/heartbeat";
($rc, $out, $err) = agent(ws => $hb_ws, more => [ '--max-skew', '1' ]);
is(refusals(), '', 'the newest heartbeat is accepted');
spew("$b/h/cap/offerinf.box/CEN.HBT", $hbt);
($rc, $out, $err) = agent(ws => $hb_ws, more => [ '--max-skew', '1' ]);
like(refusals(), qr/CEN\.HBT" refused: its site time \Q$old_time\E is older than the newest heartbeat this machine accepted \(.*\) by more than --max-skew \(1 s\): a replayed heartbeat/,
	'the older heartbeat put back is refused as replayed (10010)');

# ---- the key files an agent is installed with
chmod 0666, "$b/other.pub";
($rc, $out, $err) = agent(keys => [ "$b/other.pub" ]);
is($rc, 2, 'a --site-key file that others may write is bad usage (exit 2)');
like($err, qr/--site-key: key file "\Q$b\E\/other\.pub" may be written by group or others \(mode 0666\)/, 'with the reason');
chmod 0644, "$b/other.pub";
chmod 0644, "$b/other.pem";
($rc, $out, $err) = agent(keys => [ "$b/other.pem" ]);
is($rc, 2, 'a --site-key file without a public key (a private key) is bad usage (exit 2)');
like($err, qr/--site-key: key file "\Q$b\E\/other\.pem" holds no PEM public key/, 'with the reason');

# ---- who may read the site's public key (never the private one)
$node->safe_psql('postgres', 'CREATE ROLE key_reader LOGIN IN ROLE smsdist_reader; CREATE ROLE key_nobody LOGIN');
my $pub = $node->safe_psql('site', 'SELECT smsdist.site_public_key()', extra_params => [ '-U', 'key_reader' ]);
like($pub, qr/\A-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+\/=\n]+-----END PUBLIC KEY-----\n?\z/,
	'a member of smsdist_reader reads the site\'s public key, and only the public key');
my ($prc, $pout, $perr) = $node->psql('site', 'SELECT smsdist.site_public_key()', extra_params => [ '-U', 'key_nobody' ]);
isnt($prc, 0, 'a role outside the smsdist roles may not call site_public_key()');
like($perr, qr/permission denied/, 'permission denied');

# ---- rotation: a new key at the site
$node->safe_psql('postgres', q{ALTER SYSTEM SET smsdist.signing_key = 'new_signing_key.pem'});
$node->reload;
ok(wait_until($node, 'site', q{SELECT current_setting('smsdist.signing_key') = 'new_signing_key.pem'}, 30), 'the site is given a new key');
my $new_key = site_key_file($node, "$b/new-key.pub");
my $new_id = substr(sha256_hex(substr(pem_der($new_key), -32)), 0, 16);
isnt($new_id, $key_id, "smsdist.site_public_key() gives the new key ($new_id)");
my $mode = (stat($node->data_dir . '/new_signing_key.pem'))[2] & 07777;
is(sprintf('%04o', $mode), '0600', 'the site created the new key file with mode 0600');
ok(eventually(sub {
			$node->safe_psql('site', q{SELECT smsdist.wake('offer_manager'), smsdist.wake('inbox_manager'), smsdist.wake('despooler')});
			my @ids = map { (slurp($_) =~ $sig_re)[0] // '' } "$b/logon/pcins.box/CEN00001",
			  map({ "$b/cap/offerinf.box/$_" } qw(CEN00C01.OFR CEN00C01.INS CENSYSTM.LKP CEN.HBT)),
			  map({ "$b/cap/pkginfo.box/$_" } qw(CEN00B01.PKG CEN00B01.NAL));
			return !grep { $_ ne $new_id } @ids;
		}), 'every file on the shares is signed again with the new key, the PCM file too');
# (the rows are committed just after the files are in place)
ok($node->poll_query_until('site', q{SELECT string_agg(DISTINCT key_id, ',') FROM smsdist.pcm_files}, $new_id),
	'pcm_files records the new key');

unlink("$b/marks/ran.txt");
fresh_shares();
($rc, $out, $err) = agent();
unlike($out, qr/^${AGENT_INFO}offer /m, 'an agent that knows only the old key is offered nothing');
like(refusals(), qr/CEN00001" refused: it is signed with key $new_id, which is not a site key this machine trusts/,
	'a file validly signed with a site key the agent was not installed with is refused (10010)');
is(slurp("$b/marks/ran.txt"), '', 'and nothing ran');
fresh_shares();
($rc, $out, $err) = agent(keys => [ $site_key, $new_key ]);
is(refusals(), '', 'an agent installed with the old and the new key accepts the new files');
like($out, qr/^${AGENT_INFO}ran advert CEN00C01: .*succeeded/m, 'and runs the advertisement') or diag($out, $err);
like($out, qr/^${AGENT_INFO}ran job CEN000D1: .*succeeded/m, 'and the job');

done_testing();
