#!/usr/bin/env bash
# The qcow2 engine alone against qemu-img bench, same run, same host FS.
#
#   bench/engine.sh [-d DIR] [-c COUNT] [-r RUNS]
#
# For each cache mode (none = O_DIRECT on the host file, writeback = page
# cache, no flush) it times COUNT sequential 1 MiB writes into a fresh
# image with 64 KiB clusters, then COUNT 1 MiB reads of that image:
#   zqfs:     build/bin/engine_bench write|read IMG COUNT --cache MODE
#   baseline: qemu-img bench [-w] -t MODE -s 1M -c COUNT -d 1 IMG
#             (a fresh `qemu-img create -f qcow2 -o cluster_size=64k` image)
# -d 1: one request in flight, as engine_bench issues them (qemu's default
# depth 64, measured once, is printed for information). The medians of RUNS
# runs (engine and qemu-img interleaved) are compared.
# Defaults: DIR /var/tmp, COUNT 512 (512 MiB), RUNS 5.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=/var/tmp count=512 runs=5
while getopts d:c:r: o; do
    case $o in
        d) dir=$OPTARG ;; c) count=$OPTARG ;; r) runs=$OPTARG ;;
        *) die "usage: $0 [-d DIR] [-c COUNT] [-r RUNS]" ;;
    esac
done
need qemu-img
ENGINE=$ZQFS_BIN/engine_bench
[ -x "$ENGINE" ] || die "no $ENGINE (build the bench targets)"
make_work "$dir"
machine_line "$WORK"

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mibs() { awk -v c="$count" -v s="$1" 'BEGIN { printf "%.1f\n", c / s }'; }

# qemu-img bench prints "Run completed in X seconds."
qemu_secs() { qemu-img bench "$@" | sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p'; }

engine_secs() { "$ENGINE" "$@" | sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p'; }

declare -A res
for cache in none writeback; do
    for ((i = 0; i < runs; i++)); do
        rm -f "$WORK/e.qcow2" "$WORK/q.qcow2"
        engine_secs write "$WORK/e.qcow2" "$count" --cache "$cache" >>"$WORK/ew.$cache"
        engine_secs read "$WORK/e.qcow2" "$count" --cache "$cache" >>"$WORK/er.$cache"
        qemu-img create -q -f qcow2 -o cluster_size=64k "$WORK/q.qcow2" "${count}M"
        qemu_secs -w -t "$cache" -s 1M -c "$count" -d 1 "$WORK/q.qcow2" >>"$WORK/qw.$cache"
        qemu_secs -t "$cache" -s 1M -c "$count" -d 1 "$WORK/q.qcow2" >>"$WORK/qr.$cache"
    done
    rm -f "$WORK/q.qcow2"
    qemu-img create -q -f qcow2 -o cluster_size=64k "$WORK/q.qcow2" "${count}M"
    qemu_secs -w -t "$cache" -s 1M -c "$count" "$WORK/q.qcow2" >>"$WORK/qw64.$cache"
    qemu_secs -t "$cache" -s 1M -c "$count" "$WORK/q.qcow2" >>"$WORK/qr64.$cache"
    rm -f "$WORK/q.qcow2" "$WORK/e.qcow2"
    for k in ew er qw qr qw64 qr64; do res[$k.$cache]=$(mibs "$(median <"$WORK/$k.$cache")"); done
done

echo "# engine: $count x 1 MiB sequential, 64 KiB clusters, median of $runs runs, MiB/s"
table_head
for cache in none writeback; do
    row "engine write 1M -t $cache" "${res[ew.$cache]}" "${res[qw.$cache]} (qemu-img bench -w -d 1; -d 64: ${res[qw64.$cache]})" \
        "$(ratio "${res[ew.$cache]}" "${res[qw.$cache]}")" ">= 1.0"
    row "engine read 1M -t $cache" "${res[er.$cache]}" "${res[qr.$cache]} (qemu-img bench -d 1; -d 64: ${res[qr64.$cache]})" \
        "$(ratio "${res[er.$cache]}" "${res[qr.$cache]}")" ">= 1.0"
done
