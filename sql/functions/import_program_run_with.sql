-- The report rows of a program section's AdminRightsRequired and
-- CanRunWhen entries (either may be NULL: not in the file), which together
-- say whose account runs the program and when.  smsdist has two ways:
-- administrative_rights (the agent's account, whether or not a user is
-- logged on) and user_rights (the logged-on user's account: the program
-- waits for a user).  AdminRightsRequired=False is user_rights; True or
-- no entry is administrative_rights.  NoUserLoggedOn with user rights is
-- refused, as SMS refused it.
CREATE OR REPLACE FUNCTION import_program_run_with(sect text,
                                                   admin_entry smsdist.package_definition_entry,
                                                   when_entry smsdist.package_definition_entry)
    RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    report jsonb := '[]';
    user_rights boolean := false;
    can_run text := lower(when_entry.value);
BEGIN
    IF admin_entry.key IS NOT NULL THEN
        IF lower(admin_entry.value) NOT IN ('true', 'false', 'yes', 'no', '1', '0') THEN
            RAISE EXCEPTION 'package definition line %, [%] %: not True or False: "%"',
                    admin_entry.line, sect, admin_entry.key, admin_entry.value
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        user_rights := lower(admin_entry.value) IN ('false', 'no', '0');
        report := report || jsonb_build_object(
            'line', admin_entry.line, 'section', sect, 'key', admin_entry.key, 'value', admin_entry.value,
            'action', 'mapped',
            'reason', 'programs.run_with = ' || CASE WHEN user_rights THEN 'user_rights' ELSE 'administrative_rights' END);
    END IF;
    IF when_entry.key IS NOT NULL THEN
        IF user_rights AND can_run = 'nouserloggedon' THEN
            RAISE EXCEPTION 'package definition line %, [%] %: a program that runs with the user''s rights needs a logged-on user',
                    when_entry.line, sect, when_entry.key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Set AdminRightsRequired=True, or CanRunWhen=UserLoggedOn.';
        END IF;
        report := report || jsonb_build_object(
            'line', when_entry.line, 'section', sect, 'key', when_entry.key, 'value', when_entry.value,
            'action', CASE WHEN user_rights OR can_run = 'anyuserstatus' THEN 'mapped' ELSE 'ignored' END,
            'reason', CASE
                WHEN user_rights THEN 'run with the user''s rights (user_rights), the program waits for a logged-on user'
                WHEN can_run = 'anyuserstatus' THEN 'run with administrative rights, whether or not a user is logged on'
                ELSE 'smsdist runs a program with administrative rights whether or not a user is logged on' END);
    END IF;
    RETURN report;
END
$$;
REVOKE ALL ON FUNCTION import_program_run_with(text, smsdist.package_definition_entry, smsdist.package_definition_entry) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION import_program_run_with(text, smsdist.package_definition_entry, smsdist.package_definition_entry) TO smsdist_operator;
