# Sourced by the benchmarks that need a child site (send.sh, run_latency.sh).
#
# start_child_site DATADIR PORT: a cluster for site CH1 below CEN, on a unix
# socket in $PGHOST, with database bench, smsdist, and the role the parent's
# Sender logs in as (parent_sender); it is stopped when the calling script
# exits.  Needs $bindir.
start_child_site() {
    local data=$1 port=$2
    "$bindir/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$PGHOST'
port = $port
shared_preload_libraries = 'smsdist${STATEMENTS:+,pg_stat_statements}${AUTO_EXPLAIN:+,auto_explain}'
${STATEMENTS:+pg_stat_statements.track = all}
${STATEMENTS:+pg_stat_statements.track_planning = on}
${AUTO_EXPLAIN:+auto_explain.log_min_duration = $AUTO_EXPLAIN}
${AUTO_EXPLAIN:+auto_explain.log_nested_statements = on}
${AUTO_EXPLAIN:+auto_explain.log_analyze = on}
${AUTO_EXPLAIN:+auto_explain.log_timing = off}
smsdist.database = 'bench'
smsdist.site_code = 'CH1'
max_worker_processes = 16
CONF
    "$bindir/pg_ctl" -D "$data" -l "$data.log" -w start >/dev/null
    # shellcheck disable=SC2064  # expanded now, on purpose
    trap "'$bindir/pg_ctl' -D '$data' -m fast -w stop >/dev/null 2>&1" EXIT
    PGPORT=$port "$bindir/createdb" bench
    PGPORT=$port psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION smsdist;
INSERT INTO smsdist.sites VALUES ('CEN', 'Central', NULL), ('CH1', 'Child', 'CEN');
CREATE ROLE parent_sender LOGIN IN ROLE smsdist_parent_site;
INSERT INTO smsdist.site_logins (role_name, site_code) VALUES ('parent_sender', 'CEN');
SQL
}
