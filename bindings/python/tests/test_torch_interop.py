"""reparo.torch_interop: PyTorch state_dicts ↔ Reparo model files.

Without torch, the numpy tests check the file reader against the `safetensors` package, and round trips Reparo → numpy →
export_state_dict → Reparo with bit-identical logits. With torch (the tests importorskip it),
randomly initialized PyTorch VGG-16 / ResNet-20 / ResNet-56 are exported and must give the
same logits in Reparo, and pruned + expanded + collapsed Reparo models load into PyTorch
modules built with the pruned widths and must give the same logits in PyTorch.

Tolerance for PyTorch vs Reparo: max |Δlogit| ≤ 1e-4 · max |logit|. Both compute in float32
with different summation orders (im2col + GEMM vs PyTorch's conv kernels); that costs ~1e-6
relative per layer, ~1e-5 over 56 layers, while a wrong tensor, transposition, BatchNorm
statistic or stride gives errors of order 1.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np
import pytest

import reparo
from reparo import torch_interop
from reparo.torch_interop import export_state_dict, read_file, resolve_spec

from conftest import DIGITS_SPEC, relative_error

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed")


def moved(spec: Any, seed: int = 3, steps: int = 3) -> reparo.Model:
    """A Reparo model whose weights and BatchNorm statistics have moved from their initial
    values (γ = 1, β = 0, μ = 0, σ² = 1 would hide a swapped BatchNorm tensor)."""
    model = reparo.Model.create(spec, seed=seed)
    rng = np.random.default_rng(seed)
    shape = (8, *model.input_shape)
    with reparo.Trainer(model, lr=0.02, momentum=0.5) as trainer:
        for _ in range(steps):
            trainer.step(rng.standard_normal(shape) * 2 + 0.3, rng.integers(0, model.classes, 8))
    return model


def pruned_expanded_collapsed(spec: Any, collapse: Dict[str, Any] = None, **prune: Any) -> reparo.Model:
    """dense (moved) → prune → expand → two SP-KD steps on the factors → collapse."""
    with moved(spec) as dense:
        student = dense.prune(**prune)
        student.expand(rate=2)
        rng = np.random.default_rng(5)
        shape = (8, *student.input_shape)
        with reparo.Trainer(student, dense, lr=0.01) as trainer:
            for _ in range(2):
                trainer.step(rng.standard_normal(shape), rng.integers(0, student.classes, 8))
    if collapse is not False:
        student.collapse(**(collapse or {}))
    return student


def images_for(model: reparo.Model, count: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, *model.input_shape)).astype(np.float32)


def assert_informative(logits: np.ndarray) -> None:
    """The comparison means something only if the logits depend on the input."""
    assert np.ptp(logits, axis=0).max() > 1e-3 * np.abs(logits).max(), "logits do not depend on the input"


# --- without torch -----------------------------------------------------------------------------
# (spec resolution itself is tested against built models in test_spec.py)


def test_reader_agrees_with_the_safetensors_package(tmp_path) -> None:
    """Files Reparo writes are read by the `safetensors` package, with the same tensors."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    path = str(tmp_path / "model.safetensors")
    with pruned_expanded_collapsed({"preset": "resnet20", "width": 0.25}, ratio=0.5) as model:
        model.save(path)
    metadata, ours = read_file(path)
    theirs = safetensors_numpy.load_file(path)
    assert set(ours) == set(theirs)
    for name in ours:
        assert theirs[name].dtype == np.float32 and np.array_equal(ours[name], theirs[name]), name
    with safe_open(path, framework="numpy") as handle:
        assert handle.metadata() == metadata


ROUND_TRIPS = {
    # name: (model factory, spec given to export_state_dict; None = the file's own spec)
    "resnet20-dense": (lambda: moved({"preset": "resnet20", "width": 0.25}), "resnet20"),
    "vgg16-pruned-collapsed": (lambda: pruned_expanded_collapsed({"preset": "vgg16", "width": 0.125}, ratio=0.5),
                               {"preset": "vgg16", "classes": 10}),
    "resnet20-coupled-collapsed": (
        lambda: pruned_expanded_collapsed({"preset": "resnet20", "width": 0.25}, ratio=0.5, residual="coupled"),
        "resnet20"),
    "resnet56-folded": (
        lambda: pruned_expanded_collapsed({"preset": "resnet56", "width": 0.25}, {"fold_batchnorm": True}, ratio=0.3),
        None),
    "digits-expanded": (lambda: pruned_expanded_collapsed(DIGITS_SPEC, False, ratio=0.5), None),
    "vgg16-28x28-pruned-collapsed": (
        lambda: pruned_expanded_collapsed({"preset": "vgg16", "width": 0.125, "input": [1, 28, 28]}, ratio=0.5),
        {"preset": "vgg16", "input": [1, 28, 28]}),
}


@pytest.mark.parametrize("case", list(ROUND_TRIPS), ids=list(ROUND_TRIPS))
def test_numpy_round_trip_gives_bit_identical_logits(case, tmp_path) -> None:
    """Reparo file → numpy tensors (+ PyTorch's num_batches_tracked) → export_state_dict →
    Reparo: the same tensors under the same resolved spec give bit-identical logits. Presets
    given by name take their (pruned) widths and conv biases from the tensors."""
    factory, spec = ROUND_TRIPS[case]
    source = tmp_path / "source.safetensors"
    with factory() as model:
        model.save(source)
        images = images_for(model)
        expected = model.infer(images)
        state = model.state
    metadata, tensors = read_file(source)
    if spec is None:
        spec = json.loads(metadata["spec"])
    state_dict = dict(tensors)
    for name in list(tensors):
        if name.endswith(".running_var"):
            state_dict[name.replace("running_var", "num_batches_tracked")] = np.array(7)
    exported = tmp_path / "exported.safetensors"
    written = export_state_dict(state_dict, exported, spec, state=state)
    assert written == json.loads(metadata["spec"])  # same resolved spec as Reparo's own file
    with reparo.Model.load(exported) as loaded:
        assert loaded.state == state
        actual = loaded.infer(images)
    assert_informative(expected)
    assert np.array_equal(actual, expected)
    _, reread = read_file(exported)
    assert all(np.array_equal(reread[name], tensors[name]) for name in tensors) and set(reread) == set(tensors)


def test_export_rejects_tensors_that_do_not_fit_the_spec(tmp_path) -> None:
    path = tmp_path / "model.safetensors"
    with moved({"preset": "resnet20", "width": 0.25}, steps=0) as model:
        model.save(path)
    _, tensors = read_file(path)
    target = tmp_path / "out.safetensors"

    def error(state_dict: Dict[str, np.ndarray], spec: Any = "resnet20") -> str:
        with pytest.raises(ValueError) as caught:
            export_state_dict(state_dict, target, spec)
        assert not target.exists()
        return str(caught.value)

    missing = {k: v for k, v in tensors.items() if k != "layer2.1.bn1.running_mean"}
    assert "missing tensor 'layer2.1.bn1.running_mean'" in error(missing)
    assert "unexpected tensor 'fc.weight'" in error({**tensors, "fc.weight": np.zeros((10, 16), np.float32)})
    wrong = dict(tensors, **{"layer1.0.conv2.weight": np.zeros((4, 3, 3, 3), np.float32)})
    assert "'layer1.0.conv2.weight' has shape [4, 3, 3, 3]" in error(wrong)
    assert "missing tensor 'features.0.weight'" in error(tensors, "vgg16")
    assert "linear layer of 100 outputs" in error(tensors, {"preset": "resnet20", "classes": 100})
    # A spec or state Reparo refuses is reported by Reparo (reparo_spec_resolve), naming the field.
    with pytest.raises(reparo.ReparoError, match=r"spec\.preset: \"resnet18\" is not one of") as caught:
        export_state_dict(tensors, target, "resnet18")
    assert caught.value.status == reparo.Status.INVALID_ARGUMENT
    with pytest.raises(reparo.ReparoError, match=r"spec\.state") as caught:
        export_state_dict(tensors, target, "resnet20", state="trained")
    assert caught.value.status == reparo.Status.INVALID_ARGUMENT
    assert not target.exists()
    # read_file reports a malformed header as ValueError too.
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"a":{"dtype":"F32"}} ')
    with pytest.raises(ValueError, match="malformed safetensors header"):
        read_file(broken)


# --- with torch --------------------------------------------------------------------------------


def randomize(module, torch, seed: int) -> None:
    """Random conv/linear weights (fan-in scaled) and BatchNorm γ, β, μ, σ², so that activations
    neither die nor explode through 56 layers and every tensor matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = sub.weight[0].numel()
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                if sub.bias is not None:
                    sub.bias.copy_(torch.randn(sub.bias.shape, generator=generator) * 0.1)
            elif isinstance(sub, torch.nn.BatchNorm2d):
                c = sub.num_features
                sub.weight.copy_(torch.rand(c, generator=generator) * 0.5 + 0.5)
                sub.bias.copy_(torch.randn(c, generator=generator) * 0.1)
                sub.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                sub.running_var.copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)
                sub.num_batches_tracked.fill_(11)


TORCH_EXPORTS = {
    # name: (torch model factory, spec for export_state_dict)
    "vgg16": (lambda tm: tm.vgg16(), "vgg16"),
    "vgg16-w0.5-conv-bias": (lambda tm: tm.VGG(width=0.5, conv_bias=True), {"preset": "vgg16", "width": 0.5}),
    "resnet20": (lambda tm: tm.cifar_resnet(20), "resnet20"),
    "resnet56-w0.5-100-classes": (lambda tm: tm.cifar_resnet(56, classes=100, width=0.5),
                                  {"preset": "resnet56", "classes": 100}),
    "vgg16-fashion-mnist": (lambda tm: tm.VGG(width=0.25, in_channels=1, input_size=(28, 28)),
                            {"preset": "vgg16", "width": 0.25, "input": [1, 28, 28]}),
    "resnet20-fashion-mnist": (lambda tm: tm.cifar_resnet(20, in_channels=1),
                               {"preset": "resnet20", "input": [1, 28, 28]}),
}


@pytest.mark.parametrize("case", list(TORCH_EXPORTS), ids=list(TORCH_EXPORTS))
def test_torch_model_exported_to_reparo_gives_the_same_logits(case, torch, tmp_path) -> None:
    from reparo import torch_models

    factory, spec = TORCH_EXPORTS[case]
    torch.manual_seed(0)
    net = factory(torch_models)
    randomize(net, torch, seed=1)
    net.eval()
    path = tmp_path / "from_torch.safetensors"
    export_state_dict(net, path, spec)

    input_shape = resolve_spec(spec)["input"]
    images = np.random.default_rng(2).standard_normal((4, *input_shape)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    with reparo.Model.load(path) as model:
        assert model.state == "dense"
        actual = model.infer(images)
    assert_informative(expected)
    error = relative_error(actual, expected)
    print(f"{case}: PyTorch → Reparo max relative logit error {error:.2e}")
    assert error <= TOLERANCE

    # The file is a plain safetensors file too.
    from safetensors.torch import load_file

    reloaded = load_file(str(path))
    state_dict = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(reloaded) == set(state_dict)
    assert all(torch.equal(reloaded[k], state_dict[k]) for k in state_dict)


REPARO_EXPORTS = {
    # name: (Reparo model factory, PyTorch class expected from build_torch_model)
    "vgg16-pruned-collapsed": (lambda: pruned_expanded_collapsed({"preset": "vgg16", "width": 0.25}, ratio=0.5), "VGG"),
    "resnet20-pruned-collapsed": (lambda: pruned_expanded_collapsed({"preset": "resnet20"}, ratio=0.6), "CifarResNet"),
    "resnet20-coupled-collapsed": (
        lambda: pruned_expanded_collapsed({"preset": "resnet20", "width": 0.5}, ratio=0.5, residual="coupled"),
        "CifarResNet"),
    "resnet56-pruned-collapsed": (lambda: pruned_expanded_collapsed({"preset": "resnet56", "width": 0.5}, ratio=0.7),
                                  "CifarResNet"),
    "resnet20-folded-batchnorm": (
        lambda: pruned_expanded_collapsed({"preset": "resnet20", "width": 0.5}, {"fold_batchnorm": True}, ratio=0.5),
        "SpecNet"),
    "vgg16-expanded": (lambda: pruned_expanded_collapsed({"preset": "vgg16", "width": 0.125}, False, ratio=0.5), "SpecNet"),
    "digits-collapsed": (lambda: pruned_expanded_collapsed(DIGITS_SPEC, ratio=0.5), "SpecNet"),
    "vgg16-fashion-mnist-pruned-collapsed": (
        lambda: pruned_expanded_collapsed({"preset": "vgg16", "width": 0.25, "input": [1, 28, 28]}, ratio=0.7), "VGG"),
    "resnet20-fashion-mnist-pruned-collapsed": (
        lambda: pruned_expanded_collapsed({"preset": "resnet20", "input": [1, 28, 28]}, ratio=0.5), "CifarResNet"),
}


@pytest.mark.parametrize("case", list(REPARO_EXPORTS), ids=list(REPARO_EXPORTS))
def test_reparo_model_loaded_into_torch_gives_the_same_logits(case, torch, tmp_path) -> None:
    from safetensors.torch import load_file

    factory, class_name = REPARO_EXPORTS[case]
    path = tmp_path / "reparo.safetensors"
    with factory() as model:
        model.save(path)
        images = images_for(model, seed=4)
        expected = model.infer(images)
        description = model.describe()

    state_dict, spec = torch_interop.load_into_torch(path, with_spec=True)
    net = torch_interop.build_torch_model(spec)
    assert type(net).__name__ == class_name
    net.load_state_dict(state_dict, strict=True)  # every key and shape, including pruned widths
    net.eval()
    # The PyTorch module has the pruned model's parameter count (BatchNorm statistics aside).
    trainable = sum(p.numel() for p in net.parameters())
    assert trainable == description["parameters"]
    with torch.no_grad():
        actual = net(torch.from_numpy(images)).numpy()
    assert_informative(expected)
    error = relative_error(actual, expected)
    print(f"{case}: Reparo → PyTorch ({class_name}) max relative logit error {error:.2e}")
    assert error <= TOLERANCE

    # load_torch_model does the same in one call; safetensors.torch reads the same tensors.
    with torch.no_grad():
        assert torch.equal(torch_interop.load_torch_model(path)(torch.from_numpy(images)), torch.from_numpy(actual))
    plain = load_file(str(path))
    assert set(plain) == {k for k in state_dict if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(plain[k], state_dict[k]) for k in plain)


def test_pruned_torch_model_round_trips_through_reparo(torch, tmp_path) -> None:
    """A model loaded into PyTorch from a pruned Reparo file exports back (widths taken from
    the tensors) to a file Reparo loads with bit-identical logits."""
    with pruned_expanded_collapsed({"preset": "resnet20", "width": 0.5}, ratio=0.5, residual="coupled") as model:
        model.save(tmp_path / "pruned.safetensors")
        images = images_for(model)
        expected = model.infer(images)
    net = torch_interop.load_torch_model(tmp_path / "pruned.safetensors")
    export_state_dict(net, tmp_path / "back.safetensors", "resnet20", state="collapsed")
    with reparo.Model.load(tmp_path / "back.safetensors") as back:
        assert np.array_equal(back.infer(images), expected)
