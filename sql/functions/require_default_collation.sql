-- An error unless value, a parameter of the calling function, has the
-- database's default collation.  A PL/pgSQL function's text parameters
-- take the collation of the call, and a COLLATE clause there decides how
-- the function's own queries compare them with the tables' identifiers:
-- under a nondeterministic collation that the caller may create in
-- pg_temp, 'CEN0E001' = 'CEN00E01'.  Every SECURITY DEFINER function that
-- an agent's or another site's login may call checks its first text
-- parameter with this before anything else (all of a call's parameters
-- share its collation).  fn names the function in the error.
CREATE OR REPLACE FUNCTION require_default_collation(value text, fn text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_collation_for(value) IS DISTINCT FROM '"default"' THEN
        RAISE EXCEPTION 'smsdist.%() takes its arguments in the database''s default collation, not %',
                        fn, pg_collation_for(value)
            USING ERRCODE = 'collation_mismatch',
                  HINT = 'Call it without a COLLATE clause.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION require_default_collation(text, text) FROM PUBLIC;
