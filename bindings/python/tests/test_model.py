"""Model basics: shape validation, numpy conversions, save/load/clone, lifetimes."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import reparo

from conftest import DIGITS_SPEC


@pytest.mark.parametrize(
    "shape",
    [(8, 8), (1, 8, 8), (2, 2, 8, 8), (2, 1, 8, 9), (2, 1, 7, 8), (1, 1, 1, 8, 8), (2, 64)],
)
def test_infer_rejects_wrong_shapes_before_calling_c(model: reparo.Model, shape) -> None:
    with pytest.raises(ValueError, match=r"\[N, 1, 8, 8\]"):
        model.infer(np.zeros(shape, np.float32))


def test_infer_rejects_non_numeric(model: reparo.Model) -> None:
    with pytest.raises(ValueError, match="real numbers"):
        model.infer(np.full((1, 1, 8, 8), "x"))


def test_infer_converts_layout_and_dtype(model: reparo.Model, rng) -> None:
    images = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    expected = model.infer(images)
    assert expected.shape == (5, 10) and expected.dtype == np.float32
    assert np.array_equal(model.infer(images.astype(np.float64)), expected)
    assert np.array_equal(model.infer(np.asfortranarray(images)), expected)
    strided = np.zeros((10, 1, 8, 8), np.float32)
    strided[::2] = images
    assert np.array_equal(model.infer(strided[::2]), expected)  # non-contiguous view
    assert np.array_equal(model.infer(images.tolist()), expected)  # nested lists
    assert model.infer(np.zeros((0, 1, 8, 8), np.float32)).shape == (0, 10)


def test_infer_is_per_sample(model: reparo.Model, rng) -> None:
    images = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    together = model.infer(images)
    alone = np.concatenate([model.infer(images[i : i + 1]) for i in range(6)])
    # Eval mode: a sample's logits do not depend on its batch; GEMM blocking may differ with
    # the batch size, so allow float32 rounding (1e-5 relative), not bit equality.
    assert np.max(np.abs(together - alone)) <= 1e-5 * np.max(np.abs(together))


def test_evaluate_matches_numpy(model: reparo.Model, digits_test: reparo.Dataset) -> None:
    accuracy, loss = model.evaluate(digits_test.images, digits_test.labels)
    logits = model.infer(digits_test.images).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected_loss = -log_softmax[np.arange(len(digits_test)), digits_test.labels].mean()
    expected_accuracy = (logits.argmax(axis=1) == digits_test.labels).mean()
    assert accuracy == pytest.approx(expected_accuracy, abs=1e-6)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    with pytest.raises(ValueError, match="labels"):
        model.evaluate(digits_test.images, digits_test.labels[:-1])
    with pytest.raises(ValueError, match="integers"):
        model.evaluate(digits_test.images, digits_test.labels.astype(np.float32))


def test_save_load_infer_is_bit_identical(model: reparo.Model, digits_train, digits_test, tmp_path) -> None:
    with reparo.Trainer(model, lr=0.05, threads=1) as trainer:  # non-trivial weights and BN statistics
        trainer.fit(digits_train.images[:256], digits_train.labels[:256], epochs=1, batch_size=64)
    path = tmp_path / "digits.safetensors"
    model.save(path)
    with reparo.Model.load(path) as loaded:
        assert loaded.describe() == model.describe()
        assert loaded.input_shape == (1, 8, 8) and loaded.classes == 10
        assert model.infer(digits_test.images).tobytes() == loaded.infer(digits_test.images).tobytes()
    # Saving again over the same path replaces it atomically and still round-trips.
    model.save(str(path))
    with reparo.Model.load(str(path)) as again:
        assert np.array_equal(again.infer(digits_test.images), model.infer(digits_test.images))


def test_save_to_unwritable_path_is_io(model: reparo.Model, tmp_path) -> None:
    with pytest.raises(reparo.ReparoError) as caught:
        model.save(tmp_path / "no" / "such" / "dir" / "m.safetensors")
    assert caught.value.status == reparo.Status.IO
    with pytest.raises(reparo.ReparoError) as caught:
        model.save(tmp_path)  # a directory
    assert caught.value.status == reparo.Status.IO


def test_clone_is_deep(model: reparo.Model, rng) -> None:
    images = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 16)
    with model.clone() as copy:
        assert np.array_equal(copy.infer(images), model.infer(images))
        before = model.infer(images)
        with reparo.Trainer(copy, lr=0.1) as trainer:
            trainer.step(images, labels)
        assert not np.array_equal(copy.infer(images), before)
        assert np.array_equal(model.infer(images), before)


def test_describe(model: reparo.Model) -> None:
    info = model.describe()
    assert info["state"] == "dense" and info["input"] == [1, 8, 8] and info["classes"] == 10
    # 16·1·9 + BN(16·2) + 32·16·9 + BN(32·2) + 32·10 + 10 trainable scalars
    assert info["parameters"] == 16 * 9 + 32 + 32 * 16 * 9 + 64 + 320 + 10 == model.parameter_count
    assert [layer["type"] for layer in info["layers"]][:3] == ["conv", "batchnorm", "relu"]
    assert info["layers"][0]["weight"] == [16, 1, 3, 3]
    assert "dense" in repr(model)


def test_create_from_json_text_and_seed() -> None:
    import json

    with reparo.Model.create(json.dumps(DIGITS_SPEC), seed=3) as a, reparo.Model.create(DIGITS_SPEC, seed=3) as b, \
            reparo.Model.create(DIGITS_SPEC, seed=4) as c:
        images = np.ones((2, 1, 8, 8), np.float32)
        assert np.array_equal(a.infer(images), b.infer(images))
        assert not np.array_equal(a.infer(images), c.infer(images))


def test_trainer_keeps_its_models_alive(rng) -> None:
    student = reparo.Model.create(DIGITS_SPEC)
    teacher = student.clone()
    student_ref, teacher_ref = weakref.ref(student), weakref.ref(teacher)
    trainer = reparo.Trainer(student, teacher, kd_weight=1.0, kd_layers=["layers.2"])
    del student, teacher
    gc.collect()
    assert student_ref() is not None and teacher_ref() is not None
    result = trainer.step(rng.standard_normal((4, 1, 8, 8)), [1, 2, 3, 4])
    assert result.step == 1 and result.kd_loss >= 0
    trainer.close()
    gc.collect()
    assert student_ref() is None and teacher_ref() is None  # freed once the trainer lets go


def test_garbage_collection_frees_without_close(rng) -> None:
    for _ in range(50):  # handles are freed by __del__; a leak would not crash but a double free would
        model = reparo.Model.create(DIGITS_SPEC)
        trainer = reparo.Trainer(model)
        trainer.step(rng.standard_normal((2, 1, 8, 8)), [0, 1])
        del model, trainer
    gc.collect()


def test_fit_callback_and_early_stop(model: reparo.Model, digits_train) -> None:
    seen = []

    def callback(stats: reparo.EpochStats) -> bool:
        seen.append(stats)
        return stats.epoch < 2  # stop after the second epoch

    images, labels = digits_train.images[:100], digits_train.labels[:100]
    with reparo.Trainer(model, lr=0.05) as trainer:
        history = trainer.fit(images, labels, epochs=5, batch_size=32, callback=callback,
                              validation=(images, labels))
        assert [s.epoch for s in history] == [1, 2] and history == seen
        assert history[0].steps == 4 and history[0].samples == 100  # 32+32+32+4
        assert history[1].step == 8
        assert history[1].val_accuracy is not None and 0 <= history[1].val_accuracy <= 1
        dropped = list(trainer.iter_fit(images, labels, epochs=1, batch_size=32, drop_last=True, shuffle=False))
        assert dropped[0].steps == 3 and dropped[0].samples == 96
        with pytest.raises(ValueError, match="batch_size"):
            trainer.fit(images, labels, epochs=1, batch_size=0)
