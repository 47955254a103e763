#!/usr/bin/env python3
"""Writes damaged variants of a zoned qcow2 image, one file each.

  damage.py IMAGE OUTDIR       prints the paths written

Damage: byte flips inside each metadata structure, truncation at several
points, table offsets past the end, loops between tables, absurd counts in
the zoned extension, and random flips anywhere.
"""
import os
import random
import sys


def be(data, off, n):
    return int.from_bytes(data[off:off + n], "big")


def put(data, off, n, value):
    data[off:off + n] = (value % (1 << (8 * n))).to_bytes(n, "big")


def main():
    src, out = sys.argv[1], sys.argv[2]
    base = bytearray(open(src, "rb").read())
    rng = random.Random(1124)
    cs = 1 << be(base, 20, 4)
    l1 = be(base, 40, 8)
    rt = be(base, 48, 8)
    rb = be(base, rt, 8)
    l2 = be(base, l1, 8) & 0x00FFFFFFFFFFFE00
    # The zoned extension and its write-pointer table.
    off, ext = be(base, 100, 4), None
    while off + 8 <= cs:
        t, n = be(base, off, 4), be(base, off + 4, 4)
        if t == 0:
            break
        if t == 0x007A6264:
            ext = (off + 8, n)
        off += 8 + (n + 7) // 8 * 8
    assert ext, "no zoned extension"
    ext_off, ext_len = ext
    meta = be(base, ext_off + 48, 8) if ext_len == 56 else be(base, ext_off + 24, 8)
    variants = {}

    def variant(name, fn):
        data = bytearray(base)
        fn(data)
        variants[name] = data

    regions = {"header": (0, 112), "extensions": (104, ext_off + ext_len), "l1": (l1, 64), "reftable": (rt, 64),
               "refblock": (rb, 256), "l2": (l2, 512) if l2 else (l1, 8), "wptable": (meta, 128)}
    for name, (start, length) in regions.items():
        for k in range(6):
            def flip(d, start=start, length=length):
                for _ in range(1 + rng.randrange(4)):
                    d[start + rng.randrange(length)] ^= 1 << rng.randrange(8)
            variant(f"flip-{name}-{k}", flip)
    for frac in (0.0, 0.01, 0.3, 0.6, 0.9):
        variants[f"truncated-{frac}"] = base[:int(len(base) * frac) or 40]
    variant("l1-past-end", lambda d: put(d, 40, 8, 1 << 55))
    variant("reftable-past-end", lambda d: put(d, 48, 8, len(base) * 4 // cs * cs))
    variant("wptable-past-end", lambda d: put(d, ext_off + 48, 8, 1 << 40) if ext_len == 56 else None)
    variant("l1-loops-to-itself", lambda d: put(d, l1, 8, l1 | (1 << 63)))
    variant("l1-points-at-reftable", lambda d: put(d, l1, 8, rt | (1 << 63)))
    variant("reftable-points-at-l1", lambda d: put(d, rt, 8, l1))
    variant("reftable-points-at-header", lambda d: put(d, rt, 8, 0))
    variant("l2-points-at-header", lambda d: put(d, l2, 8, (1 << 63) | cs) if l2 else None)
    variant("nr-zones-absurd", lambda d: put(d, ext_off + 24, 4, 0xFFFFFFFF) if ext_len == 56 else None)
    variant("zone-size-absurd", lambda d: put(d, ext_off + 4, 8, 1 << 62) if ext_len == 56 else None)
    variant("zonedmeta-size-absurd", lambda d: put(d, ext_off + 40, 8, 1 << 60) if ext_len == 56 else None)
    variant("extension-length-odd", lambda d: put(d, ext_off - 4, 4, 45))
    variant("l1-size-absurd", lambda d: put(d, 36, 4, 0x7FFFFFFF))
    variant("refcount-clusters-absurd", lambda d: put(d, 56, 4, 0x7FFFFFFF))
    variant("virtual-size-absurd", lambda d: put(d, 24, 8, (1 << 62) + 512))
    for k in range(12):
        def anywhere(d):
            for _ in range(8):
                d[rng.randrange(len(d))] = rng.randrange(256)
        variant(f"random-{k}", anywhere)
    os.makedirs(out, exist_ok=True)
    for name, data in variants.items():
        path = os.path.join(out, name + ".qcow2")
        open(path, "wb").write(data)
        print(path)


main()
