#!/usr/bin/env bash
# The benchmarks' package tree: make_tree.sh <dir> [MB] makes, if <dir> does
# not exist, about MB megabytes (default 200) of mixed files in it: 35 %
# random bytes (incompressible: the archives, installers and media a
# package carries), 35 % generated log files (very compressible) and 30 %
# real shared libraries copied from /usr/lib.  Used by compress.sh (and so
# send.sh) and fanout.sh.
set -eu
tree=$1
mbs=${2:-200}
[ -d "$tree" ] && exit 0
mkdir -p "$tree/random" "$tree/text" "$tree/bin"
for i in $(seq 1 $((350 * mbs / 200))); do head -c 200000 /dev/urandom > "$tree/random/r$i.dat"; done
for i in $(seq 1 $((70 * mbs / 200))); do
    seq $((i * 100000)) $((i * 100000 + 21000)) | awk '{print "line " $1 " of a log file, status=" ($1 % 7) " user=u" ($1 % 113)}' > "$tree/text/log$i.txt"
done
find /usr/lib/x86_64-linux-gnu /usr/lib/postgresql -type f -size +20k 2>/dev/null | sort | head -3000 |
    while read -r f; do
        [ "$(du -sm "$tree/bin" | cut -f1)" -ge $((60 * mbs / 200)) ] && break
        cp "$f" "$tree/bin/$(echo "$f" | tr / _)" 2>/dev/null || true
    done
