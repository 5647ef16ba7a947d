"""Moving weights between PyTorch and Reparo.

Reparo saves safetensors files (F32) whose tensor names are PyTorch ``state_dict`` keys, with
the model's resolved spec in the metadata (``{"format": "reparo", "spec": "<JSON>"}``). This
module writes such files from a PyTorch ``state_dict`` (:func:`export_state_dict`) and reads
Reparo's files back into one (:func:`load_into_torch`), with the architecture taken from the
spec. Resolved specs, tensor names and shapes are asked of the engine (:mod:`reparo.spec`,
``reparo_spec_resolve``); this module keeps no copy of the presets or the shape rules. Only
the functions marked *torch* import torch, and only when called; the rest needs numpy alone.
The PyTorch module definitions live in :mod:`reparo.torch_models` (which does not import
this module).

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
  Fashion-MNIST: planes 14, 7, 3, 1 and no pool ``features.43``, so PyTorch's ``features``
  ends at index 42; a pool left out within the stack is an ``Identity``), so every other name
  stays as at 32×32.

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
import os
import struct
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import spec as _spec
from .errors import ReparoError
from .spec import expected_tensors, resolve_spec  # re-exported: this module's API before reparo.spec

__all__ = [
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
SpecLike = Union[str, Mapping[str, Any]]

# --- specs: asked of the engine (reparo.spec) ------------------------------------------------


def fit_spec_to_tensors(spec: SpecLike, tensors: Mapping[str, Any]) -> Spec:
    """The resolved spec with each compact conv/linear layer's ``out`` and ``bias`` taken
    from the tensors (torch tensors or arrays; :func:`reparo.spec.fit_to_tensors`)."""
    return _spec.fit_to_tensors(spec, {name: np.shape(value) for name, value in tensors.items()})


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


def _mismatches(expected: Mapping[str, Tuple[int, ...]], tensors: Mapping[str, Any]) -> List[str]:
    problems = []
    for name, shape in expected.items():
        if name not in tensors:
            problems.append(f"missing tensor {name!r} {list(shape)}")
        elif tuple(np.shape(tensors[name])) != shape:
            problems.append(f"tensor {name!r} has shape {list(np.shape(tensors[name]))}, the spec needs {list(shape)}")
    return problems + [f"unexpected tensor {name!r} (not part of the spec)" for name in tensors if name not in expected]


def export_state_dict(module_or_state_dict: Any, path: PathLike, spec: SpecLike,
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
        ReparoError: INVALID_ARGUMENT: Reparo refuses the spec or the state.
        ValueError: a tensor is missing, unexpected, or has the wrong shape for the spec, or
            the widths of the tensors make a network Reparo refuses; the message names them.
            Nothing is written then.
    """
    source = module_or_state_dict.state_dict() if hasattr(module_or_state_dict, "state_dict") else module_or_state_dict
    tensors = {name: value for name, value in source.items() if not name.endswith("num_batches_tracked")}
    base = _spec.resolve_spec(spec)
    if state is not None:
        base = _spec.resolve_spec(dict(base, state=state))
    resolved = fit_spec_to_tensors(base, tensors)
    try:
        expected = _spec.expected_tensors(resolved)
        problems = _mismatches(expected, tensors)
    except ReparoError as error:  # the tensors' widths do not chain: show them against the spec's
        problems = [f"Reparo refuses the widths they give: {error.message}"]
        problems += _mismatches(_spec.expected_tensors(base), tensors)
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
