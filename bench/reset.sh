#!/usr/bin/env bash
# Zone reset and finish latency on full 256 MiB zones, and the host blocks
# a reset frees.
#
#   bench/reset.sh [-d DIR] [-n RUNS]
#
# An image with 4 sequential zones of 256 MiB (64 KiB clusters) in DIR
# (default /var/tmp). Each of RUNS rounds (default 3), through the mount:
#   fill seq/0 to capacity (fio, 1 MiB appends, fsync), then time
#   truncate(seq/0, 0) (reset; build/bin/zone_op_time, one syscall) and the
#   image's st_blocks before, right after, and once the background punch
#   has reclaimed the zone's space (with the time that took);
#   fill seq/1 half (128 MiB), time truncate(seq/1, 256 MiB) (finish);
#   fill seq/2 to capacity, time setxattr(seq/2, user.zone.cmd, reset).
# Baseline: truncate(2) to 0 of a plain 256 MiB file (written and fsynced the
# same way) in DIR. After unmounting, seq/0 is filled again and
# `zqfs-img zone reset IMG 0` is timed as a whole command (open, reset,
# close). Reported: median and worst of the rounds, milliseconds.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=/var/tmp runs=3
while getopts d:n: o; do
    case $o in
        d) dir=$OPTARG ;; n) runs=$OPTARG ;;
        *) die "usage: $0 [-d DIR] [-n RUNS]" ;;
    esac
done
need fio jq
OPTIME=$ZQFS_BIN/zone_op_time
[ -x "$OPTIME" ] || die "no $OPTIME (build the bench targets)"
make_work "$dir"
machine_line "$WORK"

img=$WORK/z.qcow2
"$ZQFS_IMG" create -f qcow2 "$img" -o size=1G,zone.size=256M,cluster_size=64K >/dev/null

fill() { # FILE MIB
    fio --name=fill --filename="$1" --rw=write --ioengine=psync --bs=1M --size="$2M" --file_append=1 \
        --end_fsync=1 --output=/dev/null >/dev/null || die "cannot fill $1"
}
ms() { sed -n 's/^seconds=//p' | awk '{ printf "%.3f\n", $1 * 1000 }'; }
blocks() { echo $(($(stat -c %b "$1") * 512)); }
stats() { sort -g | awk '{ v[NR] = $1 } END { printf "%s %s\n", v[int((NR + 1) / 2)], v[NR] }'; }

mount_image "$img" "$WORK/mnt"
: >"$WORK/freed"
for ((i = 0; i < runs; i++)); do
    fill "$WORK/mnt/seq/0" 256
    b0=$(blocks "$img")
    t0=$(date +%s%N)
    "$OPTIME" truncate "$WORK/mnt/seq/0" 0 | ms >>"$WORK/reset"
    b1=$(blocks "$img")
    echo $((b0 - b1)) >>"$WORK/freed_now"
    # The host space is punched by a background thread after the reset
    # returns: poll (up to 5 s) until the zone's data is gone.
    for ((p = 0; p < 500; p++)); do
        b1=$(blocks "$img")
        [ $((b0 - b1)) -ge $((256 << 20)) ] && break
        sleep 0.01
    done
    t1=$(date +%s%N)
    echo $((b0 - b1)) >>"$WORK/freed"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }' >>"$WORK/settle"

    fill "$WORK/mnt/seq/1" 128
    "$OPTIME" truncate "$WORK/mnt/seq/1" $((256 << 20)) | ms >>"$WORK/finish"
    truncate -s 0 "$WORK/mnt/seq/1"
    fill "$WORK/mnt/seq/2" 256
    "$OPTIME" xattr "$WORK/mnt/seq/2" reset | ms >>"$WORK/xreset"

    rm -f "$WORK/plain"
    : >"$WORK/plain"
    fill "$WORK/plain" 256
    "$OPTIME" truncate "$WORK/plain" 0 | ms >>"$WORK/plainreset"
done
fill "$WORK/mnt/seq/0" 256
unmount_image "$WORK/mnt"

b0=$(blocks "$img")
t0=$(date +%s%N)
"$ZQFS_IMG" zone reset "$img" 0 >/dev/null
t1=$(date +%s%N)
b1=$(blocks "$img")
offline_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }')

read -r reset_med reset_max < <(stats <"$WORK/reset")
read -r finish_med finish_max < <(stats <"$WORK/finish")
read -r xreset_med xreset_max < <(stats <"$WORK/xreset")
read -r plain_med plain_max < <(stats <"$WORK/plainreset")
freed_min=$(sort -g "$WORK/freed" | head -1)
freed_now_min=$(sort -g "$WORK/freed_now" | head -1)
read -r settle_med settle_max < <(stats <"$WORK/settle")

echo "# reset/finish: $runs rounds, median (worst) in ms; zone = 256 MiB"
table_head
row "reset full zone, truncate -s 0 via mount, ms" "$reset_med ($reset_max)" "$plain_med ($plain_max) plain truncate" \
    "$(ratio "$reset_med" "$plain_med")" "< 10 ms"
row "reset full zone, user.zone.cmd=reset, ms" "$xreset_med ($xreset_max)" "-" "-" "< 10 ms"
row "finish half-full zone, truncate -s 256M, ms" "$finish_med ($finish_max)" "-" "-" "-"
row "reset full zone, zqfs-img zone reset (whole command), ms" "$offline_ms" "-" "-" "-"
row "host bytes freed by reset via mount, once reclaimed (min of rounds)" "$freed_min" "$((256 << 20)) (zone data)" \
    "$(ratio "$freed_min" $((256 << 20)))" "~1.0"
row "  ...of which already freed when the reset returned" "$freed_now_min" "-" "-" "-"
row "  time from reset call to space reclaimed, ms" "$settle_med ($settle_max)" "$plain_med plain truncate" \
    "$(ratio "$settle_med" "$plain_med")" "-"
row "host bytes freed by zqfs-img zone reset" "$((b0 - b1))" "$((256 << 20)) (zone data)" \
    "$(ratio $((b0 - b1)) $((256 << 20)))" "~1.0"
