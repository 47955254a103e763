#!/usr/bin/env python3
"""Deterministic test data for the crash tests.

  patterns.py chunk ZONE GEN INDEX        1 MiB chunk to stdout
  patterns.py verify FILE ZONE GEN        FILE holds chunks 0.. of (ZONE, GEN),
                                          the last possibly cut short; prints
                                          the number of whole chunks
"""
import hashlib
import sys

CHUNK = 1 << 20


def chunk(zone, gen, index):
    seed = hashlib.sha256(f"{zone}/{gen}/{index}".encode()).digest()
    return (seed * (CHUNK // len(seed)))[:CHUNK]


def main():
    if sys.argv[1] == "chunk":
        sys.stdout.buffer.write(chunk(*map(int, sys.argv[2:5])))
        return 0
    if sys.argv[1] == "verify":
        path, zone, gen = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        data = open(path, "rb").read()
        for i in range(0, len(data), CHUNK):
            piece = data[i:i + CHUNK]
            if piece != chunk(zone, gen, i // CHUNK)[:len(piece)]:
                print(f"{path}: chunk {i // CHUNK} is not generation {gen}'s data", file=sys.stderr)
                return 1
        print(len(data) // CHUNK)
        return 0
    return 2


sys.exit(main())
