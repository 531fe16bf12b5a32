-- The text of a package definition file given as bytes: SMS-era files are
-- Windows-1252 ("ANSI") or UTF-16 with a byte-order mark, newer ones UTF-8.
-- A byte-order mark decides (UTF-8, UTF-16 LE or BE); without one, bytes
-- that are valid UTF-8 are UTF-8 (plain ASCII is both), and others are
-- Windows-1252.  A NUL byte without a mark is refused: it is a UTF-16 file
-- that lost its mark or not a text file, and guessing would import garbage.
CREATE OR REPLACE FUNCTION decode_package_definition(definition bytea)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_bytes constant integer := 1048576;
    n integer := length(definition);
    big_endian boolean;
    chars text[] := '{}';
    i integer;
    u integer;
    u2 integer;
BEGIN
    IF n > max_bytes THEN
        RAISE EXCEPTION 'package definition too large: % bytes', n
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = format('A package definition file may have at most %s bytes.', max_bytes);
    END IF;
    IF substr(definition, 1, 3) = '\xefbbbf'::bytea THEN
        BEGIN
            RETURN convert_from(substr(definition, 4), 'UTF8');
        EXCEPTION WHEN character_not_in_repertoire THEN
            RAISE EXCEPTION 'package definition is not valid UTF-8, though it begins with a UTF-8 byte-order mark'
                USING ERRCODE = 'character_not_in_repertoire', DETAIL = SQLERRM;
        END;
    END IF;
    IF substr(definition, 1, 2) IN ('\xfffe'::bytea, '\xfeff'::bytea) THEN
        big_endian := get_byte(definition, 0) = 254;
        IF n % 2 = 1 THEN
            RAISE EXCEPTION 'package definition is not valid UTF-16: it has an odd number of bytes'
                USING ERRCODE = 'character_not_in_repertoire';
        END IF;
        i := 2;
        WHILE i < n LOOP
            u := CASE WHEN big_endian THEN get_byte(definition, i) * 256 + get_byte(definition, i + 1)
                      ELSE get_byte(definition, i + 1) * 256 + get_byte(definition, i) END;
            i := i + 2;
            IF u BETWEEN 55296 AND 56319 AND i < n THEN     -- a high surrogate: its pair
                u2 := CASE WHEN big_endian THEN get_byte(definition, i) * 256 + get_byte(definition, i + 1)
                           ELSE get_byte(definition, i + 1) * 256 + get_byte(definition, i) END;
                IF u2 BETWEEN 56320 AND 57343 THEN
                    u := 65536 + (u - 55296) * 1024 + (u2 - 56320);
                    i := i + 2;
                END IF;
            END IF;
            IF u = 0 OR u BETWEEN 55296 AND 57343 THEN
                RAISE EXCEPTION 'package definition is not valid UTF-16: % at byte %',
                        CASE WHEN u = 0 THEN 'a NUL character' ELSE 'an unpaired surrogate' END, i - 2
                    USING ERRCODE = 'character_not_in_repertoire';
            END IF;
            chars := chars || chr(u);
        END LOOP;
        RETURN array_to_string(chars, '');
    END IF;
    IF position('\x00'::bytea IN definition) > 0 THEN
        RAISE EXCEPTION 'package definition has a NUL byte at byte %', position('\x00'::bytea IN definition) - 1
            USING ERRCODE = 'character_not_in_repertoire',
                  HINT = 'A UTF-16 file must begin with its byte-order mark; other files may not hold NUL bytes.';
    END IF;
    BEGIN
        RETURN convert_from(definition, 'UTF8');
    EXCEPTION WHEN character_not_in_repertoire THEN
        NULL;                   -- not UTF-8: Windows-1252
    END;
    BEGIN
        RETURN convert_from(definition, 'WIN1252');
    EXCEPTION WHEN untranslatable_character OR character_not_in_repertoire THEN
        RAISE EXCEPTION 'package definition is neither UTF-8 nor Windows-1252'
            USING ERRCODE = 'character_not_in_repertoire', DETAIL = SQLERRM;
    END;
END
$$;
REVOKE ALL ON FUNCTION decode_package_definition(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decode_package_definition(bytea) TO smsdist_operator;
