"""ONNX import (reparo_model_import_onnx): graphs built with onnx.helper give onnxruntime's logits;
small PyTorch CNNs exported by both exporters (dynamo and TorchScript) give PyTorch's logits and
PyTorch's module names; errors come back through the C ABI with their status and a message
naming the node and op; the `reparo import` command."""

from __future__ import annotations

import pathlib
import subprocess
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import pytest

import reparo
from reparo import ReparoError, Status

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[3]

#: Absolute tolerance on the logits. Both sides compute in float32 and sum a conv's or GEMM's
#: products in different orders (and BatchNorm in different algebraic forms); on these small
#: graphs with logits of order 1 the rounding is about 1e-6, so 1e-4 leaves margin yet catches
#: a wrong attribute, transposition, pad or missing layer (each moves the logits far more).
TOLERANCE = 1e-4


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


class Graph:
    """A tiny onnx.helper graph builder: one input [N, C, H, W], initializers, nodes."""

    def __init__(self, input_shape: Sequence[Any], seed: int = 0) -> None:
        self.nodes: List[Any] = []
        self.initializers: List[Any] = []
        self.input_shape = list(input_shape)
        self.rng = rng_for(seed)
        self.count = 0

    def weight(self, name: str, shape: Sequence[int], scale: float = 0.3, offset: float = 0.0) -> str:
        values = (self.rng.standard_normal(shape) * scale + offset).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def positive(self, name: str, shape: Sequence[int]) -> str:
        values = (0.5 + self.rng.random(shape)).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def ints(self, name: str, values: Sequence[int]) -> str:
        self.initializers.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def node(self, op: str, inputs: Sequence[str], name: str = "", outputs: Optional[Sequence[str]] = None,
             **attributes: Any) -> str:
        self.count += 1
        outs = list(outputs) if outputs is not None else [f"v{self.count}"]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attributes))
        return outs[0]

    def conv(self, x: str, name: str, cin: int, cout: int, kernel: int, bias: bool = False, **attributes: Any) -> str:
        inputs = [x, self.weight(f"{name}.weight", [cout, cin, kernel, kernel])]
        if bias:
            inputs.append(self.weight(f"{name}.bias", [cout]))
        return self.node("Conv", inputs, name=name, kernel_shape=[kernel, kernel], **attributes)

    def batchnorm(self, x: str, name: str, channels: int, epsilon: float = 1e-5) -> str:
        inputs = [x, self.weight(f"{name}.weight", [channels], 0.2, 1.0), self.weight(f"{name}.bias", [channels], 0.2),
                  self.weight(f"{name}.running_mean", [channels], 0.2), self.positive(f"{name}.running_var", [channels])]
        return self.node("BatchNormalization", inputs, name=name, epsilon=epsilon)

    def model(self, output: str, classes: int, opset: int = 17) -> Any:
        self.nodes[-1].output[0] = "logits"
        for node in self.nodes:   # rename the last value everywhere it is read
            for index, name in enumerate(node.input):
                if name == output:
                    node.input[index] = "logits"
        graph = helper.make_graph(
            self.nodes, "test",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def compare_with_onnxruntime(model_proto: Any, directory: pathlib.Path, shape: Sequence[int], **options: Any) -> reparo.Model:
    """Saves, imports, and checks Reparo's logits against onnxruntime's at batch 1 and 4."""
    path = directory / "model.onnx"
    onnx.save(model_proto, str(path))
    model = reparo.Model.import_onnx(path, **options)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = rng_for(42)
    for batch in (1, 4):
        images = rng.standard_normal((batch, *shape)).astype(np.float32)
        (expected,) = session.run(None, {"input": images})
        np.testing.assert_allclose(model.infer(images), expected, rtol=0, atol=TOLERANCE)
    return model


def layer_kinds(model: reparo.Model) -> List[str]:
    return [layer["type"] for layer in model.describe()["layers"]]


# --- hand-built graphs against onnxruntime ------------------------------------------------------

def plain_cnn(bias: bool, transposed: int) -> Any:
    """Conv (bias or not) → BN ε 1e-3 → Relu → MaxPool 2 → Conv → AveragePool 2 → GAP → Flatten → Gemm."""
    g = Graph(["N", 3, 12, 12], seed=1 + transposed)
    x = g.conv("input", "conv1", 3, 6, 3, bias=bias, pads=[1, 1, 1, 1])
    x = g.batchnorm(x, "bn1", 6, epsilon=1e-3)
    x = g.node("Relu", [x], name="relu1")
    x = g.node("MaxPool", [x], name="pool1", kernel_shape=[2, 2], strides=[2, 2])
    x = g.conv(x, "conv2", 6, 8, 3, bias=True, strides=[1, 1], pads=[0, 0, 0, 0])
    x = g.node("AveragePool", [x], name="pool2", kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("GlobalAveragePool", [x], name="gap")
    x = g.node("Flatten", [x], name="flatten", axis=1)
    weight = g.weight("fc.weight", [5, 8] if transposed else [8, 5])
    x = g.node("Gemm", [x, weight, g.weight("fc.bias", [5])], name="fc", transB=transposed)
    return g.model(x, 5)


@pytest.mark.parametrize("bias,transposed", [(False, 1), (True, 0)])
def test_plain_cnn_matches_onnxruntime(bias: bool, transposed: int, tmp_path: pathlib.Path) -> None:
    model = compare_with_onnxruntime(plain_cnn(bias, transposed), tmp_path, [3, 12, 12])
    assert layer_kinds(model) == ["conv", "batchnorm", "relu", "maxpool", "conv", "avgpool", "avgpool", "flatten", "linear"]
    names = [layer["name"] for layer in model.describe()["layers"]]
    assert names == ["conv1", "bn1", "relu1", "pool1", "conv2", "pool2", "gap", "flatten", "fc"]


@pytest.mark.parametrize("head", ["reshape", "matmul+add", "matmul"])
def test_reshape_and_matmul_heads_match_onnxruntime(head: str, tmp_path: pathlib.Path) -> None:
    g = Graph(["N", 2, 6, 6], seed=3)
    x = g.conv("input", "conv", 2, 4, 3, strides=[2, 2], pads=[1, 1, 1, 1])
    x = g.node("Relu", [x], name="relu")
    x = g.node("Reshape", [x, g.ints("shape", [-1, 36])], name="view")
    if head == "reshape":
        x = g.node("Gemm", [x, g.weight("fc.weight", [7, 36]), g.weight("fc.bias", [7])], name="fc", transB=1)
    else:
        x = g.node("MatMul", [x, g.weight("fc.weight", [36, 7])], name="fc")
        if head == "matmul+add":
            x = g.node("Add", [x, g.weight("fc.bias", [7])], name="fc_bias")
    model = compare_with_onnxruntime(g.model(x, 7), tmp_path, [2, 6, 6])
    assert layer_kinds(model) == ["conv", "relu", "flatten", "linear"]
    # conv 4·2·3·3 weights (no bias), linear 36·7 weights and 7 biases unless MatMul stands alone.
    assert model.parameter_count == 72 + 252 + (0 if head == "matmul" else 7)


def residual_graph(opset: int = 17) -> Any:
    """Stem conv-BN-Relu, an identity block, a block with a 1×1 conv + BN shortcut at stride 2,
    then ReduceMean over H, W (as dynamo writes a global average pool), Flatten, Gemm."""
    g = Graph(["N", 3, 8, 8], seed=5)
    x = g.node("Relu", [g.batchnorm(g.conv("input", "conv1", 3, 4, 3, pads=[1, 1, 1, 1]), "bn1", 4)], name="relu")
    for index, (cin, cout, stride) in enumerate([(4, 4, 1), (4, 6, 2)]):
        block = f"layer1.{index}"
        y = g.conv(x, f"{block}.conv1", cin, cout, 3, strides=[stride, stride], pads=[1, 1, 1, 1])
        y = g.node("Relu", [g.batchnorm(y, f"{block}.bn1", cout)], name=f"{block}.relu")
        y = g.batchnorm(g.conv(y, f"{block}.conv2", cout, cout, 3, pads=[1, 1, 1, 1]), f"{block}.bn2", cout)
        shortcut = x
        if stride != 1 or cin != cout:
            shortcut = g.batchnorm(g.conv(x, f"{block}.shortcut.0", cin, cout, 1, strides=[stride, stride]),
                                   f"{block}.shortcut.1", cout)
        x = g.node("Relu", [g.node("Add", [y, shortcut], name=f"{block}_add")], name=block)
    if opset >= 18:
        x = g.node("ReduceMean", [x, g.ints("axes", [2, 3])], name="avgpool", keepdims=1)
    else:
        x = g.node("ReduceMean", [x], name="avgpool", axes=[-2, -1], keepdims=1)
    x = g.node("Flatten", [x], name="flatten")
    x = g.node("Gemm", [x, g.weight("linear.weight", [3, 6]), g.weight("linear.bias", [3])], name="linear", transB=1)
    return g.model(x, 3, opset=opset)


@pytest.mark.parametrize("opset", [13, 18])
def test_residual_blocks_match_onnxruntime(opset: int, tmp_path: pathlib.Path) -> None:
    model = compare_with_onnxruntime(residual_graph(opset), tmp_path, [3, 8, 8])
    kinds = layer_kinds(model)
    assert kinds.count("residual_add") == 2
    # The imported model is a normal model: it prunes, and the pruned model still runs.
    with model.prune(ratio=0.5) as pruned:
        assert pruned.parameter_count < model.parameter_count
        logits = pruned.infer(rng_for(1).standard_normal((2, 3, 8, 8)).astype(np.float32))
        assert np.isfinite(logits).all()


def test_round_trip_through_reparo_export(tmp_path: pathlib.Path) -> None:
    """Reparo → ONNX → Reparo keeps every tensor name and the logits."""
    with reparo.Model.create({"preset": "resnet20", "width": 0.25}, seed=3) as model:
        model.export_onnx(tmp_path / "m.onnx")
        with reparo.Model.import_onnx(tmp_path / "m.onnx") as imported:
            assert [t["name"] for t in imported.describe()["layers"]] == [t["name"] for t in model.describe()["layers"]]
            images = rng_for(3).standard_normal((3, 3, 32, 32)).astype(np.float32)
            np.testing.assert_array_equal(imported.infer(images), model.infer(images))


# --- PyTorch models through both exporters ------------------------------------------------------

torch = pytest.importorskip("torch")
nn = torch.nn


class Block(nn.Module):
    """torchvision's BasicBlock, with an optional 1×1 conv + BN downsample."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: Any) -> Any:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class SmallResNet(nn.Module):
    """Stem conv 5×5 stride 2 + BN + ReLU + max-pool 2, two stages, global pool, `view`, fc."""

    def __init__(self, width: int = 8, view: bool = True) -> None:
        super().__init__()
        self.view = view
        self.conv1 = nn.Conv2d(3, width, 5, 2, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2, 2)
        self.layer1 = nn.Sequential(Block(width, width, 1), Block(width, width, 1))
        self.layer2 = nn.Sequential(Block(width, 2 * width, 2), Block(2 * width, 2 * width, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, 10)

    def forward(self, x: Any) -> Any:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.avgpool(self.layer2(self.layer1(x)))
        x = x.view(x.size(0), -1) if self.view else torch.flatten(x, 1)
        return self.fc(x)


class SmallVGG(nn.Module):
    """features (conv-BN-ReLU ×2, max-pool) ×2, flatten, classifier (Linear-ReLU-Dropout-Linear)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        layers: List[Any] = []
        cin = 1
        for cout in (width, width, "M", 2 * width, 2 * width, "M"):
            if cout == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, int(cout), 3, padding=1), nn.BatchNorm2d(int(cout)), nn.ReLU(inplace=True)]
                cin = int(cout)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(2 * width * 7 * 7, 32), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                        nn.Linear(32, 10))

    def forward(self, x: Any) -> Any:
        return self.classifier(torch.flatten(self.features(x), 1))


def randomized(net: Any, seed: int) -> Any:
    """Non-trivial BatchNorm statistics and affine parameters (fresh ones are the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
                module.running_mean.copy_(0.2 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))
    return net.eval()


def export(net: Any, shape: Sequence[int], path: pathlib.Path, dynamo: bool) -> None:
    example = torch.randn(2, *shape)
    if dynamo:
        torch.onnx.export(net, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    else:
        torch.onnx.export(net, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)


TORCH_MODELS: Dict[str, Callable[[], Any]] = {
    "resnet-view": lambda: SmallResNet(view=True),
    "resnet-flatten": lambda: SmallResNet(view=False),
    "vgg": lambda: SmallVGG(),
}
SHAPES = {"resnet-view": [3, 32, 32], "resnet-flatten": [3, 32, 32], "vgg": [1, 28, 28]}


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_torch_export_matches_torch(name: str, dynamo: bool, tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    net = randomized(TORCH_MODELS[name](), seed=1)
    shape = SHAPES[name]
    path = tmp_path / "net.onnx"
    export(net, shape, path, dynamo)
    with reparo.Model.import_onnx(path) as model:
        images = torch.randn(5, *shape, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            expected = net(images).numpy()
        np.testing.assert_allclose(model.infer(images.numpy()), expected, rtol=0, atol=TOLERANCE)
        # Weighted layers carry PyTorch's module names (SP-KD matches layers by name).
        modules = {module_name for module_name, _ in net.named_modules()}
        layers = model.describe()["layers"]
        for layer in layers:
            if layer["type"] in ("conv", "linear"):
                assert layer["name"] in modules, (layer["name"], sorted(modules))
        if name.startswith("resnet"):
            assert [layer["type"] for layer in layers].count("residual_add") == 4
        # A narrower copy of the same architecture (what a pruned model is) gets the same names.
        narrow = randomized({"vgg": lambda: SmallVGG(width=4)}.get(name, lambda: SmallResNet(width=4, view=name == "resnet-view"))(), 3)
        export(narrow, shape, tmp_path / "narrow.onnx", dynamo)
        with reparo.Model.import_onnx(tmp_path / "narrow.onnx", state="pruned") as pruned:
            assert [layer["name"] for layer in pruned.describe()["layers"]] == [layer["name"] for layer in layers]
            assert pruned.state == "pruned"


def engine_has_max_pool_padding() -> bool:
    try:
        reparo.Model.create({"input": [1, 4, 4], "classes": 2, "layers": [
            {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1}, {"type": "flatten"},
            {"type": "linear", "out": 2}]}).close()
        return True
    except ReparoError:
        return False


class Stem(nn.Module):
    """The ImageNet ResNet stem (7×7 stride 2 pad 3, BN, ReLU, 3×3 max-pool stride 2 pad 1), two
    blocks, global pool, flatten, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Any) -> Any:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.layer1(x)), 1))


@pytest.mark.skipif(not engine_has_max_pool_padding(), reason="the engine has no padded max-pool")
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_resnet_stem_matches_torch(dynamo: bool, tmp_path: pathlib.Path) -> None:
    net = randomized(Stem(), seed=4)
    export(net, [3, 64, 64], tmp_path / "stem.onnx", dynamo)
    with reparo.Model.import_onnx(tmp_path / "stem.onnx") as model:
        pool = next(layer for layer in model.describe()["layers"] if layer["type"] == "maxpool")
        assert pool["name"] == "maxpool" and pool["output"] == [8, 16, 16]
        images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            expected = net(images).numpy()
        np.testing.assert_allclose(model.infer(images.numpy()), expected, rtol=0, atol=TOLERANCE)


# --- errors through the C ABI -------------------------------------------------------------------

def expect_error(path: pathlib.Path, status: Status, fragments: Sequence[str], **options: Any) -> None:
    with pytest.raises(ReparoError) as caught:
        reparo.Model.import_onnx(path, **options)
    assert caught.value.status == status, caught.value
    for fragment in fragments:
        assert fragment in caught.value.message, (fragment, caught.value.message)
    assert caught.value.message.startswith("reparo_model_import_onnx: ")


def test_unsupported_ops_name_the_node(tmp_path: pathlib.Path) -> None:
    model = plain_cnn(False, 1)
    model.graph.node[2].op_type = "Sigmoid"   # relu1
    onnx.save(model, str(tmp_path / "sigmoid.onnx"))
    expect_error(tmp_path / "sigmoid.onnx", Status.INVALID_ARGUMENT, ["\"relu1\"", "Sigmoid"])

    model = plain_cnn(False, 1)
    model.graph.node[0].attribute.append(helper.make_attribute("dilations", [2, 2]))
    onnx.save(model, str(tmp_path / "dilated.onnx"))
    expect_error(tmp_path / "dilated.onnx", Status.INVALID_ARGUMENT, ["\"conv1\"", "Conv", "dilations"])

    g = Graph(["N", 4, 6, 6])
    x = g.node("Conv", ["input", g.weight("c.weight", [4, 2, 3, 3])], name="grouped", group=2)
    x = g.node("GlobalAveragePool", [x])
    x = g.node("Flatten", [x])
    x = g.node("Gemm", [x, g.weight("fc.weight", [3, 4])], transB=1)
    onnx.save(g.model(x, 3), str(tmp_path / "grouped.onnx"))
    expect_error(tmp_path / "grouped.onnx", Status.INVALID_ARGUMENT, ["\"grouped\"", "group 2"])


def test_add_without_relu_is_refused(tmp_path: pathlib.Path) -> None:
    model = residual_graph()
    for node in model.graph.node:
        if node.name == "layer1.0":
            node.op_type = "Sigmoid"
    onnx.save(model, str(tmp_path / "m.onnx"))
    expect_error(tmp_path / "m.onnx", Status.INVALID_ARGUMENT, ["\"layer1.0_add\"", "(Add)", "Relu"])


def test_symbolic_channels_need_the_input_option(tmp_path: pathlib.Path) -> None:
    g = Graph(["N", "C", "H", "W"], seed=4)
    x = g.node("Relu", [g.conv("input", "conv", 3, 4, 3, pads=[1, 1, 1, 1])])
    x = g.node("GlobalAveragePool", [x])
    x = g.node("Flatten", [x])
    x = g.node("Gemm", [x, g.weight("fc.weight", [2, 4])], transB=1)
    model = g.model(x, 2)
    path = tmp_path / "symbolic.onnx"
    onnx.save(model, str(path))
    expect_error(path, Status.INVALID_ARGUMENT, ["symbolic", "input"])
    model = compare_with_onnxruntime(model, tmp_path, [3, 10, 10], input=[3, 10, 10])
    assert model.input_shape == (3, 10, 10)
    expect_error(path, Status.INVALID_ARGUMENT, ["unknown key", "colour"], colour=1)


def test_malformed_files_are_format_errors(tmp_path: pathlib.Path) -> None:
    model = plain_cnn(False, 1)
    data = model.SerializeToString()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    expect_error(tmp_path / "truncated.onnx", Status.FORMAT, ["not a valid ONNX model"])
    (tmp_path / "garbage.onnx").write_bytes(bytes(range(256)) * 4)
    expect_error(tmp_path / "garbage.onnx", Status.FORMAT, [])
    lying = onnx.ModelProto()
    lying.CopyFrom(model)
    lying.graph.initializer[0].dims[0] = 1000   # conv1.weight: dims promise more than raw_data holds
    onnx.save(lying, str(tmp_path / "lying.onnx"))
    expect_error(tmp_path / "lying.onnx", Status.FORMAT, ["conv1.weight", "raw_data"])
    expect_error(tmp_path / "missing.onnx", Status.IO, ["missing.onnx"])
    expect_error(tmp_path, Status.IO, [])


# --- the command line ---------------------------------------------------------------------------

CLI = ROOT / ".build-release" / "release" / "reparo"


@pytest.mark.skipif(not CLI.exists(), reason="needs the release build (scripts/build.sh)")
def test_cli_import(tmp_path: pathlib.Path) -> None:
    onnx.save(residual_graph(), str(tmp_path / "m.onnx"))
    run = subprocess.run([str(CLI), "import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.safetensors"),
                          "--state", "pruned"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "imported" in run.stdout and "pruned" in run.stdout and run.stdout.count("\n") == 1
    with reparo.Model.load(tmp_path / "m.safetensors") as loaded, \
            reparo.Model.import_onnx(tmp_path / "m.onnx") as direct:
        assert loaded.state == "pruned"
        images = rng_for(7).standard_normal((2, 3, 8, 8)).astype(np.float32)
        np.testing.assert_array_equal(loaded.infer(images), direct.infer(images))
    run = subprocess.run([str(CLI), "import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "x.safetensors"),
                          "--input", "3,9,8"], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "input" in run.stderr
