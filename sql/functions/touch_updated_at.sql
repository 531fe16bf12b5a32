-- updated_at of packages
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$ BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
REVOKE ALL ON FUNCTION touch_updated_at() FROM PUBLIC;
