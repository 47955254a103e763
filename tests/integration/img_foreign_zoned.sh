#!/usr/bin/env bash
# A zoned image assembled outside zqfs: qemu-img creates a plain qcow2 image
# and writes data with qemu-io; a small encoder here, written from the byte
# tables of SPEC section 2, adds the zoned extension (either layout), the
# write-pointer table in a refcounted cluster and incompatible bit 5. zqfs-img
# must read that geometry and those write pointers, find the image clean, and
# read the data qemu wrote; malformed extensions are refused in one line.
. "$(dirname "$0")/lib.sh"
cd "$TMP"

MiB=$((1 << 20))
# Geometry: 256 MiB, 8 zones of 32 MiB (capacity 30 MiB), 1 conventional.
# WPs: zone 1 at +4096, zone 2 full, zone 3 at +1536, the rest empty.
zonify() {  # zonify IMAGE LAYOUT [EXT_LENGTH_OVERRIDE] [ZONED_BYTE]
    python3 - "$@" <<'PY'
import sys
path, layout = sys.argv[1], sys.argv[2]
length_override = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
zoned_byte = int(sys.argv[4]) if len(sys.argv) > 4 else 1
MiB = 1 << 20
zone_size, capacity, nr_zones, conventional = 32 * MiB, 30 * MiB, 8, 1
wps = [0, 32 * MiB + 4096, 64 * MiB + capacity, 96 * MiB + 1536] + [z * zone_size for z in range(4, 8)]
be = lambda v, n: v.to_bytes(n, "big")

f = open(path, "r+b")
data = bytearray(f.read())
cluster = 1 << int.from_bytes(data[20:24], "big")
meta = (len(data) + cluster - 1) // cluster * cluster

# Write-pointer table, one cluster.
table = bytearray(cluster)
for z, wp in enumerate(wps):
    if layout == "seed":   # little-endian, bit 59 = conventional
        raw = wp | ((1 << 59) if z < conventional else 0)
        table[8 * z:8 * z + 8] = raw.to_bytes(8, "little")
    else:                  # big-endian, bit 63 = conventional
        raw = wp | ((1 << 63) if z < conventional else 0)
        table[8 * z:8 * z + 8] = raw.to_bytes(8, "big")

if layout == "seed":
    ext = (bytes([zoned_byte, 0, 0, 0]) + be(zone_size, 8) + be(capacity, 8) + be(conventional, 4) + be(nr_zones, 4)
           + be(5, 4) + be(4, 4) + be(8192, 4) + be(nr_zones * 8, 8) + be(meta, 8))
    assert len(ext) == 56
else:
    ext = (bytes([zoned_byte, 0, 0, 0]) + be(nr_zones, 4) + be(zone_size, 8) + be(capacity, 8) + be(meta, 8)
           + be(conventional, 4) + be(5, 4) + be(4, 4))
    assert len(ext) == 44
declared = length_override if length_override is not None else len(ext)
ext_bytes = be(0x007a6264, 4) + be(declared, 4) + ext + bytes((-len(ext)) % 8)

# Insert the extension before the end marker, within the first cluster
# (whose tail is zero padding).
off = int.from_bytes(data[100:104], "big")
while int.from_bytes(data[off:off + 4], "big") != 0:
    off += 8 + (int.from_bytes(data[off + 4:off + 8], "big") + 7) // 8 * 8
head = data[:off] + ext_bytes + data[off:cluster]
assert not any(head[cluster:]), "header does not fit in the first cluster"
data = head[:cluster] + data[cluster:]

# Refcount 1 for the table's cluster (refcount_bits 16, first refcount block).
assert int.from_bytes(data[96:100], "big") == 4
reftable = int.from_bytes(data[48:56], "big")
block = int.from_bytes(data[reftable:reftable + 8], "big")
idx = meta // cluster
assert idx < cluster // 2
data[block + 2 * idx:block + 2 * idx + 2] = be(1, 2)

# Incompatible bit 5.
incompat = int.from_bytes(data[72:80], "big") | (1 << 5)
data[72:80] = be(incompat, 8)
data += bytes(meta - len(data)) + table
f.seek(0)
f.write(data)
f.truncate(len(data))
PY
}

for layout in seed latest; do
    img=$layout.qcow2
    qemu-img create -q -f qcow2 -o cluster_size=64k,refcount_bits=16 "$img" 256M
    qemu-io -f qcow2 -c "write -P 0x5a $((32 * MiB)) 4096" -c "write -P 0x11 1000 70000" "$img" >/dev/null
    qemu-img convert -O raw "$img" "$layout.qemu.raw"
    zonify "$img" "$layout"

    expect_status 0 "$ZQFS_IMG" info "$img"
    expect_contains "$TMP/out" "layout: $layout"
    expect_contains "$TMP/out" "zones: 8 (1 conventional, 7 sequential)"
    expect_contains "$TMP/out" "zone size: 32 MiB (33554432 bytes)"
    expect_contains "$TMP/out" "zone capacity: 30 MiB (31457280 bytes)"
    expect_contains "$TMP/out" "max open zones: 4"
    expect_contains "$TMP/out" "max active zones: 5"
    [ "$layout" = seed ] && expect_contains "$TMP/out" "max append bytes: 8192"
    expect_status 0 "$ZQFS_IMG" report --output=blkzone "$img" 0 4
    expect_eq "$layout zone 0" "$(sed -n 1p "$TMP/out")" \
        "  start: 0x000000000, len 0x010000, cap 0x00f000, wptr 0x000000 reset:0 non-seq:0, zcond: 0(nw) [type: 1(CONVENTIONAL)]"
    expect_eq "$layout zone 1" "$(sed -n 2p "$TMP/out")" \
        "  start: 0x000010000, len 0x010000, cap 0x00f000, wptr 0x000008 reset:0 non-seq:0, zcond: 4(cl) [type: 2(SEQ_WRITE_REQUIRED)]"
    expect_eq "$layout zone 2" "$(sed -n 3p "$TMP/out")" \
        "  start: 0x000020000, len 0x010000, cap 0x00f000, wptr 0x00f000 reset:0 non-seq:0, zcond:14(fu) [type: 2(SEQ_WRITE_REQUIRED)]"
    expect_eq "$layout zone 3" "$(sed -n 4p "$TMP/out")" \
        "  start: 0x000030000, len 0x010000, cap 0x00f000, wptr 0x000003 reset:0 non-seq:0, zcond: 4(cl) [type: 2(SEQ_WRITE_REQUIRED)]"
    expect_status 0 "$ZQFS_IMG" check "$img"
    "$ZQFS_IMG" convert -O raw "$img" "$layout.zqfs.raw"
    cmp "$layout.qemu.raw" "$layout.zqfs.raw" || fail "$layout: data written by qemu-io reads differently"
    pass "$layout layout written by an independent encoder: geometry, write pointers, data, clean check"
done

qemu-img create -q -f qcow2 badlen.qcow2 256M
zonify badlen.qcow2 seed 50
expect_status 1 "$ZQFS_IMG" info badlen.qcow2
expect_one_line_error "$TMP/err" "badlen.qcow2: .*50"
qemu-img create -q -f qcow2 badmode.qcow2 256M
zonify badmode.qcow2 latest "" 2
expect_status 1 "$ZQFS_IMG" report badmode.qcow2
expect_one_line_error "$TMP/err" "badmode.qcow2: "
pass "extension of another length, zoned byte other than 1: refused in one line"
