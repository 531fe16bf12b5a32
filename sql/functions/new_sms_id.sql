-- A new object ID: this site's code (smsdist.site_code) and the next value
-- of sequence seq in 5 hex digits.
CREATE OR REPLACE FUNCTION new_sms_id(seq regclass) RETURNS sms_id
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    site text := current_setting('smsdist.site_code', true);
BEGIN
    IF site IS NULL OR site = '' THEN
        RAISE EXCEPTION 'smsdist.site_code is not set, so no new ID can be made'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set smsdist.site_code in postgresql.conf and reload, or give the ID explicitly.';
    END IF;
    RETURN site || upper(lpad(to_hex(nextval(seq)), 5, '0'));
END
$$;
REVOKE ALL ON FUNCTION new_sms_id(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION new_sms_id(regclass) TO smsdist_operator;
