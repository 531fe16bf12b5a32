-- Trigger functions that run as the extension's owner check the table they
-- fire on; and, like every function here that is not a pure check,
-- nobody but the roles granted it may execute them (a trigger fires
-- without the EXECUTE privilege; CREATE TRIGGER needs it).
CREATE OR REPLACE FUNCTION require_extension_table(trigger_name name, table_schema name, table_name name)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- only the extension's owner can create tables in its schema
    IF table_schema <> 'smsdist' THEN
        RAISE EXCEPTION '% fires only on smsdist''s tables, not on %.%', trigger_name, table_schema, table_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION require_extension_table(name, name, name) FROM PUBLIC;
