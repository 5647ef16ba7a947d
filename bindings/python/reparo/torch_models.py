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
pooling, flatten in C·H·W order). Layers, names and sizes (in_channels, in_features) come from
the engine's resolution of the spec (:func:`reparo.spec.resolve`), and each model checks its
``state_dict`` names and shapes against the engine's tensor table when it is built.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from . import spec as _spec
from .errors import ReparoError

__all__ = ["VGG", "BasicBlock", "CifarResNet", "SpecNet", "vgg16", "cifar_resnet", "from_spec"]

Shape = Sequence[int]


def _module(layer: Mapping[str, Any], input_shape: Shape) -> nn.Module:
    """The PyTorch module of a resolved conv, linear or batchnorm layer whose input has the
    engine's shape [C, H, W] (a linear layer reads C·H·W inputs); an expanded layer is a
    :class:`_Chain` of its three factors."""
    kind, channels = layer["type"], int(input_shape[0])
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    out, bias, chain = layer["out"], layer["bias"], layer.get("chain")
    if kind == "conv":
        k, s, p = layer["kernel"], layer["stride"], layer["padding"]
        if chain:
            return _Chain(nn.Conv2d(channels, chain[0], 1, bias=False),
                          nn.Conv2d(chain[0], chain[1], k, stride=s, padding=p, bias=False),
                          nn.Conv2d(chain[1], out, 1, bias=bias))
        return nn.Conv2d(channels, out, k, stride=s, padding=p, bias=bias)
    if kind != "linear":
        raise ValueError(f"layer {layer['name']!r}: a {kind} layer has no tensors")
    inputs = math.prod(int(v) for v in input_shape)
    if chain:
        return _Chain(nn.Linear(inputs, chain[0], bias=False), nn.Linear(chain[0], chain[1], bias=False),
                      nn.Linear(chain[1], out, bias=bias))
    return nn.Linear(inputs, out, bias=bias)


def _inputs(resolution: Mapping[str, Any]) -> Dict[str, Shape]:
    """Layer name → input shape [C, H, W], from :func:`reparo.spec.resolve`."""
    return {entry["name"]: entry["input"] for entry in resolution["layers"]}


def _check_names(module: nn.Module, resolution: Mapping[str, Any]) -> None:
    """The module's ``state_dict`` (without ``num_batches_tracked``) has exactly the engine's
    tensor names and shapes, so Reparo files load into it strictly."""
    ours = {name: list(value.shape) for name, value in module.state_dict().items()
            if not name.endswith("num_batches_tracked")}
    theirs = {entry["name"]: list(entry["shape"]) for entry in resolution["tensors"]}
    if ours != theirs:
        differing = sorted(name for name in set(ours) | set(theirs) if ours.get(name) != theirs.get(name))[:6]
        raise ValueError(f"{type(module).__name__} does not match the spec's tensors at {differing}")


class VGG(nn.Module):
    """CIFAR VGG-16 with BatchNorm: 13 × (conv3×3 → BN → ReLU) with a 2×2 max-pool after each
    of the 5 stages, flatten, ``classifier`` Linear. Module indices in ``features`` follow
    the common PyTorch CIFAR ``VGG('VGG16')`` (without its trailing parameterless
    ``AvgPool2d(1, 1)``). The layers, their names and sizes come from Reparo's ``vgg16``
    preset (:func:`reparo.spec.resolve`).

    Args:
        widths: the 13 conv widths (default: the preset's, 64 … 512 scaled by ``width``).
        classes: outputs of the classifier.
        in_channels, input_size: the input [C, H, W] (the classifier takes C·H/32·W/32 inputs
            on 32×32 and larger; on smaller planes a pool is left out once the plane is 1×1,
            as Reparo's preset does: an ``Identity`` in its place, or nothing at the end).
        width: scale of the default widths (Reparo's preset ``"width"``).
        conv_bias: give every conv a bias (Reparo's preset has none; many PyTorch VGGs do).
        spec: instead of the arguments above, a resolved spec with the vgg16 structure (a
            pruned model's, from its file).
    """

    def __init__(self, widths: Optional[Sequence[int]] = None, classes: int = 10, in_channels: int = 3,
                 input_size: Tuple[int, int] = (32, 32), width: float = 1.0, conv_bias: bool = False,
                 spec: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()
        if spec is None:
            spec = _spec.resolve_spec({"preset": "vgg16", "classes": classes, "input": [in_channels, *input_size],
                                       "width": width})
            convs = [layer for layer in spec["layers"] if layer["type"] == "conv"]
            if widths is not None:
                if len(widths) != len(convs):
                    raise ValueError(f"VGG-16 has {len(convs)} convs, got {len(widths)} widths")
                for layer, out in zip(convs, widths):
                    layer["out"] = int(out)
            for layer in convs:
                layer["bias"] = bool(conv_bias)
        resolution = _spec.resolve(spec)
        inputs = _inputs(resolution)
        features: Dict[int, nn.Module] = {}
        for layer in resolution["spec"]["layers"]:
            name, kind = layer["name"], layer["type"]
            if kind == "linear":
                self.classifier = _module(layer, inputs[name])
            elif kind != "flatten":  # features.<index>; a pool the preset leaves out is an Identity
                features[int(name.rsplit(".", 1)[1])] = (
                    nn.ReLU(inplace=True) if kind == "relu"
                    else nn.MaxPool2d(kernel_size=layer["kernel"], stride=layer["stride"],
                                      padding=layer.get("padding", 0)) if kind == "maxpool"
                    else _module(layer, inputs[name]))
        self.features = nn.Sequential(*(features.get(index, nn.Identity()) for index in range(max(features) + 1)))
        _check_names(self, resolution)

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
    The layers, their names and sizes come from Reparo's ``resnet20`` / ``resnet56`` preset
    (:func:`reparo.spec.resolve`).

    Args:
        depth: 20 (3 blocks per stage) or 56 (9), the depths Reparo has presets for.
        classes, in_channels: outputs and input channels.
        width: scale of the default widths (Reparo's preset ``"width"``).
        spec: instead of the arguments above, a resolved spec with the resnet20/56 structure
            (a pruned model's, from its file).

    Raises:
        ReparoError: INVALID_ARGUMENT for a depth without a Reparo preset.
    """

    def __init__(self, depth: int = 20, classes: int = 10, in_channels: int = 3, width: float = 1.0,
                 spec: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()
        if spec is None:
            spec = {"preset": f"resnet{depth}", "classes": classes, "input": [in_channels, 32, 32], "width": width}
        resolution = _spec.resolve(spec)
        inputs = _inputs(resolution)
        stages: Dict[str, List[nn.Module]] = {}
        for layer in resolution["spec"]["layers"]:
            name, kind = layer["name"], layer["type"]
            if kind == "basic_block":  # layer<s>.<b>
                convs = [entry for entry in layer["main"] if entry["type"] == "conv"]
                block = BasicBlock(int(inputs[name][0]), convs[0]["out"], convs[0]["stride"], convs[-1]["out"],
                                   projection=bool(layer["shortcut"]))
                stages.setdefault(name.split(".")[0], []).append(block)
            elif kind in ("conv", "batchnorm", "linear"):  # conv1, bn1, linear
                self.add_module(name, _module(layer, inputs[name]))
        for name, blocks in stages.items():
            self.add_module(name, nn.Sequential(*blocks))
        self._stages = list(stages)
        _check_names(self, resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        for stage in self._stages:
            out = getattr(self, stage)(out)
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
        resolution = _spec.resolve(spec)
        self.spec = resolution["spec"]
        self._layers: Dict[str, nn.Module] = {}  # the same modules, by name (not registered twice)
        inputs = _inputs(resolution)
        for layer in _spec.walk(self.spec["layers"]):
            if layer["type"] in ("conv", "linear", "batchnorm"):
                self._register(layer["name"], _module(layer, inputs[layer["name"]]))
        _check_names(self, resolution)

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
                x = F.max_pool2d(x, layer["kernel"], layer["stride"], layer.get("padding", 0))
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
    widths when the spec has the structure and names of Reparo's vgg16 / resnet20 / resnet56
    preset for its input (pruned and collapsed models keep them), else :class:`SpecNet`.
    Fresh weights."""
    spec = _spec.resolve_spec(spec)
    layers = spec["layers"]
    biases = {layer["bias"] for layer in _spec.walk(layers) if layer["type"] == "conv"}
    for preset, model in (("vgg16", VGG), ("resnet20", CifarResNet), ("resnet56", CifarResNet)):
        try:
            reference = _spec.resolve_spec({"preset": preset, "classes": spec["classes"], "input": spec["input"]})
        except ReparoError:  # the preset does not fit this input
            continue
        if preset == "vgg16" and len(biases) == 1:  # PyTorch VGGs often give every conv a bias
            for layer in reference["layers"]:
                if layer["type"] == "conv":
                    layer["bias"] = next(iter(biases))
        if _skeleton(layers) == _skeleton(reference["layers"]):
            return model(spec=spec)
    return SpecNet(spec)
