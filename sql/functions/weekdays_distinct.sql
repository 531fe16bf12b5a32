-- true if no day is given twice (a CHECK cannot hold a subquery itself)
CREATE OR REPLACE FUNCTION weekdays_distinct(days weekday[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT count(DISTINCT d) = count(*) FROM unnest(days) d $$;
REVOKE ALL ON FUNCTION weekdays_distinct(weekday[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION weekdays_distinct(weekday[]) TO smsdist_reader;
