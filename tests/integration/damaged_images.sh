#!/usr/bin/env bash
# Damaged images (byte flips in every metadata structure, truncation,
# offsets past the end, loops between tables, absurd zone counts) get a
# clean answer from zqfs and every zqfs-img command: a consistent result or
# a one-line error. Never a crash, a hang, or memory the file cannot justify.
. "$(dirname "$0")/fuse_common.bash"

# A zoned image with data in sequential and conventional zones.
new_image good.qcow2 size=64M zone.size=4M zone.conventional_zones=2 cluster_size=4096
zq_mount "$TMP/good.qcow2" "$TMP/m"
head -c 3M /dev/urandom >>"$TMP/m/seq/0"
head -c 100K /dev/urandom >>"$TMP/m/seq/3"
head -c 1M /dev/urandom | dd of="$TMP/m/cnv/1" bs=64K conv=notrunc status=none
zq_umount "$TMP/m"

python3 "$(dirname "$0")/damage.py" "$TMP/good.qcow2" "$TMP/bad" >"$TMP/variants"

# Sanitizer builds reserve huge address space; elsewhere cap memory at 1 GiB.
limit_memory=1
{ [ -n "${ZQFS_SANITIZED:-}" ] || ldd "$ZQFS_IMG" | grep -q libasan; } && limit_memory=0

# run_bounded NAME CMD...: runs CMD with a time and memory limit; fails on a
# crash or a hang; on failure stderr must be one line. Returns CMD's status.
run_bounded() {
    local name=$1 rc=0
    shift
    if [ $limit_memory = 1 ]; then
        (ulimit -v 1048576; timeout 30 "$@") >"$TMP/out" 2>"$TMP/err" || rc=$?
    else
        timeout 60 "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    fi
    [ $rc -ne 124 ] || fail "$name: hung: $*"
    [ $rc -lt 128 ] || { cat "$TMP/err" >&2; fail "$name: killed by signal $((rc - 128)): $*"; }
    if [ $rc -ne 0 ] && [ "${2:-}" != check ]; then
        local lines
        lines=$(grep -cv '^zqfs-img: warning\|^zqfs: warning' "$TMP/err" || true)
        [ "$lines" -eq 1 ] || { cat "$TMP/err" >&2; fail "$name: expected a one-line error, got $lines lines: $*"; }
    fi
    return $rc
}

n=0 refused=0
while read -r bad; do
    name=$(basename "$bad" .qcow2)
    n=$((n + 1))
    run_bounded "$name" "$ZQFS_IMG" info "$bad" || refused=$((refused + 1))
    run_bounded "$name" "$ZQFS_IMG" info --output=json "$bad" || true
    run_bounded "$name" "$ZQFS_IMG" report --output=blkzone "$bad" || true
    run_bounded "$name" "$ZQFS_IMG" convert -O raw "$bad" "$TMP/raw" || true
    rm -f "$TMP/raw"
    rc=0
    run_bounded "$name" "$ZQFS_IMG" check "$bad" || rc=$?
    case $rc in 0 | 1 | 2 | 3) ;; *) fail "$name: check exit $rc is not a qemu-img check code" ;; esac
    cp "$bad" "$TMP/w.qcow2"
    run_bounded "$name" "$ZQFS_IMG" zone finish "$TMP/w.qcow2" 3 || true
    run_bounded "$name" "$ZQFS_IMG" zone reset "$TMP/w.qcow2" 0 || true
    cp "$bad" "$TMP/w.qcow2"
    run_bounded "$name" "$ZQFS_IMG" check -r all "$TMP/w.qcow2" || true
    # The mount: refuses in one line, or mounts and serves what it can.
    cp "$bad" "$TMP/w.qcow2"
    mkdir -p "$TMP/mw"
    zq_track "$TMP/mw"
    if run_bounded "$name" "$ZQFS" "$TMP/w.qcow2" "$TMP/mw"; then
        (timeout 30 ls -R "$TMP/mw" && timeout 30 cat "$TMP/mw/seq/0" && timeout 30 getfattr -d -m - "$TMP/mw/seq/1") \
            >/dev/null 2>&1 || true
        mountpoint -q "$TMP/mw" || fail "$name: daemon died while serving the damaged image"
        zq_umount "$TMP/mw"
    fi
done <"$TMP/variants"
[ $n -ge 70 ] || fail "only $n damaged variants"
[ $refused -ge 10 ] || fail "only $refused of $n variants were refused: is the damage real?"
pass "$n damaged images: no crash, no hang, one-line errors ($refused refused by info)"
