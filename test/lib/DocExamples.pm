# DocExamples: the runnable examples of a markdown page, for t/057.
#
# A page marks a code block it wants run with an HTML comment on the line
# right before the block's opening fence (readers of the rendered page do
# not see it):
#   <!-- test: sh -->            run in bash
#   <!-- test: psql SITE -->     run in psql at the named site
#   <!-- test: psql SITE until --> (or "sh until") run again until the
#                                output matches
#   <!-- test: conf SITE -->     the site's server configuration
#   <!-- test: skip (reason) --> not run, for the reason given
# A ```text block right after a marked block (the next line) is its
# expected output.
#
# code_blocks(file)
#   every fenced code block of the file, in order: hashes with line (of the
#   opening fence), lang (the fence's word, '' for none), text, marker (the
#   comment's words after "test:", undef when unmarked) and output (the
#   text of the ```text block that follows, undef when none).
# normalise(text)
#   what is compared of an output: times become <time>, durations before
#   "ago" <n> (3 s ago: <n> s ago); runs of blanks one
#   blank, none at the ends of lines; psql's separator lines (dashes and
#   plus signs) "---"; blank lines at the end dropped.
# output_matches(expected, actual)
#   whether the normalised actual output is the normalised expected one,
#   where a line "..." of the expected output stands for any number of
#   lines, and a line ending in " ..." for any line that begins with what
#   comes before.
package DocExamples;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(code_blocks normalise output_matches);

sub code_blocks
{
	my ($file) = @_;
	open(my $fh, '<', $file) or die "$file: $!";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	my @blocks;
	my $i = 0;
	while ($i < @lines)
	{
		if ($lines[$i] !~ /^```\s*([\w+-]*)\s*$/)
		{
			$i++;
			next;
		}
		my $lang = $1;
		my $start = $i;
		my $marker;
		$marker = $1 if $i > 0 && $lines[$i - 1] =~ /^<!--\s*test:\s*(.*?)\s*-->\s*$/;
		my @body;
		$i++;
		push @body, $lines[$i++] while $i < @lines && $lines[$i] !~ /^```\s*$/;
		$i++;
		my $block = { line => $start + 1, lang => $lang, text => join('', map { "$_\n" } @body),
			marker => $marker, output => undef };
		if (defined $marker && $i < @lines && $lines[$i] =~ /^```text\s*$/)
		{
			my @out;
			$i++;
			push @out, $lines[$i++] while $i < @lines && $lines[$i] !~ /^```\s*$/;
			$i++;
			$block->{output} = join('', map { "$_\n" } @out);
		}
		push @blocks, $block;
	}
	return @blocks;
}

sub normalise
{
	my ($text) = @_;
	$text //= '';
	$text =~ s/\b\d+(?:\.\d+)? (s|min|h|days?) ago\b/<n> $1 ago/g;
	$text =~ s/\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d(?::?\d\d)?)?/<time>/g;
	my @lines = split /\n/, $text;
	for (@lines)
	{
		s/[ \t]+/ /g;
		s/^ | $//g;
		$_ = '---' if /^[-+]{3,}$/;
	}
	pop @lines while @lines && $lines[-1] eq '';
	return join("\n", @lines);
}

sub output_matches
{
	my ($expected, $actual) = @_;
	my @parts = map {
		$_ eq '...' ? '(?:[^\n]*\n)*?'
		  : / \.\.\.$/ ? quotemeta(substr($_, 0, -4)) . '[^\n]*\n'
		  : quotemeta($_) . '\n'
	} split /\n/, normalise($expected);
	my $re = join('', @parts);
	return (normalise($actual) . "\n") =~ /\A$re\z/ ? 1 : 0;
}

1;
