"""Datasets made from numpy arrays (reparo_dataset_create), the Dataset's handle and views, and
one fit order for the Python loop and the library's (reparo_fit_order)."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import reparo
from reparo import ReparoError, Status

from conftest import DIGITS_SPEC


def arrays(rng: np.random.Generator, count: int = 20, classes: int = 10):
    images = rng.standard_normal((count, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, classes, count).astype(np.int32)
    return images, labels


def test_from_arrays_copies_once_and_lends_read_only_views(rng: np.random.Generator) -> None:
    images, labels = arrays(rng)
    with reparo.Dataset.from_arrays(images, labels, classes=10) as dataset:
        assert len(dataset) == 20 and dataset.shape == (1, 8, 8) and dataset.classes == 10
        assert dataset.kind is None and dataset.split is None and dataset.path is None
        assert np.array_equal(dataset.images, images) and np.array_equal(dataset.labels, labels)
        assert dataset.images.dtype == np.float32 and dataset.labels.dtype == np.int32
        assert not np.shares_memory(dataset.images, images)  # the library's copy
        images[0, 0, 0, 0] = 1e6
        labels[0] = (labels[0] + 1) % 10
        assert dataset.images[0, 0, 0, 0] != 1e6 and dataset.labels[0] != labels[0]
        # The same memory on every access: views, not copies.
        assert np.shares_memory(dataset.images, dataset.images[2:]) and dataset.images is dataset.images
        with pytest.raises(ValueError):
            dataset.images[0, 0, 0, 0] = 0
    assert dataset.closed
    with pytest.raises(ValueError, match="closed"):
        dataset.handle
    with pytest.raises(ValueError, match="closed"):
        dataset.images


def test_a_view_keeps_the_library_copy_alive_after_close(rng: np.random.Generator) -> None:
    images, labels = arrays(rng)
    dataset = reparo.Dataset.from_arrays(images, labels)
    view, label_view = dataset.images, dataset.labels
    dataset.close()
    del dataset
    gc.collect()
    for _ in range(5):  # reuse of freed memory would show here
        reparo.Dataset.from_arrays(np.zeros_like(images), np.zeros_like(labels)).close()
    assert np.array_equal(view, images) and np.array_equal(label_view, labels)


def test_from_arrays_infers_classes_and_converts_dtypes(rng: np.random.Generator) -> None:
    images = rng.integers(0, 255, (6, 3, 2, 2)).astype(np.uint8)
    dataset = reparo.Dataset.from_arrays(images, np.array([0, 4, 1, 1, 2, 0], dtype=np.int64))
    assert dataset.classes == 5 and dataset.shape == (3, 2, 2)
    assert np.array_equal(dataset.images, images.astype(np.float32))


@pytest.mark.parametrize(
    "images, labels, classes, error, fragment",
    [
        (np.zeros((2, 8, 8), np.float32), [0, 1], None, ValueError, "N, C, H, W"),
        (np.zeros((0, 1, 8, 8), np.float32), [], 10, ValueError, "N >= 1"),
        (np.zeros((2, 1, 8, 8), np.float32), [0], None, ValueError, "labels"),
        (np.zeros((2, 1, 8, 8), np.float32), [0.5, 1], None, ValueError, "integers"),
        (np.array(["a"]), [0], None, ValueError, "real numbers"),
        (np.zeros((2, 1, 8, 8), np.float32), [0, 1], 0, ValueError, "classes"),
        (np.zeros((2, 1, 8, 8), np.float32), [0, 10], 10, ReparoError, "label 10 of sample 1"),
        (np.zeros((2, 1, 8, 8), np.float32), [-1, 0], 10, ReparoError, "label -1 of sample 0"),
        (np.full((2, 1, 8, 8), np.nan, np.float32), [0, 1], 10, ReparoError, "not finite"),
    ],
)
def test_from_arrays_rejects_bad_input(images, labels, classes, error, fragment) -> None:
    with pytest.raises(error) as caught:
        reparo.Dataset.from_arrays(images, np.asarray(labels), classes)
    assert fragment in str(caught.value)
    if error is ReparoError:
        assert caught.value.status == Status.INVALID_ARGUMENT


def test_fit_order_is_a_seeded_permutation() -> None:
    first = reparo.fit_order(50, 3, 1)
    assert sorted(first) == list(range(50)) and first.dtype == np.int64
    assert np.array_equal(first, reparo.fit_order(50, 3, 1))
    assert not np.array_equal(first, reparo.fit_order(50, 4, 1))
    assert not np.array_equal(first, reparo.fit_order(50, 3, 2))
    with pytest.raises(ReparoError):
        reparo.fit_order(0, 3, 1)


def weights(model: reparo.Model, path) -> dict:
    model.save(path)
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.mark.parametrize("loaded", [False, True])
def test_python_loop_and_native_fit_train_identically(loaded: bool, digits_test: reparo.Dataset, tmp_path) -> None:
    """The same seed gives the same batches, so the same weights, bit for bit, through
    Trainer.iter_fit (steps from Python) and Trainer.fit_native (the library's loop)."""
    if loaded:
        dataset = digits_test
    else:
        dataset = reparo.Dataset.from_arrays(digits_test.images[:150].copy(), digits_test.labels[:150].copy())
    options = dict(lr=0.05, augment={"crop_padding": 1, "flip": True}, seed=3)
    results = []
    for native in (True, False):
        with reparo.Model.create(DIGITS_SPEC, seed=5) as model, reparo.Trainer(model, **options) as trainer:
            if native:
                last = trainer.fit_native(dataset, epochs=3, batch_size=32, seed=99)
            else:
                stats = list(trainer.iter_fit(dataset.images, dataset.labels, epochs=3, batch_size=32, seed=99))
                last = stats[-1]
            results.append((weights(model, tmp_path / f"{native}.safetensors"), last.step))
    (native_weights, native_steps), (loop_weights, loop_steps) = results
    assert native_steps == loop_steps == 3 * -(-len(dataset) // 32)
    assert native_weights.keys() == loop_weights.keys()
    for name in native_weights:
        assert native_weights[name].tobytes() == loop_weights[name].tobytes(), name
