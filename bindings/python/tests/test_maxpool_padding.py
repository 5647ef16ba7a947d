"""Max pooling with padding, against PyTorch's ``nn.MaxPool2d(k, s, padding=p)`` (floor mode,
padded cells −∞): a network written here in PyTorch, exported to Reparo through torch_interop,
gives the same logits; a pruned Reparo model of the same spec loads back into PyTorch.

The pools sit right after a conv, before any ReLU, so their border windows hold negative
values: padding with zeros instead of −∞ would change the logits (checked below), and so would
any off-by-one in the window placement. Tolerance as in test_torch_interop.py: max |Δlogit| ≤
1e-4 · max |logit| (float32 on both sides, different summation orders; a pool reads no sums).
"""

from __future__ import annotations

import numpy as np
import pytest

import reparo
from reparo import spec as reparo_spec
from reparo import torch_interop

from conftest import relative_error
from test_torch_interop import assert_informative, moved, randomize

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
nn = torch.nn
F = torch.nn.functional

TOLERANCE = 1e-4

#: 3×15×14 → conv 7/2/3, BN → 6×8×7 → maxpool 3/2/1 → 4×4 → ReLU, conv 3/1/1, BN → 8×4×4
#: → maxpool 2/2/1 → 3×3 → maxpool 3/1/1 → 3×3 → flatten 72 → linear 5. (BatchNorm right
#: after each conv, so that pruning can narrow both.)
SPEC = {
    "input": [3, 15, 14],
    "classes": 5,
    "layers": [
        {"type": "conv", "name": "features.0", "out": 6, "kernel": 7, "stride": 2, "padding": 3, "bias": True},
        {"type": "batchnorm", "name": "features.1"},
        {"type": "maxpool", "name": "features.2", "kernel": 3, "stride": 2, "padding": 1},
        {"type": "relu", "name": "features.3"},
        {"type": "conv", "name": "features.4", "out": 8, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "name": "features.5"},
        {"type": "maxpool", "name": "features.6", "kernel": 2, "stride": 2, "padding": 1},
        {"type": "maxpool", "name": "features.7", "kernel": 3, "stride": 1, "padding": 1},
        {"type": "flatten", "name": "flatten"},
        {"type": "linear", "name": "classifier", "out": 5},
    ],
}


class PaddedPoolNet(nn.Module):
    """``SPEC`` in plain PyTorch (the state_dict keys are the spec's layer names)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 7, stride=2, padding=3, bias=True), nn.BatchNorm2d(6), nn.MaxPool2d(3, 2, padding=1),
            nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.MaxPool2d(2, 2, padding=1),
            nn.MaxPool2d(3, 1, padding=1))
        self.classifier = nn.Linear(72, 5)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def test_spec_shapes_are_pytorchs() -> None:
    shapes = reparo_spec.layer_shapes(SPEC)
    net = PaddedPoolNet().eval()
    x = torch.zeros(1, 3, 15, 14)
    for index, module in enumerate(net.features):
        x = module(x)
        assert shapes[f"features.{index}"][1] == tuple(x.shape[1:])
    resolved = reparo_spec.resolve_spec(SPEC)
    assert [layer.get("padding") for layer in resolved["layers"] if layer["type"] == "maxpool"] == [1, 1, 1]


def test_pytorch_model_gives_the_same_logits_in_reparo(tmp_path) -> None:
    torch.manual_seed(0)
    net = PaddedPoolNet()
    randomize(net, torch, seed=1)
    net.eval()
    torch_interop.export_state_dict(net, tmp_path / "padded.safetensors", SPEC)
    images = np.random.default_rng(2).standard_normal((4, 3, 15, 14)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
        # The test can fail: zero padding in the first pool gives other logits.
        stem = net.features[1](net.features[0](torch.from_numpy(images)))
        zero_padded = F.max_pool2d(F.pad(stem, (1, 1, 1, 1)), 3, 2)
        assert (zero_padded != net.features[2](stem)).any()
    with reparo.Model.load(tmp_path / "padded.safetensors") as model:
        actual = model.infer(images)
    assert_informative(expected)
    error = relative_error(actual, expected)
    print(f"padded max-pool: PyTorch → Reparo max relative logit error {error:.2e}")
    assert error <= TOLERANCE


def test_pruned_reparo_model_gives_the_same_logits_in_pytorch(tmp_path) -> None:
    """A few SGD steps (through the padded pools' backward), pruning (the spec keeps its padded
    pools), then loaded into PyTorch twice: the module torch_interop builds from the file's
    spec, and PaddedPoolNet narrowed to the file's widths."""
    with moved(SPEC) as dense, dense.prune(ratio=0.5) as model:
        model.save(tmp_path / "pruned.safetensors")
        images = np.random.default_rng(4).standard_normal((4, 3, 15, 14)).astype(np.float32)
        expected = model.infer(images)
    state_dict, spec = torch_interop.load_into_torch(tmp_path / "pruned.safetensors", with_spec=True)
    assert [layer.get("padding") for layer in spec["layers"] if layer["type"] == "maxpool"] == [1, 1, 1]
    widths = [int(state_dict["features.0.weight"].shape[0]), int(state_dict["features.4.weight"].shape[0])]
    assert widths == [3, 4]
    narrowed = PaddedPoolNet()
    narrowed.features[0] = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=True)
    narrowed.features[1] = nn.BatchNorm2d(widths[0])
    narrowed.features[4] = nn.Conv2d(widths[0], widths[1], 3, padding=1, bias=False)
    narrowed.features[5] = nn.BatchNorm2d(widths[1])
    narrowed.classifier = nn.Linear(widths[1] * 9, 5)
    for net in (torch_interop.build_torch_model(spec), narrowed):
        net.load_state_dict(state_dict, strict=True)
        net.eval()
        with torch.no_grad():
            actual = net(torch.from_numpy(images)).numpy()
        assert_informative(expected)
        error = relative_error(actual, expected)
        print(f"padded max-pool, pruned: Reparo → PyTorch ({type(net).__name__}) max relative logit error {error:.2e}")
        assert error <= TOLERANCE


def test_padding_beyond_half_the_window_and_on_average_pools_is_refused() -> None:
    def refused(layer):
        spec = {"input": [1, 8, 8], "classes": 4, "layers": [layer, {"type": "flatten"}, {"type": "linear", "out": 4}]}
        with pytest.raises(reparo.ReparoError) as caught:
            reparo_spec.resolve(spec)
        assert caught.value.status == reparo.Status.INVALID_ARGUMENT
        return caught.value.message

    # PyTorch refuses the same (pad should be at most half of effective kernel size).
    with pytest.raises(RuntimeError, match="half"):
        F.max_pool2d(torch.zeros(1, 1, 8, 8), 3, 1, 2)
    assert 'layer "pool": max-pool padding 2' in refused({"type": "maxpool", "name": "pool", "kernel": 3, "padding": 2})
    assert "padding" in refused({"type": "avgpool", "kernel": 2, "padding": 1})
