-- One program section of a package definition file: the program inserted
-- into the package, and one report row per entry (a jsonb array of
-- {line, section, key, value, action, reason}).  entries: the section's
-- header first, then its entries.  Each value passes the programs table's
-- own checks (names, command lines); an error names the line.
--   run_with: AdminRightsRequired=False is user_rights (the logged-on user's
--   account, so the program waits for a user), anything else the default,
--   administrative_rights; CanRunWhen=NoUserLoggedOn with user rights
--   contradicts itself, as in SMS.
--   platforms: SupportedClients names SMS client platforms; each one
--   smsdist knows becomes a platform, the others are reported.  A list of
--   which none is known is an error: the program would otherwise run on
--   every platform.
CREATE OR REPLACE FUNCTION import_program_definition(p_package_id text,
                                                     entries smsdist.package_definition_entry[])
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e smsdist.package_definition_entry;
    sect text := entries[1].section;
    report jsonb := '[]';
    act text;
    why text;
    p_name text := sect;
    p_line integer := entries[1].line;
    p_command text;
    p_comment text;
    p_platforms smsdist.platform[];
    admin_entry smsdist.package_definition_entry;
    admin boolean;
    when_entry smsdist.package_definition_entry;
    item text;
    known text;
    unknown text[] := '{}';
BEGIN
    FOREACH e IN ARRAY entries[2:] LOOP
        act := 'mapped';
        BEGIN
            CASE lower(replace(e.key, ' ', ''))
            WHEN 'name' THEN
                p_name := e.value::smsdist.object_name; p_line := e.line; why := 'programs.program_name';
            WHEN 'commandline' THEN
                p_command := e.value::smsdist.command_line; why := 'programs.command_line';
            WHEN 'comment' THEN
                p_comment := nullif(e.value, ''); why := 'programs.comment' || CASE WHEN e.value = '' THEN ' = NULL (empty)' ELSE '' END;
            WHEN 'adminrightsrequired' THEN
                admin_entry := e; CONTINUE;
            WHEN 'canrunwhen' THEN
                IF lower(e.value) NOT IN ('userloggedon', 'nouserloggedon', 'anyuserstatus') THEN
                    RAISE EXCEPTION 'CanRunWhen is UserLoggedOn, NoUserLoggedOn or AnyUserStatus'
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                when_entry := e; CONTINUE;
            WHEN 'supportedclients' THEN
                FOREACH item IN ARRAY regexp_split_to_array(e.value, '\s*,\s*') LOOP
                    CONTINUE WHEN item = '';
                    known := CASE lower(replace(item, ' ', ''))
                        WHEN 'winnt(i386)' THEN 'WINNT_X86' WHEN 'winnt(x86)' THEN 'WINNT_X86'
                        WHEN 'winnt(x64)' THEN 'WIN_X64' WHEN 'winnt(amd64)' THEN 'WIN_X64'
                        WHEN 'winnt(arm64)' THEN 'WIN_ARM64'
                        WHEN 'winnt(alpha)' THEN 'WINNT_ALPHA' WHEN 'winnt(mips)' THEN 'WINNT_MIPS'
                        WHEN 'win9x' THEN 'WIN95' WHEN 'win95' THEN 'WIN95'
                        WHEN 'win3.1' THEN 'WIN31' WHEN 'win3.x' THEN 'WIN31' WHEN 'win16' THEN 'WIN31'
                        WHEN 'ms-dos' THEN 'MSDOS' WHEN 'dos' THEN 'MSDOS'
                        WHEN 'os/2' THEN 'OS2' WHEN 'macintosh' THEN 'MAC'
                        ELSE (SELECT x FROM unnest(enum_range(NULL::smsdist.platform)) x
                               WHERE x::text = upper(item)) END;
                    IF known IS NULL THEN
                        unknown := unknown || item;
                    ELSIF p_platforms IS NULL OR NOT known::smsdist.platform = ANY (p_platforms) THEN
                        p_platforms := coalesce(p_platforms, '{}') || known::smsdist.platform;
                    END IF;
                END LOOP;
                IF p_platforms IS NULL AND cardinality(unknown) > 0 THEN
                    RAISE EXCEPTION 'no client platform smsdist knows: %', array_to_string(unknown, ', ')
                        USING ERRCODE = 'invalid_parameter_value',
                              HINT = 'Without a platform smsdist knows the program would run on every platform; leave SupportedClients empty for that.';
                END IF;
                why := 'programs.platforms = ' || coalesce(p_platforms::text, 'NULL (any platform)')
                       || CASE WHEN cardinality(unknown) > 0
                               THEN '; not platforms of smsdist, left out: ' || array_to_string(unknown, ', ') ELSE '' END;
            ELSE
                act := 'ignored';
                why := CASE
                    WHEN lower(e.key) ~ '^.+ (min|max)version[0-9]+$' THEN 'smsdist matches a program to platforms, not to operating system versions'
                    ELSE CASE lower(replace(e.key, ' ', ''))
                    WHEN 'icon' THEN 'smsdist shows no program icons; a package''s icon is [Package Definition] Icon'
                    WHEN 'startin' THEN 'smsdist starts a program in the package''s directory'
                    WHEN 'run' THEN 'smsdist programs run without a window (minimized, maximized or hidden make no difference)'
                    WHEN 'afterrunning' THEN 'smsdist never restarts a machine or logs a user off after a program'
                    WHEN 'estimateddiskspace' THEN 'smsdist measures the package itself (preview(), the download cache)'
                    WHEN 'estimatedruntime' THEN 'an estimate for users; max_run_minutes is a limit that stops the program, which an estimate must not set'
                    WHEN 'userinputrequired' THEN CASE WHEN lower(e.value) IN ('true', 'yes', '1')
                        THEN 'smsdist gives a program no user input: this program will wait for input it never gets'
                        ELSE 'smsdist programs run without user input, as this says' END
                    WHEN 'useinstallaccount' THEN 'smsdist has no install account: run_with chooses the agent''s account or the user''s'
                    WHEN 'driveletterconnection' THEN 'smsdist programs run from the package''s directory, never from a drive letter'
                    WHEN 'specifydrive' THEN 'smsdist programs run from the package''s directory, never from a drive letter'
                    WHEN 'reconnectdriveatlogon' THEN 'smsdist programs run from the package''s directory, never from a drive letter'
                    WHEN 'dependentprogram' THEN 'smsdist runs no program before another'
                    WHEN 'assignment' THEN 'smsdist runs a program once per machine'
                    WHEN 'disabled' THEN CASE WHEN lower(e.value) IN ('true', 'yes', '1')
                        THEN 'smsdist programs cannot be disabled: the program is created, and may be advertised'
                        ELSE 'smsdist programs are always enabled, as this says' END
                    WHEN 'removeprogram' THEN 'smsdist does not uninstall software when a package is removed'
                    WHEN 'uninstallkey' THEN 'smsdist does not uninstall software when a package is removed'
                    WHEN 'additionalprogramrequirements' THEN 'smsdist shows users no requirements text'
                    ELSE 'unknown key' END END;
            END CASE;
        EXCEPTION WHEN check_violation OR invalid_parameter_value THEN
            RAISE EXCEPTION 'package definition line %, [%] %: %', e.line, sect, e.key, SQLERRM
                USING ERRCODE = SQLSTATE;
        END;
        report := report || jsonb_build_object('line', e.line, 'section', sect, 'key', e.key, 'value', e.value,
                                               'action', act, 'reason', why);
    END LOOP;
    IF p_command IS NULL THEN
        RAISE EXCEPTION 'package definition line %: program [%] has no CommandLine', entries[1].line, sect
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    report := report || smsdist.import_program_run_with(sect, admin_entry, when_entry);
    BEGIN
        INSERT INTO smsdist.programs (package_id, program_name, command_line, platforms, comment, run_with)
        VALUES (p_package_id, p_name, p_command, p_platforms, p_comment,
                CASE WHEN lower(admin_entry.value) IN ('false', 'no', '0')
                     THEN 'user_rights' ELSE 'administrative_rights' END);
    EXCEPTION WHEN unique_violation OR check_violation THEN
        RAISE EXCEPTION 'package definition line %, program [%]: %', p_line, sect,
                CASE WHEN SQLSTATE = '23505' THEN format('a program named "%s" is already in the package', p_name)
                     ELSE SQLERRM END
            USING ERRCODE = SQLSTATE;
    END;
    RETURN report;
END
$$;
REVOKE ALL ON FUNCTION import_program_definition(text, smsdist.package_definition_entry[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION import_program_definition(text, smsdist.package_definition_entry[]) TO smsdist_operator;
