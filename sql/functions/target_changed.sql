-- A target row changed: the parent site must hear of it (if it sent the
-- job or advertisement), and a LISTENer on smsdist_targets sees it.
CREATE OR REPLACE FUNCTION target_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'job_target_status' THEN 'job' ELSE 'advertisement' END;
    id text;
BEGIN
    IF (NEW.state, NEW.detail, NEW.exit_code) IS NOT DISTINCT FROM (OLD.state, OLD.detail, OLD.exit_code) THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := clock_timestamp();
    IF kind = 'job' THEN
        id := NEW.job_id;
        NEW.report_pending := EXISTS (SELECT 1 FROM smsdist.jobs j WHERE j.job_id = NEW.job_id
                                         AND j.source_site IS NOT NULL);
    ELSE
        id := NEW.advert_id;
        NEW.report_pending := EXISTS (SELECT 1 FROM smsdist.advertisements a WHERE a.advert_id = NEW.advert_id
                                         AND a.source_site IS NOT NULL);
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('smsdist_targets',
                          json_build_object('kind', kind, 'id', id, 'sms_id', NEW.sms_id,
                                            'site', NEW.site_code, 'state', NEW.state,
                                            'from', OLD.state)::text);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION target_changed() FROM PUBLIC;
