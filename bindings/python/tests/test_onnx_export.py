"""ONNX export (reparo_model_export_onnx): onnxruntime runs the exported graph with the logits
of Model.infer, for the digits CNN, VGG-16 and ResNet-20 and a pruned → expanded → collapsed
model with and without BatchNorm folding; expanded models are refused; writes are atomic."""

from __future__ import annotations

import json
import os
import pathlib
import struct
from typing import Any, List, Mapping

import numpy as np
import pytest

import reparo
from reparo import ReparoError, Status

from conftest import DIGITS_SPEC

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
numpy_helper = pytest.importorskip("onnx.numpy_helper")

#: Absolute tolerance on the logits. Both sides compute in float32 but sum the products of a
#: conv or GEMM in different orders (Reparo's im2col + BLAS against onnxruntime's MLAS), and
#: BatchNorm in different algebraic forms; over these depths (up to 20 layers) and logits of
#: order 1 that rounding measured ≤ 1.5e-6 (ResNet-20), so 1e-4 leaves margin yet catches any
#: wrong attribute, transposition or missing layer (which moves logits by far more).
TOLERANCE = 1e-4

SPECS: Mapping[str, Any] = {
    "digits": DIGITS_SPEC,
    "vgg16": {"preset": "vgg16", "width": 0.25, "input": [1, 28, 28]},
    "resnet20": {"preset": "resnet20", "width": 0.25, "input": [3, 32, 32]},
    # ResNet-18's stem (conv 7×7/2/3, max-pool 3×3/2/1), the pool before any ReLU so that its
    # −∞ padding matters, then a 2×2/2/1 pool.
    "stem": {"input": [3, 15, 14], "classes": 5, "layers": [
        {"type": "conv", "out": 6, "kernel": 7, "stride": 2, "padding": 3}, {"type": "maxpool", "kernel": 3, "stride": 2,
        "padding": 1}, {"type": "batchnorm"}, {"type": "relu"}, {"type": "maxpool", "kernel": 2, "stride": 2, "padding": 1},
        {"type": "flatten"}, {"type": "linear", "out": 5}]},
}


def trained(spec: Any, seed: int, steps: int = 2) -> reparo.Model:
    """A model after a few SGD steps on random images, so BatchNorm's running statistics and
    the weights are not their initial values."""
    model = reparo.Model.create(spec, seed=seed)
    rng = np.random.default_rng(seed)
    images_shape = (8,) + tuple(model.input_shape)
    with reparo.Trainer(model, lr=0.05) as trainer:
        for _ in range(steps):
            images = rng.standard_normal(images_shape).astype(np.float32)
            trainer.step(images, rng.integers(0, model.classes, 8))
    return model


def saved_tensors(model: reparo.Model, directory: pathlib.Path) -> "dict[str, np.ndarray]":
    """The model's tensors, in its order, read from its safetensors file by hand (an oracle
    independent of the exporter)."""
    path = directory / "model.safetensors"
    model.save(path)
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header.pop("__metadata__", None)
    body = data[8 + length :]
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    return {
        name: np.frombuffer(body[entry["data_offsets"][0] : entry["data_offsets"][1]], dtype="<f4").reshape(entry["shape"])
        for name, entry in entries
    }


def check_export(model: reparo.Model, directory: pathlib.Path, **options: Any) -> List[str]:
    """Exports, checks the ONNX model, and compares onnxruntime's logits with Model.infer at
    batch 1 and 5. Returns the op types of the graph's nodes."""
    path = directory / "model.onnx"
    model.export_onnx(path, **options)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)

    tensors = saved_tensors(model, directory)
    initializers = list(proto.graph.initializer)
    assert [tensor.name for tensor in initializers] == list(tensors)
    for tensor in initializers:
        np.testing.assert_array_equal(numpy_helper.to_array(tensor), tensors[tensor.name])

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [value.name for value in session.get_inputs()] == ["input"]
    assert [value.name for value in session.get_outputs()] == ["logits"]
    rng = np.random.default_rng(99)
    for batch in (1, 5):
        images = rng.standard_normal((batch,) + tuple(model.input_shape)).astype(np.float32)
        (logits,) = session.run(["logits"], {"input": images})
        expected = model.infer(images)
        assert logits.shape == (batch, model.classes)
        np.testing.assert_allclose(logits, expected, rtol=0, atol=TOLERANCE)
    return [node.op_type for node in proto.graph.node]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_dense_model_matches_onnxruntime(name: str, tmp_path: pathlib.Path) -> None:
    with trained(SPECS[name], seed=3) as model:
        ops = check_export(model, tmp_path)
    assert "BatchNormalization" in ops
    if name == "resnet20":
        assert ops.count("Add") == 9 and "GlobalAveragePool" in ops
    if name == "stem":
        pools = [node for node in onnx.load(str(tmp_path / "model.onnx")).graph.node if node.op_type == "MaxPool"]
        assert [list(onnx.helper.get_node_attr_value(node, "pads")) for node in pools] == [[1, 1, 1, 1]] * 2
    if name == "digits":
        assert ops == ["Conv", "BatchNormalization", "Relu", "MaxPool", "Conv", "BatchNormalization", "Relu",
                       "GlobalAveragePool", "Flatten", "Gemm"]


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("name", ["digits", "resnet20"])
def test_pruned_expanded_collapsed_matches_onnxruntime(name: str, fold: bool, tmp_path: pathlib.Path) -> None:
    with trained(SPECS[name], seed=5) as dense, dense.prune(ratio=0.5) as pruned:
        pruned.expand(rate=2)
        with reparo.Trainer(pruned, lr=0.01) as trainer:  # move the factors and BN statistics
            rng = np.random.default_rng(6)
            trainer.step(rng.standard_normal((8,) + tuple(pruned.input_shape)).astype(np.float32),
                         rng.integers(0, pruned.classes, 8))
        pruned.collapse(fold_batchnorm=fold)
        assert pruned.state == "collapsed"
        ops = check_export(pruned, tmp_path)
    assert ("BatchNormalization" in ops) != fold


def test_expanded_model_is_refused(tmp_path: pathlib.Path) -> None:
    with reparo.Model.create(DIGITS_SPEC, seed=1) as model:
        model.expand(rate=2)
        with pytest.raises(ReparoError) as caught:
            model.export_onnx(tmp_path / "model.onnx")
    assert caught.value.status == Status.STATE
    assert "collapse" in caught.value.message
    assert not (tmp_path / "model.onnx").exists()


def test_options_are_strict(model: reparo.Model, tmp_path: pathlib.Path) -> None:
    model.export_onnx(tmp_path / "a.onnx", opset=17)
    assert onnx.load(str(tmp_path / "a.onnx")).opset_import[0].version == 17
    for options, key in (({"opset": 13}, "opset"), ({"fold": True}, "fold")):
        with pytest.raises(ReparoError) as caught:
            model.export_onnx(tmp_path / "b.onnx", **options)
        assert caught.value.status == Status.INVALID_ARGUMENT and key in caught.value.message
    assert not (tmp_path / "b.onnx").exists()


def test_bad_path_is_io(model: reparo.Model, tmp_path: pathlib.Path) -> None:
    for path in (tmp_path / "no" / "such" / "model.onnx", tmp_path):
        with pytest.raises(ReparoError) as caught:
            model.export_onnx(path)
        assert caught.value.status == Status.IO


def test_failed_export_leaves_existing_file_untouched(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous contents")
    with reparo.Model.create(DIGITS_SPEC, seed=1) as model:
        model.expand(rate=2)
        with pytest.raises(ReparoError):
            model.export_onnx(path)
    assert path.read_bytes() == b"previous contents"
    # A successful export replaces it whole, leaving no temporary file behind.
    with reparo.Model.create(DIGITS_SPEC, seed=1) as model:
        model.export_onnx(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]
