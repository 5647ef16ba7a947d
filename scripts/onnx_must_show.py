#!/usr/bin/env python3
"""Issue 18's "Must show", independent of Reparo's Python package: builds a small residual CNN
with the `onnx` helper API only (Conv, BatchNormalization, Relu, MaxPool, an identity and a
1×1-conv residual Add + Relu, GlobalAveragePool, Flatten, Gemm; random weights from numpy),
imports it through the C ABI of libreparo.so (raw ctypes, no `import reparo`), checks Reparo's
logits against onnxruntime's, prunes it, exports the pruned model back to ONNX, and checks
that onnxruntime runs the export with Reparo's logits. Prints a table of the errors; exits 1
if any check fails (2 if the library cannot be loaded).

    python3 scripts/onnx_must_show.py [--lib path/to/libreparo.so] [--out-dir DIR]

The library is found like the Python package finds it: --lib, else $REPARO_LIBRARY, else
.build-release/release/libreparo.so in this checkout (after `bash scripts/build.sh`).
Needs numpy, onnx and onnxruntime.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import sys
import tempfile
from ctypes import POINTER, c_char_p, c_float, c_int32, c_size_t, c_void_p
from typing import Dict, List, Tuple

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Bound on max |a − b| / max(1, max |b|) over the logits: both runtimes compute in float32
#: and sum a conv's products in different orders (rounding of order 1e-6 here), while a wrong
#: pad, stride, BatchNorm, shortcut or pruned channel moves logits by far more than 1e-4.
TOLERANCE = 1e-4

INPUT_SHAPE = (3, 16, 16)
CLASSES = 10


# --- the ONNX model, built with onnx.helper ---------------------------------------------------


class GraphBuilder:
    """Collects nodes and initializers; each layer method returns its output value's name."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []

    def tensor(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv(self, name: str, x: str, cin: int, cout: int, kernel: int, stride: int, pad: int, bias: bool) -> str:
        # He-normal weights keep activations of order 1 through the depth.
        weight = self.rng.standard_normal((cout, cin, kernel, kernel)) * np.sqrt(2.0 / (cin * kernel * kernel))
        inputs = [x, self.tensor(f"{name}.weight", weight)]
        if bias:
            inputs.append(self.tensor(f"{name}.bias", 0.1 * self.rng.standard_normal(cout)))
        self.nodes.append(helper.make_node("Conv", inputs, [f"{name}_out"], name=f"/{name}/Conv",
                                           kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4))
        return f"{name}_out"

    def batchnorm(self, name: str, x: str, channels: int) -> str:
        # Random statistics and affine parameters: a fresh BN is the identity and would hide a bug.
        parameters = [self.tensor(f"{name}.weight", self.rng.uniform(0.5, 1.5, channels)),
                      self.tensor(f"{name}.bias", 0.2 * self.rng.standard_normal(channels)),
                      self.tensor(f"{name}.running_mean", 0.2 * self.rng.standard_normal(channels)),
                      self.tensor(f"{name}.running_var", self.rng.uniform(0.5, 1.5, channels))]
        self.nodes.append(helper.make_node("BatchNormalization", [x, *parameters], [f"{name}_out"],
                                           name=f"/{name}/BatchNormalization", epsilon=1e-5))
        return f"{name}_out"

    def op(self, op_type: str, name: str, inputs: List[str], **attributes: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [f"{name}_out"], name=f"/{name}/{op_type}", **attributes))
        return f"{name}_out"

    def block(self, name: str, x: str, cin: int, cout: int, stride: int) -> str:
        """A basic residual block: conv-BN-ReLU-conv-BN, plus x (or a 1×1 conv + BN of x when
        the shape changes), then ReLU."""
        main = self.op("Relu", f"{name}.relu1", [self.batchnorm(f"{name}.bn1", self.conv(f"{name}.conv1", x, cin, cout, 3, stride, 1, False), cout)])
        main = self.batchnorm(f"{name}.bn2", self.conv(f"{name}.conv2", main, cout, cout, 3, 1, 1, False), cout)
        shortcut = x
        if stride != 1 or cin != cout:
            shortcut = self.batchnorm(f"{name}.downsample.1", self.conv(f"{name}.downsample.0", x, cin, cout, 1, stride, 0, False), cout)
        return self.op("Relu", f"{name}.relu2", [self.op("Add", f"{name}.add", [main, shortcut])])


def build_model(seed: int) -> onnx.ModelProto:
    """3×16×16 → conv 8 (bias) → BN → ReLU → maxpool 2 → block 8 (identity shortcut) →
    block 16 stride 2 (1×1-conv shortcut) → global average pool → flatten → Gemm 10."""
    graph = GraphBuilder(np.random.default_rng(seed))
    x = graph.conv("conv1", "input", INPUT_SHAPE[0], 8, 3, 1, 1, True)
    x = graph.op("Relu", "relu", [graph.batchnorm("bn1", x, 8)])
    x = graph.op("MaxPool", "maxpool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = graph.block("layer1.0", x, 8, 8, 1)
    x = graph.block("layer2.0", x, 8, 16, 2)
    x = graph.op("Flatten", "flatten", [graph.op("GlobalAveragePool", "avgpool", [x])], axis=1)
    weight = graph.tensor("fc.weight", graph.rng.standard_normal((CLASSES, 16)) / 4.0)
    bias = graph.tensor("fc.bias", 0.1 * graph.rng.standard_normal(CLASSES))
    graph.nodes.append(helper.make_node("Gemm", [x, weight, bias], ["logits"], name="/fc/Gemm", transB=1))
    model = helper.make_model(
        helper.make_graph(graph.nodes, "must_show",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *INPUT_SHAPE])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
                          graph.initializers),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8, producer_name="onnx_must_show.py")
    onnx.checker.check_model(model, full_check=True)
    return model


# --- the C ABI through raw ctypes -------------------------------------------------------------


def find_library(explicit: str | None) -> pathlib.Path:
    for candidate in (explicit, os.environ.get("REPARO_LIBRARY")):
        if candidate:
            return pathlib.Path(candidate)
    return ROOT / ".build-release" / "release" / "libreparo.so"


class Reparo:
    """The few calls of include/reparo.h this script makes; a non-zero status raises."""

    SIGNATURES: Dict[str, Tuple[list, object]] = {
        "reparo_last_error": ([], c_char_p),
        "reparo_status_name": ([c_int32], c_char_p),
        "reparo_model_import_onnx": ([c_char_p, c_char_p, POINTER(c_void_p)], c_int32),
        "reparo_model_export_onnx": ([c_void_p, c_char_p, c_char_p], c_int32),
        "reparo_model_shape": ([c_void_p, POINTER(c_int32), POINTER(c_int32), POINTER(c_int32), POINTER(c_int32)], c_int32),
        "reparo_infer": ([c_void_p, POINTER(c_float), c_int32, POINTER(c_float), c_size_t], c_int32),
        "reparo_prune": ([c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "reparo_model_free": ([c_void_p], None),
    }

    def __init__(self, path: pathlib.Path) -> None:
        self.lib = ctypes.CDLL(str(path))
        for name, (argtypes, restype) in self.SIGNATURES.items():
            function = getattr(self.lib, name)
            function.argtypes, function.restype = argtypes, restype

    def check(self, status: int, call: str) -> None:
        if status != 0:
            name = self.lib.reparo_status_name(status).decode()
            raise RuntimeError(f"{call}: {name}: {self.lib.reparo_last_error().decode()}")

    def import_onnx(self, path: pathlib.Path) -> c_void_p:
        model = c_void_p()
        self.check(self.lib.reparo_model_import_onnx(str(path).encode(), None, ctypes.byref(model)), "reparo_model_import_onnx")
        return model

    def export_onnx(self, model: c_void_p, path: pathlib.Path) -> None:
        self.check(self.lib.reparo_model_export_onnx(model, str(path).encode(), None), "reparo_model_export_onnx")

    def prune(self, model: c_void_p, options: str) -> c_void_p:
        pruned = c_void_p()
        self.check(self.lib.reparo_prune(model, options.encode(), ctypes.byref(pruned)), "reparo_prune")
        return pruned

    def shape(self, model: c_void_p) -> Tuple[int, int, int, int]:
        values = [c_int32() for _ in range(4)]
        self.check(self.lib.reparo_model_shape(model, *(ctypes.byref(v) for v in values)), "reparo_model_shape")
        return tuple(v.value for v in values)  # type: ignore[return-value]

    def infer(self, model: c_void_p, images: np.ndarray, classes: int) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        logits = np.empty((images.shape[0], classes), dtype=np.float32)
        self.check(self.lib.reparo_infer(model, images.ctypes.data_as(POINTER(c_float)), images.shape[0],
                                         logits.ctypes.data_as(POINTER(c_float)), logits.size), "reparo_infer")
        return logits


# --- the checks -------------------------------------------------------------------------------


def onnxruntime_logits(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": images})[0]


def errors(actual: np.ndarray, expected: np.ndarray) -> Tuple[float, float]:
    """(max abs difference, the same divided by max(1, max |expected|))."""
    difference = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64))))
    return difference, difference / max(1.0, float(np.max(np.abs(expected))))


def parameters(path: pathlib.Path) -> int:
    return sum(int(np.prod(tensor.dims)) for tensor in onnx.load(str(path)).graph.initializer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", help="path to libreparo.so")
    parser.add_argument("--out-dir", help="where the two .onnx files go (default: a temporary folder)")
    parser.add_argument("--ratio", type=float, default=0.5, help="pruning ratio (default 0.5)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    library = find_library(args.lib)
    try:
        reparo = Reparo(library)
    except (OSError, AttributeError) as error:
        print(f"cannot load the Reparo C library at {library}: {error} (build it: bash scripts/build.sh)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        directory = pathlib.Path(args.out_dir or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        original, exported = directory / "must_show.onnx", directory / "must_show_pruned.onnx"
        onnx.save(build_model(args.seed), str(original))
        rng = np.random.default_rng(args.seed)
        batches = [rng.standard_normal((count, *INPUT_SHAPE)).astype(np.float32) for count in (1, 8)]

        rows: List[Tuple[str, float, float]] = []
        dense, pruned = c_void_p(), c_void_p()
        try:
            dense = reparo.import_onnx(original)
            shape = reparo.shape(dense)
            if shape != (*INPUT_SHAPE, CLASSES):
                print(f"FAIL: the imported model has input and classes {shape}, the graph {(*INPUT_SHAPE, CLASSES)}")
                return 1
            for images in batches:
                rows.append((f"imported vs onnxruntime (original), batch {len(images)}",
                             *errors(reparo.infer(dense, images, CLASSES), onnxruntime_logits(original, images))))
            pruned = reparo.prune(dense, f'{{"ratio": {args.ratio}}}')
            reparo.export_onnx(pruned, exported)
            onnx.checker.check_model(onnx.load(str(exported)), full_check=True)
            for images in batches:
                rows.append((f"pruned export: onnxruntime vs Reparo, batch {len(images)}",
                             *errors(onnxruntime_logits(exported, images), reparo.infer(pruned, images, CLASSES))))
            # The pruned model computes another function than the dense one (pruning happened).
            moved = errors(reparo.infer(pruned, batches[1], CLASSES), reparo.infer(dense, batches[1], CLASSES))[1]
        except RuntimeError as error:  # a call returned an error status
            print(f"FAIL: {error}")
            return 1
        finally:
            reparo.lib.reparo_model_free(pruned)
            reparo.lib.reparo_model_free(dense)

        failed = False
        print(f"library: {library}")
        print(f"{'check':<48} {'max abs':>9} {'scaled':>9}  bound {TOLERANCE:g}")
        for name, absolute, scaled in rows:
            verdict = "PASS" if scaled <= TOLERANCE else "FAIL"
            failed |= verdict == "FAIL"
            print(f"{name:<48} {absolute:9.2e} {scaled:9.2e}  {verdict}")
        sizes = parameters(original), parameters(exported)
        smaller = sizes[1] < sizes[0]
        failed |= not smaller or moved <= TOLERANCE
        print(f"{'parameters: original → pruned export':<48} {sizes[0]:>9} {sizes[1]:>9}  {'PASS' if smaller else 'FAIL'}")
        print(f"{'pruned vs dense logits (scaled, must differ)':<48} {'':>9} {moved:9.2e}  "
              f"{'PASS' if moved > TOLERANCE else 'FAIL'}")
        print("FAILED" if failed else "all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
