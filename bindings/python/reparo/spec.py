"""Network specs, answered by the engine (``reparo_spec_resolve``).

A spec describes a network: a preset (``{"preset": "vgg16", "width": 0.25, "input": [1, 28,
28]}``, or just ``"resnet20"``) or a generic layer list, exactly what :meth:`reparo.Model.create`
takes. The engine resolves it without building the model: every default filled in (the form
saved in a model file), every layer's input and output shape, every tensor's name and shape.
This module asks the engine and keeps no parser, preset, shape formula or tensor table of its
own. It needs neither numpy nor torch.

Example::

    from reparo import spec
    spec.expected_tensors({"preset": "resnet20", "width": 0.25})["conv1.weight"]   # (4, 3, 3, 3)
"""

from __future__ import annotations

import collections
import ctypes
import json
from typing import Any, Dict, Iterable, Iterator, Mapping, Sequence, Tuple, Union

from . import _lib
from .errors import check

__all__ = ["resolve", "resolve_spec", "expected_tensors", "layer_shapes", "walk", "fit_to_tensors"]

Spec = Dict[str, Any]
SpecLike = Union[str, Mapping[str, Any]]
Shape = Tuple[int, ...]


def _text(spec: SpecLike) -> bytes:
    """The spec as the JSON text the C API takes; a bare word is a preset name."""
    if isinstance(spec, str):
        text = spec if spec.lstrip().startswith("{") else json.dumps({"preset": spec.strip()})
    else:
        text = json.dumps(dict(spec), allow_nan=False)
    return _lib.encode(text)


def resolve(spec: SpecLike) -> Dict[str, Any]:
    """The engine's resolution of a spec, a new dict each call:

    - ``"spec"``: the resolved spec as Reparo saves it (``input``, ``classes``, ``state``,
      ``layers`` with every name and size explicit); resolving it again gives it back;
    - ``"layers"``: every layer, depth first (a ``basic_block``'s own entry, then its main
      path, then its shortcut), each ``{"name", "type", "input": [C, H, W], "output": [C, H, W]}``;
    - ``"tensors"``: every tensor of the model, ``{"name", "shape"}``, in the model's order.

    Args:
        spec: a dict, JSON text, or a preset name (``"vgg16"``, ``"resnet20"``, ``"resnet56"``).

    Raises:
        ReparoError: INVALID_ARGUMENT naming the field, for any spec ``reparo_model_create``
            refuses.
    """
    text = _text(spec)
    length = ctypes.c_size_t()
    check(_lib.reparo_spec_resolve(text, None, 0, ctypes.byref(length)))
    buffer = ctypes.create_string_buffer(length.value + 1)
    check(_lib.reparo_spec_resolve(text, buffer, len(buffer), ctypes.byref(length)))
    return json.loads(buffer.value.decode("utf-8"))


def resolve_spec(spec: SpecLike) -> Spec:
    """The resolved form of a spec, as Reparo saves it in a model file (a new dict)."""
    return resolve(spec)["spec"]


def expected_tensors(spec: SpecLike) -> "collections.OrderedDict[str, Shape]":
    """Names and shapes of every tensor a Reparo model of this spec holds, in the model's order
    (what ``reparo_model_load`` requires of a file: all of them, nothing more)."""
    return collections.OrderedDict((entry["name"], tuple(entry["shape"])) for entry in resolve(spec)["tensors"])


def layer_shapes(spec: SpecLike) -> "collections.OrderedDict[str, Tuple[Shape, Shape]]":
    """``name → (input [C, H, W], output [C, H, W])`` of every layer, depth first (layer names
    are unique within a spec)."""
    return collections.OrderedDict((entry["name"], (tuple(entry["input"]), tuple(entry["output"])))
                                   for entry in resolve(spec)["layers"])


def walk(layers: Iterable[Spec]) -> Iterator[Spec]:
    """Every layer of a resolved spec's layer list (the dicts themselves, so they can be edited),
    in the order of :func:`resolve`'s ``"layers"``: a block, then its main path, then its
    shortcut."""
    for layer in layers:
        yield layer
        yield from walk(layer.get("main", ()))
        yield from walk(layer.get("shortcut", ()))


def fit_to_tensors(spec: SpecLike, shapes: Mapping[str, Sequence[int]]) -> Spec:
    """The resolved spec with each compact conv/linear layer's ``out`` and ``bias`` read from
    tensor shapes (PyTorch ``state_dict`` convention: ``<layer>.weight`` [out, ...], and
    ``<layer>.bias`` when there is one): the spec gives the structure, the tensors the widths.
    So a pruned PyTorch model fits its preset, and a PyTorch VGG whose convs carry a bias gets
    ``"bias": true`` on them. Layers without a ``<layer>.weight``, and expanded chains, stay as
    the spec says. The result is not re-checked: :func:`expected_tensors` of it does that."""
    resolved = resolve_spec(spec)
    for layer in walk(resolved["layers"]):
        if layer["type"] in ("conv", "linear") and not layer.get("chain"):
            weight = shapes.get(f"{layer['name']}.weight")
            if weight is not None and len(weight) >= 1:
                layer["out"] = int(weight[0])
                layer["bias"] = f"{layer['name']}.bias" in shapes
    return resolved
