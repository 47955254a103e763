#!/bin/bash
# fio through a real mount: verified 1 MiB appends on several sequential
# zone files at once (twice, so the second run appends at the write
# pointers), random verified writes on a conventional file, small buffered
# appends; then the image must still satisfy qemu-img and hold the same bytes.
. "$(dirname "$0")/fuse_common.bash"
command -v fio >/dev/null || fail "fio is not installed"

MiB=$((1 << 20))
ZS=$((16 * MiB))
new_image img.qcow2 size=128M zone.size=16M zone.conventional_zones=2
MNT=$TMP/mnt
zq_mount "$TMP/img.qcow2" "$MNT"
export ZQFS_MNT=$MNT ZQFS_APPEND_SIZE=6M ZQFS_CNV_SIZE=16M
EX=$ZQFS_SRC/examples/fio

cd "$TMP"  # fio drops state files in the working directory
run_fio() {
    fio --output="$TMP/fio.out" "$@" || { cat "$TMP/fio.out" >&2; fail "fio $*"; }
    ! grep -qE "err= *[1-9]" "$TMP/fio.out" || { cat "$TMP/fio.out" >&2; fail "fio reported errors: $*"; }
}

run_fio "$EX/seq-append-verify.fio"
run_fio "$EX/seq-append-verify.fio"
for i in 0 1 2 3; do
    expect_eq "$(stat -c %s "$MNT/seq/$i")" $((12 * MiB)) "seq/$i size after two fio append runs"
done
pass "fio --file_append=1 --verify=md5 on 4 sequential files at once, twice"

run_fio "$EX/cnv-randwrite-verify.fio"
pass "fio random writes with verify on a conventional file"

run_fio "$EX/seq-append-small.fio"
expect_eq "$(stat -c %s "$MNT/seq/4")" $((8 * MiB)) "small appends size"
pass "fio small buffered appends"

# The same bytes through qemu-img once the zoned bit is masked.
for f in cnv/0 cnv/1 seq/0 seq/1 seq/2 seq/3 seq/4; do sha256sum < "$MNT/$f" > "$TMP/sum.${f/\//_}"; done
zq_umount "$MNT"
qemu_export_raw "$TMP/img.qcow2" "$TMP/raw"
zone_sum() { dd if="$TMP/raw" iflag=skip_bytes,count_bytes skip=$(($1 * ZS)) count=$2 status=none | sha256sum; }
expect_eq "$(zone_sum 0 $ZS)" "$(cat "$TMP/sum.cnv_0")" "cnv/0 vs qemu-img convert"
expect_eq "$(zone_sum 1 $ZS)" "$(cat "$TMP/sum.cnv_1")" "cnv/1 vs qemu-img convert"
for i in 0 1 2 3; do
    expect_eq "$(zone_sum $((i + 2)) $((12 * MiB)))" "$(cat "$TMP/sum.seq_$i")" "seq/$i vs qemu-img convert"
done
expect_eq "$(zone_sum 6 $((8 * MiB)))" "$(cat "$TMP/sum.seq_4")" "seq/4 vs qemu-img convert"
pass "qemu-img check clean and convert identical after fio"
