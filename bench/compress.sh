#!/usr/bin/env bash
# Compression throughput: smsdist's package builder against `tar | gzip -6`
# and `tar | pigz -6` on the same ~200 MB tree of mixed files, in one run.
# Called by bench/run-all with the cluster up (PGHOST/PGPORT set, database
# bench with site CH1 as a child of CEN); $1 = work directory.
set -eu
work=$1
tree=$work/tree
level=${LEVEL:-6}
workers=${WORKERS:-}   # smsdist.compression_workers; empty: the default

# ~200 MB of mixed files: incompressible (random), text, and real binaries
bash "$(dirname "$0")/make_tree.sh" "$tree" 200
bytes=$(du -sb "$tree" | cut -f1)
files=$(find "$tree" -type f | wc -l)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "tree: $files files, $(mb "$bytes") MB; level $level; $(nproc) CPUs"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

sync
t0=$(now); tar -cf - -C "$tree" . | gzip -"$level" > "$work/gzip.tgz"; t1=$(now)
gzip_s=$(secs "$t0" "$t1")
t0=$(now); tar -cf - -C "$tree" . | pigz -"$level" -p "$(nproc)" > "$work/pigz.tgz"; t1=$(now)
pigz_s=$(secs "$t0" "$t1")
# the same, with the file made durable as the builder makes its package file
# (fsync of that one file: coreutils sync FILE)
t0=$(now); tar -cf - -C "$tree" . | pigz -"$level" -p "$(nproc)" > "$work/pigz-durable.tgz" && sync "$work/pigz-durable.tgz"; t1=$(now)
pigzd_s=$(secs "$t0" "$t1")

psql -X -q -d bench -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET smsdist.compression_level = $level" >/dev/null
[ -n "$workers" ] && psql -X -q -d bench -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET smsdist.compression_workers = $workers" >/dev/null
psql -X -q -d bench -v ON_ERROR_STOP=1 -c "SELECT pg_reload_conf()" >/dev/null
echo "smsdist.compression_workers = $(psql -X -At -d bench -c 'SHOW smsdist.compression_workers')"
# build_package <package id> <smsdist.store_incompressible> [<smsdist.compression_method>]:
# sets build_s, out_bytes, file and wall_s
build_package() {
    local id=$1 method=${3:-libdeflate} st
    psql -X -q -d bench -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET smsdist.store_incompressible = $2" \
        -c "ALTER SYSTEM SET smsdist.compression_method = '$method'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.3
    t0=$(now)
    psql -X -q -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO smsdist.packages (package_id, name, source_directory) VALUES ('$id', 'Bench tree', '$tree');
INSERT INTO smsdist.jobs (job_type, package_id, target_type, target_sites) VALUES ('share_package', '$id', 'sites', '{CH1}');
SQL
    bash "$(dirname "$0")/wait_build.sh" "$id"
    t1=$(now)
    st=$(psql -X -At -d bench -c "SELECT state FROM smsdist.package_builds WHERE package_id = '$id'")
    [ "$st" = ready ] || { echo "build $st:"; psql -X -At -d bench -c "SELECT error FROM smsdist.package_builds WHERE package_id = '$id'"; exit 1; }
    IFS='|' read -r build_s out_bytes file <<<"$(psql -X -At -d bench -c "SELECT extract(epoch FROM finished_at - started_at), bytes, file_path FROM smsdist.package_builds WHERE package_id = '$id'")"
    wall_s=$(secs "$t0" "$t1")
    psql -X -q -d bench -c "ALTER SYSTEM RESET smsdist.store_incompressible" \
        -c "ALTER SYSTEM RESET smsdist.compression_method" -c "SELECT pg_reload_conf()" >/dev/null
}

# every slice at the level, as pigz does (like for like), then the default:
# near-random slices stored (docs/packages.md#incompressible-data)
build_package CEN000B0 off
all_s=$build_s all_bytes=$out_bytes
tar -tzf "$file" >/dev/null || { echo "tar -tzf cannot read $file"; exit 1; }
build_package CEN000B1 on
tar -tzf "$file" >/dev/null && readable=yes || readable=NO
def_s=$build_s def_bytes=$out_bytes def_wall=$wall_s
# the fast method (smsdist.compression_method = isal: ISA-L level 1), for
# links where bytes are cheap
build_package CEN000B2 on isal
isal_s=$build_s isal_bytes=$out_bytes
tar -tzf "$file" >/dev/null || readable=NO
build_s=$def_s out_bytes=$def_bytes wall_s=$def_wall

printf '  %-42s %8s s  %7s MB/s  %8s MB\n' "tar | gzip -$level" "$gzip_s" "$(awk -v b="$bytes" -v s="$gzip_s" 'BEGIN{printf "%.1f", b/1048576/s}')" "$(mb "$(stat -c %s "$work/gzip.tgz")")"
printf '  %-42s %8s s  %7s MB/s  %8s MB\n' "tar | pigz -$level -p $(nproc)" "$pigz_s" "$(awk -v b="$bytes" -v s="$pigz_s" 'BEGIN{printf "%.1f", b/1048576/s}')" "$(mb "$(stat -c %s "$work/pigz.tgz")")"
printf '  %-42s %8s s  %7s MB/s\n' "the same, then fsync of the file (durable)" "$pigzd_s" "$(awk -v b="$bytes" -v s="$pigzd_s" 'BEGIN{printf "%.1f", b/1048576/s}')"
printf '  %-42s %8.3f s  %7s MB/s  %8s MB\n' "smsdist, every slice at level $level" "$all_s" "$(awk -v b="$bytes" -v s="$all_s" 'BEGIN{printf "%.1f", b/1048576/s}')" "$(mb "$all_bytes")"
echo "  smsdist (every slice at the level) / pigz time: $(awk -v a="$all_s" -v b="$pigz_s" 'BEGIN{printf "%.2f", a/b}')   (target: <= 0.50, file no larger than pigz's: $( [ "$all_bytes" -le "$(stat -c %s "$work/pigz.tgz")" ] && echo yes || echo NO))"
printf '  %-42s %8.3f s  %7s MB/s  %8s MB\n' "smsdist builder (started -> ready)" "$build_s" "$(awk -v b="$bytes" -v s="$build_s" 'BEGIN{printf "%.1f", b/1048576/s}')" "$(mb "$out_bytes")"
printf '  %-42s %8s s\n' "smsdist, job INSERT -> build ready (wall)" "$wall_s"
printf '  %-42s %8.3f s  %7s MB/s  %8s MB\n' "smsdist, compression_method = isal" "$isal_s" "$(awk -v b="$bytes" -v s="$isal_s" 'BEGIN{printf "%.1f", b/1048576/s}')" "$(mb "$isal_bytes")"
echo "  smsdist (isal) / pigz time: $(awk -v a="$isal_s" -v b="$pigz_s" 'BEGIN{printf "%.2f", a/b}'); size / pigz's: $(awk -v a="$isal_bytes" -v b="$(stat -c %s "$work/pigz.tgz")" 'BEGIN{printf "%.2f", a/b}')"
echo "  smsdist time / pigz time: $(awk -v a="$build_s" -v b="$pigz_s" 'BEGIN{printf "%.2f", a/b}')   (target: <= 1.00)"
echo "  smsdist time / pigz time, durable as smsdist is: $(awk -v a="$build_s" -v b="$pigzd_s" 'BEGIN{printf "%.2f", a/b}')"
echo "  smsdist time / gzip time: $(awk -v a="$build_s" -v b="$gzip_s" 'BEGIN{printf "%.2f", a/b}')"
echo "  tar -tzf reads the package file: $readable"
rm -f "$work/gzip.tgz" "$work/pigz.tgz" "$work/pigz-durable.tgz"
