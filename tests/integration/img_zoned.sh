#!/usr/bin/env bash
# zqfs-img on zoned images: create (the seed's exact command and the latest
# layout), info, report in all three formats, offline zone management, check
# exit codes (clean, corrupt write pointer, leak), the image lock, and
# one-line errors for bad options.
. "$(dirname "$0")/lib.sh"
cd "$TMP"

json() {  # json FILE PYTHON_EXPR: evaluates EXPR with the parsed JSON as j
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# --- create: the seed's command, unchanged -------------------------------
expect_status 0 "$ZQFS_IMG" create -f qcow2 zbc.qcow2 -o size=768M -o zone.size=64M -o zone.capacity=64M \
    -o zone.conventional_zones=0 -o zone.max_append_bytes=4096 -o zone.max_open_zones=6 \
    -o zone.max_active_zones=8 -o zone.mode=host-managed
[ ! -s "$TMP/err" ] || fail "seed create printed to stderr: $(cat "$TMP/err")"
expect_contains "$TMP/out" "Formatting 'zbc.qcow2', fmt=qcow2"
pass "create accepts the seed's command as written"

# --- info -----------------------------------------------------------------
expect_status 0 "$ZQFS_IMG" info zbc.qcow2
for line in "virtual size: 768 MiB (805306368 bytes)" "cluster_size: 65536" "layout: seed (56-byte extension)" \
    "zones: 12 (0 conventional, 12 sequential)" "zone size: 64 MiB (67108864 bytes)" \
    "zone capacity: 64 MiB (67108864 bytes)" "max open zones: 6" "max active zones: 8" "max append bytes: 4096" \
    "zone conditions: empty 12" "zoned format (bit 5)"; do
    expect_contains "$TMP/out" "$line"
done
expect_status 0 "$ZQFS_IMG" info --output=json zbc.qcow2
cp "$TMP/out" info.json
expect_eq "json virtual-size" "$(json info.json 'j["virtual-size"]')" 805306368
expect_eq "json zoned nr_zones" "$(json info.json 'j["zoned"]["nr_zones"]')" 12
expect_eq "json zoned layout" "$(json info.json 'j["zoned"]["layout"]')" seed
expect_eq "json zoned max_append_bytes" "$(json info.json 'j["zoned"]["max_append_bytes"]')" 4096
expect_eq "json bit 5" "$(json info.json '[f["name"] for f in j["features"]["incompatible"] if f["bit"]==5]')" \
    "['zoned format']"
expect_eq "json extension" "$(json info.json '[e["length"] for e in j["extensions"] if e["type"]=="0x007a6264"]')" "[56]"
read -r layout meta <<<"$(zoned_meta_location zbc.qcow2)"
expect_eq "zonedmeta_offset in info" "$(json info.json 'j["zoned"]["zonedmeta_offset"]')" "$meta"
pass "info (human and json) shows geometry, limits, bit 5 and the extension"

# --- report ---------------------------------------------------------------
expect_status 0 "$ZQFS_IMG" report --output=blkzone zbc.qcow2
expect_eq "blkzone lines" "$(wc -l <"$TMP/out")" 12
expect_eq "blkzone zone 0" "$(sed -n 1p "$TMP/out")" \
    "  start: 0x000000000, len 0x020000, cap 0x020000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]"
expect_eq "blkzone zone 11" "$(sed -n 12p "$TMP/out")" \
    "  start: 0x000160000, len 0x020000, cap 0x020000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]"
expect_status 0 "$ZQFS_IMG" report --output=blkzone zbc.qcow2 3 2
expect_eq "report FIRST COUNT lines" "$(wc -l <"$TMP/out")" 2
expect_contains "$TMP/out" "  start: 0x000060000, len"
expect_status 0 "$ZQFS_IMG" report --output=blkzone zbc.qcow2 10 100
expect_eq "COUNT past the end is cut" "$(wc -l <"$TMP/out")" 2
expect_status 0 "$ZQFS_IMG" report --output=json zbc.qcow2
cp "$TMP/out" report.json
expect_eq "json report zones" "$(json report.json 'len(j["zones"])')" 12
expect_eq "json zone 7" "$(json report.json '(j["zones"][7]["zone"], j["zones"][7]["cond"], j["zones"][7]["start"])')" \
    "(7, 'empty', 469762048)"
expect_status 0 "$ZQFS_IMG" report zbc.qcow2
expect_eq "human report lines" "$(wc -l <"$TMP/out")" 13
expect_status 1 "$ZQFS_IMG" report zbc.qcow2 12
expect_one_line_error "$TMP/err" "zbc.qcow2: FIRST_ZONE 12"
pass "report: blkzone lines match util-linux, json and human, FIRST/COUNT"

# --- offline zone management ------------------------------------------------
expect_status 0 "$ZQFS_IMG" zone finish zbc.qcow2 2
expect_status 0 "$ZQFS_IMG" report --output=blkzone zbc.qcow2 2 1
expect_eq "finished zone" "$(cat "$TMP/out")" \
    "  start: 0x000040000, len 0x020000, cap 0x020000, wptr 0x020000 reset:0 non-seq:0, zcond:14(fu) [type: 2(SEQ_WRITE_REQUIRED)]"
expect_status 0 "$ZQFS_IMG" zone reset zbc.qcow2 2
expect_status 0 "$ZQFS_IMG" report --output=blkzone zbc.qcow2 2 1
expect_contains "$TMP/out" "wptr 0x000000 reset:0 non-seq:0, zcond: 1(em)"
expect_status 0 "$ZQFS_IMG" zone open zbc.qcow2 3
expect_contains "$TMP/out" "open-explicit"
expect_status 0 "$ZQFS_IMG" report --output=blkzone zbc.qcow2 3 1
expect_contains "$TMP/out" "zcond: 1(em)"
expect_status 1 "$ZQFS_IMG" zone finish zbc.qcow2 12
expect_one_line_error "$TMP/err" "zbc.qcow2: zone 12 does not exist"
expect_status 1 "$ZQFS_IMG" zone explode zbc.qcow2 1
expect_one_line_error "$TMP/err" "zone: unknown operation 'explode'"
pass "zone finish/reset persist, open is reported only, bad zone refused"

# --- check exit codes -------------------------------------------------------
expect_status 0 "$ZQFS_IMG" zone finish zbc.qcow2 4
expect_status 0 "$ZQFS_IMG" check zbc.qcow2
expect_contains "$TMP/out" "No errors were found on the image."
expect_status 0 "$ZQFS_IMG" check --output=json zbc.qcow2
cp "$TMP/out" check.json
expect_eq "json check" "$(json check.json '(j["corruptions"], j["leaks"])')" "(0, 0)"

cp zbc.qcow2 badwp.qcow2
# Zone 1's write pointer 100 bytes into the zone: not 512-aligned (seed
# entries are little-endian).
le_write badwp.qcow2 $((meta + 8)) 8 $((64 * 1024 * 1024 + 100))
expect_status 2 "$ZQFS_IMG" check badwp.qcow2
expect_status 1 "$ZQFS_IMG" info badwp.qcow2
expect_one_line_error "$TMP/err" "badwp.qcow2: "
pass "check exits 2 on a corrupt write pointer; info refuses the image"

cp zbc.qcow2 leak.qcow2
# A cluster past the image's end gets refcount 1 but no reference: a leak.
spare=$((($(stat -c %s leak.qcow2) + 65535) / 65536))
truncate -s $(((spare + 1) * 65536)) leak.qcow2
set_refcount16 leak.qcow2 "$spare" 1
expect_status 3 "$ZQFS_IMG" check leak.qcow2
expect_contains "$TMP/out" "1 leaked clusters were found on the image."
expect_status 0 "$ZQFS_IMG" check -r leaks leak.qcow2
expect_status 0 "$ZQFS_IMG" check leak.qcow2
pass "check exits 3 on a leak, -r leaks repairs it"

expect_status 1 "$ZQFS_IMG" check "$TMP/missing.qcow2"
expect_one_line_error "$TMP/err" "missing.qcow2"
echo "not an image" >junk.qcow2
expect_status 1 "$ZQFS_IMG" check junk.qcow2
pass "check exits 1 when it cannot check"

# --- the image lock -----------------------------------------------------------
# A writer holds the OFD lock (as a mount does) until told to stop.
python3 - zbc.qcow2 lock.ready <<'PY' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
open(sys.argv[2], "w").close()
time.sleep(120)
PY
holder=$!
at_exit "kill $holder 2>/dev/null"
for _ in $(seq 100); do [ -e lock.ready ] && break; sleep 0.1; done
[ -e lock.ready ] || fail "lock holder did not start"
expect_status 1 "$ZQFS_IMG" zone finish zbc.qcow2 1
expect_one_line_error "$TMP/err" "image is in use"
expect_status 1 "$ZQFS_IMG" check -r leaks zbc.qcow2
expect_contains "$TMP/err" "image is in use"
expect_status 1 "$ZQFS_IMG" create -f qcow2 zbc.qcow2 -o size=64M
expect_one_line_error "$TMP/err" "image is in use"
expect_status 0 "$ZQFS_IMG" info zbc.qcow2
expect_status 0 "$ZQFS_IMG" report --output=blkzone zbc.qcow2
expect_status 0 "$ZQFS_IMG" check zbc.qcow2
expect_status 0 "$ZQFS_IMG" convert -O raw zbc.qcow2 locked.raw
kill "$holder"
wait "$holder" 2>/dev/null || true
expect_status 0 "$ZQFS_IMG" zone finish zbc.qcow2 1
pass "writers refused with 'image is in use' while locked; readers work"

# --- convert ----------------------------------------------------------------
expect_eq "raw size" "$(stat -c %s locked.raw)" 805306368
cmp -n 805306368 locked.raw /dev/zero || fail "finished-but-unwritten zones must read as zeros"
pass "convert of a zoned image"

# --- qemu-img on the zoned image itself ---------------------------------------
# Bit 5 keeps zone-unaware qemu out, and the feature-name table names it.
expect_status 1 qemu-img info zbc.qcow2
expect_contains "$TMP/err" "Unsupported qcow2 feature(s): zoned format"
pass "qemu-img refuses the unmasked image, naming the zoned format feature"

# --- qemu-img on a masked copy -------------------------------------------------
# Zones 1 and 4 are full (finished) now. With bit 5 cleared, qemu 7.2 sees a
# plain qcow2 image whose only fault is the write-pointer cluster it does
# not know is in use.
cp zbc.qcow2 masked.qcow2
mask_zoned_bit masked.qcow2
read -r layout meta <<<"$(zoned_meta_location zbc.qcow2)"
expect_status 3 qemu-img check masked.qcow2
expect_contains "$TMP/err" "Leaked cluster $((meta / 65536)) refcount=1 reference=0"  # qemu-img prints these on stderr
expect_contains "$TMP/out" "1 leaked clusters were found on the image."
grep -q "errors were found" "$TMP/out" && fail "qemu-img finds corruption in a masked zoned image"
qemu-img convert -O raw masked.qcow2 masked.raw
cmp masked.raw locked.raw || fail "qemu-img and zqfs-img read the zoned image differently"
pass "masked copy: qemu-img check leaks only the write-pointer cluster, same raw data"

# --- latest layout, conventional zones, runt zone, clamping -------------------
expect_status 0 "$ZQFS_IMG" create latest.qcow2 100M -o zone.layout=latest,zone.size=32M \
    -o zone.conventional-zones=1 -o zone.max_open_zones=9
expect_contains "$TMP/err" "warning:"
expect_status 0 "$ZQFS_IMG" info latest.qcow2
expect_contains "$TMP/out" "layout: latest (44-byte extension)"
expect_contains "$TMP/out" "zones: 4 (1 conventional, 3 sequential)"
expect_contains "$TMP/out" "max open zones: 3"
expect_contains "$TMP/out" "max append bytes: not recorded (latest layout)"
expect_status 0 "$ZQFS_IMG" report --output=blkzone latest.qcow2
expect_eq "conventional zone line" "$(sed -n 1p "$TMP/out")" \
    "  start: 0x000000000, len 0x010000, cap 0x010000, wptr 0x000000 reset:0 non-seq:0, zcond: 0(nw) [type: 1(CONVENTIONAL)]"
expect_eq "runt last zone" "$(sed -n 4p "$TMP/out")" \
    "  start: 0x000030000, len 0x002000, cap 0x002000, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]"
read -r layout meta <<<"$(zoned_meta_location latest.qcow2)"
expect_eq "extension layout" "$layout" latest
expect_status 1 "$ZQFS_IMG" zone finish latest.qcow2 0
expect_one_line_error "$TMP/err" "latest.qcow2: zone 0"
expect_status 0 "$ZQFS_IMG" zone finish latest.qcow2 3
expect_status 0 "$ZQFS_IMG" report --output=blkzone latest.qcow2 3
expect_contains "$TMP/out" "wptr 0x002000 reset:0 non-seq:0, zcond:14(fu)"
pass "latest layout, conventional zone, runt zone, clamped limit"

# --- plain qcow2 --------------------------------------------------------------
expect_status 0 "$ZQFS_IMG" create -f qcow2 -o zone.mode=none plain.qcow2 16M
qemu-img check -q plain.qcow2 || fail "plain image fails qemu-img check"
expect_status 0 "$ZQFS_IMG" info plain.qcow2
grep -q "Zoned device" "$TMP/out" && fail "plain image described as zoned"
expect_status 1 "$ZQFS_IMG" report plain.qcow2
expect_one_line_error "$TMP/err" "plain.qcow2: not a zoned image"
expect_status 1 "$ZQFS_IMG" create -o zone.mode=none,zone.size=4M plain2.qcow2 16M
expect_one_line_error "$TMP/err" "zone.size"
pass "zone.mode=none creates a plain qcow2 image"

# --- one-line errors for bad options -------------------------------------------
expect_status 1 "$ZQFS_IMG" create -o zone.size=3M bad.qcow2 768M
expect_one_line_error "$TMP/err" "bad.qcow2: .*zone"
[ ! -e bad.qcow2 ] || fail "a refused create left a file behind"
expect_status 1 "$ZQFS_IMG" create -o zone.colour=blue bad.qcow2 768M
expect_one_line_error "$TMP/err" "zone.colour"
expect_status 1 "$ZQFS_IMG" create -x bad.qcow2 768M
expect_one_line_error "$TMP/err" "create: unknown option '-x'"
expect_status 1 "$ZQFS_IMG" create -f raw bad.qcow2 768M
expect_one_line_error "$TMP/err" "create: format 'raw'"
expect_status 1 "$ZQFS_IMG" create bad.qcow2
expect_one_line_error "$TMP/err" "bad.qcow2: .*size"
expect_status 1 "$ZQFS_IMG" report --output=xml zbc.qcow2
expect_one_line_error "$TMP/err" "report: --output must be"
expect_status 1 "$ZQFS_IMG" info --bogus zbc.qcow2
expect_one_line_error "$TMP/err" "info: unknown option '--bogus'"
expect_status 1 "$ZQFS_IMG" check -r everything zbc.qcow2
expect_one_line_error "$TMP/err" "check: -r must be leaks or all"
expect_status 1 "$ZQFS_IMG" convert -O vmdk zbc.qcow2 out.vmdk
expect_one_line_error "$TMP/err" "convert: output format 'vmdk'"
expect_status 1 "$ZQFS_IMG" frobnicate
expect_one_line_error "$TMP/err" "unknown command 'frobnicate'"
expect_status 1 "$ZQFS_IMG" info "$TMP/nonexistent.qcow2"
expect_one_line_error "$TMP/err" "nonexistent.qcow2"
pass "bad options and files give one-line errors"

# --- a million zones ------------------------------------------------------------
# The report is streamed, not built: all 1,048,576 lines in a few seconds at
# most (it takes well under one on a laptop; the bound only catches a
# per-zone blow-up, it is not a benchmark).
expect_status 0 "$ZQFS_IMG" create big.qcow2 1T -o zone.size=1M,cluster_size=64K
start=$(date +%s%N)
"$ZQFS_IMG" report --output=blkzone big.qcow2 >big.txt || fail "report of 1M zones failed"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "lines for 1M zones" "$(wc -l <big.txt)" 1048576
expect_eq "last of 1M zones" "$(tail -1 big.txt)" \
    "  start: 0x07ffff800, len 0x000800, cap 0x000800, wptr 0x000000 reset:0 non-seq:0, zcond: 1(em) [type: 2(SEQ_WRITE_REQUIRED)]"
[ "$elapsed_ms" -lt 10000 ] || fail "blkzone report of 1M zones took ${elapsed_ms} ms"
expect_status 0 "$ZQFS_IMG" info big.qcow2
expect_contains "$TMP/out" "zones: 1048576 (0 conventional, 1048576 sequential)"
pass "1,048,576 zones reported in ${elapsed_ms} ms"
