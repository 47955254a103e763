#!/usr/bin/env bash
# SPEC section 5, through the real daemon: SIGKILL during appends (with fio
# load alongside) and during resets; after a remount every fsynced byte is
# intact, write pointers cover only written data, and the image has no
# corruption (ours and qemu-img's check). Also SIGKILL of zqfs-img while it
# writes, and the commit= interval bounding what an unflushed crash loses.
. "$(dirname "$0")/fuse_common.bash"
PAT="python3 $(dirname "$0")/patterns.py"

daemon_pid() { pgrep -f -- "zqfs .* $1( |$)" | head -1; }

# kill_daemon MNT: SIGKILL the daemon, wait for it, drop the dead mount.
kill_daemon() {
    local pid
    pid=$(daemon_pid "$1")
    [ -n "$pid" ] || fail "no daemon for $1"
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
}

expect_clean_image() {  # no corruption in ours or qemu-img's check (leaks allowed)
    local rc=0
    "$ZQFS_IMG" check "$1" >"$TMP/check.out" 2>&1 || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 3 ] || { cat "$TMP/check.out" >&2; fail "zqfs-img check exit $rc"; }
    cp "$1" "$TMP/masked.qcow2"
    python3 - "$TMP/masked.qcow2" <<'PY'
import sys
f = open(sys.argv[1], "r+b"); f.seek(72); v = int.from_bytes(f.read(8), "big") & ~(1 << 5); f.seek(72); f.write(v.to_bytes(8, "big"))
PY
    rc=0
    qemu-img check "$TMP/masked.qcow2" >"$TMP/qcheck.out" 2>&1 || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 3 ] || { cat "$TMP/qcheck.out" >&2; fail "qemu-img check exit $rc"; }
}

img=$TMP/k.qcow2
mnt=$TMP/mnt
new_image k.qcow2 size=256M zone.size=16M zone.max_open_zones=12 zone.max_active_zones=12

# --- SIGKILL during appends, fio load alongside ---------------------------
zq_mount "$img" "$mnt"
for z in 0 1 2 3; do
    (
        for i in $(seq 0 15); do
            $PAT chunk $z 0 $i | dd of="$mnt/seq/$z" bs=1M iflag=fullblock oflag=append conv=notrunc,fsync status=none 2>/dev/null || exit 0
            echo $i >>"$TMP/progress.$z"
        done
    ) &
done
fio --name=load --directory="$mnt/seq" --filename=4:5:6:7 --rw=write --bs=1M --size=64M --direct=1 \
    --ioengine=psync --numjobs=1 >/dev/null 2>&1 &
sleep 1.5
kill_daemon "$mnt"
wait || true
expect_clean_image "$img"
zq_mount "$img" "$mnt"
for z in 0 1 2 3; do
    synced=0
    [ -f "$TMP/progress.$z" ] && synced=$(wc -l <"$TMP/progress.$z")
    whole=$($PAT verify "$mnt/seq/$z" $z 0) || fail "zone $z holds data that was never written there"
    [ "$whole" -ge "$synced" ] || fail "zone $z lost fsynced data: $whole MiB present, $synced MiB fsynced"
    echo "   zone $z: $synced MiB fsynced before the kill, $whole MiB present after"
    total_synced=$((${total_synced:-0} + synced))
    cond=$(getfattr -n user.zone --only-values "$mnt/seq/$z" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["cond"])')
    if [ "$whole" -gt 0 ] && [ "$whole" -lt 16 ]; then expect_eq "$cond" closed "zone $z after remount"; fi
done
[ "${total_synced:-0}" -gt 0 ] || fail "nothing was fsynced before the kill: the test proved nothing"
pass "SIGKILL during appends: fsynced data intact, image clean"

# --- SIGKILL during resets -------------------------------------------------
for z in 8 9 10 11; do
    (
        for g in $(seq 1 40); do
            truncate -s 0 "$mnt/seq/$z" 2>/dev/null || exit 0
            echo "$g reset" >>"$TMP/resets.$z"
            for i in 0 1; do
                $PAT chunk $z $g $i | dd of="$mnt/seq/$z" bs=1M iflag=fullblock oflag=append conv=notrunc,fsync status=none 2>/dev/null || exit 0
                echo "$g $i" >>"$TMP/resets.$z"
            done
        done
    ) &
done
sleep 1.5
kill_daemon "$mnt"
wait || true
expect_clean_image "$img"
zq_mount "$img" "$mnt"
for z in 8 9 10 11; do
    last=$(tail -1 "$TMP/resets.$z")
    echo "   zone $z: last step before the kill: generation ${last}"
    g=${last%% *}
    what=${last#* }
    # The zone holds generation g (with at least what was fsynced), or, if a
    # reset was under way, generation g+1 (or nothing): never older data.
    if whole=$($PAT verify "$mnt/seq/$z" $z "$g" 2>/dev/null); then
        if [ "$what" != reset ]; then
            size=$(stat -c %s "$mnt/seq/$z")
            [ "$whole" -ge $((what + 1)) ] || [ "$size" -eq 0 ] ||
                fail "zone $z lost fsynced chunk $what of generation $g"
        fi
    else
        $PAT verify "$mnt/seq/$z" $z $((g + 1)) >/dev/null || fail "zone $z holds stale data after a reset"
    fi
done
zq_umount "$mnt"
expect_clean_image "$img"
pass "SIGKILL during resets: zones hold one generation, image clean"

# --- SIGKILL of zqfs-img while it writes ------------------------------------
for n in $(seq 1 15); do
    z=$((12 + n % 4))
    "$ZQFS_IMG" zone finish "$img" $z >/dev/null 2>&1 &
    pid=$!
    sleep 0.0$((RANDOM % 10))
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    "$ZQFS_IMG" zone reset "$img" $z >/dev/null 2>&1 &
    pid=$!
    sleep 0.0$((RANDOM % 10))
    kill -9 $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
done
expect_clean_image "$img"
"$ZQFS_IMG" info "$img" >/dev/null || fail "info after killed zqfs-img writes"
big=$TMP/big.qcow2
"$ZQFS_IMG" create -f qcow2 -o size=64G,zone.size=1M,cluster_size=4096 "$big" >/dev/null 2>&1 &
pid=$!
sleep 0.05
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
if [ -e "$big" ]; then "$ZQFS_IMG" check "$big" >/dev/null || fail "create killed midway left a half-written image"; fi
pass "SIGKILL of zqfs-img: images stay clean, create is all or nothing"

# --- commit= bounds what an unflushed crash loses ---------------------------
commit_case() {  # commit_case SECONDS WAIT ZONE -> prints the size after the crash
    zq_mount "$img" "$mnt" -o commit=$1
    exec 3>>"$mnt/seq/$3"
    head -c 8192 /dev/urandom >&3
    sleep "$2"
    kill_daemon "$mnt"
    exec 3>&- 2>/dev/null || true
    zq_mount "$img" "$mnt"
    stat -c %s "$mnt/seq/$3"
    zq_umount "$mnt"
}
size=$(commit_case 1 2.5 5)
expect_eq "$size" 8192 "commit=1: data written 2.5 s before the crash"
size=$(commit_case 600 0.5 6)
expect_eq "$size" 0 "commit=600: unflushed data 0.5 s before the crash (nothing else flushed it)"
expect_clean_image "$img"
pass "commit= interval bounds the loss of unflushed writes"
