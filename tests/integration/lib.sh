# Shared helpers for the bash integration tests. Source it first:
#   . "$(dirname "$0")/lib.sh"
# It needs ZQFS_BIN (build/bin) and sets up $TMP, removed on exit.
set -euo pipefail

: "${ZQFS_BIN:?ZQFS_BIN must point at build/bin (ctest sets it)}"
ZQFS_IMG="$ZQFS_BIN/zqfs-img"
[ -x "$ZQFS_IMG" ] || { echo "FAIL: $ZQFS_IMG is not built" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zqfs-test.XXXXXX")
zq_cleanup_hooks=()
zq_cleanup() {
    local hook
    for hook in "${zq_cleanup_hooks[@]+"${zq_cleanup_hooks[@]}"}"; do eval "$hook" || true; done
    rm -rf "$TMP"
}
trap zq_cleanup EXIT
# Runs a command at exit (before $TMP is removed), e.g. killing a helper.
at_exit() { zq_cleanup_hooks+=("$*"); }

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
pass() { echo "ok - $*"; }

# expect_status CODE CMD...: runs CMD, fails unless it exits with CODE.
# Its stdout and stderr are kept in $TMP/out and $TMP/err.
expect_status() {
    local want=$1
    shift
    local got=0
    "$@" >"$TMP/out" 2>"$TMP/err" || got=$?
    if [ "$got" != "$want" ]; then
        echo "--- stdout:" >&2
        cat "$TMP/out" >&2
        echo "--- stderr:" >&2
        cat "$TMP/err" >&2
        fail "exit status $got, expected $want: $*"
    fi
}

# expect_contains FILE TEXT: FILE must contain TEXT (a fixed string).
expect_contains() {
    grep -qF -- "$2" "$1" || {
        cat "$1" >&2
        fail "$1 does not contain: $2"
    }
}

expect_eq() {  # expect_eq WHAT GOT WANT
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# expect_one_line_error FILE PATTERN: stderr is exactly one line naming PATTERN.
expect_one_line_error() {
    local lines
    lines=$(wc -l <"$1")
    [ "$lines" -eq 1 ] || {
        cat "$1" >&2
        fail "expected a one-line error, got $lines lines"
    }
    grep -qE -- "^zqfs-img: .*$2" "$1" || {
        cat "$1" >&2
        fail "error line does not match: $2"
    }
}

# Compares the raw virtual disk of a qcow2 image as qemu-img and zqfs-img read it.
expect_same_raw() {
    local img=$1 name=${2:-$1}
    rm -f "$TMP/qemu.raw" "$TMP/zqfs.raw"
    qemu-img convert -f qcow2 -O raw "$img" "$TMP/qemu.raw"
    "$ZQFS_IMG" convert -O raw "$img" "$TMP/zqfs.raw" || fail "$name: zqfs-img convert failed"
    cmp "$TMP/qemu.raw" "$TMP/zqfs.raw" || fail "$name: zqfs-img reads different bytes than qemu-img"
}

. "$(dirname "${BASH_SOURCE[0]}")/qcow2_header.bash"

# Prints "LAYOUT ZONEDMETA_OFFSET" of a zoned image, from its header extension.
zoned_meta_location() {
    python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read(1 << 21)
header_length = int.from_bytes(data[100:104], "big")
off = header_length
while off + 8 <= len(data):
    etype = int.from_bytes(data[off:off + 4], "big")
    elen = int.from_bytes(data[off + 4:off + 8], "big")
    body = data[off + 8:off + 8 + elen]
    if etype == 0:
        break
    if etype == 0x007a6264:
        if elen == 56:
            print("seed", int.from_bytes(body[48:56], "big"))
        else:
            print("latest", int.from_bytes(body[24:32], "big"))
        sys.exit(0)
    off += 8 + (elen + 7) // 8 * 8
sys.exit("no zoned extension")
PY
}

# Sets the refcount of host cluster INDEX (16-bit refcounts, first refcount
# block only): used to fabricate a leak.
set_refcount16() {  # set_refcount16 FILE CLUSTER_INDEX VALUE
    python3 - "$@" <<'PY'
import sys
path, index, value = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = open(path, "r+b")
hdr = f.read(104)
cluster_bits = int.from_bytes(hdr[20:24], "big")
reftable = int.from_bytes(hdr[48:56], "big")
order = int.from_bytes(hdr[96:100], "big")
assert order == 4, "set_refcount16 needs refcount_bits=16"
per_block = (1 << cluster_bits) // 2
f.seek(reftable + 8 * (index // per_block))
block = int.from_bytes(f.read(8), "big")
assert block, "no refcount block for that cluster"
f.seek(block + 2 * (index % per_block))
f.write(value.to_bytes(2, "big"))
PY
}
