# Helpers for the zqfs mount tests (tests/integration/fuse_*.sh). Source it:
#   . "$(dirname "$0")/fuse_common.bash"
# Every mount goes on a directory under a fresh mktemp -d folder and is
# unmounted at exit, even on failure; the daemon is waited for so the image
# is flushed and unlocked before anything else looks at it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/qcow2_header.bash"

: "${ZQFS_BIN:?ZQFS_BIN must point at build/bin (ctest sets it)}"
ZQFS="$ZQFS_BIN/zqfs"
ZQFS_IMG="$ZQFS_BIN/zqfs-img"
[ -x "$ZQFS" ] || { echo "FAIL: $ZQFS is not built" >&2; exit 1; }
[ -x "$ZQFS_IMG" ] || { echo "FAIL: $ZQFS_IMG is not built" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zqfs-fuse-test.XXXXXX")
ZQ_MOUNTS=()
ZQ_TEARDOWN_HOOKS=()

zq_teardown() {
    local m hook
    for m in "${ZQ_MOUNTS[@]+"${ZQ_MOUNTS[@]}"}"; do
        fusermount3 -u "$m" 2>/dev/null || true
        zq_wait_daemon "$m"
    done
    for hook in "${ZQ_TEARDOWN_HOOKS[@]+"${ZQ_TEARDOWN_HOOKS[@]}"}"; do eval "$hook" || true; done
    rm -rf "$TMP"
}
trap zq_teardown EXIT
# Runs a command at exit, after the zqfs mounts are gone and before $TMP
# is removed (e.g. unmounting a file system the images live on).
zq_at_teardown() { ZQ_TEARDOWN_HOOKS+=("$*"); }

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() { echo "ok - $*"; }

# Waits (up to 20 s) for the daemon serving MOUNTPOINT to exit.
zq_wait_daemon() {
    local pid i
    pid=$(pgrep -f -- "zqfs .* $1( |$)" || true)
    [ -n "$pid" ] || return 0
    for i in $(seq 200); do
        kill -0 $pid 2>/dev/null || return 0
        sleep 0.1
    done
    echo "daemon for $1 did not exit" >&2
    return 1
}

# new_image NAME OPTS...: creates $TMP/NAME with zqfs-img create -o OPTS.
new_image() {
    local name=$1
    shift
    local o args=()
    for o in "$@"; do args+=(-o "$o"); done
    "$ZQFS_IMG" create -f qcow2 "${args[@]}" "$TMP/$name" >/dev/null
}

# zq_mount IMAGE MOUNTPOINT [zqfs args...]: mounts (daemonized) and
# registers the mount for teardown.
zq_mount() {
    local img=$1 mnt=$2
    shift 2
    mkdir -p "$mnt"
    zq_track "$mnt"
    "$ZQFS" "$img" "$mnt" "$@"
    mountpoint -q "$mnt" || fail "zqfs returned but $mnt is not mounted"
}

# Registers a mount point for unmounting at exit (once).
zq_track() {
    local m
    for m in "${ZQ_MOUNTS[@]+"${ZQ_MOUNTS[@]}"}"; do [ "$m" != "$1" ] || return 0; done
    ZQ_MOUNTS+=("$1")
}

zq_umount() {
    fusermount3 -u "$1"
    zq_wait_daemon "$1"
}

# expect_eq GOT WANT WHAT
expect_eq() {
    [ "$1" == "$2" ] || fail "$3: got '$1', expected '$2'"
}

# expect_fail_with TEXT CMD...: CMD must fail and print TEXT on stderr.
expect_fail_with() {
    local text=$1
    shift
    if "$@" 2>"$TMP/err" >/dev/null; then fail "expected failure: $*"; fi
    grep -qF -- "$text" "$TMP/err" || { cat "$TMP/err" >&2; fail "'$*' did not report: $text"; }
}

# json_get PATH...: reads JSON on stdin, prints the values at the dotted
# PATHs (strings raw, the rest as JSON), space-separated.
json_get() {
    python3 -c '
import json, sys
d = json.load(sys.stdin)
out = []
for path in sys.argv[1:]:
    v = d
    for k in path.split("."):
        v = v[k]
    out.append(v if isinstance(v, str) else json.dumps(v))
print(" ".join(out))' "$@"
}

# zone_field FILE KEY: one field of the user.zone JSON of FILE.
zone_field() { getfattr --absolute-names -n user.zone --only-values "$1" | json_get "$2"; }
# zqfs_field MOUNTPOINT KEY: one field of the root's user.zqfs JSON.
zqfs_field() { getfattr --absolute-names -n user.zqfs --only-values "$1" | json_get "$2"; }

# qemu_export_raw IMAGE RAW: what qemu-img makes of a zoned image: with the
# zoned bit masked, qemu-img check must find no errors (leaked clusters,
# exit 3, are the write-pointer table it does not know), and its raw
# export goes to RAW.
qemu_export_raw() {
    cp "$1" "$TMP/qemu-view.qcow2"
    mask_zoned_bit "$TMP/qemu-view.qcow2"
    local rc=0
    qemu-img check "$TMP/qemu-view.qcow2" >"$TMP/check" 2>&1 || rc=$?
    [ $rc == 0 ] || [ $rc == 3 ] || { cat "$TMP/check" >&2; fail "qemu-img check: exit $rc"; }
    qemu-img convert -O raw "$TMP/qemu-view.qcow2" "$2"
}

