# Quarantine: one hostile input fails alone, with its reason, and never
# stops a component.  Package files crafted byte by byte (tar headers
# written here, so that names, sizes and declarations can lie), source
# trees, a tree too deep to remove with a descriptor per level, deltas with
# 60,000 deletions, and query rules that fail at evaluation.  Each case
# names the error it expects.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Cwd qw(getcwd);
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use IO::Compress::Gzip qw(gzip $GzipError);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('quar', site_code => 'CH1', conf => "smsdist.poll_interval = '5s'\n");
my $base = $node->basedir;
my ($dp, $drive, $work, $src) = map { "$base/$_" } qw(dp drive work src);
make_path($dp, $drive, $work, $src);
$node->safe_psql('site', qq{
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
INSERT INTO smsdist.site_systems (site_code, role, name, root_directory) VALUES
  ('CH1', 'distribution_point', 'DP1', '$dp'), ('CH1', 'site_server_drive', 'D1', '$drive');});

# ---------------------------------------------------------------------------
# A package file, written by hand: POSIX tar (a pax header for a path too
# long for ustar), the manifest last, gzip.
# ---------------------------------------------------------------------------

sub pad { my ($d) = @_; my $r = length($d) % 512; return $r ? $d . ("\0" x (512 - $r)) : $d; }

sub tar_header
{
	my ($name, $size, $type, $mode) = @_;
	my $h = pack('a100 a8 a8 a8 a12 a12 A8 a1 a100 a6 a2 a32 a32 a8 a8 a155 a12',
		$name, sprintf('%07o', $mode), sprintf('%07o', 0), sprintf('%07o', 0),
		sprintf('%011o', $size), sprintf('%011o', 1700000000), ' ' x 8, $type, '',
		"ustar\0", '00', '', '', '', '', '', '');
	my $sum = unpack('%32C*', $h);
	substr($h, 148, 8) = sprintf('%06o', $sum) . "\0 ";
	return $h;
}

sub pax_record
{
	my ($key, $value) = @_;
	my $body = " $key=$value\n";
	my $n = length($body);
	$n = length($body) + length($n) while $n != length($body) + length($n);
	return "$n$body";
}

# [path, 'f' or 'd', data, size => declared size, mode => mode]
sub tar_entry
{
	my ($path, $type, $data, %o) = @_;
	$data //= '';
	my $mode = $o{mode} // ($type eq 'd' ? 0755 : 0644);
	my $out = '';
	my $name = $type eq 'd' ? "$path/" : $path;
	if (length($name) > 99)
	{
		my $rec = pax_record('path', $name);
		$out .= tar_header('PaxHeader', length($rec), 'x', 0644) . pad($rec);
		$name = 'long';
	}
	$out .= tar_header($name, $type eq 'd' ? 0 : ($o{size} // length($data)), $type eq 'd' ? '5' : '0', $mode);
	$out .= pad($data) if $type eq 'f' && length($data);
	return $out;
}

# The manifest a builder would write for these entries (only empty
# directories listed); %size overrides the size a path is said to have.
sub manifest_of
{
	my ($entries, %size) = @_;
	my %dirs_with_content;
	for my $e (@$entries)
	{
		my @c = split m{/}, $e->[0];
		$dirs_with_content{ join('/', @c[0 .. $_]) } = 1 for 0 .. $#c - 1;
	}
	my @lines;
	for my $e (@$entries)
	{
		my ($path, $type, $data) = @$e;
		$data //= '';
		if ($type eq 'd')
		{
			next if $dirs_with_content{$path};
			push @lines, [ "$path/", ('-' x 64) . " 0 0755 $path/\n" ];
		}
		else
		{
			my $size = $size{$path} // length($data);
			push @lines, [ $path, sha256_hex($data) . " $size 0644 $path\n" ];
		}
	}
	return join '', map { $_->[1] } sort { $a->[0] cmp $b->[0] } @lines;
}

# package_file(name, [entries], manifest => text, manifest_size => declared,
# truncate => 1 (no end of archive), extra => [entries after the files])
sub package_file
{
	my ($name, $entries, %o) = @_;
	my $file = "$work/$name.tar.gz";
	my $tar = join '', map { tar_entry(@$_) } @$entries;
	$tar .= join '', map { tar_entry(@$_) } @{ $o{extra} // [] };
	my $manifest = $o{manifest} // manifest_of($entries);
	$tar .= tar_header('.smsdist-manifest', $o{manifest_size} // length($manifest), '0', 0644);
	$tar .= $o{truncate} ? $manifest : pad($manifest) . ("\0" x 1024);
	gzip(\$tar => $file) or die "gzip: $GzipError";
	return $file;
}

my $nout = 0;
# extract_package as the superuser, with settings first; returns (rc, stderr, dest)
sub extract
{
	my ($file, $settings) = @_;
	my $dest = "$work/out" . ++$nout;
	make_path($dest);
	my ($rc, $out, $err) = $node->psql('site',
		($settings // '') . "SELECT smsdist.extract_package('$file', '$dest')");
	return ($rc, $err, $dest);
}

sub is_empty_dir
{
	my ($d) = @_;
	opendir(my $dh, $d) or return 0;
	my @n = grep { $_ ne '.' && $_ ne '..' } readdir $dh;
	return @n == 0;
}

my $cases = 0;
sub refused
{
	my ($file, $settings, $re, $what) = @_;
	my ($rc, $err, $dest) = extract($file, $settings);
	$cases++;
	isnt($rc, 0, "$what: refused");
	like($err, $re, "$what: the reason");
	return $dest;
}

# a good one first: the writer above makes packages the extractor takes
my @good = (['bin', 'd'], ['bin/tool.exe', 'f', "MZ tool\n"], ['readme.txt', 'f', "read me\n"]);
my ($rc, $err, $dest) = extract(package_file('good', \@good));
is($rc, 0, 'a package file written by the test is extracted') or diag($err);
ok(-f "$dest/bin/tool.exe", 'with its files');

# --- names --------------------------------------------------------------
refused(package_file('nonutf8', [['caf' . "\xe9" . '.txt', 'f', "x"]]), undef,
	qr/refusing entry "caf\\xe9\.txt" of package file .*: its name contains bytes that are not valid UTF-8/,
	'a name that is not valid UTF-8');
refused(package_file('ctrl', [["a\x01b", 'f', "x"]]), undef,
	qr/refusing entry "a\\x01b" .*: its name contains a control character/,
	'a name with a C0 control character');
refused(package_file('c1', [["a\xc2\x85b", 'f', "x"]]), undef,
	qr/refusing entry "a\\xc2\\x85b" .*: its name contains a control character/,
	'a name with a C1 control character (U+0085)');
refused(package_file('lsep', [["a\xe2\x80\xa8b", 'f', "x"]]), undef,
	qr/its name contains a control character/,
	'a name with U+2028');
# the entries are fine, the manifest names something else: refused as it is parsed
refused(package_file('manifest_nonutf8', [['a.txt', 'f', 'x']],
		manifest => sha256_hex('x') . " 1 0644 a.txt\n" . sha256_hex('y') . " 1 0644 b\xff.txt\n"), undef,
	qr/invalid manifest in package file .*, line 2: path "b\\xff\.txt" contains bytes that are not valid UTF-8/,
	'a manifest path that is not valid UTF-8');

# --- depth and length -----------------------------------------------------
my $deep = join('/', ('a') x 1500) . '/f.txt';
$dest = refused(package_file('deep', [[$deep, 'f', 'x']]), undef,
	qr/its path is more than 64 levels deep \(smsdist\.max_path_depth\)/,
	'a file 1,500 directories deep');
ok(is_empty_dir($dest), 'nothing of the deep path was created');
refused(package_file('deep65', [[join('/', ('d') x 65), 'd']]), undef,
	qr/more than 64 levels deep/, 'a directory 65 levels deep');
my $long = join('/', ('x' x 200) x 6) . '/f.txt';
refused(package_file('long', [[$long, 'f', 'x']]), undef,
	qr/its path is longer than 1024 bytes \(smsdist\.max_path_length\)/,
	'a path of 1,212 bytes');
refused(package_file('depth3', [['a/b/c/d.txt', 'f', 'x']]), 'SET smsdist.max_path_depth = 3;',
	qr/its path is more than 3 levels deep/, 'the depth limit is a setting');

# --- reserved names -------------------------------------------------------
$dest = refused(package_file('fakedelta', \@good,
		extra => [['.smsdist-delta', 'f', "smsdist-delta 1\nbase-version 1\ndelete readme.txt\n"]]), undef,
	qr/refusing entry "\.smsdist-delta" .*: a full package file may not contain the name reserved for a delta's description/,
	'a full package holding .smsdist-delta');
refused(package_file('fakedeltadir', [['.smsdist-delta', 'd'], ['.smsdist-delta/x', 'f', 'x']]), undef,
	qr/its top-level name is reserved for the manifest and a delta's description/,
	'a full package with a directory .smsdist-delta');

# --- counts and sizes -----------------------------------------------------
my @many = map { [sprintf('f%05d', $_), 'f', ''] } 1 .. 150;
$dest = refused(package_file('many', \@many), 'SET smsdist.max_package_files = 100;',
	qr/refusing entry "f00101" .*: the package holds more than 100 files and directories \(smsdist\.max_package_files\)/,
	'150 empty files against a limit of 100');
ok(!-e "$dest/f00101", 'the 101st file was not created');

my $two_mb = 'z' x (2 * 1024 * 1024);
$dest = refused(package_file('bytes', [['small', 'f', 'x'], ['big', 'f', $two_mb]]), 'SET smsdist.max_package_size = \'1MB\';',
	qr/refusing entry "big" .*: its 2097152 bytes would take the package beyond 1 MB \(smsdist\.max_package_size\)/,
	'2 MB of files against a limit of 1 MB');
ok(!-e "$dest/big", 'the file over the limit was not created');

# a manifest that says 0 bytes, a tar entry that declares 2 GB (and holds
# 1 kB): refused at the header, before a byte is written
$dest = refused(package_file('liar2g', [['f', 'f', 'y' x 1024, size => 2 * 1024 * 1024 * 1024]],
		manifest => sha256_hex('') . " 0 0644 f\n", truncate => 1),
	'SET smsdist.max_package_size = \'1GB\';',
	qr/refusing entry "f" .*: its 2147483648 bytes would take the package beyond 1024 MB/,
	'an entry declaring 2 GB where the manifest says 0');
ok(!-e "$dest/f", 'nothing of it was written');
# within the limits, the manifest's 0 against the 3 kB that came
refused(package_file('liar0', [['f', 'f', 'q' x 3072]], manifest => sha256_hex('') . " 0 0644 f\n"), undef,
	qr/does not match its manifest.*File "f" is 3072 bytes long; the manifest says 0\./s,
	'a file of 3 kB that the manifest declares as 0 bytes');

# a manifest entry that declares 1,000 MB and holds 1 kB
refused(package_file('bigmanifest', [['a', 'f', 'x']], manifest => ('m' x 1024), manifest_size => 1000 * 1024 * 1024, truncate => 1), undef,
	qr/refusing entry "\.smsdist-manifest" .*: it declares 1048576000 bytes, more than 65536 kB \(smsdist\.max_manifest_size\)/,
	'a manifest declaring 1,000 MB');
# the same under a limit that lets the declaration through: memory follows
# the bytes that come, not the declaration
{
	my $peak = "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmPeak:\\s+(\\d+) kB'))[1];";
	make_path("$work/out-peak");
	my ($prc, $out, $perr) = $node->psql('site',
		"$peak SET smsdist.max_manifest_size = '1000MB'; SELECT smsdist.extract_package('$work/bigmanifest.tar.gz', '$work/out-peak'); $peak",
		on_error_stop => 0);
	like($perr, qr/could not read package file .*\.smsdist-manifest/, 'a manifest declaring 1,000 MB that holds 1 kB is cut short');
	my ($before, $after) = split /\n/, $out;
	$cases++;
	cmp_ok($after - $before, '<', 100 * 1024,
		"the backend's peak memory grew by less than 100 MB (it grew by " . ($after - $before) . " kB)");
}

# --- at build: the operator's source trees ---------------------------------
sub deep_tree
{
	my ($top, $levels) = @_;
	my $cwd = getcwd();
	make_path($top);
	chdir $top or die "$top: $!";
	for (1 .. $levels) { mkdir 'a' or die "mkdir: $!"; chdir 'a' or die "chdir: $!"; }
	open(my $fh, '>', 'leaf.txt') or die; print $fh "leaf\n"; close $fh;
	chdir $cwd or die;
}

deep_tree("$src/deep", 1500);
($rc, undef, $err) = $node->psql('site', "SELECT smsdist.build_tar('$src/deep', '$work/deep.tar')");
$cases++;
like($err, qr/package source "\Q$src\E\/deep" contains a path more than 64 levels deep: "(a\/){65}"/,
	'build: a source 1,500 levels deep is refused by the depth limit');
ok(!-e "$work/deep.tar", 'and no tar was begun');

make_path("$src/many");
for my $i (1 .. 60) { open(my $fh, '>', "$src/many/f$i") or die; close $fh; }
($rc, undef, $err) = $node->psql('site', "SET smsdist.max_package_files = 50; SELECT smsdist.build_tar('$src/many', '$work/many.tar')");
$cases++;
like($err, qr/package source "\Q$src\E\/many" holds more than 50 files and directories/,
	'build: 60 files against a limit of 50');

make_path("$src/bytes");
{ open(my $fh, '>', "$src/bytes/big") or die; print $fh $two_mb; close $fh; }
($rc, undef, $err) = $node->psql('site', "SET smsdist.max_package_size = '1MB'; SELECT smsdist.build_tar('$src/bytes', '$work/bytes.tar')");
$cases++;
like($err, qr/package source "\Q$src\E\/bytes" holds more than 1 MB/, 'build: 2 MB against a limit of 1 MB');

($rc, undef, $err) = $node->psql('site', "SET smsdist.max_manifest_size = '1kB'; SELECT smsdist.build_tar('$src/many', '$work/many2.tar')");
$cases++;
like($err, qr/the manifest of package source "\Q$src\E\/many" would be \d+ bytes, more than 1 kB/,
	'build: a manifest over its limit');

make_path("$src/badname");
{ open(my $fh, '>', "$src/badname/caf\xe9") or die; close $fh; }
($rc, undef, $err) = $node->psql('site', "SELECT smsdist.build_tar('$src/badname', '$work/badname.tar')");
$cases++;
like($err, qr/contains a name with bytes that are not valid UTF-8: "caf\\xe9"/, 'build: a name that is not valid UTF-8');

# --- removing a tree 1,500 levels deep --------------------------------------
my $share = "$base/share/SMS_PKGC";
deep_tree("$share/CEN00077", 1500);
($rc, undef, $err) = $node->psql('site', "SELECT smsdist.unpublish('$share', 'CEN00077')");
$cases++;
is($rc, 0, 'a published tree 1,500 levels deep is removed') or diag($err);
ok(!-e "$share/CEN00077", 'and it is gone');
opendir(my $sh, $share) or die;
is_deeply([grep { !/^\.\.?$/ } readdir $sh], [], 'nothing is left in the share');
closedir $sh;

# ---------------------------------------------------------------------------
# Packages received from the parent site, through the receiver's functions:
# the Despooler fails the bad ones alone and goes on with the others.
# ---------------------------------------------------------------------------
my $njob = 100;
sub receive
{
	my ($package, $version, $file, %o) = @_;
	my $job = sprintf('CEN%05d', ++$njob);
	my $bytes = -s $file;
	my $sha = $node->safe_psql('site', "SELECT encode(sha256(pg_read_binary_file('$file')), 'hex')");
	my $basev = $o{base} // 'NULL';
	$node->safe_psql('site', qq{
SELECT smsdist.receive_begin('$package', $version, $bytes, '$sha', 'Received', '/srv/$package', $basev);
SELECT smsdist.receive_chunk('$package', $version, 0, pg_read_binary_file('$file'), '$sha');
SELECT smsdist.receive_end('$package', $version, '$job', 'share_package', '{CH1}', false);});
	return $job;
}

sub job_done
{
	my ($job, $timeout) = @_;
	return wait_until($node, 'site', "SELECT state = 'completed' FROM smsdist.jobs WHERE job_id = '$job'", $timeout // 60);
}

sub job_failed_with
{
	my ($job, $re, $what) = @_;
	$cases++;
	ok(wait_until($node, 'site', "SELECT state = 'failed' FROM smsdist.job_site_status WHERE job_id = '$job' AND phase = 'distribute'", 60),
		"$what: the distribution fails");
	my $row = $node->safe_psql('site', "SELECT last_error || ' / ' || full_package_required FROM smsdist.job_site_status WHERE job_id = '$job' AND phase = 'distribute'");
	like($row, $re, "$what: with the reason");
	like($row, qr/ \/ false$/, "$what: and the full package is not asked for again");
	is($node->safe_psql('site', "SELECT count(*) > 0 FROM smsdist.status_messages WHERE message_id = 3201 AND job_id = '$job'"),
		't', "$what: status message 3201");
}

# version 1: one file, published
my $v1 = package_file('r1', [['keep.txt', 'f', "kept\n"]]);
my $j1 = receive('CEN00001', 1, $v1);
ok(job_done($j1), 'a received package is published');

# a full package that holds .smsdist-delta: fails alone, not asked for forever
my $jd = receive('CEN00002', 1, package_file('r2', \@good,
		extra => [['.smsdist-delta', 'f', "smsdist-delta 1\nbase-version 1\n"]]));
job_failed_with($jd, qr/a full package file may not contain the name reserved for a delta's description/,
	'received: a full package holding .smsdist-delta');

# a name that is not valid UTF-8
my $ju = receive('CEN00003', 1, package_file('r3', [["bad\xff", 'f', 'x']]));
job_failed_with($ju, qr/its name contains bytes that are not valid UTF-8/, 'received: a name that is not valid UTF-8');

# the Despooler goes on: a good package after the bad ones
my $jg = receive('CEN00004', 1, package_file('r4', \@good));
ok(job_done($jg), 'the Despooler still publishes a good package after the bad ones');
ok(-f "$dp/SMS_PKGC/CEN00004/bin/tool.exe", 'which is on the distribution point');

# version 2 of CEN00001 as a delta from 1: 60,000 empty directories, the
# kept file, and 60,000 deletions (each looked up in the new manifest)
{
	my @dirs = map { [sprintf('d%05d', $_), 'd'] } 0 .. 59_999;
	my $manifest = manifest_of([@dirs, ['keep.txt', 'f', "kept\n"]]);
	my $delta = "smsdist-delta 1\nbase-version 1\n" . join('', map { sprintf("delete gone%05d\n", $_) } 0 .. 59_999);
	my $file = package_file('r1v2', \@dirs, manifest => $manifest, extra => [['.smsdist-delta', 'f', $delta]]);
	my $j2 = receive('CEN00001', 2, $file, base => 1);
	$cases++;
	ok(job_done($j2, 120), 'a delta with 60,000 deletions and 60,000 entries is applied');
	ok(-f "$dp/SMS_PKGC/CEN00001/keep.txt" && -d "$dp/SMS_PKGC/CEN00001/d59999", 'the new version is published');
}

# deltas whose description is wrong fail alone, with the reason
{
	my $manifest = manifest_of([['keep.txt', 'f', "kept\n"]]);
	my $j3 = receive('CEN00001', 3, package_file('r1v3', [], manifest => $manifest,
			extra => [['.smsdist-delta', 'f', "smsdist-delta 1\nbase-version 2\ndelete keep.txt\n"]]), base => 2);
	job_failed_with($j3, qr/does not match its manifest: The delta deletes "keep\.txt", which the manifest lists\./,
		'received: a delta that deletes a file its manifest lists');
	my $j4 = receive('CEN00001', 4, package_file('r1v4', [], manifest => $manifest,
			extra => [['.smsdist-delta', 'f', "smsdist-delta 1\nbase-version 2\ndelete ../etc/passwd\n"]]), base => 2);
	job_failed_with($j4, qr/line 3 of the delta description is not a safe deletion/,
		'received: a delta that deletes ../etc/passwd');
	ok(-f "$dp/SMS_PKGC/CEN00001/keep.txt", 'version 2 stays published');
}

# ---------------------------------------------------------------------------
# Query rules: a pattern PostgreSQL refuses at run time is refused at
# INSERT; a rule that fails at evaluation anyway (stored before this check)
# is recorded on its collection while the others are evaluated.
# ---------------------------------------------------------------------------
$node->safe_psql('site', q{
INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CH100001', 'WKS1', 'CORP', 'CH1', 'WIN95');
INSERT INTO smsdist.collections (collection_id, name) VALUES ('CH100011', 'Broken'), ('CH100012', 'Workstations');});
($rc, undef, $err) = $node->psql('site', q{INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression)
    VALUES ('CH100011', 'query', 'name LIKE ''WKS\'' ')});
$cases++;
like($err, qr/invalid query rule: the LIKE pattern 'WKS\\' ends with the escape character \\ \(write \\\\ for a backslash\) at character 11/,
	'a LIKE pattern ending with an escape is refused at INSERT');

# as a rule stored by an earlier version would be: past the constraint
my $con = $node->safe_psql('site', q{SELECT conname FROM pg_constraint
    WHERE conrelid = 'smsdist.collection_rules'::regclass AND pg_get_constraintdef(oid) LIKE '%compile_query_rule%'});
$node->safe_psql('site', qq{
ALTER TABLE smsdist.collection_rules DROP CONSTRAINT $con;
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CH100011', 'query', 'name LIKE ''WKS\\''');
ALTER TABLE smsdist.collection_rules ADD CONSTRAINT $con CHECK (query_expression IS NULL OR smsdist.compile_query_rule(query_expression) IS NOT NULL) NOT VALID;
INSERT INTO smsdist.collection_rules (collection_id, rule_type, query_expression) VALUES ('CH100012', 'query', 'name LIKE ''WKS%''');});
$cases++;
ok(wait_until($node, 'site', "SELECT evaluation_error IS NOT NULL AND evaluation_error_at IS NOT NULL FROM smsdist.collections WHERE collection_id = 'CH100011'", 30),
	'the failing evaluation is recorded on its collection');
# (the evaluator compiles every rule again: the compiler's reason)
like($node->safe_psql('site', "SELECT evaluation_error FROM smsdist.collections WHERE collection_id = 'CH100011'"),
	qr/invalid query rule: the LIKE pattern 'WKS\\' ends with the escape character/, 'with the reason');
ok(wait_until($node, 'site', "SELECT count(*) = 1 FROM smsdist.collection_members WHERE collection_id = 'CH100012'", 30),
	'the other collection is evaluated');
# incremental evaluation goes on too
$node->safe_psql('site', q{INSERT INTO smsdist.system_resources (sms_id, name, domain, site_code, platform)
    VALUES ('CH100002', 'WKS2', 'CORP', 'CH1', 'WIN95');});
ok(wait_until($node, 'site', "SELECT count(*) = 2 FROM smsdist.collection_members WHERE collection_id = 'CH100012'", 30),
	'and a new system joins it (incremental evaluation)');
is($node->safe_psql('site', "SELECT count(*) FROM smsdist.status_messages WHERE message_id = 3500 AND message LIKE 'Collection CH100011 could not be evaluated: %'"),
	'1', 'status message 3500 says so, once');
# fixed, the collection evaluates and its error is cleared
$node->safe_psql('site', "UPDATE smsdist.collection_rules SET query_expression = 'name LIKE ''WKS\\\\%''' WHERE collection_id = 'CH100011'");
ok(wait_until($node, 'site', "SELECT evaluation_error IS NULL AND evaluation_error_at IS NULL FROM smsdist.collections WHERE collection_id = 'CH100011'", 30),
	'a fixed rule clears the error');

note("hostile cases: $cases");
$node->stop;
done_testing();
