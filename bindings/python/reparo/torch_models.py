"""PyTorch definitions of Reparo's CIFAR presets, and of any Reparo spec. Imports torch.

``state_dict()`` keys and shapes equal the tensor names of Reparo model files (the mapping is
documented in :mod:`reparo.torch_interop`, which imports this module only when asked for a
PyTorch model):

- :class:`VGG` — CIFAR VGG-16 with BatchNorm (``features.<i>``, ``classifier``), any widths;
- :class:`CifarResNet` — CIFAR ResNet-20/56 with option-B projection shortcuts
  (``conv1``, ``bn1``, ``layer<s>.<b>.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}``,
  ``linear``), any widths;
- :class:`SpecNet` — any resolved Reparo spec (generic layer lists, folded BatchNorm,
  expanded ``<name>.factors.{0,1,2}`` chains);
- :func:`from_spec` — the first of these that matches a spec.

Every model computes what Reparo computes in eval mode (BatchNorm ε = 1e-5, floor-mode
pooling, flatten in C·H·W order).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .torch_interop import VGG16_PLAN, _preset_layers, _scaled, _vgg16_pools, resolve_spec

__all__ = ["VGG", "BasicBlock", "CifarResNet", "SpecNet", "vgg16", "cifar_resnet", "from_spec"]


class VGG(nn.Module):
    """CIFAR VGG-16 with BatchNorm: 13 × (conv3×3 → BN → ReLU) with a 2×2 max-pool after each
    of the 5 stages, flatten, ``classifier`` Linear. Module indices in ``features`` follow
    the common PyTorch CIFAR ``VGG('VGG16')`` (without its trailing parameterless
    ``AvgPool2d(1, 1)``).

    Args:
        widths: the 13 conv widths (default: 64 … 512 scaled by ``width`` as Reparo does).
        classes: outputs of the classifier.
        in_channels, input_size: the input [C, H, W] (the classifier takes C·H/32·W/32 inputs
            on 32×32 and larger; on smaller planes a pool is left out once the plane is 1×1,
            an ``Identity`` in its place, as Reparo's preset does).
        width: scale of the default widths (Reparo's preset ``"width"``).
        conv_bias: give every conv a bias (Reparo's preset has none; many PyTorch VGGs do).
    """

    def __init__(self, widths: Optional[Sequence[int]] = None, classes: int = 10, in_channels: int = 3,
                 input_size: Tuple[int, int] = (32, 32), width: float = 1.0, conv_bias: bool = False) -> None:
        super().__init__()
        if widths is None:
            widths = [_scaled(entry, width) for entry in VGG16_PLAN if entry is not None]
        widths = [int(w) for w in widths]
        if len(widths) != 13:
            raise ValueError(f"VGG-16 has 13 convs, got {len(widths)} widths")
        layers: List[nn.Module] = []
        channels, (height, width_) = in_channels, input_size
        remaining = iter(widths)
        pools = iter(_vgg16_pools(height, width_))
        for entry in VGG16_PLAN:
            if entry is None:
                if next(pools):
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                    height, width_ = height // 2, width_ // 2
                else:  # the plane is already 1×1 (Presets.swift); keeps the indices of 32×32
                    layers.append(nn.Identity())
            else:
                out = next(remaining)
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=conv_bias), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * height * width_, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """y = ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x)); ``shortcut`` is the identity
    (an empty ``nn.Sequential``) or a 1×1 conv (stride) + BN projection (option B).

    Args:
        in_planes, planes: input and middle widths; out_planes: output width (default planes;
            pruning with ``"residual": "coupled"`` makes it differ from a dense model's).
        projection: use the 1×1 conv + BN shortcut (default: when stride or width changes).
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, out_planes: Optional[int] = None,
                 projection: Optional[bool] = None) -> None:
        super().__init__()
        out_planes = planes if out_planes is None else out_planes
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        if projection is None:
            projection = stride != 1 or in_planes != out_planes
        self.shortcut = nn.Sequential()
        if projection:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet (He et al. 2016 §4.2): conv3×3 → BN → ReLU, three stages of basic blocks
    (widths 16, 32, 64; stride 2 entering stages 2 and 3), global average pooling, ``linear``.

    Args:
        depth: 6n + 2 (20 → 3 blocks per stage, 56 → 9).
        classes, in_channels: outputs and input channels.
        width: scale of the default widths (Reparo's preset ``"width"``).
        stem: width of ``conv1`` (default 16 scaled).
        blocks: per stage, per block ``(planes, out_planes, stride, projection)`` — the widths
            of a pruned model (default: the dense plan).
    """

    def __init__(self, depth: int = 20, classes: int = 10, in_channels: int = 3, width: float = 1.0,
                 stem: Optional[int] = None,
                 blocks: Optional[Sequence[Sequence[Tuple[int, int, int, bool]]]] = None) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        stem = _scaled(16, width) if stem is None else int(stem)
        if blocks is None:
            blocks, channels = [], stem
            for stage, base in enumerate((16, 32, 64)):
                out = _scaled(base, width)
                plan = []
                for index in range(n):
                    stride = 2 if stage > 0 and index == 0 else 1
                    plan.append((out, out, stride, stride != 1 or channels != out))
                    channels = out
                blocks.append(plan)
        if len(blocks) != 3 or any(len(stage) != n for stage in blocks):
            raise ValueError(f"blocks must give 3 stages of {n} blocks")
        self.conv1 = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        channels = stem
        for stage, plan in enumerate(blocks):
            layers = []
            for planes, out, stride, projection in plan:
                layers.append(BasicBlock(channels, int(planes), int(stride), int(out), bool(projection)))
                channels = int(out)
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
        self.linear = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def vgg16(classes: int = 10, width: float = 1.0, **options: Any) -> VGG:
    """Reparo's ``{"preset": "vgg16", "classes": classes, "width": width}`` in PyTorch."""
    return VGG(classes=classes, width=width, **options)


def cifar_resnet(depth: int = 20, classes: int = 10, width: float = 1.0, **options: Any) -> CifarResNet:
    """Reparo's ``{"preset": "resnet20"}`` (depth 20) or ``"resnet56"`` (depth 56) in PyTorch."""
    return CifarResNet(depth=depth, classes=classes, width=width, **options)


# --- any spec ------------------------------------------------------------------------------


class _Chain(nn.Module):
    """An expanded layer: ``factors`` 1×1 conv → k×k conv → 1×1 conv (or three linears)."""

    def __init__(self, first: nn.Module, middle: nn.Module, last: nn.Module) -> None:
        super().__init__()
        self.factors = nn.Sequential(first, middle, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factors(x)


class SpecNet(nn.Module):
    """Runs any resolved Reparo spec. Each conv/linear/BatchNorm layer is registered at its
    dotted name (``"layer1.0.conv1"`` → ``self.layer1[0].conv1``-like plain containers), so
    ``state_dict()`` keys are Reparo's tensor names. Activations stay 4-D (N, C, H, W), as in
    Reparo: flatten gives (N, C·H·W, 1, 1) and linear layers read C·H·W inputs."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__()
        self.spec = resolve_spec(spec)
        self._layers: Dict[str, nn.Module] = {}  # the same modules, by name (not registered twice)
        self._build(self.spec["layers"], tuple(self.spec["input"]))

    def _register(self, name: str, module: nn.Module) -> None:
        parts = name.split(".")
        if any(not part for part in parts):
            raise ValueError(f"layer name {name!r} has an empty component; PyTorch cannot register it")
        parent: nn.Module = self
        for part in parts[:-1]:
            child = parent._modules.get(part)
            if child is None:
                child = nn.Module()
                parent.add_module(part, child)
            elif child in self._layers.values():
                raise ValueError(f"layer name {name!r} nests under layer {part!r}; PyTorch cannot hold both")
            parent = child
        if parts[-1] in parent._modules:
            raise ValueError(f"layer name {name!r} is used twice")
        parent.add_module(parts[-1], module)
        self._layers[name] = module

    def _build(self, layers: List[Dict[str, Any]], shape: Tuple[int, int, int]) -> Tuple[int, int, int]:
        for layer in layers:
            c, h, w = shape
            kind, name = layer["type"], layer["name"]
            if kind == "conv":
                k, s, p, out = layer["kernel"], layer["stride"], layer["padding"], layer["out"]
                chain = layer.get("chain")
                if chain:
                    module: nn.Module = _Chain(nn.Conv2d(c, chain[0], 1, bias=False),
                                               nn.Conv2d(chain[0], chain[1], k, stride=s, padding=p, bias=False),
                                               nn.Conv2d(chain[1], out, 1, bias=layer["bias"]))
                else:
                    module = nn.Conv2d(c, out, k, stride=s, padding=p, bias=layer["bias"])
                self._register(name, module)
                shape = (out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
            elif kind == "linear":
                inputs, out, chain = c * h * w, layer["out"], layer.get("chain")
                if chain:
                    module = _Chain(nn.Linear(inputs, chain[0], bias=False), nn.Linear(chain[0], chain[1], bias=False),
                                    nn.Linear(chain[1], out, bias=layer["bias"]))
                else:
                    module = nn.Linear(inputs, out, bias=layer["bias"])
                self._register(name, module)
                shape = (out, 1, 1)
            elif kind == "batchnorm":
                self._register(name, nn.BatchNorm2d(c))
            elif kind in ("maxpool", "avgpool"):
                if kind == "avgpool" and not layer.get("kernel"):
                    shape = (c, 1, 1)
                else:
                    shape = (c, (h - layer["kernel"]) // layer["stride"] + 1, (w - layer["kernel"]) // layer["stride"] + 1)
            elif kind == "flatten":
                shape = (c * h * w, 1, 1)
            elif kind == "basic_block":
                out_shape = self._build(layer["main"], shape)
                self._build(layer["shortcut"], shape)
                shape = out_shape
        return shape

    def _run(self, layers: List[Dict[str, Any]], x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            kind = layer["type"]
            if kind in ("conv", "batchnorm"):
                x = self._layers[layer["name"]](x)
            elif kind == "linear":
                x = self._layers[layer["name"]](torch.flatten(x, 1))[:, :, None, None]
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "maxpool":
                x = F.max_pool2d(x, layer["kernel"], layer["stride"])
            elif kind == "avgpool":
                x = F.avg_pool2d(x, layer["kernel"], layer["stride"]) if layer.get("kernel") else x.mean((2, 3), keepdim=True)
            elif kind == "flatten":
                x = x.reshape(x.shape[0], -1, 1, 1)
            elif kind == "basic_block":
                main = self._run(layer["main"], x)
                x = F.relu(main + (self._run(layer["shortcut"], x) if layer["shortcut"] else x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self._run(self.spec["layers"], x), 1)


def _skeleton(layers: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The layers without their widths (conv/linear "out"), for comparing structures."""
    result = []
    for layer in layers:
        entry = {key: value for key, value in layer.items() if key not in ("out", "main", "shortcut")}
        if layer["type"] == "basic_block":
            entry["main"], entry["shortcut"] = _skeleton(layer["main"]), _skeleton(layer["shortcut"])
        result.append(entry)
    return result


def from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """A PyTorch model for a Reparo spec: :class:`VGG` or :class:`CifarResNet` with the spec's
    widths when the spec has the vgg16 / resnet20 / resnet56 structure and names (pruned and
    collapsed models keep them), else :class:`SpecNet`. Fresh weights."""
    spec = resolve_spec(spec)
    layers, classes = spec["layers"], spec["classes"]
    in_channels, height, width = spec["input"]
    convs = [layer for layer in layers if layer["type"] == "conv"]
    if len(convs) == 13 and len({layer["bias"] for layer in convs}) == 1:
        reference = _preset_layers("vgg16", classes, 1.0, spec["input"])
        for layer in reference:
            if layer["type"] == "conv":
                layer["bias"] = convs[0]["bias"]
        if _skeleton(layers) == _skeleton(reference):
            return VGG([layer["out"] for layer in convs], classes, in_channels, (height, width),
                       conv_bias=convs[0]["bias"])
    blocks = [layer for layer in layers if layer["type"] == "basic_block"]
    for preset, depth in (("resnet20", 20), ("resnet56", 56)):
        if _skeleton(layers) == _skeleton(_preset_layers(preset, classes, 1.0)):
            n = (depth - 2) // 6
            plan = [(block["main"][0]["out"], block["main"][3]["out"], block["main"][0]["stride"], bool(block["shortcut"]))
                    for block in blocks]
            return CifarResNet(depth, classes, in_channels, stem=layers[0]["out"],
                               blocks=[plan[i * n : (i + 1) * n] for i in range(3)])
    return SpecNet(spec)
