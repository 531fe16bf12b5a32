# An upgraded install is the same as a fresh one: for every earlier
# version of the extension (each sql/smsdist--A--B.sql names one), a
# database created at that version and updated with ALTER EXTENSION ...
# UPDATE has exactly the catalog of a database created at the current
# version -- tables and columns with their types, defaults and nullability,
# constraints, indexes, functions (their whole definitions, volatility,
# security, settings and privileges), views, triggers, types and enum
# labels in order, sequences, the privileges on every relation and on the
# schema, the comments on every object, each relation's columns in order,
# the objects that belong to the extension, and the tables pg_dump dumps
# (with their conditions).  The current version's scripts are built from
# the source files in sql/ (docs/data-model.md): whatever way they are
# built, an administrator who upgrades gets what a new site gets.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../lib";
use SmsTest;

my $node = site_node('cat', site_code => 'CEN', database => 'site');

# the versions: every "from" version of an update script
# (released in sql/, unreleased ones' sources in sql/updates/)
my %from;
for my $sqldir ("$FindBin::Bin/../../sql", "$FindBin::Bin/../../sql/updates")
{
	opendir(my $dh, $sqldir) or die "$sqldir: $!";
	$from{$_} = 1 for map { /^smsdist--([0-9.]+)--[0-9.]+\.sql$/ ? ($1) : () } readdir($dh);
	closedir($dh);
}
my @versions = sort { version_key($a) <=> version_key($b) } keys %from;
sub version_key { my ($v) = @_; my ($a, $b) = split /\./, $v; return $a * 1000 + $b; }
ok(@versions >= 8, 'the earlier versions: ' . join(', ', @versions));

my $current = $node->safe_psql('site', q{SELECT extversion FROM pg_extension WHERE extname = 'smsdist'});

# The catalog of the schema smsdist, as text, one line per fact, sorted.
my $catalog = q{
WITH s AS (SELECT 'smsdist'::regnamespace AS ns),
facts AS (
  SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS f
    FROM pg_class c JOIN s ON c.relnamespace = s.ns
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   WHERE c.relkind IN ('r', 'v', 'c', 'p')
  UNION ALL
  SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' acl ' || coalesce(c.relacl::text, '-')
    FROM pg_class c JOIN s ON c.relnamespace = s.ns WHERE c.relkind IN ('r', 'v', 'S', 'p')
  UNION ALL
  SELECT 'constraint ' || r.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid JOIN s ON r.relnamespace = s.ns
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid JOIN s ON r.relnamespace = s.ns
  UNION ALL
  SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') acl '
         || coalesce(p.proacl::text, '-') || ' ' || pg_get_functiondef(p.oid)
    FROM pg_proc p JOIN s ON p.pronamespace = s.ns WHERE p.prokind IN ('f', 'p', 'w')
  UNION ALL
  SELECT 'aggregate ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
    FROM pg_proc p JOIN s ON p.pronamespace = s.ns WHERE p.prokind = 'a'
  UNION ALL
  SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
    FROM pg_class c JOIN s ON c.relnamespace = s.ns WHERE c.relkind = 'v'
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN s ON r.relnamespace = s.ns
   WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'type ' || t.typname || ' ' || t.typtype::text || ' '
         || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '')
         || coalesce(' domain ' || format_type(t.typbasetype, t.typtypmod), '')
    FROM pg_type t JOIN s ON t.typnamespace = s.ns
   WHERE t.typtype IN ('e', 'd', 'c') AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
  UNION ALL
  SELECT 'sequence ' || q.seqrelid::regclass::text || ' ' || q.seqtypid::regtype::text || ' ' || q.seqincrement
    FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid JOIN s ON c.relnamespace = s.ns
  UNION ALL
  SELECT 'dumped ' || e.extconfig[i]::regclass::text || ' where ' || coalesce(e.extcondition[i], '-')
    FROM pg_extension e, generate_subscripts(e.extconfig, 1) i WHERE e.extname = 'smsdist'
  UNION ALL
  SELECT 'position ' || c.relname || '.' || a.attname || ' '
         || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
    FROM pg_class c JOIN s ON c.relnamespace = s.ns
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'v', 'c', 'p')
  UNION ALL
  SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' ' || d.description
    FROM pg_description d
   WHERE (pg_identify_object(d.classoid, d.objoid, d.objsubid)).schema = 'smsdist'
  UNION ALL
  SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
    FROM pg_depend d JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
   WHERE e.extname = 'smsdist' AND d.deptype = 'e'
  UNION ALL
  SELECT 'schema acl ' || coalesce(n.nspacl::text, '-') FROM pg_namespace n JOIN s ON n.oid = s.ns)
SELECT string_agg(f, E'\n' ORDER BY f) FROM facts
};

my $fresh = $node->safe_psql('site', $catalog);
ok(length($fresh) > 10000, 'the catalog of a fresh install is read (' . length($fresh) . ' bytes)');

for my $v (@versions)
{
	my $db = 'from_' . ($v =~ tr/./_/r);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION smsdist VERSION '$v'");
	$node->safe_psql($db, 'ALTER EXTENSION smsdist UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'smsdist'}), $current,
		"from $v: updated to $current");
	my $upgraded = $node->safe_psql($db, $catalog);
	if ($upgraded eq $fresh)
	{
		pass("from $v: the catalog is the fresh install's");
	}
	else
	{
		my %a = map { $_ => 1 } split /\n/, $fresh;
		my %b = map { $_ => 1 } split /\n/, $upgraded;
		my @only_fresh = grep { !$b{$_} } sort keys %a;
		my @only_upgraded = grep { !$a{$_} } sort keys %b;
		fail("from $v: the catalog is the fresh install's");
		diag("only in the fresh install:\n" . join("\n", map { substr($_, 0, 300) } @only_fresh[0 .. ($#only_fresh < 20 ? $#only_fresh : 19)]));
		diag("only in the upgraded one:\n" . join("\n", map { substr($_, 0, 300) } @only_upgraded[0 .. ($#only_upgraded < 20 ? $#only_upgraded : 19)]));
	}
	$node->safe_psql('postgres', "DROP DATABASE $db");
}

done_testing();
