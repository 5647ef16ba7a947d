"""Moving weights between PyTorch and Reparo.

Reparo saves safetensors files (F32) whose tensor names are PyTorch ``state_dict`` keys, with
the model's resolved spec in the metadata (``{"format": "reparo", "spec": "<JSON>"}``). This
module writes such files from a PyTorch ``state_dict`` (:func:`export_state_dict`) and reads
Reparo's files back into one (:func:`load_into_torch`), with the architecture taken from the
spec. Only the functions marked *torch* import torch, and only when called; the rest needs
numpy alone. The PyTorch module definitions live in :mod:`reparo.torch_models`.

Name mapping (Reparo spec layer → PyTorch ``state_dict`` keys; identical strings)
=================================================================================

Every conv/linear/BatchNorm layer of a spec has a ``name``; its tensors are
``<name>.weight`` / ``<name>.bias`` (conv ``[out, in, k, k]``, linear ``[out, in]``) and, for
BatchNorm, ``<name>.{weight,bias,running_mean,running_var}``. PyTorch's
``<bn>.num_batches_tracked`` is not stored: :func:`export_state_dict` drops it and
:func:`load_into_torch` puts it back as 0. An expanded (not yet collapsed) layer stores
``<name>.factors.{0,1,2}.weight`` and, with a bias, ``<name>.factors.2.bias``.

``vgg16`` preset (CIFAR VGG-16 with BatchNorm, as the common PyTorch CIFAR ``VGG('VGG16')``)::

    features.0   Conv2d(3, 64, 3, padding=1, bias=False)     features.1   BatchNorm2d(64)
    features.2   ReLU                                        features.3   Conv2d(64, 64, ...)
    ...          conv i → features.<j>, BN → features.<j+1>, ReLU → features.<j+2>,
                 MaxPool2d(2, 2) → features.<j> after each stage (j = 6, 13, 23, 33, 43)
    classifier   Linear(512, classes)                        (after flattening [512, 1, 1])

  On an input smaller than 32×32 a pool is left out once the plane is 1×1 (1×28×28, as
  Fashion-MNIST: planes 14, 7, 3, 1 and no pool ``features.43``; PyTorch holds an
  ``Identity`` there), so every other name stays as at 32×32.

  Conv widths 64 64 | 128 128 | 256 256 256 | 512 512 512 | 512 512 512, each scaled by the
  spec's ``width`` (rounded half away from zero, at least 1). PyTorch CIFAR VGGs usually give
  their convs a bias: :func:`export_state_dict` then sets ``"bias": true`` on those convs of
  the resolved spec (a trailing parameterless ``AvgPool2d(1, 1)`` is ignored, as it has no
  tensors).

``resnet20`` / ``resnet56`` presets (He et al. 2016, CIFAR; 3 and 9 blocks per stage)::

    conv1 Conv2d(3, 16, 3, padding=1, bias=False), bn1, relu
    layer{1,2,3}.{b}.conv1   Conv2d(in, w, 3, stride, padding=1, bias=False)   w = 16, 32, 64
    layer{s}.{b}.bn1, .relu, .conv2 Conv2d(w, w, 3, padding=1, bias=False), .bn2
    layer{s}.{b}.shortcut.0  Conv2d(in, w, 1, stride, bias=False)   option B projection, only
    layer{s}.{b}.shortcut.1  BatchNorm2d(w)                         where stride or width change
    avgpool (global), flatten, linear Linear(64, classes)
    block output: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))

  The ``layer{s}.0`` block of stages 2 and 3 has stride 2. PyTorch CIFAR ResNets with the
  *option A* shortcut (zero-padding, no tensors) are a different function and cannot be
  mapped onto these presets.

Pruned and collapsed models keep these names with smaller widths (``reparo_prune`` removes
filters; ``"residual": "coupled"`` also narrows block outputs and shortcuts).
:func:`load_into_torch` returns the ``state_dict`` and :func:`build_torch_model` a PyTorch
module with exactly those widths, built from the spec in the file.

Example::

    from reparo import torch_interop
    from reparo.torch_models import cifar_resnet

    net = cifar_resnet(20).eval()                         # or your trained PyTorch model
    torch_interop.export_state_dict(net, "r20.safetensors", "resnet20")
    # ... reparo.Model.load("r20.safetensors") → prune, expand, fine-tune, collapse, save ...
    state_dict, spec = torch_interop.load_into_torch("pruned.safetensors", with_spec=True)
    pruned = torch_interop.build_torch_model(spec)        # the pruned widths, same names
    pruned.load_state_dict(state_dict)
"""

from __future__ import annotations

import collections
import json
import math
import os
import struct
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "PRESETS",
    "resolve_spec",
    "expected_tensors",
    "fit_spec_to_tensors",
    "export_state_dict",
    "read_file",
    "write_file",
    "load_into_torch",
    "build_torch_model",
    "load_torch_model",
]

PathLike = Union[str, "os.PathLike[str]"]
Spec = Dict[str, Any]

PRESETS = ("vgg16", "resnet20", "resnet56")
STATES = ("dense", "pruned", "expanded", "collapsed")

#: VGG-16's plan: conv widths, and None for a 2×2 max-pool (Presets.swift).
VGG16_PLAN: Tuple[Optional[int], ...] = (
    64, 64, None, 128, 128, None, 256, 256, 256, None, 512, 512, 512, None, 512, 512, 512, None,
)


# --- specs ---------------------------------------------------------------------------------


def _scaled(channels: int, width: float) -> int:
    """Presets.swift: max(1, Int((Double(channels) * width).rounded())), i.e. half away from 0."""
    return max(1, int(math.floor(channels * width + 0.5)))


def _conv(name: str, out: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = False) -> Spec:
    return {"type": "conv", "name": name, "out": out, "kernel": kernel, "stride": stride, "padding": padding,
            "bias": bias}


def _basic_block(name: str, in_channels: int, out: int, stride: int) -> Spec:
    """SpecParser.basicBlock: conv3×3(stride)-BN-ReLU-conv3×3-BN, plus a 1×1 conv + BN
    projection shortcut when the stride or the width changes."""
    shortcut: List[Spec] = []
    if stride != 1 or in_channels != out:
        shortcut = [_conv(f"{name}.shortcut.0", out, 1, stride, 0), {"type": "batchnorm", "name": f"{name}.shortcut.1"}]
    return {
        "type": "basic_block",
        "name": name,
        "main": [
            _conv(f"{name}.conv1", out, 3, stride, 1),
            {"type": "batchnorm", "name": f"{name}.bn1"},
            {"type": "relu", "name": f"{name}.relu"},
            _conv(f"{name}.conv2", out, 3, 1, 1),
            {"type": "batchnorm", "name": f"{name}.bn2"},
        ],
        "shortcut": shortcut,
    }


def _vgg16_pools(height: int, width: int) -> List[bool]:
    """For each of VGG-16's five max-pools, whether it is there (Presets.swift): a pool is
    left out once the plane is down to 1×1 (on 28×28: 14, 7, 3, 1, and no fifth pool)."""
    present = []
    for _ in range(5):
        present.append(height >= 2 and width >= 2)
        if present[-1]:
            height, width = height // 2, width // 2
    return present


def _preset_layers(preset: str, classes: int, width: float,
                   input_shape: Sequence[int] = (3, 32, 32)) -> List[Spec]:
    if preset == "vgg16":
        layers: List[Spec] = []
        index = 0
        pools = iter(_vgg16_pools(int(input_shape[1]), int(input_shape[2])))
        for entry in VGG16_PLAN:
            if entry is None:
                if next(pools):
                    layers.append({"type": "maxpool", "name": f"features.{index}", "kernel": 2, "stride": 2})
                index += 1
            else:
                layers.append(_conv(f"features.{index}", _scaled(entry, width), 3, 1, 1))
                layers.append({"type": "batchnorm", "name": f"features.{index + 1}"})
                layers.append({"type": "relu", "name": f"features.{index + 2}"})
                index += 3
        layers.append({"type": "flatten", "name": "flatten"})
        layers.append({"type": "linear", "name": "classifier", "out": classes, "bias": True})
        return layers
    blocks = 3 if preset == "resnet20" else 9
    layers = [_conv("conv1", _scaled(16, width), 3, 1, 1), {"type": "batchnorm", "name": "bn1"},
              {"type": "relu", "name": "relu"}]
    channels = _scaled(16, width)
    for stage, base in enumerate((16, 32, 64)):
        out = _scaled(base, width)
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(_basic_block(f"layer{stage + 1}.{block}", channels, out, stride))
            channels = out
    layers += [{"type": "avgpool", "name": "avgpool"}, {"type": "flatten", "name": "flatten"},
               {"type": "linear", "name": "linear", "out": classes, "bias": True}]
    return layers


def _resolve_layer(layer: Mapping[str, Any], default_name: str, channels: int) -> Tuple[Spec, int]:
    """One layer with every default filled in (SpecParser.parseLayer); returns it and the
    channel count after it."""
    kind = layer.get("type")
    name = layer.get("name", default_name)
    if kind == "conv":
        resolved = _conv(name, int(layer["out"]), int(layer.get("kernel", 3)), int(layer.get("stride", 1)),
                         int(layer.get("padding", 0)), bool(layer.get("bias", False)))
        if layer.get("chain") is not None:
            resolved["chain"] = [int(v) for v in layer["chain"]]
        return resolved, resolved["out"]
    if kind == "linear":
        resolved = {"type": "linear", "name": name, "out": int(layer["out"]), "bias": bool(layer.get("bias", True))}
        if layer.get("chain") is not None:
            resolved["chain"] = [int(v) for v in layer["chain"]]
        return resolved, resolved["out"]
    if kind == "maxpool":
        kernel = int(layer.get("kernel", 2))
        return {"type": "maxpool", "name": name, "kernel": kernel, "stride": int(layer.get("stride", kernel))}, channels
    if kind == "avgpool":
        resolved = {"type": "avgpool", "name": name}
        if layer.get("kernel", 0):
            resolved["kernel"] = int(layer["kernel"])
            resolved["stride"] = int(layer.get("stride", layer["kernel"]))
        return resolved, channels
    if kind in ("batchnorm", "relu", "flatten"):
        return {"type": kind, "name": name}, channels
    if kind == "basic_block":
        if "main" in layer:
            main, out = _resolve_list(layer["main"], f"{name}.main", channels)
            shortcut, _ = _resolve_list(layer.get("shortcut", []), f"{name}.shortcut", channels)
            convs = [entry for entry in main if entry["type"] == "conv"]
            return {"type": "basic_block", "name": name, "main": main, "shortcut": shortcut}, (
                convs[-1]["out"] if convs else channels)
        out = int(layer.get("out", channels))
        return _basic_block(name, channels, out, int(layer.get("stride", 1))), out
    raise ValueError(f"layer {name!r}: unknown type {kind!r}")


def _resolve_list(layers: List[Mapping[str, Any]], prefix: str, channels: int) -> Tuple[List[Spec], int]:
    resolved = []
    for index, layer in enumerate(layers):
        entry, channels = _resolve_layer(layer, f"{prefix}.{index}", channels)
        resolved.append(entry)
    return resolved, channels


def resolve_spec(spec: Union[str, Mapping[str, Any]]) -> Spec:
    """The resolved form of a spec, as Reparo saves it: ``{"input", "classes", "state",
    "layers"}`` with every layer's name and sizes explicit. Always a new object; resolving a
    resolved spec gives an equal one.

    Args:
        spec: a preset name (``"resnet20"``), a preset spec (``{"preset": "vgg16",
            "classes": 10, "width": 0.5, "input": [3, 32, 32]}``), a generic spec with
            ``"layers"``, or JSON text of either. Mirrors ``SpecParser.parse`` and
            ``Presets.spec`` of the Swift engine (a test checks it against Reparo's own
            resolution); validation beyond structure is left to Reparo.

    Raises:
        ValueError: unknown preset or layer type, or both/neither of "preset" and "layers".
    """
    if isinstance(spec, str):
        text = spec.strip()
        spec = json.loads(text) if text.startswith("{") else {"preset": text}
    spec = dict(spec)
    classes = int(spec.get("classes", 10))
    state = spec.get("state", "dense")
    if "preset" in spec:
        preset = spec["preset"]
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
        if "layers" in spec:
            raise ValueError('give either "preset" or "layers", not both')
        unknown = set(spec) - {"preset", "classes", "input", "width", "state"}
        if unknown:
            raise ValueError(f"unknown preset spec keys: {sorted(unknown)}")
        input_shape = [int(v) for v in spec.get("input", [3, 32, 32])]
        if len(input_shape) != 3:
            raise ValueError(f"input must be [C, H, W], got {input_shape}")
        layers = _preset_layers(preset, classes, float(spec.get("width", 1.0)), input_shape)
    else:
        if "layers" not in spec or "input" not in spec:
            raise ValueError('a spec needs "preset", or "input" and "layers"')
        input_shape = [int(v) for v in spec["input"]]
        layers, _ = _resolve_list(spec["layers"], "layers", input_shape[0])
        # Default names of top-level layers are "layers.<index>" (SpecParser).
    return {"input": input_shape, "classes": classes, "state": state, "layers": layers}


def _walk(layers: List[Spec], shape: Tuple[int, int, int], visit) -> Tuple[int, int, int]:
    """Calls visit(layer, input_shape) for every layer, depth first; returns the output shape."""
    for layer in layers:
        visit(layer, shape)
        c, h, w = shape
        kind = layer["type"]
        if kind == "conv":
            k, s, p = layer["kernel"], layer["stride"], layer["padding"]
            shape = (layer["out"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        elif kind == "linear":
            shape = (layer["out"], 1, 1)
        elif kind in ("maxpool", "avgpool"):
            if kind == "avgpool" and not layer.get("kernel"):
                shape = (c, 1, 1)
            else:
                k, s = layer["kernel"], layer["stride"]
                shape = (c, (h - k) // s + 1, (w - k) // s + 1)
        elif kind == "flatten":
            shape = (c * h * w, 1, 1)
        elif kind == "basic_block":
            out = _walk(layer["main"], shape, visit)
            _walk(layer["shortcut"], shape, visit)
            shape = out
    return shape


def expected_tensors(spec: Union[str, Mapping[str, Any]]) -> "collections.OrderedDict[str, Tuple[int, ...]]":
    """Names and shapes of every tensor a Reparo model of this spec holds, in network order
    (what ``reparo_model_load`` requires: all of them, nothing more)."""
    resolved = resolve_spec(spec)
    shapes: "collections.OrderedDict[str, Tuple[int, ...]]" = collections.OrderedDict()

    def visit(layer: Spec, shape: Tuple[int, int, int]) -> None:
        name, kind = layer["name"], layer["type"]
        c, h, w = shape
        if kind in ("conv", "linear"):
            inputs = c if kind == "conv" else c * h * w
            tail: Tuple[int, ...] = (layer["kernel"], layer["kernel"]) if kind == "conv" else ()
            unit: Tuple[int, ...] = (1, 1) if kind == "conv" else ()
            chain = layer.get("chain")
            if chain:
                shapes[f"{name}.factors.0.weight"] = (chain[0], inputs) + unit
                shapes[f"{name}.factors.1.weight"] = (chain[1], chain[0]) + tail
                shapes[f"{name}.factors.2.weight"] = (layer["out"], chain[1]) + unit
                if layer["bias"]:
                    shapes[f"{name}.factors.2.bias"] = (layer["out"],)
            else:
                shapes[f"{name}.weight"] = (layer["out"], inputs) + tail
                if layer["bias"]:
                    shapes[f"{name}.bias"] = (layer["out"],)
        elif kind == "batchnorm":
            for suffix in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{name}.{suffix}"] = (c,)

    _walk(resolved["layers"], tuple(resolved["input"]), visit)
    return shapes


def fit_spec_to_tensors(spec: Union[str, Mapping[str, Any]], tensors: Mapping[str, Any]) -> Spec:
    """The resolved spec with each compact conv/linear layer's ``out`` and ``bias`` taken
    from the tensors: the spec gives the structure, the tensors the widths. So a pruned
    PyTorch model exports against its preset's name, and a PyTorch VGG whose convs carry a
    bias gets ``"bias": true`` on them. Layers without a ``<name>.weight`` tensor, and
    expanded chains, are left as the spec says (the shape check reports them)."""
    resolved = resolve_spec(spec)  # a fresh copy

    def visit(layer: Spec, shape: Tuple[int, int, int]) -> None:
        if layer["type"] in ("conv", "linear") and not layer.get("chain"):
            weight = tensors.get(f"{layer['name']}.weight")
            if weight is not None and len(np.shape(weight)) >= 1:
                layer["out"] = int(np.shape(weight)[0])
                layer["bias"] = f"{layer['name']}.bias" in tensors

    _walk(resolved["layers"], tuple(resolved["input"]), visit)
    return resolved


# --- safetensors files (F32), read and written with numpy alone ------------------------------


def read_file(path: PathLike) -> Tuple[Dict[str, str], "collections.OrderedDict[str, np.ndarray]"]:
    """``(metadata, tensors)`` of a safetensors file holding F32 tensors (a Reparo model file),
    in file order, as float32 numpy arrays.

    Raises:
        ValueError: not a well-formed safetensors file, or a tensor that is not F32.
    """
    with open(os.fspath(path), "rb") as handle:
        data = handle.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError(f"{path}: header length {length} exceeds the file")
    try:
        header = json.loads(data[8 : 8 + length].decode("utf-8"))
        body = memoryview(data)[8 + length :]
        metadata = header.pop("__metadata__", None) or {}
        tensors: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
        for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            if entry.get("dtype") != "F32":
                raise ValueError(f"{path}: tensor {name!r} is {entry.get('dtype')}; only F32 is supported")
            begin, end = (int(v) for v in entry["data_offsets"])
            shape = tuple(int(v) for v in entry["shape"])
            if not 0 <= begin <= end <= len(body) or end - begin != 4 * int(np.prod(shape, dtype=np.int64)):
                raise ValueError(f"{path}: tensor {name!r} has bad data offsets {begin}..{end} for shape {list(shape)}")
            tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").astype(np.float32).reshape(shape)
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: malformed safetensors header: {error!r}") from error
    return dict(metadata), tensors


def write_file(path: PathLike, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> None:
    """Writes F32 tensors as safetensors, in the given order, atomically (a temporary file in
    the same folder, then a rename). The header is padded with spaces to a multiple of 8."""
    header: Dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    arrays = []
    for name, value in tensors.items():
        array = np.ascontiguousarray(value, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(struct.pack("<Q", len(text)))
            handle.write(text)
            for array in arrays:
                handle.write(array.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# --- PyTorch → Reparo ----------------------------------------------------------------------


def _as_numpy(value: Any) -> np.ndarray:
    """A torch tensor (any device or float dtype) or array-like as a float32 numpy array."""
    if hasattr(value, "detach"):  # a torch.Tensor, without importing torch
        value = value.detach().to("cpu").float().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


def export_state_dict(module_or_state_dict: Any, path: PathLike, spec: Union[str, Mapping[str, Any]],
                      *, state: Optional[str] = None) -> Spec:
    """Writes a PyTorch model's weights as a Reparo model file (``reparo.Model.load`` /
    ``reparo_model_load`` read it).

    Args:
        module_or_state_dict: a ``torch.nn.Module`` (its ``state_dict()`` is used; put it in
            eval mode first if you compare outputs), or a mapping of names to torch tensors or
            numpy arrays. ``*.num_batches_tracked`` entries are dropped.
        path: the file to write (atomically replaced).
        spec: the architecture: a preset name (``"vgg16"``, ``"resnet20"``, ``"resnet56"``),
            a preset spec (``{"preset": "vgg16", "classes": 10, "width": 0.25}``), or a
            generic/resolved Reparo spec. Conv/linear widths and conv biases are taken from
            the tensors (:func:`fit_spec_to_tensors`), so pruned models export too.
        state: the model state written to the file (default: the spec's, else ``"dense"``).

    Returns:
        The resolved spec written into the file's metadata.

    Raises:
        ValueError: a tensor is missing, unexpected, or has the wrong shape for the spec; the
            message names it. Nothing is written then.
    """
    source = module_or_state_dict.state_dict() if hasattr(module_or_state_dict, "state_dict") else module_or_state_dict
    tensors = {name: value for name, value in source.items() if not name.endswith("num_batches_tracked")}
    resolved = fit_spec_to_tensors(spec, tensors)
    if state is not None:
        resolved["state"] = state
    if resolved["state"] not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, got {resolved['state']!r}")
    expected = expected_tensors(resolved)
    problems = []
    for name, shape in expected.items():
        if name not in tensors:
            problems.append(f"missing tensor {name!r} {list(shape)}")
        elif tuple(np.shape(tensors[name])) != shape:
            problems.append(f"tensor {name!r} has shape {list(np.shape(tensors[name]))}, the spec needs {list(shape)}")
    problems += [f"unexpected tensor {name!r} (not part of the spec)" for name in tensors if name not in expected]
    last = resolved["layers"][-1]
    if last["type"] != "linear" or last["out"] != resolved["classes"]:
        problems.append(f"the last layer must be a linear layer of {resolved['classes']} outputs (\"classes\")")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise ValueError(f"the tensors do not match the spec: {shown}")
    ordered = collections.OrderedDict((name, _as_numpy(tensors[name])) for name in expected)
    metadata = {"format": "reparo", "spec": json.dumps(resolved, separators=(",", ":"))}
    write_file(path, ordered, metadata)
    return resolved


# --- Reparo → PyTorch ----------------------------------------------------------------------


def _spec_of(metadata: Mapping[str, str], path: PathLike) -> Spec:
    if "spec" not in metadata:
        raise ValueError(f"{path}: no \"spec\" in the metadata; not a Reparo model file")
    return resolve_spec(json.loads(metadata["spec"]))


def load_into_torch(path: PathLike, *, with_spec: bool = False) -> Any:
    """*torch*: the ``state_dict`` (an ``OrderedDict`` of CPU float32 tensors) of a Reparo
    model file, with ``<bn>.num_batches_tracked`` = 0 added for every BatchNorm so that
    ``module.load_state_dict(state_dict)`` works in strict mode.

    The module must have the file's widths: :func:`build_torch_model` builds it from the spec
    (``with_spec=True`` returns ``(state_dict, spec)``), or see :func:`load_torch_model`.
    """
    import torch

    metadata, tensors = read_file(path)
    spec = _spec_of(metadata, path)
    state_dict: "collections.OrderedDict[str, Any]" = collections.OrderedDict()
    for name, value in tensors.items():
        state_dict[name] = torch.from_numpy(value.copy())
        if name.endswith(".running_var"):
            state_dict[name[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return (state_dict, spec) if with_spec else state_dict


def build_torch_model(spec: Union[str, Mapping[str, Any]]) -> Any:
    """*torch*: a ``torch.nn.Module`` (fresh weights) whose ``state_dict`` keys and shapes are
    exactly those of a Reparo model of this spec: the canonical CIFAR
    :class:`~reparo.torch_models.VGG` or :class:`~reparo.torch_models.CifarResNet` with the
    spec's (possibly pruned) widths when the spec has their structure, otherwise a
    :class:`~reparo.torch_models.SpecNet` that runs any Reparo spec (folded BatchNorm,
    expanded chains, generic layer lists)."""
    from . import torch_models

    return torch_models.from_spec(resolve_spec(spec))


def load_torch_model(path: PathLike) -> Any:
    """*torch*: :func:`build_torch_model` for the file's spec with :func:`load_into_torch`'s
    tensors loaded (strict), in eval mode."""
    state_dict, spec = load_into_torch(path, with_spec=True)
    model = build_torch_model(spec)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
