#!/usr/bin/env bash
# Images that qemu-img and qemu-io write read back byte-identical through our
# engine (zqfs-img convert -O raw vs qemu-img convert -O raw): every cluster
# size class x refcount width, compressed clusters, extended L2 with
# subcluster writes, preallocation modes and a v2 (compat=0.10) image.
. "$(dirname "$0")/lib.sh"

qio() {  # qio IMAGE COMMANDS...: run qemu-io commands on a qcow2 image
    local img=$1
    shift
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

# A workload with full and partial clusters, zero writes, discards and
# overwrites, scaled to the cluster size.
workload() {
    local img=$1 cs=$2 size=$3
    qio "$img" \
        "write -P 0xa1 0 $((cs * 3))" \
        "write -P 0xb2 $((cs + 100)) 3000" \
        "write -P 0xc3 $((cs * 5 + cs / 2)) $((cs * 2))" \
        "write -z $((cs * 2)) $((cs / 2))" \
        "write -z $((cs * 10)) $((cs * 3))" \
        "write -P 0xd4 $((cs * 11)) 4096" \
        "discard $((cs * 5)) $((cs * 2))" \
        "write -P 0xe5 $((size - 5000)) 5000" \
        "write -P 0xf6 $((size / 2 + 7)) $((cs + 9))" \
        "discard $((size / 2)) $((cs * 4))" \
        "write -c -P 0x17 $((cs * 20)) $cs"
}

for cs in 512 4096 65536 2097152; do
    size=$((4 << 20))
    [ "$cs" -eq 2097152 ] && size=$((64 << 20))
    for rb in 1 16 64; do
        img="$TMP/m-$cs-$rb.qcow2"
        qemu-img create -q -f qcow2 -o "cluster_size=$cs,refcount_bits=$rb" "$img" "$size"
        workload "$img" "$cs" "$size"
        qemu-img check -q "$img" || fail "qemu-img itself finds $img inconsistent"
        expect_same_raw "$img" "cluster_size=$cs refcount_bits=$rb"
        # Our checker agrees with qemu-img's: the image is clean.
        expect_status 0 "$ZQFS_IMG" check "$img"
        expect_status 0 "$ZQFS_IMG" info --output=json "$img"
        python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
assert (j["cluster-size"], j["format-specific"]["data"]["refcount-bits"], j["virtual-size"]) == \
    (int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])), j' "$TMP/out" "$cs" "$rb" "$size" ||
            fail "info --output=json of $img"
        pass "cluster_size=$cs refcount_bits=$rb"
    done
done

# Compressed clusters as qemu-img convert -c writes them (deflate streams of
# varying lengths, some crossing host sector boundaries).
python3 - "$TMP/src.raw" <<'PY'
import random, sys
random.seed(7)
out = bytearray(6 << 20)
for i in range(0, len(out), 65536):
    kind = (i // 65536) % 4
    if kind == 0:   # compressible text
        chunk = (b"zqfs compressed cluster %d " % i) * 4000
    elif kind == 1:  # incompressible
        chunk = random.randbytes(65536)
    elif kind == 2:  # zeros
        chunk = bytes(65536)
    else:            # mixed
        chunk = random.randbytes(20000) + bytes(45536)
    out[i:i + 65536] = chunk[:65536]
open(sys.argv[1], "wb").write(out)
PY
for cs in 4096 65536; do
    qemu-img convert -q -c -f raw -O qcow2 -o "cluster_size=$cs" "$TMP/src.raw" "$TMP/c-$cs.qcow2"
    expect_same_raw "$TMP/c-$cs.qcow2" "convert -c cluster_size=$cs"
    cmp "$TMP/src.raw" "$TMP/zqfs.raw" || fail "compressed cluster_size=$cs: data differs from the source"
    expect_status 0 "$ZQFS_IMG" check "$TMP/c-$cs.qcow2"
    pass "compressed clusters (convert -c, cluster_size=$cs)"
done

# Extended L2: 64K clusters of 32 subclusters (2 KiB each).
img="$TMP/ext.qcow2"
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k "$img" 4M
qio "$img" \
    "write -P 0x21 2048 2048" \
    "write -P 0x22 $((65536 + 6144)) 4096" \
    "write -P 0x23 $((65536 * 3)) 65536" \
    "write -z $((65536 * 3 + 4096)) 2048" \
    "discard $((65536 * 3 + 16384)) 8192" \
    "write -P 0x24 $((65536 * 5 + 100)) 300" \
    "write -z $((65536 * 7)) 65536"
expect_same_raw "$img" "extended_l2"
expect_status 0 "$ZQFS_IMG" check "$img"
expect_status 0 "$ZQFS_IMG" info "$img"
expect_contains "$TMP/out" "extended l2: true"
pass "extended L2 with subcluster writes"

for prealloc in metadata falloc full; do
    img="$TMP/p-$prealloc.qcow2"
    qemu-img create -q -f qcow2 -o "preallocation=$prealloc" "$img" 4M
    qio "$img" "write -P 0x31 65536 70000" "write -z 1M 65536" "discard 2M 131072"
    expect_same_raw "$img" "preallocation=$prealloc"
    expect_status 0 "$ZQFS_IMG" check "$img"
    pass "preallocation=$prealloc"
done

img="$TMP/v2.qcow2"
qemu-img create -q -f qcow2 -o compat=0.10 "$img" 4M
qio "$img" "write -P 0x41 0 100000" "write -P 0x42 3M 4096" "write -z 8192 4096"
expect_same_raw "$img" "compat=0.10"
expect_status 0 "$ZQFS_IMG" check "$img"
expect_status 0 "$ZQFS_IMG" info "$img"
expect_contains "$TMP/out" "compat: 0.10"
pass "v2 image (compat=0.10)"

# An empty image reads as zeros, and the raw output is sparse.
img="$TMP/empty.qcow2"
qemu-img create -q -f qcow2 "$img" 64M
expect_same_raw "$img" "empty image"
blocks=$(stat -c %b "$TMP/zqfs.raw")
[ "$blocks" -lt 128 ] || fail "raw output of an empty image is not sparse ($blocks blocks)"
pass "empty image converts to a sparse raw file"

# zqfs-img check agrees with qemu-img check on a leak (exit 3) and on a
# refcount that is too low (corruption, exit 2), and -r repairs both.
img="$TMP/leak.qcow2"
qemu-img create -q -f qcow2 "$img" 16M
qio "$img" "write -P 0x51 0 200000"
spare=$((($(stat -c %s "$img") + 65535) / 65536))
truncate -s $(((spare + 1) * 65536)) "$img"
set_refcount16 "$img" "$spare" 1
expect_status 3 qemu-img check "$img"
expect_status 3 "$ZQFS_IMG" check "$img"
expect_contains "$TMP/out" "1 leaked clusters were found on the image."
expect_status 0 "$ZQFS_IMG" check -r leaks "$img"
expect_status 0 qemu-img check "$img"
pass "check finds the leak qemu-img finds; -r leaks repairs it"

img="$TMP/corrupt.qcow2"
qemu-img create -q -f qcow2 "$img" 16M
qio "$img" "write -P 0x52 0 200000"
data_offset=$(qemu-img map --output=json "$img" | python3 -c 'import json,sys
print(next(e["offset"] for e in json.load(sys.stdin) if e["data"]))')
set_refcount16 "$img" $((data_offset / 65536)) 0
expect_status 2 qemu-img check "$img"
expect_status 2 "$ZQFS_IMG" check "$img"
expect_contains "$TMP/out" "errors were found on the image."
expect_status 0 "$ZQFS_IMG" check -r all "$img"
expect_status 0 qemu-img check "$img"
expect_same_raw "$img" "repaired image"
pass "check finds the refcount corruption qemu-img finds; -r all repairs it"
