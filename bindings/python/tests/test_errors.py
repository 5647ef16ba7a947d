"""C status codes become ReparoError with status, status_name and the C message; Python-side
argument checks raise ValueError/TypeError before any C call."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import reparo
from reparo import ReparoError, Status

from conftest import DIGITS_SPEC


def spec_with(**changes) -> dict:
    spec = copy.deepcopy(DIGITS_SPEC)
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    "spec, field",
    [
        (spec_with(bogus=1), "bogus"),  # unknown key is named
        (spec_with(classes=0), "classes"),  # out of range
        (spec_with(classes="ten"), "classes"),  # wrong type
        (spec_with(input=[1, 8]), "input"),
        ({"input": [1, 8, 8], "classes": 10, "layers": [{"type": "conv", "kernel": 3}]}, "out"),
        ({"input": [1, 8, 8], "classes": 10, "layers": [{"type": "softmax"}]}, "type"),
        ({"input": [1, 8, 8], "classes": 10, "layers": [{"type": "flatten"}, {"type": "linear", "out": 7}]}, "classes"),
        ("{not json", "spec"),
        ('{"input": [1, 8, 8], "classes": 10, "classes": 5, "layers": []}', "classes"),  # duplicate key
        ({"preset": "vgg99"}, "preset"),
    ],
)
def test_bad_spec_is_invalid_argument_naming_the_field(spec, field: str) -> None:
    with pytest.raises(ReparoError) as caught:
        reparo.Model.create(spec)
    error = caught.value
    assert error.status == Status.INVALID_ARGUMENT == 1
    assert error.status_name == "REPARO_ERR_INVALID_ARGUMENT"
    assert field in error.message, error.message
    assert error.message in str(error)


def test_load_missing_file_is_io(tmp_path) -> None:
    with pytest.raises(ReparoError) as caught:
        reparo.Model.load(tmp_path / "missing.safetensors")
    assert caught.value.status == Status.IO == 2
    assert caught.value.status_name == "REPARO_ERR_IO"
    assert "missing.safetensors" in caught.value.message


def test_load_directory_is_io(tmp_path) -> None:
    with pytest.raises(ReparoError) as caught:
        reparo.Model.load(tmp_path)
    assert caught.value.status == Status.IO


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00" * 7,
        bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8)),
        (2**60).to_bytes(8, "little") + b"{}",  # absurd header length
        (20).to_bytes(8, "little") + b'{"a": [1, 2, 3}    ',  # malformed JSON header
        (2).to_bytes(8, "little") + b"{}",  # valid safetensors, but no Reparo metadata
    ],
)
def test_load_garbage_is_format(tmp_path, content: bytes) -> None:
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(ReparoError) as caught:
        reparo.Model.load(path)
    assert caught.value.status == Status.FORMAT == 3, caught.value
    assert caught.value.status_name == "REPARO_ERR_FORMAT"


def test_load_truncated_model_is_format(tmp_path, model: reparo.Model) -> None:
    path = tmp_path / "model.safetensors"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 16])
    with pytest.raises(ReparoError) as caught:
        reparo.Model.load(path)
    assert caught.value.status == Status.FORMAT


def test_collapse_dense_is_state(model: reparo.Model) -> None:
    with pytest.raises(ReparoError) as caught:
        model.collapse()
    assert caught.value.status == Status.STATE == 4
    assert caught.value.status_name == "REPARO_ERR_STATE"


def test_expand_twice_and_prune_expanded_are_state(model: reparo.Model) -> None:
    model.expand(rate=2)
    with pytest.raises(ReparoError) as caught:
        model.expand()
    assert caught.value.status == Status.STATE
    with pytest.raises(ReparoError) as caught:
        model.prune(ratio=0.5)
    assert caught.value.status == Status.STATE


@pytest.mark.parametrize(
    "method, options, key",
    [
        ("prune", {"ratio": 1.5}, "ratio"),
        ("prune", {"criterion": "l7"}, "criterion"),
        ("prune", {"layers": {"nope": 0.5}}, "nope"),
        ("prune", {"colour": "red"}, "colour"),
        ("expand", {"rate": 0}, "rate"),
        ("expand", {"layers": ["nope"]}, "nope"),
        ("expand", {"speed": 1}, "speed"),
        ("collapse", {"fold_batchnorm": "yes"}, "fold_batchnorm"),
    ],
)
def test_bad_method_options_name_the_key(model: reparo.Model, method: str, options: dict, key: str) -> None:
    with pytest.raises(ReparoError) as caught:
        getattr(model, method)(**options)
    assert caught.value.status == Status.INVALID_ARGUMENT
    assert key in caught.value.message
    assert model.state == "dense"  # left as it was


@pytest.mark.parametrize(
    "options, key",
    [
        ({"lr": 0}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"schedule": "cosine"}, "total_steps"),
        ({"schedule": "linear"}, "schedule"),
        ({"augment": {"rotate": 5}}, "rotate"),
        ({"kd_weight": 1.0}, "teacher"),  # distillation without a teacher
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_bad_trainer_options(model: reparo.Model, options: dict, key: str) -> None:
    with pytest.raises(ReparoError) as caught:
        reparo.Trainer(model, **options)
    assert caught.value.status == Status.INVALID_ARGUMENT
    assert key in caught.value.message, caught.value.message


def test_teacher_of_another_shape_is_rejected(model: reparo.Model) -> None:
    with reparo.Model.create(dict(DIGITS_SPEC, classes=5, layers=DIGITS_SPEC["layers"][:-1] + [{"type": "linear", "out": 5}])) as other:
        with pytest.raises(ReparoError) as caught:
            reparo.Trainer(model, other, kd_weight=1.0)
    assert caught.value.status == Status.INVALID_ARGUMENT


def test_step_labels_out_of_range_and_numeric_failure_leave_the_model(model: reparo.Model, rng) -> None:
    images = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    before = model.infer(images)
    with reparo.Trainer(model, lr=0.1) as trainer:
        with pytest.raises(ReparoError) as caught:
            trainer.step(images, np.full(8, 10))
        assert caught.value.status == Status.INVALID_ARGUMENT
        assert "labels" in caught.value.message
        poisoned = images.copy()
        poisoned[3, 0, 2, 2] = np.nan
        with pytest.raises(ReparoError) as caught:
            trainer.step(poisoned, np.zeros(8, dtype=np.int64))
        assert caught.value.status == Status.NUMERIC == 5
        assert caught.value.status_name == "REPARO_ERR_NUMERIC"
    after = model.infer(images)
    assert np.array_equal(before, after)  # "nothing was changed", BatchNorm statistics included


def test_evaluate_labels_out_of_range(model: reparo.Model, rng) -> None:
    images = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ReparoError) as caught:
        model.evaluate(images, [0, 1, 2, -1])
    assert caught.value.status == Status.INVALID_ARGUMENT


def test_dataset_errors(tmp_path) -> None:
    with pytest.raises(ReparoError) as caught:
        reparo.Dataset.load("imagenet")
    assert caught.value.status == Status.INVALID_ARGUMENT and "imagenet" in caught.value.message
    with pytest.raises(ReparoError) as caught:
        reparo.Dataset.load("digits", split="validation")
    assert caught.value.status == Status.INVALID_ARGUMENT and "validation" in caught.value.message
    with pytest.raises(ReparoError) as caught:
        reparo.Dataset.load("mnist", tmp_path / "none")
    assert caught.value.status == Status.IO
    for name in ["digits-train-images.idx3-ubyte", "digits-train-labels.idx1-ubyte",
                 "digits-test-images.idx3-ubyte", "digits-test-labels.idx1-ubyte"]:
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(ReparoError) as caught:
        reparo.Dataset.load("digits", tmp_path)
    assert caught.value.status == Status.FORMAT


def test_model_cannot_be_closed_under_a_trainer(model: reparo.Model) -> None:
    trainer = reparo.Trainer(model)
    with pytest.raises(ReparoError) as caught:
        model.close()
    assert caught.value.status == Status.STATE
    with pytest.raises(ReparoError) as caught:  # the C library refuses to rewrite a trained model
        model.expand()
    assert caught.value.status == Status.STATE
    trainer.close()
    model.expand()  # fine once the trainer is gone
    model.close()
    assert model.closed


def test_closed_objects_raise_value_error(rng) -> None:
    created = reparo.Model.create(DIGITS_SPEC)
    trainer = reparo.Trainer(created)
    trainer.close()
    created.close()
    created.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        created.infer(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="closed"):
        trainer.step(np.zeros((1, 1, 8, 8), np.float32), [0])
    assert "closed" in repr(created)


def test_error_is_picklable() -> None:
    error = ReparoError(Status.IO, "no such file")
    copy_ = pickle.loads(pickle.dumps(error))
    assert (copy_.status, copy_.status_name, copy_.message) == (2, "REPARO_ERR_IO", "no such file")


def test_options_must_be_json_serializable(model: reparo.Model) -> None:
    with pytest.raises(TypeError):
        model.prune(ratio=object())
    with pytest.raises(ValueError):
        model.prune(ratio=float("nan"))
