-- notify_change(components, id columns...): NOTIFY smsdist_<component> with
-- the row's ID and wake the component's worker when the transaction commits.
CREATE OR REPLACE FUNCTION notify_change() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'smsdist_notify_change';
REVOKE ALL ON FUNCTION notify_change() FROM PUBLIC;
