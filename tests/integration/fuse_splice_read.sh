#!/bin/bash
# Reads through the mount, spliced from the image (the default) and copied
# (nosplice), against what was written: sequential zones with an unaligned
# end, a conventional zone with holes and a cluster the host file ends in,
# O_DIRECT and cached, request sizes from 4 KiB to 1 MiB, unaligned offsets,
# and the read size zqfs picks (max_read) when splicing.
. "$(dirname "$0")/fuse_common.bash"

KiB=1024
MiB=$((1 << 20))
ZS=$((4 * MiB))
# commit=0: nothing flushes behind the test's back, so the host file still
# ends inside the last cluster written when it is read.
new_image img.qcow2 size=32M zone.size=4M zone.conventional_zones=2 cluster_size=64K
MNT=$TMP/mnt

# The expected contents, built beside the mount.
head -c $((3 * MiB + 1234)) /dev/urandom >"$TMP/seq0"
head -c $((ZS)) /dev/urandom >"$TMP/seq1"
head -c $((ZS)) /dev/zero >"$TMP/cnv0"
head -c 70000 /dev/urandom >"$TMP/a"
head -c 4096 /dev/urandom >"$TMP/b"
dd if="$TMP/a" of="$TMP/cnv0" bs=1 seek=100000 conv=notrunc status=none
dd if="$TMP/b" of="$TMP/cnv0" bs=1 seek=$((40 * 65536 + 8192)) conv=notrunc status=none

zq_mount "$TMP/img.qcow2" "$MNT" -o commit=0
dd if="$TMP/seq0" of="$MNT/seq/0" bs=1M oflag=append conv=notrunc status=none
dd if="$TMP/seq1" of="$MNT/seq/1" bs=1M oflag=direct,append conv=notrunc status=none
dd if="$TMP/a" of="$MNT/cnv/0" bs=70000 seek=100000 oflag=seek_bytes conv=notrunc status=none
# Last allocation: 4 KiB into a fresh cluster, the host file ends inside it.
dd if="$TMP/b" of="$MNT/cnv/0" bs=4096 seek=$((40 * 65536 + 8192)) oflag=seek_bytes conv=notrunc status=none
size=$(stat -c %s "$TMP/img.qcow2")
[ $((size % 65536)) -ne 0 ] || fail "precondition: the image should end inside a cluster (size $size)"

# check_reads WHAT: every way of reading gives the expected bytes.
check_reads() {
    local what=$1 f bs
    for f in seq0 seq1 cnv0; do
        local file=$MNT/${f:0:3}/${f:3}
        cmp "$TMP/$f" "$file" || fail "$what: cat-style read of $f"
        for bs in 4K 64K 512K 1M; do
            dd if="$file" bs=$bs iflag=direct status=none | cmp - "$TMP/$f" ||
                fail "$what: O_DIRECT reads of $bs from $f"
        done
    done
    # Unaligned offsets and lengths, O_DIRECT-free (through the page cache)
    # and around the cluster the host file ends in.
    python3 - "$MNT" "$TMP" <<'EOF' || fail "$what: unaligned reads"
import os, random, sys
mnt, tmp = sys.argv[1], sys.argv[2]
random.seed(7)
for name, path in (("seq0", "seq/0"), ("cnv0", "cnv/0")):
    want = open(os.path.join(tmp, name), "rb").read()
    fd = os.open(os.path.join(mnt, path), os.O_RDONLY)
    spots = [(40 * 65536, 65536), (40 * 65536 + 8192 + 4000, 200), (99999, 70002)]
    spots += [(random.randrange(len(want)), random.randrange(1, 3 << 20)) for _ in range(40)]
    for off, n in spots:
        got = os.pread(fd, n, off)
        if got != want[off:off + n]:
            sys.exit(f"{path}: {n} bytes at {off} differ")
    os.close(fd)
EOF
}

# Splicing is on wherever a pipe can hold a 512 KiB reply (Linux's default
# pipe-max-size is 1 MiB): the reads below then go the spliced way.
if [ "$(cat /proc/sys/fs/pipe-max-size)" -ge $MiB ]; then
    expect_eq "$(zqfs_field "$MNT" splice_reads)" true "splice_reads"
fi
max_read=$(zqfs_field "$MNT" mount.max_read)
case $max_read in
    0 | 524288) ;;  # 0: 1 MiB replies fit the pipe (raised limit or CAP_SYS_RESOURCE)
    *) fail "max_read chosen: $max_read" ;;
esac
check_reads spliced
zq_umount "$MNT"
pass "spliced reads return what was written (max_read $max_read)"
# A remount sees the write pointer rounded up to 512 bytes (README: the
# unwritten tail of that sector reads as zeros).
truncate -s $(( ($(stat -c %s "$TMP/seq0") + 511) / 512 * 512 )) "$TMP/seq0"

zq_mount "$TMP/img.qcow2" "$MNT" -o nosplice,commit=0
expect_eq "$(zqfs_field "$MNT" splice_reads)" false "nosplice"
expect_eq "$(zqfs_field "$MNT" mount.max_read)" 0 "nosplice keeps libfuse's read size"
check_reads copied
zq_umount "$MNT"
pass "copied reads (nosplice) return the same"

# A small max_read: replies under two pages go libfuse's copying way,
# larger ones are spliced; both must be right.
zq_mount "$TMP/img.qcow2" "$MNT" -o max_read=8192,commit=0
check_reads "max_read=8192"
zq_umount "$MNT"
pass "spliced reads with max_read=8192"

# Reading while another zone is reset and rewritten: the reader of seq/1
# never sees anything but its data.
zq_mount "$TMP/img.qcow2" "$MNT"
( for i in $(seq 30); do
      truncate -s 0 "$MNT/seq/2"
      head -c $((2 * MiB)) /dev/urandom | dd of="$MNT/seq/2" bs=1M oflag=direct,append conv=notrunc status=none
  done ) &
writer=$!
for i in $(seq 30); do
    dd if="$MNT/seq/1" bs=1M iflag=direct status=none | cmp - "$TMP/seq1" || { kill $writer; fail "read during resets, round $i"; }
done
wait $writer
zq_umount "$MNT"
"$ZQFS_IMG" check "$TMP/img.qcow2" >/dev/null || fail "check after the read tests"
pass "spliced reads stay right while other zones are reset"
