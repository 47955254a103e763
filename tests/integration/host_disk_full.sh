#!/usr/bin/env bash
# Host disk full, for real: the image lives on a size-limited tmpfs. Writes
# through the mount fail with ENOSPC, fsynced data stays intact, the image
# stays consistent, and writing resumes once space is freed.
. "$(dirname "$0")/fuse_common.bash"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to mount a tmpfs"; exit 77; }

small=$TMP/small
mkdir -p "$small"
mount -t tmpfs -o size=40M tmpfs "$small" || fail "cannot mount a tmpfs"
zq_at_teardown 'umount "$small" 2>/dev/null || umount -l "$small" 2>/dev/null'

img=$small/full.qcow2
"$ZQFS_IMG" create -f qcow2 -o size=96M,zone.size=8M "$img" >/dev/null
head -c 10M /dev/zero >"$small/filler"  # freed later to make room again

mnt=$TMP/mnt
zq_mount "$img" "$mnt"
head -c 8M /dev/urandom >"$TMP/first"
dd if="$TMP/first" of="$mnt/seq/0" bs=1M oflag=append conv=notrunc,fsync status=none || fail "first zone"
want=$(sha256sum <"$TMP/first")

# Fill the host: appends to further zones until the tmpfs is full.
err=$TMP/dd.err
rc=0
for z in 1 2 3 4 5 6 7 8 9 10; do
    head -c 8M /dev/urandom | dd of="$mnt/seq/$z" bs=1M iflag=fullblock oflag=append,direct conv=notrunc,fsync \
        status=none 2>"$err" || { rc=1; break; }
done
[ $rc -eq 1 ] || fail "the host never filled up"
grep -q "No space left on device" "$err" || { cat "$err" >&2; fail "expected ENOSPC, got: $(cat "$err")"; }
got=$(sha256sum <"$mnt/seq/0")
expect_eq "$got" "$want" "fsynced zone while the host is full"
size_full=$(stat -c %s "$mnt/seq/$z")
zq_umount "$mnt"

rc=0
"$ZQFS_IMG" check "$img" >"$TMP/check" 2>&1 || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ] || { cat "$TMP/check" >&2; fail "image corrupt after ENOSPC (check exit $rc)"; }
pass "ENOSPC reaches the writer; fsynced data intact; image consistent"

# Space comes back: the same zone takes more data.
rm -f "$small/filler"
zq_mount "$img" "$mnt"
got=$(sha256sum <"$mnt/seq/0")
expect_eq "$got" "$want" "fsynced zone after remount"
size=$(stat -c %s "$mnt/seq/$z")
head -c 1M /dev/urandom | dd of="$mnt/seq/$z" bs=1M oflag=append,direct conv=notrunc,fsync status=none ||
    fail "writing did not resume after space was freed"
expect_eq "$(stat -c %s "$mnt/seq/$z")" $((size + 1048576)) "zone $z after one more MiB"
zq_umount "$mnt"
rc=0
"$ZQFS_IMG" check "$img" >"$TMP/check" 2>&1 || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ] || { cat "$TMP/check" >&2; fail "check exit $rc after resuming"; }
echo "   zone $z held $size_full bytes when the host filled, $size after remount"
pass "writing resumes once the host has space again"
