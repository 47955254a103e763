#!/bin/bash
# The zone file system through a real mount, with everyday tools: layout,
# inode numbers, sizes, appends, truncate as reset/finish, refused namespace
# changes, statfs, xattrs, the image lock, remount persistence, and the
# image staying a valid qcow2 for qemu-img.
. "$(dirname "$0")/fuse_common.bash"

MiB=$((1 << 20))
ZS=$((4 * MiB))
new_image img.qcow2 size=32M zone.size=4M zone.conventional_zones=2 zone.max_open_zones=3
MNT=$TMP/mnt
zq_mount "$TMP/img.qcow2" "$MNT"

# --- layout and numbering ---
expect_eq "$(ls "$MNT" | tr '\n' ' ')" "cnv seq " "root listing"
expect_eq "$(ls "$MNT/cnv" | tr '\n' ' ')" "0 1 " "cnv listing"
expect_eq "$(ls "$MNT/seq" | tr '\n' ' ')" "0 1 2 3 4 5 " "seq listing"
expect_eq "$(stat -c %i "$MNT")" 8 "root inode = nr_zones"
expect_eq "$(stat -c %i "$MNT/cnv")" 9 "cnv inode = nr_zones+1"
expect_eq "$(stat -c %i "$MNT/seq")" 10 "seq inode = nr_zones+2"
expect_eq "$(stat -c %i "$MNT/cnv/0")" 0 "cnv/0 inode = zone 0"
expect_eq "$(stat -c %i "$MNT/seq/0")" 2 "seq/0 inode = zone 2"
expect_eq "$(stat -c %i "$MNT/seq/5")" 7 "seq/5 inode = zone 7"
expect_eq "$(stat -c %s "$MNT")" 2 "root size = entries"
expect_eq "$(stat -c %s "$MNT/seq")" 6 "seq dir size = entries"
expect_eq "$(stat -c %s "$MNT/cnv")" 2 "cnv dir size = entries"
expect_eq "$(stat -c '%s %b %B %o' "$MNT/seq/0")" "0 $((ZS / 512)) 512 4096" "empty seq file: size, blocks, blksize"
expect_eq "$(stat -c '%s %b' "$MNT/cnv/1")" "$ZS $((ZS / 512))" "cnv file size = capacity"
expect_eq "$(stat -c '%a %u %g' "$MNT/seq/0")" "640 $(id -u) $(id -g)" "default perm/owner"
[ ! -e "$MNT/seq/6" ] && [ ! -e "$MNT/seq/01" ] && [ ! -e "$MNT/foo" ] || fail "non-zone names must not exist"
pass "layout, inode numbers, sizes"

# --- appends ---
echo hello >> "$MNT/seq/0"
echo world >> "$MNT/seq/0"
expect_eq "$(cat "$MNT/seq/0")" "$(printf 'hello\nworld')" "echo >> appends"
expect_eq "$(stat -c %s "$MNT/seq/0")" 12 "size after echo >>"
head -c 300000 /dev/urandom > "$TMP/blob"
cat "$TMP/blob" >> "$MNT/seq/1"
cat "$TMP/blob" >> "$MNT/seq/1"
cat "$TMP/blob" "$TMP/blob" > "$TMP/blob2"
cmp "$TMP/blob2" "$MNT/seq/1" || fail "cat >> content"
dd if=/dev/urandom of="$TMP/d" bs=64k count=8 status=none
dd if="$TMP/d" of="$MNT/seq/2" bs=64k oflag=direct,append conv=notrunc status=none
dd if="$TMP/d" of="$MNT/seq/2" bs=64k oflag=direct,append conv=notrunc status=none
cat "$TMP/d" "$TMP/d" | cmp - "$MNT/seq/2" || fail "dd oflag=direct,append content"
expect_eq "$(stat -c %s "$MNT/seq/2")" $((1024 * 1024)) "size after dd appends"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "open-implicit" "written zone is implicitly open"
pass "cat >>, echo >>, dd oflag=direct,append"

# --- writes not at the write pointer, capacity ---
if dd if=/dev/zero of="$MNT/seq/2" bs=4k count=1 seek=1 conv=notrunc status=none 2>"$TMP/err"; then
    fail "write before the WP accepted"
fi
grep -q "Invalid argument" "$TMP/err" || fail "write not at WP: expected EINVAL, got $(cat "$TMP/err")"
head -c $((ZS - 4096)) /dev/zero >> "$MNT/seq/3"
# dd reports the short write crossing the capacity, then EFBIG.
if head -c 8192 /dev/urandom | dd of="$MNT/seq/3" bs=8192 oflag=append conv=notrunc status=none 2>"$TMP/err"; then :; fi
expect_eq "$(stat -c %s "$MNT/seq/3")" $ZS "write crossing capacity is short"
if echo x >> "$MNT/seq/3" 2>"$TMP/err"; then fail "write past capacity accepted"; fi
grep -q "File too large" "$TMP/err" || fail "past capacity: expected EFBIG, got $(cat "$TMP/err")"
expect_eq "$(zone_field "$MNT/seq/3" cond)" "full" "zone at capacity is full"
pass "EINVAL off the WP, short write at capacity, EFBIG past it"

# --- truncate ---
truncate -s 0 "$MNT/seq/0"
expect_eq "$(stat -c %s "$MNT/seq/0")" 0 "truncate 0 resets"
expect_eq "$(zone_field "$MNT/seq/0" cond)" "empty" "reset zone is empty"
expect_eq "$(head -c 12 "$MNT/seq/0" | wc -c)" 0 "reset file reads empty"
truncate -s $ZS "$MNT/seq/0"
expect_eq "$(zone_field "$MNT/seq/0" cond)" "full" "truncate to capacity finishes"
expect_eq "$(stat -c %s "$MNT/seq/0")" $ZS "finished size"
expect_fail_with "Operation not permitted" truncate -s 4096 "$MNT/seq/0"
truncate -s $ZS "$MNT/seq/0"  # current size: no-op
expect_fail_with "Operation not permitted" truncate -s 0 "$MNT/cnv/0"
truncate -s $ZS "$MNT/cnv/0"  # current size: no-op
: > "$MNT/seq/1"  # O_TRUNC
expect_eq "$(stat -c %s "$MNT/seq/1")" 0 "O_TRUNC resets"
expect_eq "$(zone_field "$MNT/seq/1" cond)" "empty" "O_TRUNC zone empty"
echo again >> "$MNT/seq/1"
expect_eq "$(cat "$MNT/seq/1")" "again" "append after reset starts at 0"
pass "truncate 0/capacity/other, O_TRUNC"

# --- refused namespace changes ---
expect_fail_with "Operation not permitted" rm "$MNT/seq/4"
expect_fail_with "Operation not permitted" mv "$MNT/seq/4" "$MNT/seq/9"
expect_fail_with "Operation not permitted" touch "$MNT/seq/new"
expect_fail_with "Operation not permitted" mkdir "$MNT/dir"
expect_fail_with "Operation not permitted" ln "$MNT/seq/4" "$MNT/seq/7"
expect_fail_with "Operation not permitted" ln -s x "$MNT/seq/7"
expect_fail_with "Operation not permitted" rmdir "$MNT/seq"
touch "$MNT/seq/4"  # existing file: only times change
chmod 600 "$MNT/seq/4"
expect_eq "$(stat -c %a "$MNT/seq/4")" 600 "chmod kept in memory"
pass "rm/mv/touch/mkdir/ln refused; chmod works"

# --- statfs ---
# blocks of 4 KiB: total = 8 zones * 4 MiB; used = 2 cnv zones + written seq bytes.
written=0
for f in "$MNT"/seq/*; do written=$((written + ($(stat -c %s "$f") + 4095) / 4096)); done
read -r bsize total free files < <(stat -f -c '%S %b %f %c' "$MNT")
expect_eq "$bsize" 4096 "statfs block size"
expect_eq "$total" $((8 * ZS / 4096)) "statfs total blocks"
expect_eq "$free" $((total - 2 * ZS / 4096 - written)) "statfs free blocks"
expect_eq "$files" $((8 + 3)) "statfs files = zone files + dirs"
pass "statfs figures"

# --- xattrs ---
getfattr --absolute-names -d -m - "$MNT/seq/2" > "$TMP/attrs"
grep -q '^user.zone=' "$TMP/attrs" && grep -q '^user.zone.cmd=' "$TMP/attrs" || fail "getfattr --absolute-names -d -m - lists user.zone and user.zone.cmd"
j=$(getfattr --absolute-names -n user.zone --only-values "$MNT/seq/2")
expect_eq "$(json_get zone type cond cond_code start len capacity wp size <<<"$j")" \
    "4 seq open-implicit 2 $((4 * ZS)) $ZS $ZS $((4 * ZS + MiB)) $MiB" "user.zone JSON"
expect_eq "$(zone_field "$MNT/cnv/1" type)" "cnv" "conventional zone type"
z=$(getfattr --absolute-names -n user.zqfs --only-values "$MNT")
expect_eq "$(json_get nr_zones conventional_zones zone_size max_open_zones mount.perm mount.errors <<<"$z")" \
    "8 2 $ZS 3 0640 remount-ro" "user.zqfs JSON"
[ "$(json_get host_bytes_used <<<"$z")" -gt 0 ] || fail "user.zqfs host_bytes_used"
setfattr -n user.zone.cmd -v finish "$MNT/seq/2"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "full" "user.zone.cmd finish"
setfattr -n user.zone.cmd -v reset "$MNT/seq/2"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "empty" "user.zone.cmd reset"
expect_eq "$(stat -c %s "$MNT/seq/2")" 0 "size after reset command"
setfattr -n user.zone.cmd -v open "$MNT/seq/2"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "open-explicit" "user.zone.cmd open"
setfattr -n user.zone.cmd -v close "$MNT/seq/2"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "empty" "close of an empty explicitly open zone"
expect_fail_with "Invalid argument" setfattr -n user.zone.cmd -v bogus "$MNT/seq/2"
expect_fail_with "No such attribute" getfattr --absolute-names -n user.nothing "$MNT/seq/2"
pass "getfattr/setfattr JSON and zone commands"

# --- the image is locked while mounted; unknown options fail cleanly ---
mkdir -p "$TMP/mnt2"
expect_fail_with "in use" "$ZQFS" "$TMP/img.qcow2" "$TMP/mnt2"
mountpoint -q "$TMP/mnt2" && fail "second mount happened"
expect_fail_with "unknown mount option 'bogus'" "$ZQFS" "$TMP/img.qcow2" "$TMP/mnt2" -o bogus
expect_fail_with "errors=" "$ZQFS" "$TMP/img.qcow2" "$TMP/mnt2" -o errors=explode
expect_fail_with "perm=" "$ZQFS" "$TMP/img.qcow2" "$TMP/mnt2" -o perm=999
[ "$("$ZQFS" "$TMP/nonexistent.qcow2" "$TMP/mnt2" 2>&1 | wc -l)" == 1 ] || fail "missing image: one-line error"
expect_fail_with "not a directory" "$ZQFS" "$TMP/img.qcow2" "$TMP/img.qcow2"
expect_fail_with "mount option 'max_read=abc'" "$ZQFS" "$TMP/img.qcow2" "$TMP/mnt2" -o max_read=abc
[ "$("$ZQFS" "$TMP/img.qcow2" "$TMP/mnt2" -o max_read=abc 2>&1 | wc -l)" == 1 ] || fail "option error: one line"
pass "image lock, option errors"

# --- remount: data and write pointers persist; open zones come back closed ---
dd if=/dev/urandom of="$TMP/p" bs=4096 count=5 status=none
cat "$TMP/p" >> "$MNT/seq/5"
dd if=/dev/urandom of="$TMP/c" bs=4096 count=3 status=none
dd if="$TMP/c" of="$MNT/cnv/1" bs=4096 seek=7 conv=notrunc status=none
sha_seq1=$(sha256sum < "$MNT/seq/1")
zq_umount "$MNT"
zq_mount "$TMP/img.qcow2" "$MNT"
cmp "$TMP/p" "$MNT/seq/5" || fail "seq data after remount"
expect_eq "$(stat -c %s "$MNT/seq/5")" $((5 * 4096)) "WP after remount"
expect_eq "$(zone_field "$MNT/seq/5" cond)" "closed" "partly written zone comes back closed"
expect_eq "$(zone_field "$MNT/seq/3" cond)" "full" "full zone stays full"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "empty" "empty zone stays empty"
dd if="$MNT/cnv/1" bs=4096 skip=7 count=3 status=none | cmp - "$TMP/c" || fail "cnv data after remount"
# The 6-byte file's WP is persisted rounded up to 512 bytes (zero tail).
expect_eq "$(stat -c %s "$MNT/seq/1")" 512 "unaligned WP persists rounded up to 512"
expect_eq "$(head -c 6 "$MNT/seq/1")" "again" "unaligned data persists"
pass "remount persistence"

# --- qemu-img sees a valid qcow2 with the same bytes ---
for f in "$MNT"/cnv/* "$MNT"/seq/*; do cat "$f"; done > /dev/null  # reads work
zq_umount "$MNT"
qemu_export_raw "$TMP/img.qcow2" "$TMP/raw"
zq_mount "$TMP/img.qcow2" "$MNT" -o ro,max_read=131072
for i in 0 1; do
    dd if="$TMP/raw" bs=$ZS skip=$i count=1 status=none | cmp - "$MNT/cnv/$i" || fail "raw vs cnv/$i"
done
for i in 0 1 2 3 4 5; do
    size=$(stat -c %s "$MNT/seq/$i")
    dd if="$TMP/raw" iflag=skip_bytes,count_bytes skip=$(((i + 2) * ZS)) count="$size" status=none |
        cmp - "$MNT/seq/$i" || fail "raw vs seq/$i"
done
expect_fail_with "Read-only file system" bash -c "echo x >> '$MNT/seq/5'"
pass "qemu-img check clean, convert matches the mount; ro (and max_read=) mount refuses writes"
