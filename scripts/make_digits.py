#!/usr/bin/env python3
"""Build Reparo's bundled dataset: the UCI optical handwritten digits in MNIST IDX format.

Source: the 1797-sample 8x8 copy of the UCI "Optical Recognition of Handwritten Digits"
test set that scikit-learn ships as ``sklearn/datasets/data/digits.csv.gz`` (CC BY 4.0,
E. Alpaydin and C. Kaynak). Each CSV row is 64 pixel counts in 0..16 (row-major 8x8)
followed by the label 0..9.

Usage:
    python3 scripts/make_digits.py PATH/TO/digits.csv.gz [OUTPUT_DIR]   # OUTPUT_DIR: data/

One way to obtain the CSV without installing scikit-learn:
    pip download --no-deps --only-binary=:all: scikit-learn -d /tmp/skl
    python3 -c "import zipfile,glob; z=zipfile.ZipFile(glob.glob('/tmp/skl/*.whl')[0]); \
open('/tmp/digits.csv.gz','wb').write(z.read('sklearn/datasets/data/digits.csv.gz'))"

Split: stratified, 20% of each class (rounded to nearest) to test, the rest to train, chosen
by ``random.Random(SEED).shuffle`` per class; within each split samples keep the CSV's order.
Only the standard library is used, so the output is byte-for-byte reproducible.

Output (IDX, big-endian header, uint8 payload; pixels stay 0..16, readers divide by 16):
    digits-train-images.idx3-ubyte  magic 0x00000803, dims N, 8, 8
    digits-train-labels.idx1-ubyte  magic 0x00000801, dims N
    digits-test-images.idx3-ubyte
    digits-test-labels.idx1-ubyte
"""

import csv
import gzip
import hashlib
import io
import os
import random
import struct
import sys

SEED = 20240601
TEST_FRACTION = 0.2
SIDE = 8
CLASSES = 10


def read_csv(path):
    """Returns a list of (pixels: bytes of 64 values 0..16, label: int 0..9)."""
    with gzip.open(path, "rt", newline="") as handle:
        samples = []
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            values = [int(float(v)) for v in row]
            if len(values) != SIDE * SIDE + 1:
                raise SystemExit(f"{path}:{line_number}: expected 65 values, got {len(values)}")
            pixels, label = values[:-1], values[-1]
            if not all(0 <= p <= 16 for p in pixels) or not 0 <= label < CLASSES:
                raise SystemExit(f"{path}:{line_number}: value out of range")
            samples.append((bytes(pixels), label))
    return samples


def stratified_split(samples):
    """Returns (train_indices, test_indices), each sorted ascending."""
    rng = random.Random(SEED)
    train, test = [], []
    for label in range(CLASSES):
        members = [i for i, (_, y) in enumerate(samples) if y == label]
        rng.shuffle(members)
        test_count = int(round(TEST_FRACTION * len(members)))
        test.extend(members[:test_count])
        train.extend(members[test_count:])
    return sorted(train), sorted(test)


def write_idx(path, magic, dims, payload):
    with open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic))
        for d in dims:
            handle.write(struct.pack(">I", d))
        handle.write(payload)


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    source = argv[1]
    output = argv[2] if len(argv) == 3 else os.path.join(os.path.dirname(__file__), "..", "data")
    samples = read_csv(source)
    if len(samples) != 1797:
        print(f"warning: expected 1797 samples, read {len(samples)}", file=sys.stderr)
    train, test = stratified_split(samples)
    os.makedirs(output, exist_ok=True)
    for split, indices in (("train", train), ("test", test)):
        images = b"".join(samples[i][0] for i in indices)
        labels = bytes(samples[i][1] for i in indices)
        image_path = os.path.join(output, f"digits-{split}-images.idx3-ubyte")
        label_path = os.path.join(output, f"digits-{split}-labels.idx1-ubyte")
        write_idx(image_path, 0x00000803, (len(indices), SIDE, SIDE), images)
        write_idx(label_path, 0x00000801, (len(indices),), labels)
        per_class = [labels.count(c) for c in range(CLASSES)]
        print(f"{split}: {len(indices)} samples, per class {per_class}")
        for path in (image_path, label_path):
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            print(f"  {digest}  {os.path.basename(path)}  ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main(sys.argv)
