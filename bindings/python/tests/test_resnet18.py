"""The ImageNet ResNet-18 (He et al. 2016, torchvision's layout) is an ordinary Reparo spec.

The spec below is written layer by layer with torchvision's module names (``conv1``, ``bn1``,
``maxpool``, ``layer2.0.downsample.0``, ``fc``…): stem conv 7×7 stride 2 padding 3 → BN → ReLU
→ max-pool 3×3 stride 2 padding 1 → 4 stages of 2 basic blocks (1×1 conv + BN projection
where the stride or the width changes) → global average pool → flatten → linear. The PyTorch
model is defined here as torchvision defines it (randomly initialized, BatchNorm statistics
randomized, eval mode), on 3×64×64 images and 10 classes to keep the test fast. Its weights go
to Reparo through torch_interop and the logits must agree; then Reparo prunes it and the
pruned model must agree with PyTorch models built from its file.

Tolerance: max |Δlogit| ≤ 1e-4 · max |logit|, as in test_torch_interop.py (float32 on both
sides with different summation orders: ~1e-6 relative per layer, ≲ 1e-5 over 18 layers; a
wrong stride, padding, tensor or BatchNorm statistic moves the logits by their own scale).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import pytest

import reparo
from reparo import spec as reparo_spec
from reparo import torch_interop

from conftest import relative_error
from test_torch_interop import assert_informative, randomize

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
nn = torch.nn

TOLERANCE = 1e-4
INPUT = [3, 64, 64]
CLASSES = 10
WIDTHS = [64, 128, 256, 512]


def resnet18_spec() -> Dict[str, Any]:
    """The JSON spec of torchvision's ``resnet18(num_classes=10)`` on 3×64×64 inputs."""
    layers: List[Dict[str, Any]] = [
        {"type": "conv", "name": "conv1", "out": 64, "kernel": 7, "stride": 2, "padding": 3, "bias": False},
        {"type": "batchnorm", "name": "bn1"},
        {"type": "relu", "name": "relu"},
        {"type": "maxpool", "name": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
    ]
    channels = 64
    for stage, width in enumerate(WIDTHS, start=1):
        for index in range(2):
            stride = 2 if stage > 1 and index == 0 else 1
            name = f"layer{stage}.{index}"
            shortcut = []
            if stride != 1 or channels != width:
                shortcut = [
                    {"type": "conv", "name": f"{name}.downsample.0", "out": width, "kernel": 1, "stride": stride,
                     "padding": 0, "bias": False},
                    {"type": "batchnorm", "name": f"{name}.downsample.1"},
                ]
            layers.append({"type": "basic_block", "name": name, "main": [
                {"type": "conv", "name": f"{name}.conv1", "out": width, "kernel": 3, "stride": stride, "padding": 1,
                 "bias": False},
                {"type": "batchnorm", "name": f"{name}.bn1"},
                {"type": "relu", "name": f"{name}.relu"},
                {"type": "conv", "name": f"{name}.conv2", "out": width, "kernel": 3, "stride": 1, "padding": 1,
                 "bias": False},
                {"type": "batchnorm", "name": f"{name}.bn2"},
            ], "shortcut": shortcut})
            channels = width
    layers += [
        {"type": "avgpool", "name": "avgpool"},
        {"type": "flatten", "name": "flatten"},
        {"type": "linear", "name": "fc", "out": CLASSES, "bias": True},
    ]
    return {"input": INPUT, "classes": CLASSES, "layers": layers}


# --- torchvision's ResNet-18, written out (torchvision itself is not a dependency) ------------


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, with separate middle and output widths (pruning
    narrows conv1's output; a coupled pruning also narrows the block's output)."""

    def __init__(self, inplanes: int, planes: int, outplanes: int, stride: int, downsample: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, outplanes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outplanes)
        self.downsample = None
        if downsample:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(outplanes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18: the same module tree, names and forward.

    Args:
        shapes: tensor name → shape of a (pruned) model, to take every width from; None for
            the dense widths.
    """

    def __init__(self, classes: int = CLASSES, shapes: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()

        def out(name: str, default: int) -> int:
            return int(shapes[f"{name}.weight"][0]) if shapes is not None else default

        stem = out("conv1", 64)
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = stem
        for stage, width in enumerate(WIDTHS, start=1):
            blocks = []
            for index in range(2):
                name = f"layer{stage}.{index}"
                stride = 2 if stage > 1 and index == 0 else 1
                downsample = (stride != 1 or channels != width) if shapes is None else f"{name}.downsample.0.weight" in shapes
                outplanes = out(f"{name}.conv2", width)
                blocks.append(BasicBlock(channels, out(f"{name}.conv1", width), outplanes, stride, downsample))
                channels = outplanes
            self.add_module(f"layer{stage}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def images(seed: int, count: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, *INPUT)).astype(np.float32)


@pytest.fixture(scope="module")
def dense_file(tmp_path_factory):
    """The random PyTorch ResNet-18 (eval mode) and its weights as a Reparo file."""
    torch.manual_seed(0)
    net = ResNet18()
    randomize(net, torch, seed=1)
    net.eval()
    path = tmp_path_factory.mktemp("resnet18") / "resnet18.safetensors"
    torch_interop.export_state_dict(net, path, resnet18_spec())
    return net, path


def test_spec_has_torchvisions_tensors_and_shapes() -> None:
    net = ResNet18()
    expected = {name: tuple(value.shape) for name, value in net.state_dict().items()
                if not name.endswith("num_batches_tracked")}
    assert dict(reparo_spec.expected_tensors(resnet18_spec())) == expected
    shapes = reparo_spec.layer_shapes(resnet18_spec())
    assert shapes["conv1"][1] == (64, 32, 32)
    assert shapes["maxpool"][1] == (64, 16, 16)
    assert shapes["layer4.1"][1] == (512, 2, 2)
    # The resolved spec is the one written above, every size already explicit.
    assert reparo_spec.resolve_spec(resnet18_spec()) == dict(resnet18_spec(), state="dense")


def test_pytorch_resnet18_gives_the_same_logits_in_reparo(dense_file) -> None:
    net, path = dense_file
    batch = images(seed=2)
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
        # The stem alone, against PyTorch: conv 7×7/2/3 (then BN, ReLU) and max-pool 3×3/2/1.
        stem = net.maxpool(net.relu(net.bn1(net.conv1(torch.from_numpy(batch))))).numpy()
    with reparo.Model.load(path) as model:
        assert model.describe()["parameters"] == sum(p.numel() for p in net.parameters())
        actual = model.infer(batch)
    assert_informative(expected)
    error = relative_error(actual, expected)
    print(f"ResNet-18: PyTorch → Reparo max relative logit error {error:.2e}")
    assert error <= TOLERANCE

    stem_spec = dict(resnet18_spec(), classes=64 * 16 * 16)
    stem_spec["layers"] = stem_spec["layers"][:4] + [{"type": "flatten", "name": "flatten"}]
    stem_tensors = {name: value for name, value in net.state_dict().items() if name.split(".")[0] in ("conv1", "bn1")}
    torch_interop.export_state_dict(stem_tensors, path.parent / "stem.safetensors", stem_spec)
    with reparo.Model.load(path.parent / "stem.safetensors") as model:
        stem_error = relative_error(model.infer(batch), stem.reshape(len(batch), -1))
    print(f"ResNet-18 stem: max relative error {stem_error:.2e}")
    assert stem_error <= TOLERANCE


@pytest.mark.parametrize("residual", ["block", "coupled"])
def test_pruned_resnet18_runs_and_matches_pytorch(dense_file, residual: str, tmp_path) -> None:
    _, path = dense_file
    batch = images(seed=3)
    with reparo.Model.load(path) as dense, dense.prune(ratio=0.5, residual=residual) as pruned:
        dense_parameters = dense.describe()["parameters"]
        description = pruned.describe()
        assert description["parameters"] < 0.6 * dense_parameters
        expected = pruned.infer(batch)
        assert expected.shape == (len(batch), CLASSES) and np.isfinite(expected).all()
        pruned.save(tmp_path / "pruned.safetensors")
    state_dict, spec = torch_interop.load_into_torch(tmp_path / "pruned.safetensors", with_spec=True)
    pool = [layer for layer in spec["layers"] if layer["type"] == "maxpool"]
    assert pool == [{"type": "maxpool", "name": "maxpool", "kernel": 3, "stride": 2, "padding": 1}]
    assert state_dict["layer1.0.conv1.weight"].shape[0] == 32
    assert (state_dict["layer1.0.conv2.weight"].shape[0] < 64) == (residual == "coupled")
    shapes = {name: tuple(value.shape) for name, value in state_dict.items()}
    # A PyTorch model from the file's spec (torch_interop), and torchvision's layout narrowed
    # to the file's widths: both load it strictly and give Reparo's logits.
    for net in (torch_interop.build_torch_model(spec), ResNet18(shapes=shapes)):
        net.load_state_dict(state_dict, strict=True)
        net.eval()
        assert sum(p.numel() for p in net.parameters()) == description["parameters"]
        with torch.no_grad():
            actual = net(torch.from_numpy(batch)).numpy()
        assert_informative(expected)
        error = relative_error(actual, expected)
        print(f"ResNet-18 pruned ({residual}): Reparo → PyTorch ({type(net).__name__}) max relative error {error:.2e}")
        assert error <= TOLERANCE
