#!/usr/bin/env bash
# ./run.sh [IMAGE [MOUNTPOINT]]
# Installs what is missing, builds, creates a demo zoned image when IMAGE does
# not exist, and mounts it (default ./demo.qcow2 on ./mnt).
set -euo pipefail
ZQFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$ZQFS_ROOT/scripts/setup.sh"

image=${1:-demo.qcow2}
mountpoint=${2:-mnt}
bin="$ZQFS_ROOT/build/bin"

zqfs_install_packages
mkdir -p "$ZQFS_ROOT/build"
zqfs_build "$ZQFS_ROOT/build"

if [ ! -e "$image" ]; then
    zqfs_log "creating $image: 1 GiB, 16 zones of 64 MiB (2 conventional), max 6 open / 8 active"
    "$bin/zqfs-img" create -f qcow2 "$image" -o size=1G -o zone.size=64M -o zone.conventional_zones=2 \
        -o zone.max_open_zones=6 -o zone.max_active_zones=8 -o zone.mode=host-managed
fi
"$bin/zqfs-img" info "$image"

if [ ! -x "$bin/zqfs" ]; then
    zqfs_log "the file system (build/bin/zqfs) is not built yet; the image is ready:"
    echo "    $bin/zqfs-img report $image"
    exit 0
fi
if [ ! -e /dev/fuse ]; then
    echo "error: /dev/fuse is missing: load the fuse module (modprobe fuse) to mount $image" >&2
    exit 1
fi
mkdir -p "$mountpoint"
if mountpoint -q "$mountpoint"; then
    echo "error: $mountpoint is already a mount point; unmount it first: fusermount3 -u $mountpoint" >&2
    exit 1
fi
"$bin/zqfs" "$image" "$mountpoint"
zqfs_log "$image is mounted on $mountpoint"
usage() { printf '    %-52s %s\n' "$1" "$2"; }
usage "ls $mountpoint/cnv $mountpoint/seq" "one file per zone"
usage "echo hello >> $mountpoint/seq/0" "append to a sequential zone"
usage "cat $mountpoint/seq/0" "read it back"
usage "getfattr -d -m - $mountpoint/seq/0" "zone state (user.zone)"
usage "setfattr -n user.zone.cmd -v reset $mountpoint/seq/0" "reset the zone"
usage "$bin/zqfs-img report $image" "zone report (works while mounted)"
usage "fusermount3 -u $mountpoint" "unmount (flushes everything)"
