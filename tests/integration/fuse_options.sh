#!/bin/bash
# Mount options through real mounts: strict, explicit-open, aggr_cnv,
# uid/gid/perm, commit=, errors= (with debug_faults injection), and clean
# shutdown on SIGTERM/SIGINT.
. "$(dirname "$0")/fuse_common.bash"

MiB=$((1 << 20))
ZS=$((4 * MiB))
new_image img.qcow2 size=40M zone.size=4M zone.conventional_zones=3 zone.max_open_zones=2
MNT=$TMP/mnt

# --- strict: sequential writes need O_DIRECT ---
zq_mount "$TMP/img.qcow2" "$MNT" -o strict
expect_fail_with "Input/output error" bash -c "echo x >> '$MNT/seq/0'"
expect_eq "$(stat -c %s "$MNT/seq/0")" 0 "strict: buffered append wrote nothing"
dd if=/dev/urandom of="$TMP/d" bs=4096 count=2 status=none
dd if="$TMP/d" of="$MNT/seq/0" bs=4096 oflag=direct,append conv=notrunc status=none
cmp "$TMP/d" "$MNT/seq/0" || fail "strict: O_DIRECT append"
echo x | dd of="$MNT/cnv/0" conv=notrunc status=none  # conventional files stay buffered
zq_umount "$MNT"
pass "strict rejects buffered sequential writes with EIO"

# --- explicit-open: one open zone per write-open file, EBUSY past max_open ---
zq_mount "$TMP/img.qcow2" "$MNT" -o explicit-open
exec 3>>"$MNT/seq/1"
exec 4>>"$MNT/seq/2"
expect_eq "$(zone_field "$MNT/seq/1" cond)" "open-explicit" "write-open opens the zone"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "open-explicit" "write-open opens the zone (2)"
expect_fail_with "Device or resource busy" bash -c "exec 5>>'$MNT/seq/3'"
cat "$MNT/seq/3" > /dev/null  # read-only opens are not limited
exec 6>>"$MNT/seq/1"         # a second open of the same file is not a new zone
exec 6>&-
expect_eq "$(zqfs_field "$MNT" nr_wro_seq_files)" 2 "nr_wro_seq_files"
echo data >&3
exec 3>&-
exec 4>&-
expect_eq "$(zone_field "$MNT/seq/1" cond)" "closed" "last close closes a written zone"
expect_eq "$(zone_field "$MNT/seq/2" cond)" "empty" "last close of an unwritten zone: empty"
echo more >> "$MNT/seq/3"
expect_eq "$(zone_field "$MNT/seq/3" cond)" "closed" "open/write/close cycle"
zq_umount "$MNT"
pass "explicit-open and EBUSY past max_open"

# --- aggr_cnv: the conventional zones are one file ---
zq_mount "$TMP/img.qcow2" "$MNT" -o aggr_cnv
expect_eq "$(ls "$MNT/cnv" | tr '\n' ' ')" "0 " "aggr_cnv listing"
expect_eq "$(stat -c '%s %i' "$MNT/cnv/0")" "$((3 * ZS)) 0" "aggregated size and inode"
expect_eq "$(zone_field "$MNT/cnv/0" nr_zones)" 3 "aggregated zone count"
dd if=/dev/urandom of="$TMP/span" bs=4096 count=4 status=none
dd if="$TMP/span" of="$MNT/cnv/0" bs=4096 seek=$((2 * ZS / 4096 - 2)) conv=notrunc status=none
if dd if=/dev/zero of="$MNT/cnv/0" bs=4096 count=1 seek=$((3 * ZS / 4096)) conv=notrunc status=none 2>"$TMP/err"; then
    fail "write past the aggregated capacity accepted"
fi
grep -q "File too large" "$TMP/err" || fail "aggr_cnv past end: $(cat "$TMP/err")"
zq_umount "$MNT"
zq_mount "$TMP/img.qcow2" "$MNT"
{ tail -c 8192 "$MNT/cnv/1"; head -c 8192 "$MNT/cnv/2"; } | cmp - "$TMP/span" || fail "aggr_cnv write spans zones 1 and 2"
zq_umount "$MNT"
pass "aggr_cnv"

# --- uid/gid/perm (root bypasses permissions: check as other users) ---
chmod 755 "$TMP"  # other users must reach the mount point
zq_mount "$TMP/img.qcow2" "$MNT" -o uid=65534,gid=65534,perm=0604,allow_other
expect_eq "$(stat -c '%u %g %a' "$MNT/seq/4")" "65534 65534 604" "uid/gid/perm"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_other() { setpriv --reuid=4321 --regid=4321 --clear-groups "$@"; }
as_nobody bash -c "echo owner >> '$MNT/seq/4'" || fail "owner with perm 06xx cannot append"
expect_eq "$(as_other cat "$MNT/seq/4")" "owner" "others may read with o+r"
expect_fail_with "Permission denied" as_other bash -c "echo other >> '$MNT/seq/4'"
chmod 0600 "$MNT/seq/4"
expect_fail_with "Permission denied" as_other cat "$MNT/seq/4"
expect_fail_with "Operation not permitted" as_other chmod 0666 "$MNT/seq/4"
zq_umount "$MNT"
pass "uid/gid/perm with allow_other"

# --- commit= reaches the device and is reported ---
zq_mount "$TMP/img.qcow2" "$MNT" -o commit=1
expect_eq "$(zqfs_field "$MNT" mount.commit)" 1 "commit option"
zq_umount "$MNT"

# --- errors=: a host I/O error (injected) on a good zone ---
# policy file-mode-after   next-write-error    fs-read-only
check_policy() {
    local policy=$1 mode=$2 werr=$3 fsro=$4
    zq_mount "$TMP/img.qcow2" "$MNT" -o "errors=$policy,debug_faults"
    echo before >> "$MNT/seq/5"
    setfattr -n user.zone.cmd -v debug-fail-io "$MNT/seq/5"
    expect_fail_with "Input/output error" bash -c "echo x >> '$MNT/seq/5'"
    expect_eq "$(stat -c %a "$MNT/seq/5")" "$mode" "errors=$policy: file mode"
    if [ -n "$werr" ]; then
        expect_fail_with "$werr" bash -c "echo y >> '$MNT/seq/5'"
    else
        echo y >> "$MNT/seq/5" || fail "errors=$policy: file must stay writable"
    fi
    expect_eq "$(zqfs_field "$MNT" read_only)" "$fsro" "errors=$policy: fs read-only"
    if [ "$fsro" == true ]; then expect_fail_with "Read-only file system" bash -c "echo z >> '$MNT/seq/6'"; fi
    zq_umount "$MNT"
    truncate_zone 5
    pass "errors=$policy"
}
truncate_zone() {
    zq_mount "$TMP/img.qcow2" "$MNT"
    truncate -s 0 "$MNT/seq/$1"
    zq_umount "$MNT"
}
check_policy remount-ro 640 "Read-only file system" true
check_policy zone-ro 440 "Read-only file system" false
check_policy zone-offline 0 "Input/output error" false
check_policy repair 640 "" false

# A zone the device reports offline / read-only, whatever the policy.
zq_mount "$TMP/img.qcow2" "$MNT" -o errors=repair,debug_faults
echo data >> "$MNT/seq/6"
setfattr -n user.zone.cmd -v debug-offline "$MNT/seq/6"
expect_fail_with "Input/output error" bash -c "echo x >> '$MNT/seq/6'"
expect_eq "$(stat -c '%s %a' "$MNT/seq/6")" "0 0" "offline zone: size 0, no access"
expect_fail_with "Input/output error" cat "$MNT/seq/6"
expect_eq "$(zone_field "$MNT/seq/6" cond)" "offline" "zone condition offline"
setfattr -n user.zone.cmd -v debug-readonly "$MNT/seq/5"
expect_eq "$(stat -c %a "$MNT/seq/5")" 440 "read-only zone loses write bits"
expect_fail_with "Read-only file system" bash -c "echo x >> '$MNT/seq/5'"
zq_umount "$MNT"
zq_mount "$TMP/img.qcow2" "$MNT"
expect_fail_with "Invalid argument" setfattr -n user.zone.cmd -v debug-offline "$MNT/seq/6"
zq_umount "$MNT"
pass "offline and read-only zones; debug commands need debug_faults"

# --- SIGTERM and SIGINT unmount cleanly and keep acknowledged data ---
for sig in TERM INT; do
    "$ZQFS" "$TMP/img.qcow2" "$MNT" -f &
    pid=$!
    zq_track "$MNT"
    for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
    mountpoint -q "$MNT" || fail "foreground mount did not come up"
    echo "sig$sig" >> "$MNT/seq/2"
    kill -$sig $pid
    wait $pid || fail "daemon exit status after SIG$sig"
    mountpoint -q "$MNT" && fail "still mounted after SIG$sig"
done
zq_mount "$TMP/img.qcow2" "$MNT"
expect_eq "$(tr -d '\0' < "$MNT/seq/2" | tr '\n' ' ')" "sigTERM sigINT " "data written before the signals"
zq_umount "$MNT"
pass "clean shutdown on SIGTERM and SIGINT"
