#!/usr/bin/env bash
# Image overhead: host bytes the image uses per byte of zone data written.
#
#   bench/overhead.sh [-d DIR] [-z ZONES] [-s ZONE_MIB]
#
# An image of ZONES (default 2) sequential zones of ZONE_MIB (default 256)
# with 64 KiB clusters in DIR (default /var/tmp), mounted; every zone is
# filled to capacity with fio (1 MiB appends, fsync), then unmounted (clean
# image). Host bytes = st_blocks * 512 of the image (also its st_size);
# overhead = host bytes / data bytes - 1. Target (SPEC 6): <= 1%.
# Also printed: the empty image, and the same data in a qemu-img image of
# the same geometry (plain qcow2, 64 KiB clusters, written with qemu-io)
# as a reference when qemu-io is installed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=/var/tmp zones=2 zmib=256
while getopts d:z:s: o; do
    case $o in
        d) dir=$OPTARG ;; z) zones=$OPTARG ;; s) zmib=$OPTARG ;;
        *) die "usage: $0 [-d DIR] [-z ZONES] [-s ZONE_MIB]" ;;
    esac
done
need fio
make_work "$dir"
machine_line "$WORK"

img=$WORK/z.qcow2
"$ZQFS_IMG" create -f qcow2 "$img" -o "size=$((zones * zmib))M,zone.size=${zmib}M,cluster_size=64K" >/dev/null
empty_alloc=$(($(stat -c %b "$img") * 512))
empty_size=$(stat -c %s "$img")

mount_image "$img" "$WORK/mnt"
for ((i = 0; i < zones; i++)); do
    fio --name=fill --filename="$WORK/mnt/seq/$i" --rw=write --ioengine=psync --bs=1M --size="${zmib}M" \
        --file_append=1 --end_fsync=1 --output=/dev/null >/dev/null || die "cannot fill seq/$i"
done
unmount_image "$WORK/mnt"

data=$((zones * zmib << 20))
alloc=$(($(stat -c %b "$img") * 512))
size=$(stat -c %s "$img")
pct() { awk -v h="$1" -v d="$data" 'BEGIN { printf "%.3f%%\n", (h / d - 1) * 100 }'; }

ref="-" refratio="-"
if command -v qemu-io >/dev/null; then
    qemu-img create -q -f qcow2 -o cluster_size=64k "$WORK/q.qcow2" $((zones * zmib))M
    cmds=()
    for ((off = 0; off < zones * zmib; off += 16)); do cmds+=(-c "write -P 0x5a ${off}M 16M"); done
    qemu-io -f qcow2 "${cmds[@]}" "$WORK/q.qcow2" >/dev/null
    qalloc=$(($(stat -c %b "$WORK/q.qcow2") * 512))
    ref="$qalloc (qemu-io, plain qcow2, overhead $(pct "$qalloc"))"
    refratio=$(ratio "$alloc" "$qalloc")
fi

echo "# overhead: $zones zones x $zmib MiB filled, 64 KiB clusters; bytes"
table_head
row "empty image: allocated (st_size)" "$empty_alloc ($empty_size)" "-" "-" "-"
row "filled image: allocated (st_size) for $data data bytes" "$alloc ($size)" "$ref" "$refratio" "-"
row "overhead, allocated / data - 1" "$(pct "$alloc")" "-" "-" "<= 1%"
row "overhead, st_size / data - 1" "$(pct "$size")" "-" "-" "<= 1%"
