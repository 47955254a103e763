#!/usr/bin/env bash
# Appends through the mount against appends to a plain file, same run, same
# host file system.
#
#   bench/append.sh [-d DIR] [-s MIB] [-k MIB] [-r RUNS] [-o MOUNT_OPTS]
#
# DIR (default /var/tmp; use /dev/shm to see zqfs's own overhead) holds both
# the image (8 sequential zones of 256 MiB, 64 KiB clusters) and the plain
# files. Each case runs fio (psync, --file_append=1, --end_fsync=1, one job
# per file, --group_reporting) once on zone files seq/0..N-1 of the mount and
# once on as many empty plain files:
#   1 MiB, O_DIRECT and buffered, 1 job and 4 jobs: MIB MiB per job
#   (default 256 = a full zone): MiB/s, target ratio >= 0.8
#   4 KiB, O_DIRECT and buffered, 1 job: K MiB (default 16): IOPS and clat
#   p50/p99 in microseconds
# fio's default --fallocate=native reserves each plain file's full size
# before its clock starts (on tmpfs that is most of a write's cost); zone
# files cannot be preallocated, so every 1 MiB case also runs the plain
# files with --fallocate=none and prints that ratio on an extra row, for
# information. The target is judged against fio's default, as specified.
# Zones are reset (truncate -s 0) and plain files recreated between runs.
# Each case runs RUNS times (default 3), zqfs and plain in turn; every
# figure is the median of its runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=/var/tmp mib=256 kmib=16 mopts='' runs=3
while getopts d:s:k:o:r: o; do
    case $o in
        d) dir=$OPTARG ;; s) mib=$OPTARG ;; k) kmib=$OPTARG ;; o) mopts=$OPTARG ;; r) runs=$OPTARG ;;
        *) die "usage: $0 [-d DIR] [-s MIB] [-k MIB] [-r RUNS] [-o MOUNT_OPTS]" ;;
    esac
done
((mib <= 256 && kmib <= 256)) || die "-s and -k are at most 256 (one zone)"
need fio jq
make_work "$dir"
machine_line "$WORK"

"$ZQFS_IMG" create -f qcow2 "$WORK/z.qcow2" -o size=2G,zone.size=256M,cluster_size=64K >/dev/null
mkdir -p "$WORK/plain"
mount_image "$WORK/z.qcow2" "$WORK/mnt" "$mopts"

# run_fio OUT BS DIRECT MIB FILE... : one fio job per file
run_fio() {
    local out=$1 bs=$2 direct=$3 size=$4 extra=()
    shift 4
    [ "$1" = --fallocate=none ] && { extra=("$1"); shift; }
    local args=() i=0 f
    for f in "$@"; do
        args+=(--name="j$i" --filename="$f")
        i=$((i + 1))
    done
    fio --rw=write --ioengine=psync --bs="$bs" --size="${size}M" --file_append=1 --direct="$direct" \
        --end_fsync=1 --group_reporting --output-format=json --output="$out" "${extra[@]}" "${args[@]}" >/dev/null ||
        die "fio failed: $(cat "$out")"
}

zone_files() { local i; for ((i = 0; i < $1; i++)); do echo "$WORK/mnt/seq/$i"; done; }
plain_files() {
    local i
    rm -f "$WORK"/plain/*
    for ((i = 0; i < $1; i++)); do : >"$WORK/plain/$i" && echo "$WORK/plain/$i"; done
}
reset_zones() { local i; for ((i = 0; i < 8; i++)); do truncate -s 0 "$WORK/mnt/seq/$i"; done; }

# case_pair NAME BS DIRECT JOBS MIB: RUNS rounds, zqfs and plain in turn;
# leaves $WORK/NAME.z.<round>.json and NAME.p.<round>.json (and, with a
# sixth argument, NAME.n.<round>.json: plain files with --fallocate=none)
case_pair() {
    local name=$1 bs=$2 direct=$3 jobs=$4 size=$5 nofalloc=${6:-} i
    for ((i = 0; i < runs; i++)); do
        reset_zones
        mapfile -t zf < <(zone_files "$jobs")
        run_fio "$WORK/$name.z.$i.json" "$bs" "$direct" "$size" "${zf[@]}"
        mapfile -t pf < <(plain_files "$jobs")
        run_fio "$WORK/$name.p.$i.json" "$bs" "$direct" "$size" "${pf[@]}"
        if [ -n "$nofalloc" ]; then
            mapfile -t pf < <(plain_files "$jobs")
            run_fio "$WORK/$name.n.$i.json" "$bs" "$direct" "$size" --fallocate=none "${pf[@]}"
        fi
    done
}

echo "# append: fio psync --file_append=1 --end_fsync=1; 1M cases ${mib} MiB per job, 4K cases ${kmib} MiB; median of $runs"
table_head
for direct in 1 0; do
    mode=$([ $direct = 1 ] && echo O_DIRECT || echo buffered)
    for jobs in 1 4; do
        n=a1m.$direct.$jobs
        case_pair "$n" 1M "$direct" "$jobs" "$mib" nofalloc
        z=$(fio_med "$WORK/$n.z" write_mibs)
        p=$(fio_med "$WORK/$n.p" write_mibs)
        row "append 1M $mode, $jobs zone(s), MiB/s" "$z" "$p" "$(ratio "$z" "$p")" ">= 0.8"
        p=$(fio_med "$WORK/$n.n" write_mibs)
        row "...same, baseline plain --fallocate=none, MiB/s" "$z" "$p" "$(ratio "$z" "$p")" "(info)"
    done
done
for direct in 1 0; do
    mode=$([ $direct = 1 ] && echo O_DIRECT || echo buffered)
    n=a4k.$direct
    case_pair "$n" 4K "$direct" 1 "$kmib"
    small_io_rows "append 4K $mode" "$n" write
done
unmount_image "$WORK/mnt"
