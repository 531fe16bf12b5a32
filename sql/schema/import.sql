-- Importing SMS package definition files (docs/import.md).
--
-- A package definition file (.SMS, .PDF) is how a vendor shipped an SMS 2.0
-- or 2003 package: an .ini file with a [PDF] section, a [Package Definition]
-- section and one section per program.  import_package_definition() reads
-- one and creates the package and its programs in the caller's transaction,
-- as the caller (an operator's rights apply, and the package and program
-- validation of the tables): every value passes the same checks as an
-- INSERT.  It returns one row per entry of the file saying what became of
-- it.  The parser is PL/pgSQL: it only splits lines and counts, with every
-- size bounded, so nothing in a file can reach memory that is not the
-- server's own.
--   entry: one line of the file: a section header (key NULL) or a
--          key = value line of the section above it.

CREATE TYPE package_definition_entry AS (
    line             integer,       -- its line number, from 1
    section          text,          -- the section, as written
    key              text,          -- the key as written; NULL for the section header
    value            text           -- the value, blanks and one pair of quotes removed
);

\ir ../functions/parse_package_definition.sql
\ir ../functions/decode_package_definition.sql
\ir ../functions/import_program_run_with.sql
\ir ../functions/import_program_definition.sql
\ir ../functions/import_package_definition.sql
