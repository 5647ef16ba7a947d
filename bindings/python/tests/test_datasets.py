"""Gzipped IDX files and the fashion-mnist kind through the C API (reparo_dataset_load).

Oracles are independent of the library: Python's gzip module writes and reads the files, and
numpy decodes and standardizes them (the training split's mean and std computed here from the
installed training file). The Fashion-MNIST checks run when the Debian package
dataset-fashion-mnist is installed and are skipped otherwise."""

from __future__ import annotations

import gzip
import pathlib
import struct

import numpy as np
import pytest

import reparo
from reparo import ReparoError, Status

FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_INSTALLED = all(
    (FASHION / f"{prefix}-{kind}-ubyte.gz").is_file()
    for prefix in ("train", "t10k")
    for kind in ("images-idx3", "labels-idx1")
)
needs_fashion = pytest.mark.skipif(
    not FASHION_INSTALLED,
    reason=f"Fashion-MNIST is not installed in {FASHION} (apt-get install dataset-fashion-mnist)",
)
INSTALL_HINT = "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
#: Fashion-MNIST's published training statistics (pixels / 255), to 8 digits.
FASHION_MEAN, FASHION_STD = 0.28604060, 0.35302424


def idx(magic: int, dims, payload: bytes) -> bytes:
    """An IDX file: big-endian magic, each dimension as a big-endian uint32, then the payload."""
    return struct.pack(f">I{len(dims)}I", magic, *dims) + bytes(payload)


def images_file(pixels: np.ndarray) -> bytes:
    return idx(0x803, pixels.shape, pixels.astype(np.uint8).tobytes())


def labels_file(labels) -> bytes:
    return idx(0x801, [len(labels)], bytes(labels))


def decode(path: pathlib.Path, header: int) -> np.ndarray:
    """The uint8 payload of a gzipped IDX file, by Python's gzip module."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def write_split(directory: pathlib.Path, prefix: str, pixels: np.ndarray, labels, compress: bool) -> None:
    suffix = ".gz" if compress else ""
    wrap = (lambda data: gzip.compress(data, mtime=0)) if compress else (lambda data: data)
    (directory / f"{prefix}-images-idx3-ubyte{suffix}").write_bytes(wrap(images_file(pixels)))
    (directory / f"{prefix}-labels-idx1-ubyte{suffix}").write_bytes(wrap(labels_file(labels)))


@pytest.fixture
def no_fashion_override(monkeypatch):
    """Path None must mean the Debian directory, whatever the caller's environment says."""
    monkeypatch.delenv("REPARO_FASHION_MNIST", raising=False)


@pytest.fixture(scope="module")
def fashion_train_statistics():
    """Mean and population std of the training pixels / 255, in float64, by numpy."""
    pixels = decode(FASHION / "train-images-idx3-ubyte.gz", 16).astype(np.float64) / 255
    return pixels.mean(), pixels.std()


@needs_fashion
@pytest.mark.parametrize("split, prefix, count", [("test", "t10k", 10000), ("train", "train", 60000)])
def test_fashion_mnist_dataset_matches_numpy(split, prefix, count, fashion_train_statistics,
                                             no_fashion_override) -> None:
    mean, std = fashion_train_statistics
    # The library's hard-coded constants are these statistics (to Float precision).
    assert abs(mean - FASHION_MEAN) < 1e-6 and abs(std - FASHION_STD) < 1e-6
    dataset = reparo.Dataset.load("fashion-mnist", split=split)
    assert len(dataset) == count and dataset.shape == (1, 28, 28) and dataset.classes == 10
    labels = decode(FASHION / f"{prefix}-labels-idx1-ubyte.gz", 8)
    np.testing.assert_array_equal(dataset.labels, labels.astype(np.int32))
    assert np.bincount(dataset.labels, minlength=10).tolist() == [count // 10] * 10
    first = 2000  # images compared one by one: enough to cover several 1 MiB chunks
    pixels = decode(FASHION / f"{prefix}-images-idx3-ubyte.gz", 16)[: first * 784].reshape(first, 1, 28, 28)
    expected = (pixels.astype(np.float64) / 255 - mean) / std
    # 1e-5: Float arithmetic on values below 3, plus the constants' Float rounding (~1e-7).
    np.testing.assert_allclose(dataset.images[:first], expected, rtol=0, atol=1e-5)
    if split == "train":
        assert abs(float(dataset.images.mean(dtype=np.float64))) < 1e-3
        assert abs(float(dataset.images.std(dtype=np.float64)) - 1) < 1e-3


def test_gzipped_and_plain_mnist_datasets_are_equal(tmp_path) -> None:
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)  # 235 KB: incompressible, several chunks
    labels = rng.integers(0, 10, size=300).tolist()
    plain, gzipped = tmp_path / "plain", tmp_path / "gz"
    plain.mkdir()
    gzipped.mkdir()
    write_split(plain, "train", pixels, labels, compress=False)
    write_split(gzipped, "train", pixels, labels, compress=True)
    a = reparo.Dataset.load("mnist", plain)
    b = reparo.Dataset.load("mnist", gzipped)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(b.labels, np.array(labels, dtype=np.int32))
    # MNIST's fixed statistics, applied in float64 here; 1e-5 for the library's Float arithmetic.
    np.testing.assert_allclose(b.images[:, 0], (pixels / 255 - 0.1307) / 0.3081, rtol=0, atol=1e-5)


def test_fashion_mnist_directory_from_the_environment(tmp_path, monkeypatch) -> None:
    pixels = np.array([[[0, 255], [128, 7]]], dtype=np.uint8)
    write_split(tmp_path, "t10k", pixels, [9], compress=True)
    monkeypatch.setenv("REPARO_FASHION_MNIST", str(tmp_path))
    dataset = reparo.Dataset.load("fashion-mnist", split="test")
    assert dataset.labels.tolist() == [9]
    np.testing.assert_allclose(dataset.images[0, 0], (pixels[0] / 255 - FASHION_MEAN) / FASHION_STD,
                               rtol=0, atol=1e-6)
    # An empty value falls back to the Debian directory.
    monkeypatch.setenv("REPARO_FASHION_MNIST", "")
    if FASHION_INSTALLED:
        assert len(reparo.Dataset.load("fashion-mnist", split="test")) == 10000
    else:
        with pytest.raises(ReparoError) as caught:
            reparo.Dataset.load("fashion-mnist", split="test")
        assert caught.value.status == Status.IO and str(FASHION) in caught.value.message


def test_fashion_mnist_missing_files_say_how_to_install(tmp_path) -> None:
    for directory in (tmp_path, tmp_path / "absent"):
        with pytest.raises(ReparoError) as caught:
            reparo.Dataset.load("fashion-mnist", directory, split="train")
        assert caught.value.status == Status.IO
        assert str(directory) in caught.value.message and INSTALL_HINT in caught.value.message


def hostile_images() -> dict:
    good = images_file(np.arange(4 * 5 * 5, dtype=np.uint8).reshape(4, 5, 5) * 3)
    z = gzip.compress(good, mtime=0)
    flipped = bytearray(z)
    flipped[len(z) // 2] ^= 0xFF
    return {
        "truncated": z[: len(z) // 2],
        "truncated trailer": z[:-3],
        "flipped byte": bytes(flipped),
        "huge dims": gzip.compress(idx(0x803, [60000, 10000, 10000], b"\x01\x02"), mtime=0),
        "extra payload": gzip.compress(good + b"\x00" * 25, mtime=0),
        "trailing garbage": z + b"garbage",
        "not gzip": good,
        "empty": b"",
    }


@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("case", sorted(hostile_images()))
def test_hostile_gzip_dataset_is_format(tmp_path, kind, case) -> None:
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(hostile_images()[case])
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels_file([1, 2, 3, 4])))
    with pytest.raises(ReparoError) as caught:
        reparo.Dataset.load(kind, tmp_path, split="train")
    assert caught.value.status == Status.FORMAT, caught.value.message
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in caught.value.message
