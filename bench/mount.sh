#!/usr/bin/env bash
# Mount time and daemon memory for images of many zones, and the time of
# `zqfs-img report` over all of them.
#
#   bench/mount.sh [-d DIR] [-z "1024 65536 1048576"] [-n RUNS]
#
# For each zone count N: `zqfs-img create -o size=N*64K,zone.size=64K`
# (64 KiB clusters, one cluster per zone, so the largest image stays ~8 MiB)
# in DIR (default /var/tmp). Mount time: from starting `zqfs IMG MNT -f`
# until stat(MNT/seq/0) succeeds (polled every ms). RSS: VmRSS and VmHWM of
# the daemon from /proc/PID/status right after the mount, and again after
# `ls -f MNT/seq` has listed every zone file (which also looks none up).
# statfs (`stat -f MNT`) and `getfattr -n user.zqfs MNT` (root status:
# counts over all zones) are timed as whole commands, once per mount.
# Report: wall time (and user+sys CPU time) of `zqfs-img report IMG
# >/dev/null` (human output, all zones) and of `--output=json`. Median of RUNS (default 3) for the times.
# Targets (SPEC 6): mount of 1,048,576 zones < 1 s, daemon RSS < 256 MiB.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=/var/tmp zones="1024 65536 1048576" runs=3
while getopts d:z:n: o; do
    case $o in
        d) dir=$OPTARG ;; z) zones=$OPTARG ;; n) runs=$OPTARG ;;
        *) die "usage: $0 [-d DIR] [-z ZONE_COUNTS] [-n RUNS]" ;;
    esac
done
need
make_work "$dir"
machine_line "$WORK"

median() { sort -g | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }
now() { date +%s%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }'; }
# cpu_time CMD...: "WALL_MS (CPU_MS)" of CMD, its output discarded; the
# machine is shared, so CPU time (user + sys) is the steadier figure
cpu_time() {
    local TIMEFORMAT='%R %U %S' t
    t=$({ time "$@" >/dev/null; } 2>&1 | tail -1)
    awk '{ printf "%.1f (%.1f)\n", $1 * 1000, ($2 + $3) * 1000 }' <<<"$t"
}
rss_mib() { awk -v k="$2" '$1 == k":" { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

echo "# mount: zone.size=64K, cluster_size=64K; times are the median of $runs runs, ms"
echo "| zones | image bytes | create ms | mount ms | RSS after mount MiB | RSS after ls MiB (peak) | ls ms | statfs ms | getfattr user.zqfs ms | report ms (cpu) | report json ms (cpu) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in $zones; do
    img=$WORK/z$n.qcow2
    t=$(now)
    "$ZQFS_IMG" create -f qcow2 "$img" -o size=$((n * 64))K,zone.size=64K,cluster_size=64K >/dev/null
    create_ms=$(ms_since "$t")
    : >"$WORK/m" && : >"$WORK/r" && : >"$WORK/j" && : >"$WORK/l" && : >"$WORK/s" && : >"$WORK/x"
    for ((i = 0; i < runs; i++)); do
        mount_image "$img" "$WORK/mnt"
        awk -v s="$MOUNT_SECONDS" 'BEGIN { printf "%.1f\n", s * 1000 }' >>"$WORK/m"
        rss=$(rss_mib "$ZQFS_PID" VmRSS)
        t=$(now)
        count=$(ls -f "$WORK/mnt/seq" | wc -l)
        ms_since "$t" >>"$WORK/l"
        [ "$count" = $((n + 2)) ] || die "ls listed $count entries for $n zones"
        t=$(now)
        stat -f "$WORK/mnt" >/dev/null
        ms_since "$t" >>"$WORK/s"
        t=$(now)
        getfattr -n user.zqfs "$WORK/mnt" >/dev/null 2>&1 || true
        ms_since "$t" >>"$WORK/x"
        rss_ls=$(rss_mib "$ZQFS_PID" VmRSS)
        hwm=$(rss_mib "$ZQFS_PID" VmHWM)
        unmount_image "$WORK/mnt"

        cpu_time "$ZQFS_IMG" report "$img" >>"$WORK/r"
        cpu_time "$ZQFS_IMG" report --output=json "$img" >>"$WORK/j"
    done
    printf '| %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s |\n' "$n" "$(stat -c %s "$img")" \
        "$create_ms" "$(median <"$WORK/m")" "$rss" "$rss_ls" "$hwm" "$(median <"$WORK/l")" "$(median <"$WORK/s")" \
        "$(median <"$WORK/x")" "$(median <"$WORK/r")" "$(median <"$WORK/j")"
    rm -f "$img"
done
