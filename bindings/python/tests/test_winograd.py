"""Winograd F(2×2, 3×3) inference on a dense VGG-16 (CIFAR preset, 3×32×32).

Each run is a subprocess with ``REPARO_WINOGRAD`` set (the engine reads it once per process):
``on`` computes every 3×3 stride-1 conv by Winograd, ``off`` by the direct paths (im2col,
padded width, small plane). The logits of both are compared with each other and, when PyTorch
is installed, with PyTorch's own conv on the same weights.

Tolerance: max |Δlogit| ≤ 1e-4 · max |logit|. Winograd's error per layer measured ≈ 2–4e-7 of
max |y| on VGG-16's shapes (the direct conv's: 1.5–3e-7; WinogradConvolutionTests), ≲ 1e-5 after
13 convs; a wrong tile, border or bias moves the logits by their own scale.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Any, Dict

import numpy as np
import pytest

import reparo
from conftest import PACKAGE_ROOT, relative_error

TOLERANCE = 1e-4

RUN = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reparo
images = np.load(sys.argv[3])
with reparo.Model.load(sys.argv[2]) as model:
    np.save(sys.argv[4], model.infer(images))
    np.save(sys.argv[5], model.infer(images[:1]))
"""


def vgg16_without_batchnorm() -> Dict[str, Any]:
    """VGG-16 as inference runs it with BatchNorm folded: conv (with bias) → ReLU, so the engine
    fuses each ReLU into the conv before it (the Winograd output transform applies it)."""
    layers = []
    for entry in [64, 64, None, 128, 128, None, 256, 256, 256, None, 512, 512, 512, None, 512, 512, 512, None]:
        if entry is None:
            layers.append({"type": "maxpool", "kernel": 2})
        else:
            layers += [{"type": "conv", "out": entry, "kernel": 3, "padding": 1, "bias": True}, {"type": "relu"}]
    layers += [{"type": "flatten"}, {"type": "linear", "out": 10}]
    return {"input": [3, 32, 32], "classes": 10, "layers": layers}


def logits(model_path: pathlib.Path, images_path: pathlib.Path, tmp_path: pathlib.Path, mode: str):
    environment = dict(os.environ, REPARO_WINOGRAD=mode, REPARO_CACHE_DIR=str(tmp_path / "cache"))
    batch, single = tmp_path / f"{mode}-batch.npy", tmp_path / f"{mode}-single.npy"
    subprocess.run([sys.executable, "-c", RUN, str(PACKAGE_ROOT), str(model_path), str(images_path), str(batch),
                    str(single)], env=environment, check=True, timeout=600)
    return np.load(batch), np.load(single)


@pytest.mark.parametrize("spec", [{"preset": "vgg16", "input": [3, 32, 32]}, vgg16_without_batchnorm()],
                         ids=["vgg16-preset", "vgg16-bn-folded"])
def test_winograd_on_equals_off_and_pytorch(spec: Dict[str, Any], tmp_path: pathlib.Path) -> None:
    model_path, images_path = tmp_path / "vgg16.safetensors", tmp_path / "images.npy"
    with reparo.Model.create(spec, seed=5) as model:
        model.save(model_path)
    images = np.random.default_rng(6).standard_normal((3, 3, 32, 32)).astype(np.float32)
    np.save(images_path, images)
    on, on_single = logits(model_path, images_path, tmp_path, "on")
    off, off_single = logits(model_path, images_path, tmp_path, "off")
    assert np.all(np.isfinite(on)) and float(np.max(np.abs(off))) > 0
    assert relative_error(on, off) <= TOLERANCE
    assert relative_error(on_single, off_single) <= TOLERANCE
    # Different summation orders: equal logits would mean the variable did not switch paths.
    assert not np.array_equal(on, off)

    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from reparo import torch_interop

    net = torch_interop.load_torch_model(model_path)
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    assert relative_error(on, expected) <= TOLERANCE
    assert relative_error(on_single, expected[:1]) <= TOLERANCE
