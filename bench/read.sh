#!/usr/bin/env bash
# Sequential reads of a full zone through the mount against reads of a plain
# file holding the same bytes, same run, same host file system.
#
#   bench/read.sh [-d DIR] [-k MIB] [-r RUNS] [-o MOUNT_OPTS]
#
# DIR (default /var/tmp; /dev/shm shows zqfs's own overhead) holds the image
# (zones of 256 MiB, 64 KiB clusters) and the plain file. Zone seq/0 is
# filled to capacity (fio, 1 MiB appends) and the plain file gets the same
# 256 MiB, both flushed. Then fio (psync, --rw=read, one job):
#   1 MiB O_DIRECT, whole zone: MiB/s, target ratio >= 0.8
#   1 MiB cached, whole zone: MiB/s, measured after a warm-up pass with
#     --invalidate=0 --loops=4, so both sides read from warm page caches
#     for long enough to time
#   4 KiB O_DIRECT and cached, the first K MiB (default 32): IOPS, clat p50/p99
# Each case runs RUNS times (default 3), zqfs and plain in turn; every
# figure is the median of its runs.
# O_DIRECT on the mount bypasses the kernel's FUSE page cache, but zqfs reads
# the image through the host page cache; on a disk-backed DIR the plain
# O_DIRECT read goes to the device. Compare tmpfs figures for pure overhead.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=/var/tmp kmib=32 mopts='' runs=3
while getopts d:k:o:r: o; do
    case $o in
        d) dir=$OPTARG ;; k) kmib=$OPTARG ;; o) mopts=$OPTARG ;; r) runs=$OPTARG ;;
        *) die "usage: $0 [-d DIR] [-k MIB] [-r RUNS] [-o MOUNT_OPTS]" ;;
    esac
done
((kmib <= 256)) || die "-k is at most 256 (one zone)"
need fio jq
make_work "$dir"
machine_line "$WORK"

"$ZQFS_IMG" create -f qcow2 "$WORK/z.qcow2" -o size=1G,zone.size=256M,cluster_size=64K >/dev/null
mount_image "$WORK/z.qcow2" "$WORK/mnt" "$mopts"
zone=$WORK/mnt/seq/0 plain=$WORK/plain
: >"$plain"
for f in "$zone" "$plain"; do
    fio --name=fill --filename="$f" --rw=write --ioengine=psync --bs=1M --size=256M --file_append=1 \
        --end_fsync=1 --output=/dev/null >/dev/null || die "cannot fill $f"
done
[ "$(stat -c %s "$zone")" = $((256 << 20)) ] || die "zone not full after the fill"

# run_fio OUT FILE BS DIRECT MIB [extra fio options]
run_fio() {
    local out=$1 f=$2 bs=$3 direct=$4 size=$5
    shift 5
    fio --name=r --filename="$f" --rw=read --ioengine=psync --bs="$bs" --size="${size}M" --direct="$direct" \
        --output-format=json --output="$out" "$@" >/dev/null || die "fio failed: $(cat "$out")"
}

# case_pair NAME BS DIRECT MIB: RUNS rounds, zqfs and plain in turn:
# NAME.z.<round>.json / NAME.p.<round>.json
case_pair() {
    local name=$1 bs=$2 direct=$3 size=$4 f k i
    for ((i = 0; i < runs; i++)); do
    for k in z p; do
        f=$zone
        [ $k = p ] && f=$plain
        if [ "$direct" = 1 ]; then
            run_fio "$WORK/$name.$k.$i.json" "$f" "$bs" 1 "$size"
        else
            [ "$i" = 0 ] && run_fio "$WORK/warm.json" "$f" "$bs" 0 "$size" --invalidate=0
            run_fio "$WORK/$name.$k.$i.json" "$f" "$bs" 0 "$size" --invalidate=0 --loops=4
        fi
    done
    done
}

echo "# read: fio psync --rw=read; 1M cases a full 256 MiB zone, 4K cases the first ${kmib} MiB; median of $runs"
table_head
for direct in 1 0; do
    mode=$([ $direct = 1 ] && echo O_DIRECT || echo cached)
    n=r1m.$direct
    case_pair "$n" 1M "$direct" 256
    z=$(fio_med "$WORK/$n.z" read_mibs)
    p=$(fio_med "$WORK/$n.p" read_mibs)
    row "read 1M $mode, full zone, MiB/s" "$z" "$p" "$(ratio "$z" "$p")" ">= 0.8"
done
for direct in 1 0; do
    mode=$([ $direct = 1 ] && echo O_DIRECT || echo cached)
    n=r4k.$direct
    case_pair "$n" 4K "$direct" "$kmib"
    small_io_rows "read 4K $mode" "$n" read
done
unmount_image "$WORK/mnt"
