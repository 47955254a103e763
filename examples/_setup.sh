# Shared by the walk-throughs: a throw-away zoned image mounted under a
# temporary folder, unmounted and removed when the script exits.
# ZQFS_BIN defaults to build/bin of this checkout.
set -euo pipefail
ZQFS_BIN=${ZQFS_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/bin}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zqfs-example.XXXXXX")
MNT=$WORK/mnt
mkdir "$MNT"
cleanup() {
    cd /  # a busy mount point cannot be unmounted
    fusermount3 -u "$MNT" 2>/dev/null || true
    # Wait for the daemon to flush and release the image.
    local i
    for i in $(seq 100); do pgrep -f -- "zqfs .* $MNT( |\$)" >/dev/null || break; sleep 0.1; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# mount_demo ZQFS-IMG-CREATE-OPTS [-- ZQFS-MOUNT-ARGS...]
mount_demo() {
    local create=() mount_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do create+=(-o "$1"); shift; done
    [ $# -gt 0 ] && shift
    mount_args=("$@")
    "$ZQFS_BIN/zqfs-img" create -f qcow2 "${create[@]}" "$WORK/demo.qcow2" >/dev/null
    "$ZQFS_BIN/zqfs" "$WORK/demo.qcow2" "$MNT" "${mount_args[@]+"${mount_args[@]}"}"
}

# show CMD...: prints the command, then runs it.
show() {
    if [ "$1" == bash ] && [ "$2" == -c ]; then echo "\$ $3"; else echo "\$ $*"; fi
    "$@"
}
zone() { getfattr --absolute-names -n user.zone --only-values "$1"; echo; }
