# The documentation cannot go stale: every example of
# docs/tutorial.md and of README.md runs, in order, and prints what the page
# shows; docs/reference.md with docs/reference-tables.md lists exactly what
# exists; every SQL example of
# the other pages in docs/ parses and names only what exists.
#
# - docs/tutorial.md: two servers made with the page's configuration
#   blocks (CEN and CH1), then each marked block in turn (the markers and
#   the normalisation of outputs are described at the top of the page and
#   in test/lib/DocExamples.pm); a block whose output is a state that
#   arrives by itself ("until") is run again until it matches.
# - README.md: the short tour runs at a site of its own; the set-up block
#   names the commands .ci/run runs (a command README does not name must
#   be one that both of README's commands run first), and they exist and
#   are executable.  They are not run here: they install packages and run
#   this very suite.
# - docs/reference.md and docs/reference-tables.md (one reference in two
#   pages) against the catalog of the tutorial's central site
#   and against the code: tables, views and their columns, types,
#   functions with their arguments, settings smsdist.*, roles smsdist_*,
#   NOTIFY channels (notify_change() triggers, pg_notify() and
#   Async_Notify() calls), status message IDs (#define ...MSG_... in src/,
#   or a #define commented as a message ID) and instruction-file formats
#   (#define SMS_FMT_... in src/formats/); each missing or extra item is a
#   failure that names it.
# - Every other docs/*.md: each ```sql block runs at the central site
#   inside a transaction that is rolled back, each statement under its own
#   savepoint (psql's ON_ERROR_ROLLBACK): an error that the statement is
#   not valid SQL or names something that does not exist (SQLSTATE 42601,
#   42703, 42P01, 42883, 42P02, 42702, 42725, 42804) fails; errors
#   that depend on the data (a missing referenced row, a refused value)
#   do not, nor does a missing relation or function of another
#   extension's schema (cron.*: pg_cron is not loaded here).  Each ```sh
#   block must pass bash -n.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;
use DocExamples;

my $top = "$FindBin::Bin/../..";
my $host = $PostgreSQL::Test::Cluster::test_pghost;

# ---- a page's marked blocks, in order, against sites built for it
#
# $page: { file, sites => { CODE => node }, subst => [ [ page text, real text ], ... ] }
sub to_real
{
	my ($page, $text) = @_;
	for my $s (@{ $page->{subst} })
	{
		my ($from, $to) = @$s;
		$text =~ s/(?<![\w.\/])\Q$from\E(?![\w])/$to/g;
	}
	return $text;
}

sub to_page
{
	my ($page, $text) = @_;
	for my $s (sort { length($b->[1]) <=> length($a->[1]) } @{ $page->{subst} })
	{
		my ($to, $from) = @$s;
		$text =~ s/(?<![\w.\/])\Q$from\E(?![\w])/$to/g;
	}
	return $text;
}

# runs a block once: (exit status, output as the page would show it)
sub run_once
{
	my ($page, $kind, $site, $text) = @_;
	my $out = '';
	my $real = to_real($page, $text);
	if ($kind eq 'sh')
	{
		local $ENV{PGHOST} = $host;
		IPC::Run::run([ 'bash', '-e', '-c', $real ], '<', \'', '>&', \$out,
			init => sub { chdir $page->{cwd} or die "$page->{cwd}: $!" });
	}
	else
	{
		my $node = $page->{sites}{$site} or die "$page->{file}: no site $site";
		IPC::Run::run([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-h', $host, '-p', $node->port, '-d', 'site' ],
			'<', \$real, '>&', \$out);
	}
	return ($?, to_page($page, $out));
}

sub run_block
{
	my ($page, $b) = @_;
	my $where = "$page->{file}:$b->{line}";
	my ($kind, $site, $until) = $b->{marker} =~ /^(?:(sh)|(psql) (\w+))( until)?$/
	  ? (($1 // $2), $3, $4) : ()
	  or return fail("$where: unknown marker \"$b->{marker}\"");
	my ($rc, $out);
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (1)
	{
		($rc, $out) = run_once($page, $kind, $site, $b->{text});
		last unless $until;
		last if $rc == 0 && output_matches($b->{output}, $out);
		last if time() > $deadline;
		usleep(200_000);	# polling a state, not waiting for time
	}
	note("$where printed:\n$out");
	my $ok = is($rc, 0, "$where ($b->{marker}) runs");
	if (defined $b->{output})
	{
		$ok = ok(output_matches($b->{output}, $out), "$where ($b->{marker}) prints what the page shows") && $ok;
		diag("the page shows:\n$b->{output}\nit printed:\n$out") unless $ok;
	}
	elsif (!$ok)
	{
		diag("it printed:\n$out");
	}
	return $ok;
}

# every block of the page must be marked; returns the blocks
sub marked_blocks
{
	my ($file) = @_;
	my @blocks = code_blocks("$top/$file");
	for my $b (@blocks)
	{
		ok(defined $b->{marker}, "$file:$b->{line}: the ```$b->{lang} block is marked <!-- test: ... -->")
		  or diag("add <!-- test: sh -->, <!-- test: psql SITE -->, ... or <!-- test: skip (why) --> on the line before it");
	}
	return @blocks;
}

sub run_page
{
	my ($page, @blocks) = @_;
	for my $b (@blocks)
	{
		next unless defined $b->{marker};
		next if $b->{marker} =~ /^(skip|conf)\b/;
		# a step that failed leaves the page's later steps without their
		# state: say so once instead of a cascade of failures
		run_block($page, $b) or return fail("$page->{file}: stopped at line $b->{line}");
	}
	return 1;
}

# ---- docs/tutorial.md
my @tutorial = marked_blocks('docs/tutorial.md');
my %conf;
for my $b (@tutorial)
{
	$conf{$1} .= $b->{text} if ($b->{marker} // '') =~ /^conf (\w+)$/;
}
ok($conf{CEN} && $conf{CH1}, 'the tutorial configures CEN and CH1');
my $srv = PostgreSQL::Test::Utils::tempdir('srv');
my $tsubst = [ [ '/srv/smsdist', $srv ], [ 'localhost', $host ] ];
my $cen = site_node('cen', site_code => 'CEN', create => 0, conf => to_real({ subst => $tsubst }, $conf{CEN}));
my $ch1 = site_node('ch1', site_code => 'CH1', create => 0, conf => to_real({ subst => $tsubst }, $conf{CH1}));
push @$tsubst, [ '5433', $cen->port ], [ '5434', $ch1->port ];
my $tutorial = { file => 'docs/tutorial.md', sites => { CEN => $cen, CH1 => $ch1 }, subst => $tsubst, cwd => $srv };
run_page($tutorial, @tutorial);

# ---- README.md
my @readme = marked_blocks('README.md');
my $tour_src = PostgreSQL::Test::Utils::tempdir('source');
my $tour = site_node('tour', site_code => 'CEN', create => 0, source_roots => $tour_src);
$tour->safe_psql('postgres', 'CREATE DATABASE site');
# what the tour takes as there: a package source and the site's directories
my $tour_sms = PostgreSQL::Test::Utils::tempdir('sms');
make_path("$tour_src/office97", "$tour_sms/dp1", "$tour_sms/drive");
system("echo setup > '$tour_src/office97/setup.exe'") == 0 or die;
run_page({ file => 'README.md', sites => { TOUR => $tour },
		subst => [ [ '/srv/source', $tour_src ], [ '/srv/sms', $tour_sms ] ], cwd => $tour_src },
	@readme);
$tour->stop;

{
	my ($setup) = grep { ($_->{marker} // '') =~ /^skip\b/ && $_->{text} =~ /test\/run-all/ } @readme;
	ok($setup, 'README.md has a set-up block naming test/run-all');
	my @named = map { /^\s*(\S+)/ ? $1 : () } grep { /\S/ } split /\n/, ($setup ? $setup->{text} : '');
	is_deeply(\@named, [ 'tools/demo', 'test/run-all' ], "README's set-up commands");
	for my $cmd (@named)
	{
		ok(-f "$top/$cmd" && -x "$top/$cmd", "README's $cmd exists and is executable");
	}
	open(my $fh, '<', "$top/.ci/run") or die ".ci/run: $!";
	my @ci = map { /^\s*(?:bash\s+)?((?:tools|test)\/[\w.\/-]+)/ ? $1 : () } <$fh>;
	close $fh;
	ok(@ci, '.ci/run runs commands of the tree');
	is($ci[-1], 'test/run-all', ".ci/run ends with README's test command");
	for my $cmd (@ci)
	{
		next if grep { $_ eq $cmd } @named;
		my @without = grep { !file_runs("$top/$_", $cmd) } @named;
		ok(!@without, ".ci/run's $cmd, which README does not name, is run by each of README's commands")
		  or diag("not run by: @without");
	}
}

sub file_runs
{
	my ($file, $cmd) = @_;
	open(my $fh, '<', $file) or return 0;
	local $/;
	my $t = <$fh>;
	close $fh;
	return $t =~ /\Q$cmd\E/ ? 1 : 0;
}

# ---- docs/reference.md and docs/reference-tables.md against the catalog
# and the code
my @reference = ('docs/reference.md', 'docs/reference-tables.md');
my %page_of;	# section => the page that has it
my %listed = reference_items(\%page_of, @reference);
# a listed channel "smsdist_policy_<sms id>" is the code's prefix "smsdist_policy_<"
for my $c (keys %{ $listed{'NOTIFY channels'} // {} })
{
	next unless $c =~ /^(\w+)<[^>]+>$/;
	delete $listed{'NOTIFY channels'}{$c};
	$listed{'NOTIFY channels'}{"$1<"} = 1;
}

my %exists = catalog_items($cen);
code_items(\%exists);
for my $section (sort keys %exists)
{
	my @missing = grep { !$listed{$section}{$_} } sort keys %{ $exists{$section} };
	my @extra = grep { !$exists{$section}{$_} } sort keys %{ $listed{$section} // {} };
	my $where = $section =~ /^Columns of (\S+)$/
	  ? "the table of columns under \"### `$1`\" (in \"## Tables\" or \"## Views\")"
	  : $section =~ /^(Tables|Views)$/ ? "the section \"## $section\"" : "the table under \"## $section\"";
	my $cell = sub {
		my ($item) = @_;
		return "### `$item` (a heading, then its table of columns)" if $section eq 'Tables' || $section eq 'Views';
		return "| $item | ... |" if $section eq 'Status message IDs';
		$item =~ s/<$/<...>/;
		return "| `$item` | ... |";
	};
	my $page = $page_of{$section}
	  // ($section =~ /^(?:Tables|Columns of smsdist\.(\w+))$/ && (!defined $1 || $exists{Tables}{"smsdist.$1"})
		? 'docs/reference-tables.md' : 'docs/reference.md');
	is(join(', ', @missing), '', "$page, $section: nothing missing")
	  or diag("$page lacks what exists: add to $where:\n"
		  . join("\n", map { '  ' . $cell->($_) } @missing));
	is(join(', ', @extra), '', "$page, $section: nothing listed that does not exist")
	  or diag("$page lists what does not exist: remove (or correct) in $where:\n"
		  . join("\n", map { '  ' . $cell->($_) } @extra));
}
for my $section (sort keys %listed)
{
	# the columns of a table that does not exist: said under Tables or Views
	next if $section =~ /^Columns of / && !$exists{$section};
	ok($exists{$section}, "$page_of{$section}: section \"$section\" is one the test knows")
	  or diag('the sections checked are: ' . join(', ', sort keys %exists));
}

# The items of the reference: the backquoted first cell of each table row,
# by section ("## Title"); in Tables and Views, the columns of each
# "### `smsdist.name`" as "Columns of smsdist.name".  Status message IDs
# are plain numbers.
sub reference_items
{
	my ($page_of, @files) = @_;
	my %items;
	for my $file (@files)
	{
		open(my $fh, '<', "$top/$file") or die "$file: $!";
		my ($section, $rel);
		while (my $l = <$fh>)
		{
			if ($l =~ /^## (.+?)\s*$/)
			{
				($section, $rel) = ($1, undef);
				$page_of->{$section} = $file;
				next;
			}
			next unless defined $section;
			if ($l =~ /^### `smsdist\.(\w+)`/ && ($section eq 'Tables' || $section eq 'Views'))
			{
				$rel = $1;
				$items{$section}{"smsdist.$rel"} = 1;
				$page_of->{"Columns of smsdist.$rel"} = $file;
				next;
			}
			if ($l =~ /^\| `([^`]+)` \|/ || ($section eq 'Status message IDs' && $l =~ /^\| (\d+) \|/))
			{
				my $item = $1;
				next if $item eq 'column' || $item =~ /^-+$/;
				if (defined $rel) { $items{"Columns of smsdist.$rel"}{$item} = 1; }
				else { $items{$section}{$item} = 1; }
			}
		}
		close $fh;
	}
	return %items;
}

sub catalog_items
{
	my ($node) = @_;
	my %e;
	my $q = sub { return grep { $_ ne '' } split /\n/, $node->safe_psql('site', $_[0]); };
	for ($q->(q{SELECT CASE WHEN c.relkind IN ('r', 'p') THEN 'Tables' ELSE 'Views' END || '|' || c.relname
	             FROM pg_class c WHERE c.relnamespace = 'smsdist'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')}))
	{
		my ($s, $n) = split /\|/;
		$e{$s}{"smsdist.$n"} = 1;
	}
	for ($q->(q{SELECT c.relname || '|' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	             WHERE c.relnamespace = 'smsdist'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
	               AND a.attnum > 0 AND NOT a.attisdropped}))
	{
		my ($r, $c) = split /\|/;
		$e{"Columns of smsdist.$r"}{$c} = 1;
	}
	$e{Types}{"smsdist.$_"} = 1 for $q->(q{SELECT t.typname FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
	             WHERE t.typnamespace = 'smsdist'::regnamespace AND (t.typtype IN ('e', 'd') OR c.relkind = 'c')});
	$e{Functions}{$_} = 1 for $q->(q{SELECT 'smsdist.' || p.proname || '(' || pg_get_function_arguments(p.oid) || ')'
	             FROM pg_proc p WHERE p.pronamespace = 'smsdist'::regnamespace});
	$e{Settings}{$_} = 1 for $q->(q{SELECT name FROM pg_settings WHERE name LIKE 'smsdist.%'});
	$e{Roles}{$_} = 1 for $q->(q{SELECT rolname FROM pg_roles WHERE rolname LIKE 'smsdist\_%'});
	return %e;
}

sub slurp_files
{
	my @t;
	for my $f (@_)
	{
		open(my $fh, '<', $f) or die "$f: $!";
		local $/;
		push @t, [ $f, scalar <$fh> ];
		close $fh;
	}
	return @t;
}

sub code_items
{
	my ($e) = @_;
	# NOTIFY channels: the components notify_change() triggers name
	# (smsdist_<component>), pg_notify()'s channels, and Async_Notify()'s in
	# the C code; one of pg_notify() that ends in
	# "_" ||  a value is listed as that prefix followed by <what>
	for my $f (slurp_files(glob("$top/sql/schema/*.sql"), glob("$top/sql/functions/*.sql"), glob("$top/sql/views/*.sql")))
	{
		my $t = $f->[1];
		$t =~ s/--[^\n]*//g;
		while ($t =~ /notify_change\('([\w,]+)'/g)
		{
			$e->{'NOTIFY channels'}{"smsdist_$_"} = 1 for split /,/, $1;
		}
		while ($t =~ /pg_notify\('(smsdist_\w+)'(\s*\|\|)?/g)
		{
			$e->{'NOTIFY channels'}{ $2 ? "$1<" : $1 } = 1;
		}
	}
	# and the channels the C code notifies itself (Async_Notify)
	for my $f (slurp_files(glob("$top/src/*/*.c"), glob("$top/src/*.c")))
	{
		while ($f->[1] =~ /Async_Notify\("(smsdist_\w+)"/g)
		{
			$e->{'NOTIFY channels'}{$1} = 1;
		}
	}
	# status message IDs
	for my $f (slurp_files(glob("$top/src/*/*.[ch]"), glob("$top/src/*.[ch]")))
	{
		while ($f->[1] =~ /^#define\s+(\w+)\s+(\d+)\b([^\n]*)/mg)
		{
			my ($name, $id, $rest) = ($1, $2, $3);
			$e->{'Status message IDs'}{$id} = 1 if $name =~ /^(?:SMS_)?MSG_/ || $rest =~ /message ID/;
		}
	}
	for my $f (slurp_files(glob("$top/src/formats/*.h")))
	{
		while ($f->[1] =~ /^#define\s+SMS_FMT_(\w+)\s+"([^"]+)"/mg)
		{
			$e->{'File formats'}{$2} = 1 unless $1 =~ /^DIR_/;
		}
	}
	return;
}

# ---- the other pages' SQL and shell examples

# An error about a relation or function of another extension's schema
# (pg_cron's cron.job_run_details, where pg_cron is not loaded) says
# nothing about smsdist's names: it is not counted.
sub other_extension
{
	my ($error) = @_;
	return $error =~ /^ERROR:\s+42(?:P01|883):\s+(?:relation|function)\s+"?(\w+)\./
	  && $1 ne 'smsdist' && $1 ne 'pg_catalog';
}
my $bad_sql = qr/ERROR:\s+(42601|42703|42P01|42883|42P02|42702|42725|42804):[^\n]*/;
for my $file (sort glob("$top/docs/*.md"))
{
	my $name = 'docs/' . ($file =~ s{.*/}{}r);
	next if $name eq 'docs/tutorial.md' || grep { $_ eq $name } @reference;
	for my $b (code_blocks($file))
	{
		if ($b->{lang} eq 'sql')
		{
			my $sql = "SET statement_timeout = '10s';\nBEGIN;\n$b->{text}\n;\nROLLBACK;\n";
			my $out = '';
			IPC::Run::run([ 'psql', '-X', '-v', 'ON_ERROR_ROLLBACK=on', '-v', 'VERBOSITY=verbose',
					'-h', $host, '-p', $cen->port, '-d', 'site' ], '<', \$sql, '>&', \$out);
			my @bad = grep { /ERROR/ && !other_extension($_) } $out =~ /($bad_sql)/g;
			is(join("\n", @bad), '', "$name:$b->{line}: the SQL example parses and names what exists");
		}
		elsif ($b->{lang} =~ /^(sh|bash)$/)
		{
			my $out = '';
			IPC::Run::run([ 'bash', '-n' ], '<', \$b->{text}, '>&', \$out);
			is($out, '', "$name:$b->{line}: the shell example is valid bash");
		}
	}
}

done_testing();
