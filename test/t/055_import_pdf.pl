# Importing SMS package definition files (import_package_definition()):
# the corpus in test/formats/pdf/, imported by an administrator who is not
# a superuser.  Real-looking files become a package and its programs, with
# one report row per entry (mapped, ignored with the reason, or kept: the
# package's Icon); the encodings SMS files came in (Windows-1252, UTF-16
# with a byte-order mark, UTF-8 with or without one) read the same text;
# hostile and malformed files (duplicate keys and sections, stray lines,
# control characters, bad encodings, very long values, too large a file,
# a source outside smsdist.source_roots) are refused with an error that
# names the line, and leave nothing behind.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $corpus = "$FindBin::Bin/../formats/pdf";
my $node = site_node('pdf');
my $b = $node->basedir;
make_path("$b/src/app");
$node->safe_psql('postgres', q{
CREATE ROLE pdf_admin LOGIN IN ROLE smsdist_admin;
CREATE ROLE pdf_reader LOGIN IN ROLE smsdist_reader;});

sub corpus_hex
{
	my ($name) = @_;
	open(my $fh, '<:raw', "$corpus/$name") or die "$corpus/$name: $!";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	return unpack('H*', $bytes);
}

# the import of a file (bytes) as pdf_admin: (exit status, stdout, stderr)
sub import_as
{
	my ($role, $hex, $source, $select) = @_;
	$source //= "$b/src/app";
	$select //= q{line || '|' || section || '|' || coalesce(key, '') || '|' || action || '|' || reason};
	my $order = $select =~ /^DISTINCT/ ? '' : 'ORDER BY line';
	my ($out, $err);
	my $rc = $node->psql('site', qq{SET ROLE $role;
SELECT $select FROM smsdist.import_package_definition(decode('$hex', 'hex'), '$source') $order},
		stdout => \$out, stderr => \$err, on_error_stop => 1);
	return ($rc, $out, $err);
}
sub import_file { my ($name, @rest) = @_; return import_as('pdf_admin', corpus_hex($name), undef, @rest); }
sub q1 { return $node->safe_psql('site', $_[0]); }

# ---- a real-looking file: Office XP, three programs
my ($rc, $out, $err) = import_file('officexp.sms');
is($rc, 0, 'an administrator who is not a superuser imports officexp.sms') or diag($err);
my $pkg = q1(q{SELECT package_id || '|' || name || '|' || version || '|' || manufacturer || '|' || language || '|' || comment
                 FROM smsdist.packages});
like($pkg, qr/^CEN\w{5}\|Office XP Professional\|10\.0\|Microsoft\|English\|Office XP Professional with FrontPage$/,
	'the package: Name, Version, Publisher, Language and Comment') or diag($pkg);
my $id = (split(/\|/, $pkg))[0];
is(q1(qq{SELECT string_agg(program_name || '|' || command_line || '|' || coalesce(platforms::text, 'any') || '|' || run_with,
                           E'\\n' ORDER BY program_name) FROM smsdist.programs WHERE package_id = '$id'}),
	"Custom Install|setup.exe|any|user_rights\n"
	  . "Typical Install|setup.exe /q TRANSFORMS=typical.mst|{WINNT_X86,WIN95}|administrative_rights\n"
	  . "Uninstall|setup.exe /x /q|{WINNT_X86}|administrative_rights",
	'its programs: names, command lines, platforms from SupportedClients, run_with from AdminRightsRequired');
like($out, qr/^7\|Package Definition\|Icon\|mapped\|packages\.icon_file = setup\.ico /m, 'the package Icon is its icon_file');
is(q1(qq{SELECT icon_file FROM smsdist.packages WHERE package_id = '$id'}), 'setup.ico', 'packages.icon_file is setup.ico');
like($out, qr/^12\|Package Definition\|MIFName\|ignored\|.*MIF/m, 'MIFName is ignored, and the reason says why');
like($out, qr/^24\|Typical\|Estimated Run Time\|ignored\|.*max_run_minutes/m,
	'"Estimated Run Time" (with blanks) is read as EstimatedRunTime and ignored, the reason says why');
like($out, qr/^30\|Typical\|Win NT \(I386\) MinVersion1\|ignored\|.*not to operating system versions/m,
	'platform version keys are ignored with the reason');
like($out, qr/^52\|Uninstall\|SupportedClients\|mapped\|programs\.platforms = \{WINNT_X86\}; not platforms of smsdist, left out: Win NT \(IA64\)$/m,
	'a client platform smsdist does not know is named in the report');
like($out, qr/^41\|Custom\|UserInputRequired\|ignored\|.*never gets/m, 'UserInputRequired=True is reported as a warning');
my @lines = split(/\n/, $out);
is(scalar(@lines), 45, 'one report row per entry of the file (45)');
is(scalar(grep { !/\|(mapped|ignored)\|./ } @lines), 0, 'each row is mapped or ignored, with a reason');

# ---- Icon: a Windows path inside the package; one outside it is ignored, the rest imported
{
	my $pdf = "[PDF]\r\nVersion=2.0\r\n[Package Definition]\r\nName=Icons %s\r\nIcon=%s\r\nPrograms=Install\r\n"
	  . "[Install]\r\nName=Install\r\nCommandLine=setup.exe\r\n";
	for my $case ([ 'sub', 'art\\app.ico', 'art/app.ico', qr/\|mapped\|packages\.icon_file = art\/app\.ico / ],
		[ 'up', '..\\..\\etc\\passwd', 'NULL', qr/\|ignored\|not a path inside the package source/ ],
		[ 'drive', 'C:\\icons\\app.ico', 'C:/icons/app.ico', qr/\|mapped\|/ ],
		[ 'abs', '/etc/app.ico', 'NULL', qr/\|ignored\|not a path inside the package source/ ])
	{
		my ($name, $icon, $want, $re) = @$case;
		($rc, $out, $err) = import_as('pdf_admin', unpack('H*', sprintf($pdf, $name, $icon)));
		is($rc, 0, "Icon=$icon: the package is imported") or diag($err);
		like($out, qr/^5\|Package Definition\|Icon$re/m, "Icon=$icon: the report says what became of it") or diag($out);
		is(q1(qq{SELECT coalesce(icon_file, 'NULL') FROM smsdist.packages WHERE name = 'Icons $name'}), $want,
			"Icon=$icon: icon_file is $want");
	}
	$node->safe_psql('site', q{DELETE FROM smsdist.programs WHERE package_id IN (SELECT package_id FROM smsdist.packages WHERE name LIKE 'Icons %');
DELETE FROM smsdist.packages WHERE name LIKE 'Icons %'});
}

# ---- again: a second package (as SMS made one per import)
($rc, $out, $err) = import_file('officexp.sms', 'DISTINCT package_id');
is($rc, 0, 'the same file imported again');
isnt($out, $id, 'it is a second package');
is(q1(q{SELECT count(*) FROM smsdist.packages}), '2', 'two packages now');

# ---- unknown sections and keys: reported, not imported
($rc, $out, $err) = import_file('unknown-sections.pdf');
is($rc, 0, 'a file with unknown sections is imported') or diag($err);
like($out, qr/^21\|Setup Package for Inventory\|InventoryThisPackage\|ignored\|section \[Setup Package for Inventory\] is not \[PDF\], \[Package Definition\] or a program named in Programs$/m,
	'each entry of an unknown section is reported as ignored');
like($out, qr/^28\|Empty Section\|\|ignored\|/m, 'an empty unknown section is reported too');
like($out, qr/^10\|Package Definition\|SetupVariations\|ignored\|unknown key$/m, 'an unknown key is reported as ignored');

# ---- optional fields left empty, as SMS 2003 wrote them; smsdist's own platform names
($rc, $out, $err) = import_file('empty-fields.sms');
is($rc, 0, 'a file with empty optional fields is imported') or diag($err);
like($out, qr/^8\|Package Definition\|Language\|mapped\|packages\.language = NULL \(empty\)$/m,
	'an empty Language is NULL, and the report says so');
is(q1(q{SELECT coalesce(p.version, 'NULL') || '|' || coalesce(p.language, 'NULL') || '|' || coalesce(p.comment, 'NULL')
               || '|' || g.platforms::text
          FROM smsdist.packages p JOIN smsdist.programs g USING (package_id) WHERE p.name = 'SMS 2003 Toolkit'}),
	'NULL|NULL|NULL|{WINNT_X86,WIN_X64,LINUX_X86_64}', 'empty fields are NULL; SupportedClients may name smsdist platforms');

# ---- the encodings: the same characters from each
my %enc = ('win1252.pdf' => 'Café Manager|Société Générale®|Gestion des cafés – édition €',
	'utf16le.sms' => 'Zürich Tools|Müller AG|Werkzeuge für Zürich 𝄞',
	'utf16be.sms' => 'Zürich Tools BE|Müller AG|big endian',
	'utf8bom.pdf' => 'Ångström Viewer|Ångström Labs|UTF-8 with a byte-order mark');
for my $f (sort keys %enc)
{
	($rc, $out, $err) = import_file($f, 'DISTINCT package_id');
	is($rc, 0, "$f is imported") or diag($err);
	my $got = q1(qq{SELECT name || '|' || manufacturer || '|' || comment FROM smsdist.packages WHERE package_id = '$out'});
	utf8::decode($got);
	my $want = $enc{$f};
	utf8::decode($want);
	is($got, $want, "$f: its text is read in its encoding");
}
# the text form: the file already in the database's encoding
my $text = q1(qq{SELECT count(*) FROM smsdist.import_package_definition(convert_from(decode('@{[corpus_hex('acrobat.pdf')]}', 'hex'), 'UTF8'), '$b/src/app')});
is($text, '28', 'import_package_definition(text, text) imports acrobat.pdf: 28 entries');
is(q1(q{SELECT command_line FROM smsdist.programs WHERE program_name = 'Per-system unattended'}),
	'AdbeRdr60_enu_full.exe -p"-s /v\"/qn\""', 'a command line with quotes is kept as written');
is(q1(q{SELECT comment FROM smsdist.packages WHERE name = 'Adobe Reader'}),
	'Adobe Reader 6.0.1, silent install', 'one pair of quotes around a value is removed');

# ---- hostile and malformed files: each refused, and nothing is left
my $before = q1(q{SELECT count(*) || '/' || (SELECT count(*) FROM smsdist.programs) FROM smsdist.packages});
my @bad = (
	[ 'bad-duplicate-key.pdf', qr/line 8: duplicate key Name in section \[Package Definition\] \(first on line 5\)/ ],
	[ 'bad-duplicate-key-spaced.pdf', qr/line 11: duplicate key Estimated Run Time in section \[Install\] \(first on line 10\)/ ],
	[ 'bad-duplicate-section.pdf', qr/line 11: duplicate section \[install\] \(first on line 8\)/ ],
	[ 'bad-duplicate-program-name.pdf', qr/line 13, program \[Custom\]: a program named "Install" is already in the package/ ],
	[ 'bad-garbage-line.pdf', qr/line 7: neither a \[section\] nor a key = value entry/ ],
	[ 'bad-entry-before-section.pdf', qr/line 1: an entry before the first \[section\]/ ],
	[ 'bad-control-char.pdf', qr/line 9: control character U\+001b/ ],
	[ 'bad-long-value.pdf', qr/line 6: the value of Comment has 5000 characters/ ],
	[ 'bad-long-commandline.pdf', qr/line 9, \[Install\] CommandLine: invalid command line: it must be 1 to 1024 bytes long/ ],
	[ 'bad-name.pdf', qr/line 5, \[Package Definition\] Name: invalid name "Acme Tools 1\.0\/2\.0": it contains one of/ ],
	[ 'bad-missing-program.pdf', qr/line 6: Programs names \[Complete\], which is not in the file/ ],
	[ 'bad-no-commandline.pdf', qr/line 8: program \[Typical\] has no CommandLine/ ],
	[ 'bad-canrunwhen.pdf', qr/line 10, \[Install\] CanRunWhen: CanRunWhen is UserLoggedOn, NoUserLoggedOn or AnyUserStatus/ ],
	[ 'bad-user-rights-no-user.pdf', qr/line 10, \[Install\] CanRunWhen: a program that runs with the user's rights needs a logged-on user/ ],
	[ 'bad-platforms.pdf', qr/line 10, \[Install\] SupportedClients: no client platform smsdist knows: Win NT \(IA64\)/ ],
	[ 'bad-sms1x.pdf', qr/line 2, \[PDF\] Version: format version "1\.0" is not 2\.0/ ],
	[ 'bad-not-pdf.inf', qr/not a package definition file: it has no \[PDF\] section/ ],
	[ 'bad-encoding.pdf', qr/package definition is neither UTF-8 nor Windows-1252/ ],
	[ 'bad-utf16-no-bom.pdf', qr/package definition has a NUL byte at byte 1/ ],
	[ 'bad-utf16-odd.sms', qr/package definition is not valid UTF-16: it has an odd number of bytes/ ]);
for my $t (@bad)
{
	($rc, $out, $err) = import_file($t->[0]);
	isnt($rc, 0, "$t->[0] is refused");
	like($err, $t->[1], "$t->[0]: the error says why") or diag($err);
}
# every file in the corpus is tested above
opendir(my $dh, $corpus) or die "$corpus: $!";
my %tested = map { $_->[0] => 1 } @bad;
$tested{$_} = 1 for ('officexp.sms', 'acrobat.pdf', 'unknown-sections.pdf', 'empty-fields.sms', keys %enc);
is(join(' ', grep { !/^\./ && !$tested{$_} } sort readdir($dh)), '', 'every file of the corpus is tested');
closedir $dh;

# ---- the corpus mutated (a fixed seed): bytes changed, files cut short,
# pieces repeated, the bytes that matter to the format put anywhere.  Each
# import succeeds or fails with one of the errors above (a line-numbered
# package definition error, a limit or a table's check), never otherwise.
$node->safe_psql('site', qq{
CREATE TABLE fuzz_outcomes (file text, state text, msg text);
DO \$\$
DECLARE
    f text;
    orig bytea;
    b bytea;
    n integer;
    p integer;
BEGIN
    PERFORM setseed(0.55);
    FOR f IN SELECT x FROM pg_ls_dir('$corpus') x WHERE x !~ '^[.]' ORDER BY x LOOP
        orig := pg_read_binary_file('$corpus/' || f);
        FOR i IN 1..40 LOOP
            b := orig;
            n := length(b);
            CASE i % 4
            WHEN 0 THEN
                FOR k IN 1..(1 + (random() * 3)::int) LOOP
                    b := set_byte(b, (random() * (n - 1))::int, (random() * 255)::int);
                END LOOP;
            WHEN 1 THEN
                b := substr(b, 1, (random() * n)::int);
            WHEN 2 THEN
                p := (random() * n)::int;
                b := substr(b, 1, p) || substr(b, (random() * n)::int + 1, (random() * 80)::int) || substr(b, p + 1);
            ELSE
                b := set_byte(b, (random() * (n - 1))::int,
                              get_byte('\\x5b5d3d0a0d3b2200ff09'::bytea, (random() * 9)::int));
            END CASE;
            BEGIN
                PERFORM count(*) FROM smsdist.import_package_definition(b, '$b/src/app');
                RAISE EXCEPTION 'imported' USING ERRCODE = 'P0001';
            EXCEPTION WHEN OTHERS THEN
                INSERT INTO fuzz_outcomes VALUES (f, SQLSTATE, SQLERRM);
            END;
        END LOOP;
    END LOOP;
END
\$\$;});
opendir(my $cd, $corpus) or die "$corpus: $!";
my $files = scalar(grep { !/^\./ } readdir($cd));
closedir $cd;
is(q1(q{SELECT count(*) FROM fuzz_outcomes}), 40 * $files, "each of the $files files mutated 40 times");
my $odd = q1(q{SELECT string_agg(state || ' ' || msg, E'\n') FROM fuzz_outcomes
                WHERE NOT (state = 'P0001' AND msg = 'imported'
                           OR state IN ('22P02', '22023', '22021', '23514', '23505', '54000')
                              AND msg ~ '^(package definition|not a package definition file)')});
is($odd, '', 'every mutated file is imported or refused with a package definition error');
cmp_ok(q1(q{SELECT count(*) FROM fuzz_outcomes WHERE state = 'P0001'}), '>', 20, 'some mutated files are still imported');
cmp_ok(q1(q{SELECT count(DISTINCT state) FROM fuzz_outcomes}), '>=', 6, 'and the others meet most of the errors');

# too large: refused before it is read
$rc = $node->psql('site', q{SET ROLE pdf_admin;
SELECT * FROM smsdist.import_package_definition(convert_to('[PDF]' || repeat(';', 1048576), 'UTF8'), '/srv/app')},
	stderr => \$err);
like($err, qr/package definition too large: 1048581 bytes/, 'a file over 1 MB is refused (bytea)');
$rc = $node->psql('site', q{SET ROLE pdf_admin;
SELECT * FROM smsdist.import_package_definition('[PDF]' || repeat(';', 1048576), '/srv/app')}, stderr => \$err);
like($err, qr/package definition too large: 1048581 bytes/, 'a file over 1 MB is refused (text)');
$rc = $node->psql('site', q{SET ROLE pdf_admin;
SELECT * FROM smsdist.import_package_definition(repeat(E'\n', 30000), '/srv/app')}, stderr => \$err);
like($err, qr/more than 20000 lines/, 'too many lines are refused');
$rc = $node->psql('site', q{SET ROLE pdf_admin;
SELECT * FROM smsdist.import_package_definition(E'[PDF]\n' || (SELECT string_agg(format(E'[S%s]', i), E'\n') FROM generate_series(1, 300) i), '/srv/app')},
	stderr => \$err);
like($err, qr/more than 256 sections/, 'too many sections are refused');

# the source must be allowed (smsdist.source_roots), as for any package
($rc, $out, $err) = import_as('pdf_admin', corpus_hex('acrobat.pdf'), '/etc');
isnt($rc, 0, 'a source outside smsdist.source_roots is refused');
like($err, qr/package source "\/etc" is not under any directory of smsdist.source_roots/, 'the error is the package table\'s own') or diag($err);
is(q1(q{SELECT count(*) || '/' || (SELECT count(*) FROM smsdist.programs) FROM smsdist.packages}), $before,
	'no refused file left a package or a program');

# a reader may not import
($rc, $out, $err) = import_as('pdf_reader', corpus_hex('acrobat.pdf'));
like($err, qr/permission denied for function import_package_definition/, 'a reader may not import');

done_testing();
