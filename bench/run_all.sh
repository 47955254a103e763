#!/usr/bin/env bash
# Every benchmark once, with the small default sizes, and one summary table.
#
#   bench/run_all.sh [-d DISK_DIR] [-t TMPFS_DIR] [-b] [-w GIB]
#
# DISK_DIR (default /var/tmp) is a disk-backed directory, TMPFS_DIR (default
# /dev/shm, skipped when it is not tmpfs) a tmpfs one; append and read run
# on both. -b: bigger runs (more data per case, more repetitions). Each
# script's own table goes to stdout as it finishes, then the summary with
# the machine line. Logs stay in $BENCH_LOG_DIR (default a mktemp -d).
# -w GIB: first write and delete GIB GiB in TMPFS_DIR. On a VM whose memory
# the host backs on first touch, that first touch is slow, and tmpfs
# figures swing 3-10x until memory has been written once.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

disk=/var/tmp tmp=/dev/shm big=0 warm=0
while getopts d:t:bw: o; do
    case $o in
        d) disk=$OPTARG ;; t) tmp=$OPTARG ;; b) big=1 ;; w) warm=$OPTARG ;;
        *) die "usage: $0 [-d DISK_DIR] [-t TMPFS_DIR] [-b] [-w GIB]" ;;
    esac
done
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/zqfs-bench-logs.XXXXXX)}
mkdir -p "$logs"
[ "$(df --output=fstype "$tmp" 2>/dev/null | tail -1)" = tmpfs ] || { echo "# $tmp is not tmpfs: skipped" >&2; tmp=; }

if [ $big = 1 ]; then
    A=(-s 256 -k 64) R=(-k 128) E=(-c 2048 -r 5) Z=(-n 5) M=(-n 5) O=(-z 8)
else
    A=(-s 256 -k 16) R=(-k 32) E=(-c 512 -r 3) Z=(-n 3) M=(-n 3) O=(-z 2)
fi

if [ -n "$tmp" ] && [ "$warm" -gt 0 ]; then
    echo "# warming memory: writing ${warm} GiB to $tmp" >&2
    warmf=$(mktemp "$tmp/zqfs-warm.XXXXXX")
    dd if=/dev/zero of="$warmf" bs=1M count=$((warm * 1024)) status=none || true
    rm -f "$warmf"
fi

failed=0
run() { # NAME SCRIPT ARGS...
    local name=$1 script=$2
    shift 2
    echo "## $name: bench/$script $*" | tee "$logs/$name.log"
    if ! "$BENCH_DIR/$script" "$@" 2>&1 | tee -a "$logs/$name.log"; then
        echo "## $name FAILED" | tee -a "$logs/$name.log"
        failed=1
    fi
}

run append-disk append.sh -d "$disk" "${A[@]}"
[ -n "$tmp" ] && run append-tmpfs append.sh -d "$tmp" "${A[@]}"
run read-disk read.sh -d "$disk" "${R[@]}"
[ -n "$tmp" ] && run read-tmpfs read.sh -d "$tmp" "${R[@]}"
run engine-disk engine.sh -d "$disk" "${E[@]}"
[ -n "$tmp" ] && run engine-tmpfs engine.sh -d "$tmp" "${E[@]}"
run reset-disk reset.sh -d "$disk" "${Z[@]}"
[ -n "$tmp" ] && run reset-tmpfs reset.sh -d "$tmp" "${Z[@]}"
run mount mount.sh -d "$disk" "${M[@]}"
run overhead overhead.sh -d "$disk" "${O[@]}"

echo
echo "# summary ($(date -u +%FT%TZ), logs in $logs)"
machine_line "$disk"
[ -n "$tmp" ] && machine_line "$tmp"
echo "| host fs | benchmark | zqfs | baseline | ratio | target |"
echo "|---|---|---|---|---|---|"
for f in "$logs"/*.log; do
    name=$(basename "$f" .log)
    [ "$name" = mount ] && continue  # its own table, below
    fs=${name#*-}
    [ "$fs" = "$name" ] && fs=disk
    grep '^| ' "$f" | grep -v '^| benchmark\|^| zones' | sed "s/^| /| $fs | /"
done
if [ -f "$logs/mount.log" ]; then
    echo
    grep '^| zones\|^|---\|^| [0-9]' "$logs/mount.log"
fi
exit $failed
