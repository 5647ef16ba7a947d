"""PyTorch → ONNX → Reparo → ONNX round trips (issue 18, "Round trip, tested"): a CNN defined
here in PyTorch, randomly initialized with randomized BatchNorm statistics, is exported by
``torch.onnx.export``, imported by Reparo (logits against PyTorch's), pruned, expanded,
fine-tuned a few SP-KD steps against the imported dense model, collapsed, exported again,
checked with ``onnx.checker`` and run in onnxruntime (logits against ``Model.infer``).

Models: torchvision's ResNet-18 (ImageNet stem), the CIFAR VGG-16 and ResNet-56 of Reparo's
presets, the Fashion-MNIST main job's teacher (VGG-16 at width 0.25 on 1×28×28), and a model
pruned in PyTorch before export (imported with ``state="pruned"``). Also runs the independent
must-show script (``scripts/onnx_must_show.py``: an ``onnx.helper`` graph through the raw C ABI).
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import pytest

import reparo

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[3]

#: Bound on the scaled logit error max |a − b| / max(1, max |b|). Both sides compute in
#: float32 and sum each conv's products in another order (PyTorch's oneDNN or onnxruntime's
#: MLAS against Reparo's kernels), and the exporters fold BatchNorm into the conv weights,
#: which Reparo then runs as given. Over these depths (up to 56 convs) that rounding is of
#: order 1e-6 of the logits' scale; a wrong pad, stride, transposition, dropped bias or
#: mis-wired shortcut moves logits by far more than 1e-4.
TOLERANCE = 1e-4

#: The dynamo exporter (torch 2.x's default) needs onnxscript; the legacy one does not.
HAS_ONNXSCRIPT = importlib.util.find_spec("onnxscript") is not None
needs_dynamo = pytest.mark.skipif(not HAS_ONNXSCRIPT, reason="torch.onnx.export (dynamo) needs onnxscript")


def scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual − expected| / max(1, max |expected|): absolute for logits below 1, relative
    to the largest logit above."""
    expected64 = np.asarray(expected, np.float64)
    difference = np.max(np.abs(np.asarray(actual, np.float64) - expected64))
    return float(difference / max(1.0, float(np.max(np.abs(expected64)))))


# --- the PyTorch models (written here, independent of Reparo's own torch_models) ---------


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut), the
    shortcut a 1×1 conv (stride) + BN ``downsample`` when the shape changes, else the identity."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(in_planes, planes, stride), *(BasicBlock(planes, planes) for _ in range(blocks - 1)))


class ResNet18(nn.Module):
    """torchvision's ``resnet18`` layout and module names: conv 7×7 s2 p3 → BN → ReLU →
    MaxPool 3×3 s2 p1 → 4 stages × 2 blocks (64, 128, 256, 512; stride 2 entering stages 2–4)
    → AdaptiveAvgPool(1) → flatten → fc."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = stage(64, 64, 2, 1)
        self.layer2 = stage(64, 128, 2, 2)
        self.layer3 = stage(128, 256, 2, 2)
        self.layer4 = stage(256, 512, 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class CifarResNet(nn.Module):
    """CIFAR ResNet-(6n+2) (He et al. 2016 §4.2) with 1×1-conv projection shortcuts, as
    Reparo's resnet56 preset: conv3×3 16 → BN → ReLU → 3 stages × n blocks (16, 32, 64) →
    average pool over the whole 8×8 plane (``F.avg_pool2d(x, 8)``, the common CIFAR code)
    → flatten → linear."""

    def __init__(self, blocks: int = 9, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = stage(16, 16, blocks, 1)
        self.layer2 = stage(16, 32, blocks, 2)
        self.layer3 = stage(32, 64, blocks, 2)
        self.linear = nn.Linear(64, classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(F.avg_pool2d(x, x.shape[3]), 1))


VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG(nn.Module):
    """A VGG with BatchNorm: stages of conv3×3 p1 → BN → ReLU, a 2×2 max-pool after each stage
    while the plane is at least 2×2 (Reparo's vgg16 preset leaves out the pools that would
    go below 1×1, e.g. the fifth on 28×28), flatten, ``classifier`` linear."""

    def __init__(self, stages: Sequence[Sequence[int]], in_channels: int = 3, size: int = 32,
                 classes: int = 10) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        channels = in_channels
        for widths in stages:
            for width in widths:
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                channels = width
            if size >= 2:
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * size * size, classes)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.classifier(torch.flatten(self.features(x), 1))


def randomized(net: nn.Module, seed: int, input_shape: Sequence[int]) -> nn.Module:
    """The model in eval mode with random BatchNorm statistics and affine parameters (fresh
    ones are the identity, which would hide a wrong fold or a missing BN), and its last
    linear layer scaled so the largest logit on random images is 5: PyTorch's default
    initialization gives logits of 0.2–0.7 here, where the tolerance (absolute below 1)
    would be loose; at 5 it is relative to the logits."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                count = module.num_features
                module.running_mean.copy_(0.2 * torch.randn(count, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(count, generator=generator))
                module.weight.copy_(0.5 + torch.rand(count, generator=generator))
                module.bias.copy_(0.2 * torch.randn(count, generator=generator))
        net.eval()
        classifier = [module for module in net.modules() if isinstance(module, nn.Linear)][-1]
        probe = torch.randn((8, *input_shape), generator=generator)
        scale = 5.0 / float(net(probe).abs().max())
        classifier.weight.mul_(scale)
        classifier.bias.mul_(scale)
    return net


def torch_logits(net: nn.Module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(images)).numpy()


def export_torch(net: nn.Module, path: pathlib.Path, input_shape: Sequence[int], dynamo: bool) -> List[str]:
    """``torch.onnx.export`` with a dynamic batch axis, by the dynamo exporter (torch's
    default: weights in an external ``<path>.data`` file) or the legacy TorchScript one
    (weights inside). Returns the graph's op types."""
    example = torch.zeros((2, *input_shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(net, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=dynamo,
                          **({"verbose": False} if dynamo else {}))
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def random_images(rng: np.random.Generator, batch: int, shape: Sequence[int]) -> np.ndarray:
    return rng.standard_normal((batch, *shape)).astype(np.float32)


def import_checked(net: nn.Module, input_shape: Sequence[int], directory: pathlib.Path, dynamo: bool,
                   rng: np.random.Generator, name: str = "dense", **options: str) -> Tuple[reparo.Model, float]:
    """Exports ``net``, imports the file into Reparo and checks logits against PyTorch at batch
    1 and 3. Returns the model and the scaled error."""
    path = directory / f"{name}.onnx"
    export_torch(net, path, input_shape, dynamo)
    model = reparo.Model.import_onnx(path, **options)
    assert tuple(model.input_shape) == tuple(input_shape)
    error = 0.0
    for batch in (1, 3):
        images = random_images(rng, batch, input_shape)
        expected = torch_logits(net, images)
        actual = model.infer(images)
        assert actual.shape == expected.shape
        error = max(error, scaled_error(actual, expected))
    assert error <= TOLERANCE, f"{name}: imported logits differ from PyTorch's by {error:.2e} (scaled)"
    return model, error


def restore_and_serve(student: reparo.Model, teacher: reparo.Model, directory: pathlib.Path,
                      rng: np.random.Generator, steps: int = 2, batch: int = 4) -> float:
    """Expands the pruned ``student``, fine-tunes it ``steps`` SP-KD steps against ``teacher``
    on one small random batch, collapses it, exports it to ONNX and checks the file with
    ``onnx.checker`` and onnxruntime against ``Model.infer`` (batch 1 and 5). Returns the
    scaled error."""
    shape = tuple(student.input_shape)
    compact = student.parameter_count
    assert compact < teacher.parameter_count
    student.expand(rate=2)
    assert student.state == "expanded" and student.parameter_count > compact
    images = random_images(rng, batch, shape)
    labels = rng.integers(0, student.classes, batch)
    before = student.infer(images)
    with reparo.Trainer(student, teacher, lr=0.01, momentum=0.9, kd_weight=300.0, seed=0) as trainer:
        results = [trainer.step(images, labels) for _ in range(steps)]
    assert all(result.kd_loss > 0 and np.isfinite(result.loss) for result in results), results
    assert scaled_error(student.infer(images), before) > 1e-6  # the steps moved the model
    student.collapse()
    assert student.state == "collapsed" and student.parameter_count == compact

    path = directory / "restored.onnx"
    student.export_onnx(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    error = 0.0
    for count in (1, 5):
        images = random_images(rng, count, shape)
        (logits,) = session.run(["logits"], {"input": images})
        error = max(error, scaled_error(logits, student.infer(images)))
    assert error <= TOLERANCE, f"onnxruntime's logits differ from Model.infer by {error:.2e} (scaled)"
    return error


def round_trip(net: nn.Module, input_shape: Sequence[int], directory: pathlib.Path, dynamo: bool,
               seed: int) -> reparo.Model:
    """PyTorch → ONNX → Reparo (checked) → prune 0.5 → :func:`restore_and_serve`. Returns the
    imported dense model (open; the caller closes it)."""
    rng = np.random.default_rng(seed)
    dense, import_error = import_checked(randomized(net, seed, input_shape), input_shape, directory, dynamo, rng)
    assert dense.state == "dense"
    with dense.prune(ratio=0.5) as student:
        serve_error = restore_and_serve(student, dense, directory, rng)
    print(f"{type(net).__name__} ({'dynamo' if dynamo else 'legacy'}): import vs PyTorch {import_error:.1e}, "
          f"restored export in onnxruntime vs Model.infer {serve_error:.1e}")
    return dense


# --- the round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("dynamo", [pytest.param(True, marks=needs_dynamo), False], ids=["dynamo", "legacy"])
def test_resnet18(dynamo: bool, tmp_path: pathlib.Path) -> None:
    """torchvision's ResNet-18 with its ImageNet stem (7×7 s2 conv, 3×3 s2 p1 max-pool) on
    3×64×64 rather than 224×224, to keep the test suite's time low; every layer, kernel,
    stride and padding is the ImageNet model's (the plane ends at 2×2 instead of 7×7)."""
    torch.manual_seed(18)
    with round_trip(ResNet18(), (3, 64, 64), tmp_path, dynamo, seed=18) as dense:
        convs = [layer for layer in dense.describe()["layers"] if layer["type"] == "conv"]
    assert len(convs) == 20  # stem + 16 in the blocks + 3 downsample
    assert convs[0]["weight"] == [64, 3, 7, 7]


@needs_dynamo
def test_vgg16(tmp_path: pathlib.Path) -> None:
    """VGG-16 with BatchNorm for CIFAR (Reparo's vgg16 preset), 3×32×32."""
    torch.manual_seed(16)
    with round_trip(VGG(VGG16_STAGES), (3, 32, 32), tmp_path, dynamo=True, seed=16) as dense:
        preset_shapes(dense, {"preset": "vgg16", "input": [3, 32, 32]})


@needs_dynamo
def test_resnet56(tmp_path: pathlib.Path) -> None:
    """CIFAR ResNet-56 (Reparo's resnet56 preset, projection shortcuts), 3×32×32."""
    torch.manual_seed(56)
    with round_trip(CifarResNet(blocks=9), (3, 32, 32), tmp_path, dynamo=True, seed=56) as dense:
        preset_shapes(dense, {"preset": "resnet56", "input": [3, 32, 32]})


@needs_dynamo
def test_fashion_mnist_main_job_model(tmp_path: pathlib.Path) -> None:
    """The Fashion-MNIST main job's teacher (scripts/reproduce.sh: VGG-16 at width 0.25 on
    1×28×28, where the fifth pool is left out), restored and exported."""
    torch.manual_seed(28)
    stages = [[width // 4 for width in widths] for widths in VGG16_STAGES]
    with round_trip(VGG(stages, in_channels=1, size=28), (1, 28, 28), tmp_path, dynamo=True, seed=28) as dense:
        preset_shapes(dense, {"preset": "vgg16", "width": 0.25, "input": [1, 28, 28]})


def preset_shapes(imported: reparo.Model, spec: dict) -> None:
    """The imported model's conv and linear weights have the shapes of Reparo's own preset
    (the PyTorch definition here is the network the preset names)."""
    def weights(model: reparo.Model) -> List[List[int]]:
        return [layer["weight"] for layer in model.describe()["layers"] if layer["type"] in ("conv", "linear")]

    with reparo.Model.create(spec) as preset:
        assert weights(imported) == weights(preset)


# --- a model the user pruned in PyTorch --------------------------------------------------


SMALL_VGG_STAGES = ((32, 32), (64, 64), (128,))


def prune_in_torch(net: VGG, keep: float) -> VGG:
    """A copy of ``net`` with the filters of largest L1 norm kept in every conv (``keep`` of
    them), the BN channels, the next conv's input channels and the classifier's columns
    selected to match: the structured pruning a user does in PyTorch before export."""
    convs = [module for module in net.features if isinstance(module, nn.Conv2d)]
    norms = [module for module in net.features if isinstance(module, nn.BatchNorm2d)]
    stages = []
    kept: List["torch.Tensor"] = []
    for conv in convs:
        count = max(1, int(round(conv.out_channels * keep)))
        kept.append(torch.sort(torch.argsort(conv.weight.abs().sum((1, 2, 3)), descending=True)[:count]).values)
    index = 0
    for widths in SMALL_VGG_STAGES:
        stages.append([len(kept[index + offset]) for offset in range(len(widths))])
        index += len(widths)
    pruned = VGG(stages, in_channels=convs[0].in_channels, size=32, classes=net.classifier.out_features)
    new_convs = [module for module in pruned.features if isinstance(module, nn.Conv2d)]
    new_norms = [module for module in pruned.features if isinstance(module, nn.BatchNorm2d)]
    with torch.no_grad():
        previous = torch.arange(convs[0].in_channels)
        for conv, norm, new_conv, new_norm, rows in zip(convs, norms, new_convs, new_norms, kept):
            new_conv.weight.copy_(conv.weight[rows][:, previous])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(new_norm, name).copy_(getattr(norm, name)[rows])
            previous = rows
        plane = net.classifier.in_features // convs[-1].out_channels
        columns = net.classifier.weight.reshape(net.classifier.out_features, convs[-1].out_channels, plane)
        pruned.classifier.weight.copy_(columns[:, previous].reshape(net.classifier.out_features, -1))
        pruned.classifier.bias.copy_(net.classifier.bias)
    return pruned.eval()


@pytest.mark.parametrize("dynamo", [pytest.param(True, marks=needs_dynamo), False], ids=["dynamo", "legacy"])
def test_model_pruned_in_pytorch_is_restored(dynamo: bool, tmp_path: pathlib.Path) -> None:
    """"Restore the user's own pruned models": a VGG-style net with half its filters removed
    in PyTorch is imported with state "pruned" and restored (expand, SP-KD against the
    imported dense model, collapse, export) — both PyTorch models exported the same way, so
    their layers get the same names and SP-KD pairs them."""
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    dense_net = randomized(VGG(SMALL_VGG_STAGES), 7, (3, 32, 32))
    pruned_net = prune_in_torch(dense_net, keep=0.5)
    # The pruning is real: fewer filters, other logits, the kept filters unchanged.
    images = random_images(rng, 4, (3, 32, 32))
    assert scaled_error(torch_logits(pruned_net, images), torch_logits(dense_net, images)) > 1e-3
    assert [m.out_channels for m in pruned_net.features if isinstance(m, nn.Conv2d)] == [16, 16, 32, 32, 64]

    dense, _ = import_checked(dense_net, (3, 32, 32), tmp_path, dynamo, rng, name="dense")
    with dense:
        student, import_error = import_checked(pruned_net, (3, 32, 32), tmp_path, dynamo, rng, name="pruned",
                                               state="pruned")
        with student:
            assert student.state == "pruned"
            names = [layer["name"] for layer in student.describe()["layers"] if layer["type"] in ("conv", "linear")]
            assert names == [layer["name"] for layer in dense.describe()["layers"] if layer["type"] in ("conv", "linear")]
            serve_error = restore_and_serve(student, dense, tmp_path, rng)
    print(f"pruned in PyTorch ({'dynamo' if dynamo else 'legacy'}): import vs PyTorch {import_error:.1e}, "
          f"restored export in onnxruntime vs Model.infer {serve_error:.1e}")


# --- the independent must-show script -----------------------------------------------------


def test_must_show_script(tmp_path: pathlib.Path) -> None:
    """scripts/onnx_must_show.py (onnx.helper graph → raw ctypes C ABI → onnxruntime) passes."""
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "onnx_must_show.py"), "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout and "FAIL" not in run.stdout, run.stdout
    assert sorted(path.name for path in tmp_path.glob("*.onnx")) == ["must_show.onnx", "must_show_pruned.onnx"]
