"""reparo.spec: specs resolved by the engine (reparo_spec_resolve), not by Python.

Oracles: the model Reparo builds from the same spec (the tensors it saves, the resolved spec
in the file's metadata, the layer shapes reparo_model_describe reports from the built layers)
and a few sizes worked out by hand from the architectures' definitions.
"""

from __future__ import annotations

import ast
import json
import pathlib
from typing import Any, Dict

import pytest

import reparo
from reparo import spec
from reparo.torch_interop import read_file

from conftest import DIGITS_SPEC

PACKAGE = pathlib.Path(reparo.__file__).resolve().parent


def built(model: reparo.Model, tmp_path: pathlib.Path) -> Dict[str, Any]:
    """What the built model says of itself: its saved tensors and spec, and its description."""
    path = tmp_path / "model.safetensors"
    model.save(path)
    metadata, tensors = read_file(path)
    return {"spec": json.loads(metadata["spec"]), "tensors": {name: tuple(value.shape) for name, value in tensors.items()},
            "order": list(tensors), "description": model.describe()}


def assert_resolution_matches(resolution: Dict[str, Any], truth: Dict[str, Any]) -> None:
    assert resolution["spec"] == truth["spec"]
    tensors = {entry["name"]: tuple(entry["shape"]) for entry in resolution["tensors"]}
    assert tensors == truth["tensors"]
    assert [entry["name"] for entry in resolution["tensors"]] == truth["order"]  # the file's order
    # Every leaf layer's shapes as the built layers report them (describe lists a block as a
    # "residual_add" after its paths; resolve lists it as "basic_block" before them).
    layers = {entry["name"]: entry for entry in resolution["layers"]}
    described = [entry for entry in truth["description"]["layers"] if entry["type"] != "residual_add"]
    assert described, "the description lists no layers"
    for entry in described:
        ours = layers[entry["name"]]
        assert (ours["type"], ours["input"], ours["output"]) == (entry["type"], entry["input"], entry["output"]), entry
    blocks = [entry for entry in truth["description"]["layers"] if entry["type"] == "residual_add"]
    for entry in blocks:
        assert (layers[entry["name"]]["input"], layers[entry["name"]]["output"]) == (entry["input"], entry["output"])
    assert len(layers) == len(resolution["layers"])  # names are unique
    assert len(resolution["layers"]) == len(described) + len(blocks)


RESOLVE_CASES = {
    "vgg16": {"preset": "vgg16"},
    "vgg16-w0.25": {"preset": "vgg16", "width": 0.25},
    # 64 · 0.5078125 = 32.5 and 16 · 0.15625 = 2.5: Reparo rounds half away from zero (33, 3)
    "vgg16-w-half-rounding": {"preset": "vgg16", "width": 0.5078125},
    # Fashion-MNIST's 1×28×28: VGG-16 leaves out its fifth pool (the plane is 1×1 after four)
    "vgg16-fashion-mnist": {"preset": "vgg16", "width": 0.25, "input": [1, 28, 28]},
    "vgg16-odd-plane": {"preset": "vgg16", "width": 0.125, "input": [2, 12, 20]},
    "resnet20": {"preset": "resnet20", "classes": 10},
    "resnet20-w0.25": {"preset": "resnet20", "width": 0.25},
    "resnet20-fashion-mnist": {"preset": "resnet20", "input": [1, 28, 28]},
    "resnet56": {"preset": "resnet56", "width": 0.25, "classes": 100},
    "resnet56-w-half-rounding-odd": {"preset": "resnet56", "width": 0.15625, "classes": 7, "input": [1, 20, 24]},
    "digits": DIGITS_SPEC,
    "generic-blocks": {
        "input": [2, 9, 9], "classes": 3, "layers": [
            {"type": "conv", "out": 5, "kernel": 3, "padding": 1, "bias": True},
            {"type": "basic_block", "name": "b1", "out": 6, "stride": 2},
            {"type": "basic_block", "out": 6},
            {"type": "basic_block", "name": "custom", "main": [
                {"type": "conv", "out": 4, "kernel": 1}, {"type": "batchnorm"}, {"type": "relu"},
                {"type": "conv", "out": 6, "kernel": 3, "padding": 1}],
             "shortcut": []},
            {"type": "avgpool", "kernel": 2, "stride": 1},
            {"type": "maxpool"},
            {"type": "flatten"},
            {"type": "linear", "out": 3, "bias": False}]},
}


@pytest.mark.parametrize("case", list(RESOLVE_CASES), ids=list(RESOLVE_CASES))
def test_resolution_matches_the_built_model(case, tmp_path) -> None:
    given = RESOLVE_CASES[case]
    with reparo.Model.create(given, seed=0) as model:
        truth = built(model, tmp_path)
    resolution = spec.resolve(given)
    assert_resolution_matches(resolution, truth)
    assert spec.resolve(resolution["spec"]) == resolution  # the resolved spec resolves to itself
    assert spec.resolve(json.dumps(given)) == resolution  # JSON text, as the C API takes it
    assert spec.resolve_spec(given) == truth["spec"]
    assert spec.expected_tensors(given) == truth["tensors"] and list(spec.expected_tensors(given)) == truth["order"]


def test_pruned_and_expanded_specs_resolve_as_their_models(tmp_path) -> None:
    """The specs of a pruned (coupled residual), an expanded and a BatchNorm-folded collapsed
    model, read from their files, resolve to those models' tensors and shapes."""
    with reparo.Model.create({"preset": "resnet20", "width": 0.5}, seed=1) as dense:
        dense_tensors = built(dense, tmp_path)["tensors"]
        with dense.prune(ratio=0.5, residual="coupled") as pruned:
            states = {"pruned": built(pruned, tmp_path)}
            pruned.expand(rate=2)
            states["expanded"] = built(pruned, tmp_path)
            pruned.collapse(fold_batchnorm=True)
            states["collapsed"] = built(pruned, tmp_path)
    assert states["pruned"]["tensors"] != dense_tensors  # pruning changed widths
    assert any(".factors.1.weight" in name for name in states["expanded"]["tensors"])
    assert not any("bn" in name for name in states["collapsed"]["tensors"])
    for state, truth in states.items():
        assert truth["spec"]["state"] == state
        assert_resolution_matches(spec.resolve(truth["spec"]), truth)


def test_sizes_worked_out_by_hand() -> None:
    """Independent of Reparo's code: sizes from the architectures' definitions."""
    vgg = spec.expected_tensors({"preset": "vgg16", "width": 0.25, "input": [1, 28, 28]})
    assert vgg["features.0.weight"] == (16, 1, 3, 3)  # 64 · 0.25 filters over 1 channel
    assert vgg["features.40.weight"] == (128, 128, 3, 3)  # the last conv: 512 · 0.25
    assert vgg["classifier.weight"] == (10, 128)  # 28 → 14 → 7 → 3 → 1: a 1×1 plane of 128
    assert "features.1.running_var" in vgg and "features.0.bias" not in vgg
    shapes = spec.layer_shapes({"preset": "vgg16", "width": 0.25, "input": [1, 28, 28]})
    assert "features.43" not in shapes and shapes["features.33"] == ((128, 3, 3), (128, 1, 1))
    assert shapes["classifier"][1] == (10, 1, 1)
    r20 = spec.expected_tensors({"preset": "resnet20", "width": 0.25})
    assert len([name for name in r20 if name.endswith("conv1.weight")]) == 1 + 9  # stem + 9 blocks
    assert r20["layer2.0.conv1.weight"] == (8, 4, 3, 3) and r20["layer2.0.shortcut.0.weight"] == (8, 4, 1, 1)
    assert "layer1.0.shortcut.0.weight" not in r20  # stride 1, same width: identity shortcut
    assert r20["linear.weight"] == (10, 16) and r20["linear.bias"] == (10,)
    shapes = spec.layer_shapes("resnet56")
    assert shapes["layer3.8"] == ((64, 8, 8), (64, 8, 8)) and shapes["avgpool"][1] == (64, 1, 1)
    assert len([name for name in shapes if name.count(".") == 1 and name.startswith("layer")]) == 27


def test_walk_visits_the_layers_in_the_engines_order() -> None:
    resolution = spec.resolve({"preset": "resnet20"})
    assert [layer["name"] for layer in spec.walk(resolution["spec"]["layers"])] == \
        [entry["name"] for entry in resolution["layers"]]


def test_fit_to_tensors_takes_widths_and_biases_from_shapes(tmp_path) -> None:
    with reparo.Model.create({"preset": "resnet20", "width": 0.5}, seed=1) as dense, dense.prune(ratio=0.5) as pruned:
        truth = built(pruned, tmp_path)
    fitted = spec.fit_to_tensors("resnet20", truth["tensors"])
    assert fitted == dict(truth["spec"], state="dense")
    with_bias = dict(truth["tensors"], **{"conv1.bias": (truth["tensors"]["conv1.weight"][0],)})
    fitted = spec.fit_to_tensors(truth["spec"], with_bias)
    assert fitted["layers"][0]["bias"] is True and spec.expected_tensors(fitted) == with_bias


INVALID = {
    "unknown preset": ({"preset": "resnet18"}, "preset"),
    "unknown key": ({"preset": "vgg16", "depth": 3}, "depth"),
    "bad width": ({"preset": "vgg16", "width": 0}, "width"),
    "layers without input": ({"classes": 2, "layers": [{"type": "linear", "out": 2}]}, "input"),
    "kernel larger than the plane": ({"input": [1, 4, 4], "classes": 2, "layers": [
        {"type": "conv", "name": "big", "out": 2, "kernel": 5}, {"type": "flatten"}, {"type": "linear", "out": 2}]}, "big"),
    "last layer is not the classes": ({"input": [1, 4, 4], "classes": 3, "layers": [
        {"type": "flatten"}, {"type": "linear", "out": 2}]}, "classes"),
    "name used twice": ({"input": [1, 4, 4], "classes": 2, "layers": [
        {"type": "relu", "name": "a"}, {"type": "flatten", "name": "a"}, {"type": "linear", "out": 2}]}, "twice"),
    "not JSON": ("{\"preset\": ", "spec"),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_specs_raise_the_library_error(case) -> None:
    given, field = INVALID[case]
    with pytest.raises(reparo.ReparoError) as caught:
        spec.resolve(given)
    assert caught.value.status == reparo.Status.INVALID_ARGUMENT
    assert field in caught.value.message
    with pytest.raises(reparo.ReparoError) as created:  # the same refusal as model creation
        reparo.Model.create(given)
    assert created.value.message.split(": ", 1)[1] == caught.value.message.split(": ", 1)[1]


def imports(module: str, top_level_only: bool) -> set:
    """Modules a file of the package imports (relative ones as "reparo.<name>")."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found |= {f"reparo.{node.module}"} if node.module else {f"reparo.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


def test_spec_needs_neither_numpy_nor_torch_and_the_circle_is_gone() -> None:
    assert imports("spec", top_level_only=False) <= {"__future__", "collections", "ctypes", "json", "typing",
                                                     "reparo._lib", "reparo.errors"}
    assert imports("errors", top_level_only=False) <= {"__future__", "enum", "json", "typing", "reparo._lib"}
    assert "reparo.torch_interop" not in imports("torch_models", top_level_only=False)
    assert "reparo.torch_models" not in imports("torch_interop", top_level_only=True)
