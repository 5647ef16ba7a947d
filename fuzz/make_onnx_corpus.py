#!/usr/bin/env python3
"""Writes the seed corpus of the onnx fuzz target (fuzz/corpus/onnx/): small valid ONNX models.

    .venv/bin/python fuzz/make_onnx_corpus.py     (numpy, onnx; torch and the built library optional)

- helper-*.onnx: graphs written with onnx.helper, together covering every op and attribute form
  the importer accepts (Conv with and without bias, strides, pads, auto_pad; BatchNormalization
  with ε 1e-5 and 1e-3; Relu; MaxPool; AveragePool; GlobalAveragePool; Flatten; Reshape with a
  constant shape as initializer or Constant node; the legacy exporter's Shape → Gather →
  Unsqueeze → Concat → Reshape; Gemm transB 0 and 1; MatMul with and without Add; Add + Relu
  residuals with identity and 1×1-conv shortcuts; Identity; Dropout), in opsets 11, 13 and 17,
  raw_data and float_data initializers. Each passes onnx.checker (full check) and runs in
  onnxruntime when it is installed.
- regression-scope-name-like-counter.onnx: finding 1 of fuzz/README.md (a layer named from dynamo
  metadata like an exporter's counter).
- helper-external-data.onnx: a graph whose initializers lie in "model.onnx.data" (location,
  offset, length), the fixed file the harness keeps beside its scratch "model.onnx"
  (external_data_file() writes the same bytes).
- torch-*.onnx: a tiny ResNet-style and a VGG-style CNN exported by torch.onnx.export with both
  exporters (dynamo and dynamo=False); skipped without torch.
- reparo-*.onnx: Reparo's own exports (Model.export_onnx) of small specs: dense, pruned, and
  collapsed with BatchNorm folded; skipped when libreparo.so is not built (scripts/build.sh).

Deterministic for given package versions (fixed seeds). Each file stays under 64 KiB so that
libFuzzer's mutations stay fast. Findings (crash-*, …) are left alone; the one fixed finding
of this target is written here as a clean graph (regression-scope-name-like-counter.onnx).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "corpus", "onnx")
MAX_BYTES = 64 * 1024
rng = np.random.default_rng(18)


def write(name, data):
    if len(data) >= MAX_BYTES:
        raise SystemExit(f"{name}: {len(data)} bytes, over the {MAX_BYTES}-byte budget of a seed")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as handle:
        handle.write(data)
    print(f"{name}: {len(data)} bytes", file=sys.stderr)


class Graph:
    """Accumulates nodes and float initializers; names values v0, v1, … in creation order."""

    def __init__(self, raw=True):
        self.nodes, self.initializers, self.count, self.raw = [], [], 0, raw

    def value(self):
        self.count += 1
        return f"v{self.count}"

    def constant(self, name, array):
        array = np.asarray(array)
        if self.raw or array.dtype != np.float32:
            tensor = numpy_helper.from_array(array, name)
        else:  # the float_data form (what some older exporters write)
            tensor = helper.make_tensor(name, TensorProto.FLOAT, array.shape, array.flatten().tolist())
        self.initializers.append(tensor)
        return name

    def weight(self, name, shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = scale if scale is not None else 1 / np.sqrt(fan_in)
        return self.constant(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op, inputs, name=None, outputs=1, **attributes):
        results = [self.value() for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, results, name=name or f"{op}_{len(self.nodes)}", **attributes))
        return results[0] if outputs == 1 else results

    def conv(self, x, cin, cout, kernel, name, stride=1, pad=None, bias=True, **attributes):
        pad = kernel // 2 if pad is None else pad
        inputs = [x, self.weight(f"{name}.weight", (cout, cin, kernel, kernel))]
        if bias:
            inputs.append(self.weight(f"{name}.bias", (cout,), 0.1))
        if "auto_pad" not in attributes:
            attributes["pads"] = [pad] * 4
        return self.node("Conv", inputs, name=f"/{name}/Conv", kernel_shape=[kernel, kernel],
                         strides=[stride, stride], **attributes)

    def batchnorm(self, x, channels, name, epsilon=1e-5):
        inputs = [x,
                  self.constant(f"{name}.weight", (1 + 0.1 * rng.standard_normal(channels)).astype(np.float32)),
                  self.constant(f"{name}.bias", (0.1 * rng.standard_normal(channels)).astype(np.float32)),
                  self.constant(f"{name}.running_mean", (0.1 * rng.standard_normal(channels)).astype(np.float32)),
                  self.constant(f"{name}.running_var", rng.uniform(0.5, 1.5, channels).astype(np.float32))]
        return self.node("BatchNormalization", inputs, name=f"/{name}/BatchNormalization", epsilon=epsilon, momentum=0.9)

    def relu(self, x, name=None):
        return self.node("Relu", [x], name=name)

    def gemm(self, x, features, out, name, trans_b=1):
        shape = (out, features) if trans_b else (features, out)
        return self.node("Gemm", [x, self.weight(f"{name}.weight", shape), self.weight(f"{name}.bias", (out,), 0.1)],
                         name=f"/{name}/Gemm", alpha=1.0, beta=1.0, transB=trans_b)

    def model(self, x_shape, output, classes, opset=17, ir_version=8):
        graph = helper.make_graph(
            self.nodes, "corpus",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *x_shape])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", classes])],
            self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="make_onnx_corpus", ir_version=ir_version)
        onnx.checker.check_model(model, full_check=True)
        run_in_onnxruntime(model, x_shape)
        return model.SerializeToString()


def external_data_file():
    """The bytes of the harness's "model.onnx.data" (fuzz/Sources/FuzzONNX/main.swift)."""
    return ((np.arange(16384) % 97) / np.float32(97) + np.float32(0.01)).astype("<f4").tobytes()


def run_in_onnxruntime(model, x_shape):
    """A seed onnxruntime cannot run would teach the fuzzer nothing about valid models."""
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    session.run(None, {"input": np.zeros((2, *x_shape), np.float32)})


def block(g, x, cin, cout, stride, name):
    """A ResNet basic block: conv-BN-relu-conv-BN, plus identity or 1×1-conv+BN shortcut, Add, Relu."""
    y = g.relu(g.batchnorm(g.conv(x, cin, cout, 3, f"{name}.conv1", stride=stride, bias=False), cout, f"{name}.bn1"))
    y = g.batchnorm(g.conv(y, cout, cout, 3, f"{name}.conv2", bias=False), cout, f"{name}.bn2")
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = g.conv(x, cin, cout, 1, f"{name}.downsample.0", stride=stride, bias=False)
        shortcut = g.batchnorm(shortcut, cout, f"{name}.downsample.1")
    return g.relu(g.node("Add", [y, shortcut], name=f"/{name}/Add"), name=f"/{name}/relu_1/Relu")


def helper_models():
    # VGG style: biased conv, BN (ε 1e-5 and 1e-3), max pools (unpadded and padded), Flatten,
    # Gemm transB 1 then transB 0.
    g = Graph()
    x = g.relu(g.batchnorm(g.conv("input", 3, 4, 3, "features.0"), 4, "features.1"))
    x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.relu(g.batchnorm(g.conv(x, 4, 6, 3, "features.4", bias=False), 6, "features.5", epsilon=1e-3))
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = g.node("Flatten", [x], axis=1)
    x = g.relu(g.gemm(x, 6 * 2 * 2, 8, "classifier.0"))
    write("helper-vgg-style.onnx", g.model((3, 8, 8), g.gemm(x, 8, 3, "classifier.2", trans_b=0), 3))

    # Average pool, Reshape with an initializer shape [0, -1], MatMul + Add.
    g = Graph()
    x = g.relu(g.conv("input", 2, 4, 1, "conv", pad=0))
    x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("Reshape", [x, g.constant("shape", np.array([0, -1], np.int64))])
    x = g.node("MatMul", [x, g.weight("fc.weight", (4 * 3 * 3, 5))])
    write("helper-avgpool-reshape-matmul-add.onnx",
          g.model((2, 6, 6), g.node("Add", [x, g.weight("fc.bias", (5,), 0.1)]), 5))

    # Global average pool, Identity, Dropout, Reshape by a Constant node [-1, C], float_data
    # initializers.
    g = Graph(raw=False)
    x = g.relu(g.conv("input", 1, 5, 5, "conv", stride=2, pad=2))
    x = g.node("Identity", [g.node("GlobalAveragePool", [x])])
    shape = g.node("Constant", [], value=numpy_helper.from_array(np.array([-1, 5], np.int64), "shape"))
    x = g.node("Dropout", [g.node("Reshape", [x, shape])])
    write("helper-gap-constant-reshape-dropout.onnx", g.model((1, 9, 9), g.gemm(x, 5, 2, "fc"), 2))

    # The legacy exporter's x.view(x.size(0), -1): Shape → Gather → Unsqueeze → Concat → Reshape;
    # MatMul without Add (a linear layer without bias).
    g = Graph()
    x = g.relu(g.conv("input", 3, 4, 3, "conv", stride=2))
    size = g.node("Gather", [g.node("Shape", [x]), g.constant("zero", np.array(0, np.int64))], axis=0)
    size = g.node("Unsqueeze", [size, g.constant("axes", np.array([0], np.int64))])
    shape = g.node("Concat", [size, g.constant("minus_one", np.array([-1], np.int64))], axis=0)
    x = g.node("Reshape", [x, shape])
    write("helper-shape-gather-concat-reshape.onnx",
          g.model((3, 6, 6), g.node("MatMul", [x, g.weight("fc.weight", (4 * 3 * 3, 4))]), 4))

    # The same pattern in opset 11 (Unsqueeze's axes as an attribute), IR 6, auto_pad SAME_UPPER.
    g = Graph()
    x = g.relu(g.conv("input", 2, 3, 3, "conv", auto_pad="SAME_UPPER"))
    size = g.node("Gather", [g.node("Shape", [x]), g.constant("zero", np.array(0, np.int64))], axis=0)
    shape = g.node("Concat", [g.node("Unsqueeze", [size], axes=[0]), g.constant("minus_one", np.array([-1], np.int64))], axis=0)
    x = g.node("Reshape", [x, shape])
    write("helper-opset11-auto-pad.onnx", g.model((2, 4, 4), g.gemm(x, 3 * 4 * 4, 2, "fc"), 2, opset=11, ir_version=6))

    # ResNet style, the ImageNet stem (7×7 stride 2 pad 3, 3×3 max pool stride 2 pad 1), an
    # identity block, a downsampling block with a 1×1-conv shortcut; opset 13.
    g = Graph()
    x = g.relu(g.batchnorm(g.conv("input", 3, 4, 7, "conv1", stride=2, bias=False), 4, "bn1"))
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = block(g, x, 4, 4, 1, "layer1.0")
    x = block(g, x, 4, 6, 2, "layer2.0")
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    write("helper-resnet-stem-blocks.onnx", g.model((3, 16, 16), g.gemm(x, 6, 3, "fc"), 3, opset=13, ir_version=7))

    # fuzz/README.md finding 1: dynamo-style scope metadata naming a tensorless layer like an
    # exporter's counter ("node_pool"); IR 10 and opset 20, as torch 2.15 writes.
    g = Graph()
    x = g.relu(g.conv("input", 1, 2, 3, "conv"))
    x = g.node("MaxPool", [x], name="node_max_pool2d", kernel_shape=[2, 2], strides=[2, 2])
    g.nodes[-1].metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'node_pool', 'max_pool2d']")
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    write("regression-scope-name-like-counter.onnx", g.model((1, 4, 4), g.gemm(x, 2, 2, "fc"), 2, opset=20, ir_version=10))

    # Initializers in the harness's external data file, at consecutive offsets.
    g = Graph()
    x = g.relu(g.batchnorm(g.conv("input", 2, 3, 3, "conv"), 3, "bn"))
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    model = onnx.load_from_string(g.model((2, 5, 5), g.gemm(x, 3, 2, "fc"), 2))
    data, offset = external_data_file(), 0
    for tensor in model.graph.initializer:
        length = len(tensor.raw_data)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "model.onnx.data"), ("offset", str(offset)), ("length", str(length))):
            tensor.external_data.add(key=key, value=value)
        offset += length
    assert offset <= len(data)
    import tempfile
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.onnx")
        with open(os.path.join(scratch, "model.onnx.data"), "wb") as handle:
            handle.write(data)
        onnx.save(model, path)
        onnx.checker.check_model(path, full_check=True)
        run_in_onnxruntime(onnx.load(path), (2, 5, 5))
    write("helper-external-data.onnx", model.SerializeToString())


def torch_models():
    try:
        import torch
        from torch import nn
    except ImportError:
        print("torch missing: no torch-*.onnx seeds", file=sys.stderr)
        return
    import tempfile
    torch.manual_seed(18)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = nn.Sequential(Block(4, 4, 1))
            self.layer2 = nn.Sequential(Block(4, 8, 2))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.avgpool(self.layer2(self.layer1(x)))
            return self.fc(x.view(x.size(0), -1))

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
            self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(8 * 2 * 2, 6), nn.ReLU(), nn.Linear(6, 3))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    for name, module, shape in (("resnet", ResNet(), (3, 16, 16)), ("vgg", VGG(), (1, 8, 8))):
        module.eval()
        # Non-trivial BatchNorm statistics, as a trained model has.
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.running_mean.uniform_(-0.1, 0.1)
                layer.running_var.uniform_(0.5, 1.5)
        example = torch.zeros(1, *shape)
        for exporter, dynamo in (("legacy", False), ("dynamo", True)):
            with tempfile.TemporaryDirectory() as scratch:
                path = os.path.join(scratch, "model.onnx")
                arguments = dict(input_names=["input"], output_names=["logits"], dynamo=dynamo)
                if dynamo:
                    arguments["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch")}}
                else:
                    arguments["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
                torch.onnx.export(module, (example,), path, **arguments)
                model = onnx.load(path)
                run_in_onnxruntime(model, shape)
                write(f"torch-{name}-{exporter}.onnx", model.SerializeToString())


def reparo_models():
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    try:
        import reparo
        reparo.Model  # noqa: B018 (loads the library)
    except (ImportError, OSError) as error:
        print(f"no libreparo.so ({error}): no reparo-*.onnx seeds", file=sys.stderr)
        return
    import tempfile

    def export(model, name):
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "model.onnx")
            model.export_onnx(path)
            write(f"reparo-{name}.onnx", open(path, "rb").read())

    generic = {"input": [2, 9, 7], "classes": 3, "layers": [
        {"type": "conv", "out": 4, "kernel": 3, "stride": 2, "padding": 1, "bias": True, "name": "stem"},
        {"type": "batchnorm"}, {"type": "relu"},
        {"type": "basic_block", "out": 6, "stride": 1},
        {"type": "basic_block", "name": "custom", "main": [
            {"type": "conv", "out": 6, "kernel": 1}, {"type": "relu"}], "shortcut": []},
        {"type": "maxpool", "kernel": 2, "stride": 1},
        {"type": "avgpool", "kernel": 2, "stride": 2},
        {"type": "avgpool"}, {"type": "flatten"},
        {"type": "linear", "out": 5, "bias": False}, {"type": "relu"},
        {"type": "linear", "out": 3}]}
    model = reparo.Model.create(generic, seed=1)
    export(model, "generic-dense")
    model.expand(rate=2, layers="all")
    model.collapse(fold_batchnorm=True)
    export(model, "generic-folded")
    resnet = reparo.Model.create({"preset": "resnet20", "width": 0.0625, "input": [3, 8, 8], "classes": 4}, seed=1)
    export(resnet.prune(ratio=0.5, criterion="l1", residual="coupled"), "resnet20-pruned")
    vgg = reparo.Model.create({"preset": "vgg16", "width": 0.0625, "input": [1, 8, 8], "classes": 2}, seed=1)
    export(vgg.prune(ratio=0.7, criterion="l2"), "vgg16-pruned")


if __name__ == "__main__":
    helper_models()
    torch_models()
    reparo_models()
