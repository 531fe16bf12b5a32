-- Import an SMS package definition file (.SMS, .PDF): the package, with
-- source_directory as its source, and one program per name in Programs,
-- created in the caller's transaction with the caller's rights (an
-- operator's), so an error leaves nothing.  Returns one row per entry of
-- the file with what became of it: mapped (to the column the reason
-- names), ignored (the reason says why: smsdist has no such thing, or the
-- key or section is unknown).  The package's Icon becomes its icon_file
-- (backslashes read as '/'), unless it is not a path inside the package:
-- then it is ignored, with the reason, and the rest is imported.  The
-- bytea form decodes the file first
-- (decode_package_definition()).  docs/import.md.
CREATE OR REPLACE FUNCTION import_package_definition(definition text, source_directory text)
    RETURNS TABLE (package_id text, line integer, section text, key text, value text,
                   action text, reason text)
    LANGUAGE plpgsql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_programs constant integer := 64;
    entries smsdist.package_definition_entry[] :=
        ARRAY(SELECT p FROM smsdist.parse_package_definition(definition) p);
    e smsdist.package_definition_entry;
    report jsonb := '[]';
    pkg smsdist.packages;
    act text;
    why text;
    programs text[];
    programs_entry smsdist.package_definition_entry;
    prog text;
    prog_sections text[] := '{}';
    icon_error text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM unnest(entries) x WHERE lower(x.section) = 'pdf') THEN
        RAISE EXCEPTION 'not a package definition file: it has no [PDF] section'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM unnest(entries) x WHERE lower(x.section) = 'package definition') THEN
        RAISE EXCEPTION 'package definition has no [Package Definition] section'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    pkg.source_directory := source_directory;
    FOREACH e IN ARRAY entries LOOP
        CONTINUE WHEN e.key IS NULL OR lower(e.section) NOT IN ('pdf', 'package definition');
        act := 'mapped';
        BEGIN
            CASE lower(e.section) || ':' || lower(replace(e.key, ' ', ''))
            WHEN 'pdf:version' THEN
                IF e.value !~ '^[23]\.0+$' THEN
                    RAISE EXCEPTION 'format version "%" is not 2.0 (SMS 2.0 and 2003) or 3.0', e.value
                        USING ERRCODE = 'invalid_parameter_value',
                              HINT = 'SMS 1.x files (Version=1.0, SetupVariations) must be converted by SMS 2.0 first.';
                END IF;
                why := 'the file''s format version';
            WHEN 'package definition:name' THEN
                pkg.name := e.value::smsdist.object_name; why := 'packages.name';
            WHEN 'package definition:version' THEN
                pkg.version := nullif(e.value, '')::smsdist.object_name; why := 'packages.version';
            WHEN 'package definition:publisher' THEN
                pkg.manufacturer := nullif(e.value, '')::smsdist.object_name; why := 'packages.manufacturer';
            WHEN 'package definition:language' THEN
                pkg.language := nullif(e.value, '')::smsdist.object_name; why := 'packages.language';
            WHEN 'package definition:comment' THEN
                pkg.comment := nullif(e.value, ''); why := 'packages.comment';
            WHEN 'package definition:programs' THEN
                programs := ARRAY(SELECT x FROM regexp_split_to_table(e.value, '\s*,\s*') x WHERE x <> '');
                programs_entry := e;
                why := format('%s program(s), one per section named', cardinality(programs));
            WHEN 'package definition:icon' THEN
                IF e.value = '' THEN
                    why := 'packages.icon_file';
                ELSE
                    BEGIN
                        icon_error := NULL;
                        PERFORM smsdist.check_package_path(replace(e.value, '\', '/'));
                    EXCEPTION WHEN invalid_parameter_value OR check_violation THEN
                        icon_error := SQLERRM;
                    END;
                    IF icon_error IS NULL THEN
                        pkg.icon_file := replace(e.value, '\', '/');
                        why := 'packages.icon_file = ' || pkg.icon_file
                            || ' (the Offer Manager writes it as <PACKAGE>.ICO)';
                    ELSE
                        act := 'ignored';
                        why := 'not a path inside the package source, the package has no icon: ' || icon_error;
                    END IF;
                END IF;
            ELSE
                act := 'ignored';
                why := CASE
                    WHEN e.section ~* '^pdf$' THEN 'unknown key'
                    WHEN lower(e.key) IN ('miffilename', 'mifname', 'mifversion', 'mifpublisher')
                        THEN 'smsdist takes a program''s result from its exit code, not from a status MIF file'
                    WHEN lower(e.key) = 'containsnofiles'
                        THEN 'an smsdist package always has a source directory: the one given to the import'
                    ELSE 'unknown key' END;
            END CASE;
        EXCEPTION WHEN check_violation OR invalid_parameter_value THEN
            RAISE EXCEPTION 'package definition line %, [%] %: %', e.line, e.section, e.key, SQLERRM
                USING ERRCODE = SQLSTATE;
        END;
        IF e.value = '' AND act = 'mapped' AND e.section !~* '^pdf$' THEN
            why := why || ' = NULL (empty)';        -- an optional field left empty, as SMS wrote them
        END IF;
        report := report || jsonb_build_object('line', e.line, 'section', e.section, 'key', e.key,
                                               'value', e.value, 'action', act, 'reason', why);
    END LOOP;
    IF pkg.name IS NULL THEN
        RAISE EXCEPTION 'package definition: [Package Definition] has no Name'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(programs), 0) = 0 THEN
        RAISE EXCEPTION 'package definition: [Package Definition] names no Programs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(programs) > max_programs THEN
        RAISE EXCEPTION 'package definition line %: more than % programs', programs_entry.line, max_programs
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    INSERT INTO smsdist.packages (name, version, manufacturer, language, comment, source_directory, icon_file)
    VALUES (pkg.name, pkg.version, pkg.manufacturer, pkg.language, pkg.comment, pkg.source_directory, pkg.icon_file)
    RETURNING packages.package_id INTO pkg.package_id;
    FOREACH prog IN ARRAY programs LOOP
        IF lower(prog) = ANY (prog_sections) OR lower(prog) IN ('pdf', 'package definition') THEN
            RAISE EXCEPTION 'package definition line %: Programs names [%] twice, or a section that is no program',
                    programs_entry.line, prog
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        prog_sections := prog_sections || lower(prog);
        IF NOT EXISTS (SELECT 1 FROM unnest(entries) x WHERE lower(x.section) = lower(prog)) THEN
            RAISE EXCEPTION 'package definition line %: Programs names [%], which is not in the file',
                    programs_entry.line, prog
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        report := report || smsdist.import_program_definition(pkg.package_id,
            ARRAY(SELECT x FROM unnest(entries) x WHERE lower(x.section) = lower(prog) ORDER BY x.line));
    END LOOP;
    -- every other section: reported, each of its entries (or itself, when empty)
    report := report || coalesce((SELECT jsonb_agg(jsonb_build_object(
            'line', x.line, 'section', x.section, 'key', x.key, 'value', x.value, 'action', 'ignored',
            'reason', format('section [%s] is not [PDF], [Package Definition] or a program named in Programs', x.section)))
        FROM unnest(entries) x
        WHERE lower(x.section) NOT IN ('pdf', 'package definition') AND NOT lower(x.section) = ANY (prog_sections)
          AND (x.key IS NOT NULL OR NOT EXISTS (SELECT 1 FROM unnest(entries) y
                                                 WHERE y.section = x.section AND y.key IS NOT NULL))), '[]');
    RETURN QUERY SELECT pkg.package_id::text, r.line, r.section, r.key, r.value, r.action, r.reason
        FROM jsonb_to_recordset(report) AS r(line integer, section text, key text, value text, action text, reason text)
        ORDER BY r.line;
END
$$;
REVOKE ALL ON FUNCTION import_package_definition(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION import_package_definition(text, text) TO smsdist_operator;

CREATE OR REPLACE FUNCTION import_package_definition(definition bytea, source_directory text)
    RETURNS TABLE (package_id text, line integer, section text, key text, value text,
                   action text, reason text)
    LANGUAGE sql VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM smsdist.import_package_definition(smsdist.decode_package_definition(definition),
                                                    source_directory)
$$;
REVOKE ALL ON FUNCTION import_package_definition(bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION import_package_definition(bytea, text) TO smsdist_operator;
