#!/usr/bin/env python3
"""Writes the seed corpus of the idx fuzz target (fuzz/corpus/idx/): small IDX image and label
files, plain and gzipped, and a few broken ones. Needs only the Python standard library;
deterministic (gzip's time stamp is fixed at 0).

    python3 fuzz/make_idx_corpus.py
"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "idx")


def idx(magic, dims, payload):
    """An IDX file: big-endian magic, dims, then the payload bytes."""
    return struct.pack(">I" + "I" * len(dims), magic, *dims) + bytes(payload)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def main():
    os.makedirs(OUT, exist_ok=True)
    images = idx(0x803, [3, 4, 4], [(7 * i) % 256 for i in range(48)])
    labels = idx(0x801, [3], [0, 9, 4])
    wide = idx(0x803, [2, 8, 8], [(i * i) % 256 for i in range(128)])
    seeds = {
        "images-3x4x4.idx": images,
        "labels-3.idx": labels,
        "images-3x4x4.gz": gz(images),
        "labels-3.gz": gz(labels),
        "images-2x8x8.gz": gz(wide),
        # cat a.gz b.gz: two members, split inside the header.
        "images-two-members.gz": gz(images[:9]) + gz(images[9:]),
        # Cut inside the deflate data, and a lying header (declares 3, holds 4 labels).
        "images-truncated.gz": gz(wide)[:40],
        "labels-extra-payload.gz": gz(labels + b"\x01"),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
