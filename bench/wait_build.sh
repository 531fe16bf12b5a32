#!/usr/bin/env bash
# wait_build.sh <package_id>: wait until the package's build at the
# benchmark's central site (database bench, PGHOST/PGPORT set) is no longer
# building, polling in one session (a new psql every few milliseconds would
# steal the CPU being measured).  Used by compress.sh (and so send.sh) and
# fanout.sh; the caller reads the build's state afterwards.
set -eu
psql -X -q -d bench -v id="$1" >/dev/null <<'SQL'
SELECT set_config('bench.id', :'id', false);
DO $$
BEGIN
    LOOP
        EXIT WHEN (SELECT state <> 'building' FROM smsdist.package_builds WHERE package_id = current_setting('bench.id'));
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SQL
