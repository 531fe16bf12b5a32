-- A package definition file's entries, read as Windows reads an .ini file:
-- lines end with CR LF, LF or CR; blanks around names and values do not
-- count; a line whose first character is ";" is a comment; one pair of
-- double quotes around a whole value is removed.  What Windows would
-- silently pass over is an error here, with its line number, since a file
-- that says two things cannot be imported as either: a duplicate section
-- or key (names compared without case, and keys without blanks, so
-- "Estimated Run Time" is EstimatedRunTime), a line that is neither a
-- section nor an entry, an entry before the first section, a control
-- character.  Everything is bounded (size, lines, sections, entries, the
-- length of names and values), so a hostile file costs little.
CREATE OR REPLACE FUNCTION parse_package_definition(definition text)
    RETURNS SETOF smsdist.package_definition_entry
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes constant integer := 1048576;
    max_lines constant integer := 20000;
    max_sections constant integer := 256;
    max_section_keys constant integer := 256;
    max_entries constant integer := 4096;
    max_name constant integer := 128;
    max_value constant integer := 4000;
    l record;
    t text;
    e smsdist.package_definition_entry;
    cur text;                   -- the section the entries belong to
    sections jsonb := '{}';     -- each section's name (lower case) => its line
    keys jsonb := '{}';         -- the current section's keys (normalized) => line
    section_keys integer := 0;
    entries integer := 0;
    eq integer;
    nk text;
BEGIN
    IF octet_length(definition) > max_bytes THEN
        RAISE EXCEPTION 'package definition too large: % bytes', octet_length(definition)
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = format('A package definition file may have at most %s bytes.', max_bytes);
    END IF;
    FOR l IN SELECT x.s, x.n::integer AS n
               FROM regexp_split_to_table(definition, E'\r\n|\n|\r') WITH ORDINALITY AS x(s, n) LOOP
        IF l.n > max_lines THEN
            RAISE EXCEPTION 'package definition has more than % lines', max_lines
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        -- a byte-order mark an editor left at the start is no character
        t := btrim(CASE WHEN l.n = 1 THEN ltrim(l.s, U&'\FEFF') ELSE l.s END, E' \t');
        CONTINUE WHEN t = '' OR left(t, 1) = ';';
        IF t ~ '[\x01-\x08\x0b-\x1f\x7f]' THEN
            RAISE EXCEPTION 'package definition line %: control character U+%', l.n,
                    lpad(to_hex(ascii(substring(t FROM '[\x01-\x08\x0b-\x1f\x7f]'))), 4, '0')
                USING ERRCODE = 'invalid_text_representation';
        END IF;
        IF left(t, 1) = '[' THEN
            IF right(t, 1) <> ']' THEN
                RAISE EXCEPTION 'package definition line %: a section header must end with "]"', l.n
                    USING ERRCODE = 'invalid_text_representation';
            END IF;
            cur := btrim(substr(t, 2, length(t) - 2), E' \t');
            IF cur = '' OR length(cur) > max_name THEN
                RAISE EXCEPTION 'package definition line %: a section name must have 1 to % characters', l.n, max_name
                    USING ERRCODE = 'invalid_text_representation';
            END IF;
            IF sections ? lower(cur) THEN
                RAISE EXCEPTION 'package definition line %: duplicate section [%] (first on line %)',
                        l.n, cur, sections ->> lower(cur)
                    USING ERRCODE = 'invalid_text_representation';
            END IF;
            sections := sections || jsonb_build_object(lower(cur), l.n);
            IF (SELECT count(*) FROM jsonb_object_keys(sections)) > max_sections THEN
                RAISE EXCEPTION 'package definition has more than % sections', max_sections
                    USING ERRCODE = 'program_limit_exceeded';
            END IF;
            keys := '{}';
            section_keys := 0;
            e := (l.n, cur, NULL, NULL);
            RETURN NEXT e;
            CONTINUE;
        END IF;
        IF cur IS NULL THEN
            RAISE EXCEPTION 'package definition line %: an entry before the first [section]', l.n
                USING ERRCODE = 'invalid_text_representation';
        END IF;
        eq := strpos(t, '=');
        IF eq = 0 THEN
            RAISE EXCEPTION 'package definition line %: neither a [section] nor a key = value entry', l.n
                USING ERRCODE = 'invalid_text_representation';
        END IF;
        e := (l.n, cur, btrim(left(t, eq - 1), E' \t'), btrim(substr(t, eq + 1), E' \t'));
        IF e.key = '' OR length(e.key) > max_name THEN
            RAISE EXCEPTION 'package definition line %: a key must have 1 to % characters', l.n, max_name
                USING ERRCODE = 'invalid_text_representation';
        END IF;
        IF length(e.value) > max_value THEN
            RAISE EXCEPTION 'package definition line %: the value of % has % characters', l.n, e.key, length(e.value)
                USING ERRCODE = 'program_limit_exceeded',
                      DETAIL = format('A value may have at most %s characters.', max_value);
        END IF;
        IF length(e.value) >= 2 AND left(e.value, 1) = '"' AND right(e.value, 1) = '"' THEN
            e.value := substr(e.value, 2, length(e.value) - 2);
        END IF;
        nk := lower(replace(e.key, ' ', ''));
        IF keys ? nk THEN
            RAISE EXCEPTION 'package definition line %: duplicate key % in section [%] (first on line %)',
                    l.n, e.key, cur, keys ->> nk
                USING ERRCODE = 'invalid_text_representation';
        END IF;
        keys := keys || jsonb_build_object(nk, l.n);
        section_keys := section_keys + 1;
        entries := entries + 1;
        IF section_keys > max_section_keys OR entries > max_entries THEN
            RAISE EXCEPTION 'package definition line %: more than % entries in a section or % in the file',
                    l.n, max_section_keys, max_entries
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        RETURN NEXT e;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION parse_package_definition(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION parse_package_definition(text) TO smsdist_operator;
