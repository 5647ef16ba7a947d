"""Files written by Reparo, read by the `safetensors` package, and an independent numpy forward
pass computed from those tensors alone (the oracle never calls Reparo)."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import numpy as np
import pytest

import reparo

from conftest import relative_error

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="pip install safetensors")
from safetensors import safe_open  # noqa: E402

# Two small generic models covering: padding 0/1, stride 1/2, odd sizes, a bias on a conv,
# overlapping max-pool windows, a strided avg-pool window, global average pooling, and a
# flatten of several spatial positions (which fixes the C·H·W order of linear inputs).
SPEC_A: Dict[str, Any] = {
    "input": [3, 9, 9],
    "classes": 5,
    "layers": [
        {"type": "conv", "name": "conv1", "out": 6, "kernel": 3, "stride": 1, "padding": 1},
        {"type": "batchnorm", "name": "bn1"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 3, "stride": 2},  # 9 → 4, windows overlap
        {"type": "conv", "out": 7, "kernel": 3, "stride": 2, "padding": 1, "bias": True},  # 4 → 2
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "flatten"},  # 7·2·2 = 28 features
        {"type": "linear", "name": "fc", "out": 5},
    ],
}
SPEC_B: Dict[str, Any] = {
    "input": [2, 11, 10],
    "classes": 4,
    "layers": [
        {"type": "conv", "out": 5, "kernel": 5, "stride": 2, "padding": 0, "bias": True},  # 11×10 → 4×3
        {"type": "relu"},
        {"type": "conv", "out": 8, "kernel": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "avgpool", "kernel": 2, "stride": 1},  # 4×3 → 3×2
        {"type": "conv", "out": 6, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "avgpool"},  # global
        {"type": "flatten"},
        {"type": "linear", "out": 4, "bias": False},
    ],
}


# --- the oracle: float64 numpy, PyTorch semantics, reading only the spec and the tensors ------

def conv2d(x: np.ndarray, weight: np.ndarray, bias, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation as PyTorch's Conv2d: sum over kernel taps of a strided window ·W[:,:,i,j]."""
    n, c, h, w = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    assert in_channels == c
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    y = np.zeros((n, out_channels, ho, wo))
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
            y += np.einsum("nchw,oc->nohw", window, weight[:, :, i, j])
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def pool2d(x: np.ndarray, kernel: int, stride: int, reduce) -> np.ndarray:
    n, c, h, w = x.shape
    ho, wo = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    y = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = reduce(x[:, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel], axis=(2, 3))
    return y


def numpy_forward(
    spec: Dict[str, Any], tensors: Dict[str, np.ndarray], images: np.ndarray, masks: Dict[int, np.ndarray] = None
) -> np.ndarray:
    """Logits of `spec` with `tensors`; `masks` {layer index: channel mask} zeroes channels of
    that layer's output (to model pruned filters)."""
    masks = masks or {}
    x = images.astype(np.float64)
    t = {name: value.astype(np.float64) for name, value in tensors.items()}
    for index, layer in enumerate(spec["layers"]):
        name = layer.get("name", f"layers.{index}")
        kind = layer["type"]
        if kind == "conv":
            x = conv2d(x, t[f"{name}.weight"], t.get(f"{name}.bias"), layer.get("stride", 1), layer.get("padding", 0))
        elif kind == "batchnorm":  # eval mode: running statistics, ε = 1e-5 as PyTorch
            shape = (1, -1, 1, 1)
            scale = t[f"{name}.weight"] / np.sqrt(t[f"{name}.running_var"] + 1e-5)
            x = (x - t[f"{name}.running_mean"].reshape(shape)) * scale.reshape(shape) + t[f"{name}.bias"].reshape(shape)
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "maxpool":
            x = pool2d(x, layer["kernel"], layer.get("stride", layer["kernel"]), np.max)
        elif kind == "avgpool":
            if "kernel" in layer:
                x = pool2d(x, layer["kernel"], layer.get("stride", layer["kernel"]), np.mean)
            else:
                x = x.mean(axis=(2, 3), keepdims=True)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "linear":
            x = x.reshape(x.shape[0], -1) @ t[f"{name}.weight"].T
            if f"{name}.bias" in t:
                x = x + t[f"{name}.bias"]
        else:
            raise AssertionError(kind)
        if index in masks:
            x = x * masks[index][None, :, None, None]
    return x.reshape(x.shape[0], -1)


def expected_tensors(spec: Dict[str, Any]) -> Dict[str, List[int]]:
    """PyTorch names and shapes of every tensor the spec implies, computed independently."""
    shapes: Dict[str, List[int]] = {}
    c, h, w = spec["input"]
    for index, layer in enumerate(spec["layers"]):
        name = layer.get("name", f"layers.{index}")
        kind = layer["type"]
        if kind == "conv":
            k, s, p = layer.get("kernel", 3), layer.get("stride", 1), layer.get("padding", 0)
            shapes[f"{name}.weight"] = [layer["out"], c, k, k]
            if layer.get("bias", False):
                shapes[f"{name}.bias"] = [layer["out"]]
            c, h, w = layer["out"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif kind == "batchnorm":
            for suffix in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{name}.{suffix}"] = [c]
        elif kind in ("maxpool", "avgpool"):
            if kind == "avgpool" and "kernel" not in layer:
                h = w = 1
            else:
                k = layer["kernel"]
                s = layer.get("stride", k)
                h, w = (h - k) // s + 1, (w - k) // s + 1
        elif kind == "flatten":
            c, h, w = c * h * w, 1, 1
        elif kind == "linear":
            shapes[f"{name}.weight"] = [layer["out"], c * h * w]
            if layer.get("bias", True):
                shapes[f"{name}.bias"] = [layer["out"]]
            c, h, w = layer["out"], 1, 1
    return shapes


def trained(spec: Dict[str, Any], rng: np.random.Generator) -> reparo.Model:
    """A model whose weights, biases and BatchNorm statistics all moved away from their
    initial values (γ = 1, β = 0, μ = 0, σ² = 1 would hide BatchNorm mistakes)."""
    model = reparo.Model.create(spec, seed=11)
    shape = (16, *spec["input"])
    with reparo.Trainer(model, lr=0.05, momentum=0.5, threads=1) as trainer:
        for _ in range(5):
            trainer.step(rng.standard_normal(shape) * 2 + 0.5, rng.integers(0, spec["classes"], 16))
    return model


@pytest.mark.parametrize("spec", [SPEC_A, SPEC_B], ids=["A", "B"])
def test_saved_tensors_and_numpy_forward(spec: Dict[str, Any], tmp_path, rng) -> None:
    path = str(tmp_path / "model.safetensors")
    with trained(spec, rng) as model:
        model.save(path)
        images = rng.standard_normal((5, *spec["input"])).astype(np.float32)
        logits = model.infer(images)

    tensors = safetensors_numpy.load_file(path)
    assert {name: list(value.shape) for name, value in tensors.items()} == expected_tensors(spec)
    assert all(value.dtype == np.float32 for value in tensors.values())
    bn = [name for name in tensors if name.endswith("running_var")]
    assert bn and not any(np.allclose(tensors[name], 1) for name in bn)  # statistics really moved

    with safe_open(path, framework="numpy") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == "reparo"
    assert json.loads(metadata["spec"])["input"] == spec["input"]

    # Tolerance 1e-4 relative to the largest logit: Reparo computes in float32 (dot products of
    # at most a few hundred terms, error ~1e-6 relative), the oracle in float64; a wrong index,
    # padding, stride or statistic gives errors of order 1, far above it.
    expected = numpy_forward(spec, tensors, images)
    assert logits.shape == expected.shape
    assert relative_error(logits, expected) <= 1e-4


def test_expanded_factors_multiply_back_to_the_weight(tmp_path, rng) -> None:
    """After expand, the file holds 1×1 → k×k → 1×1 factors whose product (composed here in
    numpy, per kernel tap: W[:,:,u,v] = F2 · F1[:,:,u,v] · F0) is the compact weight."""
    with trained(SPEC_A, rng) as model:
        model.save(tmp_path / "compact.safetensors")
        model.expand(rate=2, layers="all")
        model.save(tmp_path / "expanded.safetensors")
    compact = safetensors_numpy.load_file(str(tmp_path / "compact.safetensors"))
    expanded = safetensors_numpy.load_file(str(tmp_path / "expanded.safetensors"))
    for name in ["conv1", "layers.4"]:
        f0, f1, f2 = (expanded[f"{name}.factors.{i}.weight"].astype(np.float64) for i in range(3))
        weight = compact[f"{name}.weight"]
        cout, cin, k, _ = weight.shape
        assert f0.shape == (2 * cin, cin, 1, 1) and f1.shape == (2 * cout, 2 * cin, k, k) and f2.shape == (cout, 2 * cout, 1, 1)
        product = np.einsum("om,mnuv,ni->oiuv", f2[:, :, 0, 0], f1, f0[:, :, 0, 0])
        # float32 factors of a Double product: 1e-5 relative to the largest weight.
        assert relative_error(product, weight) <= 1e-5, name
    f0, f1, f2 = (expanded[f"fc.factors.{i}.weight"].astype(np.float64) for i in range(3))
    assert relative_error(f2 @ f1 @ f0, compact["fc.weight"]) <= 1e-5
    # Biases move to the last factor; BatchNorm tensors are carried over unchanged.
    expanded_layers = ("conv1", "layers.4", "fc")
    for name, value in compact.items():
        layer, _, suffix = name.rpartition(".")
        if layer in expanded_layers:
            if suffix == "bias":
                assert np.array_equal(expanded[f"{layer}.factors.2.bias"], value), name
            assert name not in expanded
        else:
            assert np.array_equal(expanded[name], value), name


def test_pruned_model_equals_the_dense_one_with_pruned_channels_zeroed(tmp_path, rng) -> None:
    """reparo_prune removes filters: the pruned network must compute what the dense network
    computes when the removed channels' activations are forced to zero (the oracle runs the
    dense tensors with masks), and with the L1 criterion the first conv keeps the filters of
    largest L1 norm."""
    from conftest import DIGITS_SPEC

    with trained(DIGITS_SPEC, rng) as dense, dense.prune(ratio=0.5, criterion="l1") as pruned:
        dense.save(tmp_path / "dense.safetensors")
        pruned.save(tmp_path / "pruned.safetensors")
        images = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
        logits = pruned.infer(images)
    full = safetensors_numpy.load_file(str(tmp_path / "dense.safetensors"))
    kept = safetensors_numpy.load_file(str(tmp_path / "pruned.safetensors"))

    def kept_rows(name: str, columns=slice(None)) -> np.ndarray:
        """Indices of the dense filters that survive, found by matching weights."""
        dense_rows = full[name][:, columns].reshape(full[name].shape[0], -1)
        return np.array([int(np.flatnonzero((dense_rows == row.reshape(-1)).all(axis=1))[0]) for row in kept[name]])

    first = kept_rows("layers.0.weight")
    second = kept_rows("layers.4.weight", first)
    assert len(first) == 8 and len(second) == 16
    # Every conv is ranked on the dense weights ("independent" pruning, Li et al. 2017 §3.2).
    for name, survivors in (("layers.0.weight", first), ("layers.4.weight", second)):
        l1 = np.abs(full[name]).sum(axis=(1, 2, 3))
        assert sorted(survivors) == sorted(np.argsort(-l1, kind="stable")[: len(survivors)]), name

    def mask(indices: np.ndarray, channels: int) -> np.ndarray:
        result = np.zeros(channels)
        result[indices] = 1
        return result

    # Layer 2 and 6 are the ReLUs after conv 0 → BN 1 and conv 4 → BN 5.
    expected = numpy_forward(DIGITS_SPEC, full, images, masks={2: mask(first, 16), 6: mask(second, 32)})
    assert relative_error(logits, expected) <= 1e-4  # float32 vs float64, as above
