"""Trainer checkpoints (reparo_trainer_save/load) and the library's own loop (reparo_trainer_fit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import reparo
from reparo import ReparoError, Status

from conftest import DIGITS_SPEC

OPTIONS = dict(lr=0.05, momentum=0.9, schedule="cosine", total_steps=12, augment={"crop_padding": 1, "flip": True}, seed=3)


def batches(dataset: reparo.Dataset, count: int, size: int = 32):
    for i in range(count):
        yield dataset.images[i * size : (i + 1) * size], dataset.labels[i * size : (i + 1) * size]


def test_checkpoint_resumes_exactly(digits_train: reparo.Dataset, tmp_path) -> None:
    """reparo.h: model + trainer state saved after k steps, loaded into a fresh model and
    trainer with the same options, continue exactly as the uninterrupted run (momentum,
    schedule position and augmentation randomness included), so logits are bit-identical."""
    data = list(batches(digits_train, 8))
    with reparo.Model.create(DIGITS_SPEC, seed=2) as model, reparo.Trainer(model, **OPTIONS) as trainer:
        for images, labels in data[:4]:
            trainer.step(images, labels)
        model.save(tmp_path / "model.safetensors")
        trainer.save(tmp_path / "trainer.safetensors")
        uninterrupted = [trainer.step(images, labels) for images, labels in data[4:]]
        expected = model.infer(digits_train.images[:64])

    with reparo.Model.load(tmp_path / "model.safetensors") as model, reparo.Trainer(model, **OPTIONS) as trainer:
        trainer.load(tmp_path / "trainer.safetensors")
        resumed = [trainer.step(images, labels) for images, labels in data[4:]]
        assert [r.step for r in resumed] == [5, 6, 7, 8]
        assert resumed == uninterrupted  # losses, learning rates (cosine position), steps
        assert np.array_equal(model.infer(digits_train.images[:64]), expected)


def test_checkpoint_errors(model: reparo.Model, tmp_path) -> None:
    with reparo.Trainer(model) as trainer:
        with pytest.raises(ReparoError) as caught:
            trainer.load(tmp_path / "missing.safetensors")
        assert caught.value.status == Status.IO
        (tmp_path / "garbage.safetensors").write_bytes(b"\x01" * 64)
        with pytest.raises(ReparoError) as caught:
            trainer.load(tmp_path / "garbage.safetensors")
        assert caught.value.status == Status.FORMAT
        with pytest.raises(ReparoError) as caught:
            trainer.save(tmp_path / "no" / "dir" / "t.safetensors")
        assert caught.value.status == Status.IO
        trainer.save(tmp_path / "state.safetensors")
    other_spec = dict(DIGITS_SPEC, layers=[dict(DIGITS_SPEC["layers"][0], out=8)] + DIGITS_SPEC["layers"][1:])
    with reparo.Model.create(other_spec) as other, reparo.Trainer(other) as trainer:
        with pytest.raises(ReparoError) as caught:
            trainer.load(tmp_path / "state.safetensors")
        assert caught.value.status == Status.INVALID_ARGUMENT


def test_fit_native_reports_every_step(model: reparo.Model, digits_test: reparo.Dataset) -> None:
    calls = []

    def progress(result, epoch, epochs, batch, batches, epoch_loss, epoch_accuracy):
        calls.append((result.step, epoch, epochs, batch, batches))
        assert math.isfinite(epoch_loss) and 0 <= epoch_accuracy <= 1

    with reparo.Trainer(model, lr=0.05) as trainer:
        last = trainer.fit_native(digits_test, epochs=2, batch_size=100, seed=1, progress=progress)
    batches_per_epoch = math.ceil(len(digits_test) / 100)  # 359 samples: 4 batches, the last smaller
    assert [c[0] for c in calls] == list(range(1, 2 * batches_per_epoch + 1))
    assert calls[0][1:] == (1, 2, 1, batches_per_epoch) and calls[-1][1:] == (2, 2, batches_per_epoch, batches_per_epoch)
    assert last is not None and last.step == 2 * batches_per_epoch


def test_fit_native_stops_and_propagates_exceptions(model: reparo.Model, digits_test: reparo.Dataset) -> None:
    with reparo.Trainer(model) as trainer:
        last = trainer.fit_native(digits_test, epochs=3, batch_size=50, progress=lambda result, *rest: result.step < 2)
        assert last.step == 2  # stopping is not an error

        def boom(*_):
            raise KeyError("from the callback")

        with pytest.raises(KeyError, match="from the callback"):
            trainer.fit_native(digits_test, epochs=1, batch_size=50, progress=boom)
        with pytest.raises(ReparoError) as caught:
            trainer.fit_native(digits_test, epochs=0, batch_size=50)
        assert caught.value.status == Status.INVALID_ARGUMENT and "epochs" in caught.value.message


def test_fit_native_rejects_a_dataset_of_another_shape(digits_test: reparo.Dataset) -> None:
    spec = dict(DIGITS_SPEC, input=[3, 8, 8])
    with reparo.Model.create(spec) as model, reparo.Trainer(model) as trainer:
        with pytest.raises(ReparoError) as caught:
            trainer.fit_native(digits_test, epochs=1, batch_size=32)
        assert caught.value.status == Status.INVALID_ARGUMENT
