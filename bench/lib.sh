# shellcheck shell=bash
# Shared helpers for the bench/*.sh scripts (sourced, not run).
#
# Every script: builds nothing itself (ZQFS_BIN points at the binaries,
# default build/bin), works in a fresh directory under mktemp -d inside the
# chosen host directory, mounts only there, and unmounts in an EXIT trap.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
ZQFS_BIN=${ZQFS_BIN:-$REPO_DIR/build/bin}
ZQFS=$ZQFS_BIN/zqfs
ZQFS_IMG=$ZQFS_BIN/zqfs-img

die() { echo "${0##*/}: $*" >&2; exit 1; }

need() {
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 && continue
        case $t in
            jq | fio | qemu-img)
                local pkg=$t
                [ "$t" = qemu-img ] && pkg=qemu-utils
                echo "${0##*/}: installing $pkg" >&2
                local sudo=
                [ "$(id -u)" = 0 ] || sudo="sudo -n"
                $sudo apt-get install -y -q "$pkg" >/dev/null 2>&1 ||
                    { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "$pkg" >/dev/null 2>&1; } ||
                    die "$t is missing (apt-get install $pkg)"
                ;;
            *) die "$t is missing" ;;
        esac
    done
    if [ ! -x "$ZQFS" ] || [ ! -x "$ZQFS_IMG" ]; then die "no zqfs binaries in $ZQFS_BIN (build first, or set ZQFS_BIN)"; fi
}

# machine line printed by every script, so results carry their context
machine_line() {
    local model fs
    model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    fs=$(df --output=fstype "$1" 2>/dev/null | tail -1)
    echo "# machine: $(nproc) cpu, ${model:-unknown}, kernel $(uname -r), host fs of $1: $fs"
}

# WORK: a fresh directory under $1 (default /var/tmp), removed on exit.
MOUNTS=()
cleanup() {
    local m
    for m in "${MOUNTS[@]}"; do
        mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m" 2>/dev/null
    done
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
}
make_work() {
    local base=${1:-/var/tmp}
    WORK=$(mktemp -d "$base/zqfs-bench.XXXXXX") || die "cannot create a directory in $base"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# mount_image IMAGE MNT [OPTS]: runs zqfs in the foreground (so its PID is
# known: ZQFS_PID), waits until MNT/seq is usable, sets MOUNT_SECONDS.
mount_image() {
    local img=$1 mnt=$2 opts=${3:-}
    mkdir -p "$mnt"
    MOUNTS+=("$mnt")
    local t0 t1
    t0=$(date +%s.%N)
    if [ -n "$opts" ]; then
        "$ZQFS" "$img" "$mnt" -f -o "$opts" 2>"$WORK/zqfs.log" &
    else
        "$ZQFS" "$img" "$mnt" -f 2>"$WORK/zqfs.log" &
    fi
    ZQFS_PID=$!
    local i
    for ((i = 0; i < 30000; i++)); do
        # seq/0 exists only once the file system answers
        if stat "$mnt/seq/0" >/dev/null 2>&1; then break; fi
        kill -0 "$ZQFS_PID" 2>/dev/null || { cat "$WORK/zqfs.log" >&2; die "zqfs exited before mounting"; }
        sleep 0.001
    done
    t1=$(date +%s.%N)
    MOUNT_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }')
}

unmount_image() {
    local mnt=$1
    fusermount3 -u "$mnt" || die "cannot unmount $mnt"
    wait "$ZQFS_PID" 2>/dev/null || true
}

# ratio A B: A/B with 2 decimals ("n/a" when either is missing or zero)
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0 || a == "n/a" || b == "n/a") print "n/a"; else printf "%.2f\n", a / b }'
}

# fio_json FILE FIELD: aggregate figures from fio --output-format=json
#   write_mibs / read_mibs  (sum over jobs, MiB/s)
#   write_iops / read_iops
#   write_p50_us / write_p99_us / read_p50_us / read_p99_us (clat, first job)
fio_json() {
    local f=$1 field=$2 dir=${2%%_*}
    case $field in
        *_mibs) jq -r "[.jobs[].$dir.bw_bytes] | add / 1048576 | . * 10 | round / 10" "$f" ;;
        *_iops) jq -r "[.jobs[].$dir.iops] | add | round" "$f" ;;
        *_p50_us) jq -r ".jobs[0].$dir.clat_ns.percentile[\"50.000000\"] / 1000 | . * 10 | round / 10" "$f" ;;
        *_p99_us) jq -r ".jobs[0].$dir.clat_ns.percentile[\"99.000000\"] / 1000 | . * 10 | round / 10" "$f" ;;
    esac
}

# fio_med PREFIX FIELD: median of fio_json FIELD over PREFIX.*.json (runs)
fio_med() {
    local f
    for f in "$1".*.json; do fio_json "$f" "$2"; done | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# the table rows every script prints: name | figure | baseline | ratio | target
row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }

# small_io_rows LABEL NAME OP: the IOPS and clat p50/p99 rows of a 4 KiB
# case, zqfs ($WORK/NAME.z.*) against plain ($WORK/NAME.p.*); OP is the
# fio direction (read or write).
small_io_rows() {
    local label=$1 name=$2 op=$3 z p q
    z=$(fio_med "$WORK/$name.z" ${op}_iops)
    p=$(fio_med "$WORK/$name.p" ${op}_iops)
    row "$label, IOPS" "$z" "$p" "$(ratio "$z" "$p")" "-"
    for q in p50 p99; do
        z=$(fio_med "$WORK/$name.z" ${op}_${q}_us)
        p=$(fio_med "$WORK/$name.p" ${op}_${q}_us)
        row "$label, clat $q us" "$z" "$p" "$(ratio "$z" "$p")" "-"
    done
}
table_head() {
    echo "| benchmark | zqfs | baseline | ratio | target |"
    echo "|---|---|---|---|---|"
}
