# A child site answering its parent's Sender is not trusted: what it answers
# is checked against what was sent to it and its own subtree.  Central CEN
# has two children on their own servers: CH1, whose smsdist functions a
# superuser there replaced by hostile ones, and CH2, well-behaved.  Each
# hostile answer is refused with a reason that names CH1 and the row; CEN's
# own rows stay as they were; CH2 is served while CH1 misbehaves; and CH1's
# transfers and reports fail with the reason within send_give_up_after.
#
# Hostile cases (each names the error it expects):
#   distribution_report: a state outside the enum; CEN (the parent) failed;
#     CH2 (a sibling) failed; GC1 (behind CH1, but never sent the job)
#     failed; a row that is not a site code
#   location_report: /attacker/share for CEN's own site; /attacker/sibling
#     for CH2; a relative path; a path with ..; a path with //; a path with a
#     control character; package CEN00099, never sent; a version never sent
#   receive_chunk: always offset 0; a negative offset; an offset beyond the
#     chunk and the file
#   receive_begin: an offset beyond the end of the file
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

# transfers are of finished files (receive_begin with a size), so the
# hostile functions below cover every call the Sender makes
my $conf = "smsdist.poll_interval = '5s'\nsmsdist.send_while_compressing = off\n";
my $give_up = 10;
my $cen = site_node('cen', site_code => 'CEN', conf => $conf . "smsdist.send_give_up_after = $give_up\n");
my $ch1 = site_node('ch1', site_code => 'CH1', conf => $conf);
my $ch2 = site_node('ch2', site_code => 'CH2', conf => $conf);

for my $pair ([$cen, 'CEN'], [$ch1, 'CH1'], [$ch2, 'CH2'])
{
	my ($n, $code) = @$pair;
	my $b = $n->basedir;
	make_path("$b/dp1", "$b/drive");
	$n->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child 1', 'CEN'),
  ('CH2', 'Child 2', 'CEN'), ('GC1', 'Grandchild', 'CH1');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('$code', 'distribution_point', 'DP1', '$b/dp1'), ('$code', 'site_server_drive', 'D', '$b/drive');});
}
# the parent's login at each child (the children report nothing up here)
link_sites($cen, 'CEN', $_->[0], $_->[1], child_login => '') for ([$ch1, 'CH1'], [$ch2, 'CH2']);
for my $pair ([$ch1, 'CH1'], [$ch2, 'CH2'])
{
	my ($n, $code) = @$pair;
	$cen->safe_psql('site', "INSERT INTO smsdist.sender_addresses (target_site_code, conninfo) VALUES ('$code', 'host="
		  . $n->host . ' port=' . $n->port . " dbname=site user=parent_sender')");
}

# one small package per case
for my $i (1 .. 6)
{
	my $src = $cen->basedir . "/source/p$i";
	make_path("$src/bin");
	system("head -c 300000 /dev/urandom > '$src/bin/app$i.bin'") == 0 or die;
	$cen->safe_psql('site', "INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('CEN0000$i', 'App $i', '$src')");
}

# --- CH1 turns hostile (as a superuser there).  The real receive functions
# stay callable under other names, so CH1 takes the packages it is not
# hostile about.
$ch1->safe_psql('site', q{
CREATE TABLE public.hostile_calls (fn text, package_id text, answer bigint);
CREATE FUNCTION public.real_receive_begin(text, integer, bigint, text, text, text, integer, text) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER AS '$libdir/smsdist', 'smsdist_receive_begin';
CREATE FUNCTION public.real_receive_chunk(text, integer, bigint, bytea, text) RETURNS bigint
    LANGUAGE c VOLATILE SECURITY DEFINER AS '$libdir/smsdist', 'smsdist_receive_chunk';

CREATE OR REPLACE FUNCTION smsdist.receive_begin(package_id text, source_version integer, total_bytes bigint,
        sha256 text, package_name text, source_directory text,
        base_version integer DEFAULT NULL, stream_id text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE a bigint;
BEGIN
    -- CEN00005: "I have more than the whole file"
    a := CASE WHEN $1 = 'CEN00005' THEN $3 + 1000 ELSE public.real_receive_begin($1, $2, $3, $4, $5, $6, $7, $8) END;
    INSERT INTO public.hostile_calls VALUES ('receive_begin', $1, a);
    RETURN a;
END $$;

CREATE OR REPLACE FUNCTION smsdist.receive_chunk(package_id text, source_version integer, "offset" bigint,
        data bytea, chunk_sha256 text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE a bigint;
BEGIN
    a := CASE $1
        WHEN 'CEN00002' THEN 0                              -- always back to the start
        WHEN 'CEN00003' THEN -5                             -- negative
        WHEN 'CEN00004' THEN $3 + length($4) + 1000000000   -- beyond the chunk and the file
        ELSE public.real_receive_chunk($1, $2, $3, $4, $5) END;
    INSERT INTO public.hostile_calls VALUES ('receive_chunk', $1, a);
    RETURN a;
END $$;

CREATE OR REPLACE FUNCTION smsdist.distribution_report(p_job_id text)
    RETURNS TABLE (site_code text, state text, detail text, last_error text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM (VALUES ('CH1', 'bogus', 'a state outside the enum', '')) v
     WHERE p_job_id = 'CEN00108'
    UNION ALL
    SELECT * FROM (VALUES ('CEN', 'failed', 'the parent', 'CEN is broken'),
                          ('CH2', 'failed', 'a sibling', 'CH2 is broken'),
                          ('GC1', 'failed', 'behind CH1, never sent the job', 'GC1 is broken'),
                          ('ZZ;', 'done', 'not a site code', ''),
                          ('CH1', 'failed', 'at CH1', 'CH1 says it failed')) v
     WHERE p_job_id <> 'CEN00108'
$$;

CREATE OR REPLACE FUNCTION smsdist.location_report(p_job_id text)
    RETURNS TABLE (package_id text, site_code text, site_system_id integer,
                   source_version integer, path text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    VALUES ('CEN00001', 'CEN', 1, 1, '/attacker/share'),
           ('CEN00001', 'CH2', 1, 1, '/attacker/sibling'),
           ('CEN00001', 'CH1', 1, 1, 'relative/share'),
           ('CEN00001', 'CH1', 2, 1, '/srv/../etc'),
           ('CEN00001', 'CH1', 3, 1, '/srv//share'),
           ('CEN00001', 'CH1', 4, 1, E'/srv/line\nbreak'),
           ('CEN00099', 'CH1', 5, 1, '/srv/never-sent'),
           ('CEN00001', 'CH1', 6, 99, '/srv/later'),
           ('CEN00001', 'CH1', 7, 1, '/srv/good')
$$;
});

sub job_state { my ($id) = @_; $cen->safe_psql('site', "SELECT state || ': ' || coalesce(state_reason, '') FROM smsdist.jobs WHERE job_id = '$id'") }
sub rows_of
{
	my ($id) = @_;
	return $cen->safe_psql('site', "SELECT string_agg(site_code || ' ' || phase || ' ' || state || ' ' || coalesce(detail, '') || ' / ' || coalesce(last_error, ''), E'\\n' ORDER BY site_code, phase) FROM smsdist.job_site_status WHERE job_id = '$id'");
}
sub messages
{
	my ($id, $msg) = @_;
	return $cen->safe_psql('site', "SELECT coalesce(string_agg(message, E'\\n' ORDER BY message), '') FROM smsdist.status_messages WHERE job_id = '$id' AND message_id = $msg");
}

# --- reports: CEN00101 goes to CEN itself and to CH1, CEN00108 to CH1 (CH1
# reports a state outside the enum for it), CEN00102 to CH2
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00101', 'share_package', 'CEN00001', 'sites', '{CEN,CH1}'),
       ('CEN00108', 'share_package', 'CEN00001', 'sites', '{CH1}'),
       ('CEN00102', 'share_package', 'CEN00001', 'sites', '{CH2}')});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00102'", 120),
	'the well-behaved child CH2 is served: its job completes') or diag(job_state('CEN00102'), rows_of('CEN00102'));
ok(wait_until($cen, 'site', "SELECT state = 'done' FROM smsdist.job_site_status WHERE job_id = 'CEN00101' AND site_code = 'CEN' AND phase = 'distribute'", 60),
	'CEN publishes the package itself') or diag(rows_of('CEN00101'));
my $cen_path = $cen->safe_psql('site', "SELECT path FROM smsdist.package_locations WHERE package_id = 'CEN00001' AND site_code = 'CEN'");
is($cen_path, $cen->basedir . '/dp1/SMS_PKGC/CEN00001', "CEN's own location is its distribution point");

ok(wait_until($cen, 'site', "SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN00101'", 60),
	'CH1 reports its own failure') or diag(job_state('CEN00101'), rows_of('CEN00101'));
is(job_state('CEN00101'), 'failed: distribution failed at site CH1: CH1 says it failed',
	'the job fails for what CH1 said of itself, not for what it said of CEN');
ok(wait_until($cen, 'site', "SELECT state = 'failed' FROM smsdist.jobs WHERE job_id = 'CEN00108'", 60),
	"CH1's refused reports fail the other job after send_give_up_after") or diag(job_state('CEN00108'), rows_of('CEN00108'));
is(job_state('CEN00108'),
	'failed: distribution failed at site CH1: the report of site CH1 was refused: state "bogus" is not one of waiting, running, retrying, done, failed',
	'the job says why: CH1 reported a state outside the enum');
is($cen->safe_psql('site', "SELECT state || ' ' || coalesce(last_error, 'no error') FROM smsdist.job_site_status WHERE job_id = 'CEN00101' AND site_code = 'CEN'"),
	'done no error', "CEN's own distribute row is still done, without an error (the report naming CEN as failed was refused)");
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.job_site_status WHERE site_code IN ('CEN', 'CH2') AND state <> 'done'"),
	'0', 'no row of CEN or of the sibling CH2 was changed by CH1');
is($cen->safe_psql('site', "SELECT state FROM smsdist.jobs WHERE job_id = 'CEN00102'"), 'completed',
	"CH2's job stays completed");

my $refused = messages('CEN00101', 3304) . "\n" . messages('CEN00108', 3304);
for my $case (
	[ qr/distribution report of site CH1 for job CEN00108 was refused: state "bogus" is not one of/, 'a state outside the enum' ],
	[ qr/refused: site CEN is this site, not a site behind CH1\. The row: site CEN, state failed\./, 'the parent named as failed' ],
	[ qr/refused: site CH2 is not behind CH1\. The row: site CH2, state failed\./, 'a sibling named as failed' ],
	[ qr/refused: job CEN00101 was not sent to site GC1\. The row: site GC1, state failed\./, 'a site behind CH1 that was never sent the job' ],
	[ qr/refused: "ZZ;" is not a site code/, 'a row that is not a site code' ],
	[ qr/location report of site CH1 for job CEN00101 was refused: site CEN is this site, not a site behind CH1\. The row: package CEN00001, site CEN, site system 1, version 1, path \/attacker\/share\./, "/attacker/share for CEN's own site" ],
	[ qr/refused: site CH2 is not behind CH1\. The row: package CEN00001, site CH2, site system 1, version 1, path \/attacker\/sibling\./, 'a location for the sibling' ],
	[ qr/refused: the path "relative\/share" is not absolute and canonical/, 'a relative path' ],
	[ qr/refused: the path "\/srv\/\.\.\/etc" is not absolute and canonical/, 'a path with ..' ],
	[ qr/refused: the path "\/srv\/\/share" is not absolute and canonical/, 'a path with //' ],
	[ qr/refused: the path "\/srv\/line break" is not absolute and canonical/, 'a path with a control character (shown as a space)' ],
	[ qr/refused: package CEN00099 was not sent to CH1 for job CEN00101 \(its package is CEN00001\)/, 'a package never sent' ],
	[ qr/refused: version "99" was not sent \(the newest version here is 1\)/, 'a version never sent' ])
{
	like($refused, $case->[0], "refused with the reason: $case->[1]");
}
is($cen->safe_psql('site', "SELECT count(*) - count(DISTINCT message) FROM smsdist.status_messages WHERE message_id = 3304"),
	'0', 'each refusal is said once, though the reports were read every second');
is($cen->safe_psql('site', "SELECT string_agg(site_code || ' ' || site_system_id || ' ' || path, ',' ORDER BY site_code, site_system_id) FROM smsdist.package_locations WHERE package_id = 'CEN00001'"),
	"CEN 1 $cen_path,CH1 7 /srv/good,CH2 1 " . $ch2->basedir . '/dp1/SMS_PKGC/CEN00001',
	"CEN's own location is unchanged, CH1's one good row is taken, CH2's location is its own");
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.package_locations WHERE package_id = 'CEN00099'"), '0',
	'no location of a package never sent');
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3304 AND message LIKE '%of site CH2 %'"),
	'0', "nothing of the well-behaved CH2's reports was refused");

# --- transfers: four packages CH1 answers hostile offsets for, one for CH2
$cen->safe_psql('site', q{
INSERT INTO smsdist.jobs (job_id, job_type, package_id, target_type, target_sites)
VALUES ('CEN00103', 'share_package', 'CEN00002', 'sites', '{CH1}'),
       ('CEN00104', 'share_package', 'CEN00003', 'sites', '{CH1}'),
       ('CEN00105', 'share_package', 'CEN00004', 'sites', '{CH1}'),
       ('CEN00106', 'share_package', 'CEN00005', 'sites', '{CH1}'),
       ('CEN00107', 'share_package', 'CEN00006', 'sites', '{CH2}')});
ok(wait_until($cen, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = 'CEN00107'", 120),
	'CH2 is served while CH1 answers hostile offsets') or diag(job_state('CEN00107'), rows_of('CEN00107'));
ok(wait_until($cen, 'site', "SELECT count(*) = 4 FROM smsdist.jobs WHERE job_id IN ('CEN00103', 'CEN00104', 'CEN00105', 'CEN00106') AND state = 'failed'", 120),
	"CH1's four transfers fail within send_give_up_after")
  or diag(join("\n", map { job_state($_) . "\n" . rows_of($_) } qw(CEN00103 CEN00104 CEN00105 CEN00106)));

my %bytes = map { $_ => $cen->safe_psql('site', "SELECT bytes FROM smsdist.package_builds WHERE package_id = '$_'") } qw(CEN00002 CEN00003 CEN00004 CEN00005);
like(job_state('CEN00103'),
	qr/^failed: gave up sending to site CH1 after $give_up s: site CH1 answered offset 0 to the chunk ending at byte $bytes{CEN00002} of package CEN00002 version 1: the transfer made no progress after 4 resynchronisations$/,
	'always offset 0: no progress, the transfer gives up');
like(job_state('CEN00104'),
	qr/^failed: gave up sending to site CH1 after $give_up s: site CH1 answered receive_chunk for package CEN00003 version 1 with offset -5: it must lie between 0 and $bytes{CEN00003}$/,
	'a negative offset is refused');
like(job_state('CEN00105'),
	qr/^failed: gave up sending to site CH1 after $give_up s: site CH1 answered receive_chunk for package CEN00004 version 1 with offset \d+: it must lie between 0 and $bytes{CEN00004}$/,
	'an offset beyond the chunk and the file is refused');
like(job_state('CEN00106'),
	qr/^failed: gave up sending to site CH1 after $give_up s: site CH1 answered receive_begin for package CEN00005 version 1 with offset @{[ $bytes{CEN00005} + 1000 ]}: it must lie between 0 and $bytes{CEN00005}$/,
	'an offset beyond the end at receive_begin is refused');
like(messages('CEN00103', 3301), qr/^Sending package CEN00002 version 1 to site CH1 failed: site CH1 answered offset 0 .*; gave up after $give_up s\.$/m,
	'a status message says CH1 made no progress, and that the Sender gave up');
like($cen->safe_psql('site', "SELECT last_error FROM smsdist.job_site_status WHERE job_id = 'CEN00104' AND phase = 'send'"),
	qr/^site CH1 answered receive_chunk for package CEN00003 version 1 with offset -5/, "the send row's error names CH1 and the offset");

my $calls = $ch1->safe_psql('site', "SELECT count(*) FROM public.hostile_calls WHERE fn = 'receive_chunk' AND package_id = 'CEN00002'");
my $attempts = $cen->safe_psql('site', "SELECT attempts FROM smsdist.job_site_status WHERE job_id = 'CEN00103' AND phase = 'send'");
ok($calls > 0 && $calls <= 5 * $attempts && $attempts <= 10,
	"the child that always answers 0 got $calls chunk calls in $attempts attempts (at most 5 an attempt)");
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.package_locations WHERE package_id IN ('CEN00002', 'CEN00003', 'CEN00004', 'CEN00005')"),
	'0', 'no location of a package that was not sent');
is($cen->safe_psql('site', "SELECT count(*) FROM smsdist.workers WHERE component = 'sender' AND last_error IS NOT NULL AND last_error <> ''"),
	'0', 'the Sender itself never failed a step over what CH1 answered');

done_testing();
