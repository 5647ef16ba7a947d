#!/usr/bin/env python3
"""Reparo against PyTorch and ONNX Runtime on the same machine, threads and weights.

One run: builds VGG-16 (CIFAR, BN) dense, pruned 0.7 and expanded (rate 4) in Reparo through
its C ABI, exports Reparo's safetensors, loads the same tensors into equivalent PyTorch modules
(an expanded conv is three convs 1×1 → k×k → 1×1 named ``<conv>.factors.{0,1,2}``), checks that
the outputs agree with ``reparo_infer``, then times

1. one fine-tuning step (SGD momentum 0.9, weight decay 5e-4 on conv/linear weights, CE loss,
   batch 64, forward + backward + update): compact pruned, expanded (Reparo naive / online /
   auto; PyTorch three convs) and dense;
2. inference of the collapsed, BN-folded pruned model and the folded dense model, batch 1
   and 64: Reparo, PyTorch (eval, inference_mode) and ONNX Runtime (torch.onnx.export);
3. the dense → pruned speedup of each framework against the FLOP ratio from describe().

Every figure is a median over repeated runs after warm-up. Each framework is timed in its own
block (thread pools of one do not spin while the other runs). Results go to
``bench/results/<date>.json`` and a markdown table to stdout. Run it with ``bench/run.sh``.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import pathlib
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from ctypes import POINTER, byref, c_char_p, c_float, c_int32, c_int64, c_size_t, c_uint64, c_void_p

THREADS = 2
# OpenBLAS reads this when libreparo.so loads it; set before anything is loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

# --- Reparo through its C ABI (include/reparo.h), minimal declarations ----------------------


class StepResult(ctypes.Structure):
    _fields_ = [("loss", c_float), ("ce_loss", c_float), ("kd_loss", c_float), ("accuracy", c_float),
                ("learning_rate", c_float), ("step", c_int64)]


def load_reparo(path: pathlib.Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    signatures = {
        "reparo_last_error": ([], c_char_p),
        "reparo_model_create": ([c_char_p, c_uint64, POINTER(c_void_p)], c_int32),
        "reparo_model_clone": ([c_void_p, POINTER(c_void_p)], c_int32),
        "reparo_model_save": ([c_void_p, c_char_p], c_int32),
        "reparo_model_describe": ([c_void_p, c_char_p, c_size_t, POINTER(c_size_t)], c_int32),
        "reparo_system_info": ([c_char_p, c_size_t, POINTER(c_size_t)], c_int32),
        "reparo_model_free": ([c_void_p], None),
        "reparo_infer": ([c_void_p, POINTER(c_float), c_int32, POINTER(c_float), c_size_t], c_int32),
        "reparo_trainer_create": ([c_void_p, c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "reparo_trainer_step": ([c_void_p, POINTER(c_float), POINTER(c_int32), c_int32, POINTER(StepResult)], c_int32),
        "reparo_trainer_free": ([c_void_p], None),
        "reparo_prune": ([c_void_p, c_char_p, POINTER(c_void_p)], c_int32),
        "reparo_expand": ([c_void_p, c_char_p], c_int32),
        "reparo_collapse": ([c_void_p, c_char_p], c_int32),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


class Reparo:
    """The few calls the benchmark needs, raising on a non-zero status."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib

    def check(self, status: int, call: str) -> None:
        if status != 0:
            raise RuntimeError(f"{call} failed with status {status}: {self.lib.reparo_last_error().decode()}")

    def create(self, spec: dict, seed: int = 1) -> c_void_p:
        model = c_void_p()
        self.check(self.lib.reparo_model_create(json.dumps(spec).encode(), seed, byref(model)), "reparo_model_create")
        return model

    def clone(self, model: c_void_p) -> c_void_p:
        copy = c_void_p()
        self.check(self.lib.reparo_model_clone(model, byref(copy)), "reparo_model_clone")
        return copy

    def prune(self, model: c_void_p, options: dict) -> c_void_p:
        pruned = c_void_p()
        self.check(self.lib.reparo_prune(model, json.dumps(options).encode(), byref(pruned)), "reparo_prune")
        return pruned

    def expand(self, model: c_void_p, options: dict) -> None:
        self.check(self.lib.reparo_expand(model, json.dumps(options).encode()), "reparo_expand")

    def collapse(self, model: c_void_p, options: dict) -> None:
        self.check(self.lib.reparo_collapse(model, json.dumps(options).encode()), "reparo_collapse")

    def describe(self, model: c_void_p) -> dict:
        length = c_size_t()
        self.check(self.lib.reparo_model_describe(model, None, 0, byref(length)), "reparo_model_describe")
        buffer = ctypes.create_string_buffer(length.value + 1)
        self.check(self.lib.reparo_model_describe(model, buffer, length.value + 1, None), "reparo_model_describe")
        return json.loads(buffer.value.decode())

    def save(self, model: c_void_p, path: pathlib.Path) -> None:
        self.check(self.lib.reparo_model_save(model, str(path).encode()), "reparo_model_save")

    def infer(self, model: c_void_p, images: np.ndarray, logits: np.ndarray) -> None:
        self.check(self.lib.reparo_infer(model, images.ctypes.data_as(POINTER(c_float)), images.shape[0],
                                         logits.ctypes.data_as(POINTER(c_float)), logits.size), "reparo_infer")

    def trainer(self, model: c_void_p, options: dict) -> c_void_p:
        trainer = c_void_p()
        self.check(self.lib.reparo_trainer_create(model, None, json.dumps(options).encode(), byref(trainer)),
                   "reparo_trainer_create")
        return trainer

    def step(self, trainer: c_void_p, images: np.ndarray, labels: np.ndarray) -> StepResult:
        result = StepResult()
        self.check(self.lib.reparo_trainer_step(trainer, images.ctypes.data_as(POINTER(c_float)),
                                                labels.ctypes.data_as(POINTER(c_int32)), images.shape[0],
                                                byref(result)), "reparo_trainer_step")
        return result


def read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Minimal safetensors reader (F32 only, which is all Reparo writes)."""
    data = path.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    body = data[8 + header_length:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(info["shape"]).copy()
    return tensors


# --- The same network in PyTorch, built from Reparo's description ---------------------------


class ExpandedConv(nn.Module):
    """An expanded conv as Reparo stores it: factors.0 (1×1) → factors.1 (k×k) → factors.2 (1×1)."""

    def __init__(self, chain: list[list[int]], stride: int, padding: int, bias: bool):
        super().__init__()
        first, middle, last = chain
        self.factors = nn.Sequential(
            nn.Conv2d(first[1], first[0], 1, bias=False),
            nn.Conv2d(middle[1], middle[0], middle[2], stride=stride, padding=padding, bias=False),
            nn.Conv2d(last[1], last[0], 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factors(x)


class Network(nn.Module):
    """A Reparo model's layers in order; module paths equal Reparo's layer names
    (``features.3``, ``classifier``), so its safetensors load with load_state_dict."""

    def __init__(self, description: dict, tensors: dict[str, np.ndarray]):
        super().__init__()
        self.sequence: list[nn.Module] = []
        for layer in description["layers"]:
            module = self.make(layer, tensors)
            if module is None:
                continue
            *parents, child = layer["name"].split(".")
            container: nn.Module = self
            for part in parents:
                if not hasattr(container, part):
                    container.add_module(part, nn.Module())
                container = getattr(container, part)
            container.add_module(child, module)
            self.sequence.append(module)
        state = {name: torch.from_numpy(value) for name, value in tensors.items()}
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [name for name in missing if not name.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"weights do not match the module: missing {missing}, unexpected {unexpected}")

    @staticmethod
    def make(layer: dict, tensors: dict[str, np.ndarray]) -> nn.Module | None:
        kind, name = layer["type"], layer["name"]
        if kind == "conv":
            bias = f"{name}.bias" in tensors or f"{name}.factors.2.bias" in tensors
            if "chain" in layer:
                return ExpandedConv(layer["chain"], layer["stride"], layer["padding"], bias)
            out, cin, kh, _ = layer["weight"]
            return nn.Conv2d(cin, out, kh, stride=layer["stride"], padding=layer["padding"], bias=bias)
        if kind == "batchnorm":
            return nn.BatchNorm2d(layer["input"][0], eps=1e-5, momentum=0.1)
        if kind == "relu":
            return nn.ReLU(inplace=True)
        if kind == "maxpool":
            size = layer["input"][1] // layer["output"][1]
            return nn.MaxPool2d(size, size)
        if kind == "flatten":
            return nn.Flatten()
        if kind == "linear":
            out, features = layer["weight"]
            return nn.Linear(features, out, bias=f"{name}.bias" in tensors)
        raise ValueError(f"layer {name}: type {kind} is not handled by the benchmark")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.sequence:
            x = module(x)
        return x


def sgd(module: nn.Module, lr: float) -> torch.optim.SGD:
    """Reparo's SGD: momentum 0.9, weight decay 5e-4 on conv/linear weights only."""
    decayed = [p for n, p in module.named_parameters() if p.dim() > 1]
    plain = [p for n, p in module.named_parameters() if p.dim() <= 1]
    return torch.optim.SGD([{"params": decayed, "weight_decay": 5e-4}, {"params": plain, "weight_decay": 0.0}],
                           lr=lr, momentum=0.9)


# --- timing ---------------------------------------------------------------------------------


def measure(body, repetitions: int, warmup: int = 2, budget: float = 0.0) -> dict:
    """Median (and min) of at least `repetitions` timed calls after `warmup` untimed ones; cheap
    calls repeat until `budget` seconds were spent (at most 1000 times)."""
    for _ in range(warmup):
        body()
    times: list[float] = []
    while len(times) < repetitions or (sum(times) < budget and len(times) < 1000):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3, "repetitions": len(times)}


class ForeignLoad:
    """Share of all CPU time other processes used since creation (from /proc; 0 elsewhere)."""

    def __init__(self) -> None:
        self.start = self.read()

    @staticmethod
    def read() -> tuple[float, float, float]:
        try:
            ticks = [float(v) for v in pathlib.Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
            fields = pathlib.Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0, 0.0, 0.0
        busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
        return busy, busy + ticks[3] + ticks[4], float(fields[11]) + float(fields[12])

    def share(self) -> float:
        busy, total, own = self.read()
        elapsed = total - self.start[1]
        return max(0.0, (busy - self.start[0]) - (own - self.start[2])) / elapsed if elapsed > 0 else 0.0


def relative_error(reference: np.ndarray, value: np.ndarray) -> float:
    return float(np.max(np.abs(reference - value)) / max(np.max(np.abs(reference)), 1e-30))


def system_info(lib: ctypes.CDLL) -> dict:
    """reparo_system_info: CPU, kernel level, BLAS core (after Reparo's fix) and thread settings."""
    capacity = 1 << 16
    buffer = ctypes.create_string_buffer(capacity)
    length = c_size_t(0)
    if lib.reparo_system_info(buffer, capacity, ctypes.byref(length)) != 0:
        return {}
    return json.loads(buffer.value.decode())


def machine() -> dict:
    model = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "loadavg_start": os.getloadavg()[0],
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}


# --- the benchmark --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", default=os.environ.get("REPARO_LIBRARY",
                                                            str(ROOT / ".build-release/release/libreparo.so")))
    parser.add_argument("--reps", type=int, default=10, help="minimum timed repetitions (after warm-up)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--engine-json", help="reparo-bench --json output to embed in the results")
    parser.add_argument("--out", help="results file (default bench/results/<date>.json)")
    args = parser.parse_args()
    if args.batch < 8:
        parser.error("--batch must be at least 8 (the agreement check uses 8 images)")

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    reparo = Reparo(load_reparo(pathlib.Path(args.library)))
    batch, reps = args.batch, args.reps
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, batch).astype(np.int32)
    train_options = {"lr": 0.001, "momentum": 0.9, "weight_decay": 5e-4, "threads": THREADS}
    log = lambda *parts: print(*parts, file=sys.stderr, flush=True)  # noqa: E731

    # Models. A few dense steps first so BatchNorm statistics are not the trivial (0, 1).
    dense = reparo.create({"preset": "vgg16"})
    warm = reparo.trainer(dense, {**train_options, "lr": 0.01})
    for i in range(3):
        reparo.step(warm, images[:16] * (1 + i), labels[:16])
    reparo.lib.reparo_trainer_free(warm)
    pruned = reparo.prune(dense, {"ratio": 0.7})
    expanded = reparo.clone(pruned)
    reparo.expand(expanded, {"rate": 4})
    pruned_folded = reparo.clone(expanded)
    reparo.collapse(pruned_folded, {"fold_batchnorm": True})
    dense_folded = reparo.clone(dense)
    reparo.collapse(dense_folded, {"fold_batchnorm": True})
    models = {"dense": dense, "pruned": pruned, "expanded": expanded,
              "pruned_folded": pruned_folded, "dense_folded": dense_folded}
    descriptions = {name: reparo.describe(model) for name, model in models.items()}

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="reparo-bench-"))
    tensors = {}
    for name, model in models.items():
        reparo.save(model, workdir / f"{name}.safetensors")
        tensors[name] = read_safetensors(workdir / f"{name}.safetensors")

    def torch_model(name: str) -> Network:
        return Network(descriptions[name], tensors[name])

    # 0. Agreement: same weights, same images → same logits (eval mode).
    check_images = images[:8].copy()
    agreement = {}
    onnx_paths: dict[tuple[str, int], pathlib.Path] = {}
    for name, model in models.items():
        expected = np.empty((8, 10), dtype=np.float32)
        reparo.infer(model, check_images, expected)
        module = torch_model(name).eval()
        with torch.inference_mode():
            actual = module(torch.from_numpy(check_images)).numpy()
        agreement[f"{name}: PyTorch vs reparo_infer"] = relative_error(expected, actual)
        if name.endswith("folded"):
            for size in (1, batch):
                path = workdir / f"{name}-{size}.onnx"
                with torch.no_grad():
                    torch.onnx.export(module, (torch.zeros(size, 3, 32, 32),), str(path), input_names=["images"],
                                      output_names=["logits"], opset_version=17, dynamo=False)
                onnx_paths[(name, size)] = path
            session = ort_session(onnx_paths[(name, batch)])
            padded = np.concatenate([check_images, np.zeros((batch - 8, 3, 32, 32), np.float32)])
            actual = session.run(None, {"images": padded})[0][:8]
            agreement[f"{name}: ONNX Runtime vs reparo_infer"] = relative_error(expected, actual)
    for key, value in agreement.items():
        log(f"max relative error {key}: {value:.2e}")
    worst = max(agreement.values())
    if worst > 1e-3:
        raise SystemExit(f"outputs disagree (max relative error {worst:.2e}); not timing different computations")

    results: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                     "machine": {**machine(), "system": system_info(reparo.lib)}, "threads": THREADS, "batch": batch, "min_repetitions": reps,
                     "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__,
                                  "numpy": np.__version__, "python": platform.python_version()},
                     "flops": {name: d["flops"] for name, d in descriptions.items()},
                     "agreement_max_relative_error": agreement}

    # 1. Training steps. Reparo block, then PyTorch block.
    foreign: dict[str, float] = {}
    log("timing Reparo training steps ...")
    load = ForeignLoad()
    reparo_steps = {}
    first_losses = {}
    for label, source, mode in [("compact", pruned, "auto"), ("expanded naive", expanded, "naive"),
                                ("expanded online", expanded, "online"), ("expanded auto", expanded, "auto"),
                                ("dense", dense, "auto")]:
        student = reparo.clone(source)
        trainer = reparo.trainer(student, {**train_options, "chain_mode": mode})
        first_losses[f"reparo {label}"] = reparo.step(trainer, images, labels).loss
        reparo_steps[label] = measure(lambda: reparo.step(trainer, images, labels), reps, warmup=1)
        reparo.lib.reparo_trainer_free(trainer)
        reparo.lib.reparo_model_free(student)
        log(f"  reparo {label}: {reparo_steps[label]['median_ms']:.1f} ms")
    foreign["reparo train"] = load.share()
    time.sleep(1)

    log("timing PyTorch training steps ...")
    load = ForeignLoad()
    torch_steps = {}
    x, y = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
    for label, name in [("compact", "pruned"), ("expanded (three convs)", "expanded"), ("dense", "dense")]:
        module = torch_model(name).train()
        optimizer = sgd(module, train_options["lr"])

        def step() -> float:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        first_losses[f"pytorch {label}"] = step()
        torch_steps[label] = measure(step, reps, warmup=1)
        log(f"  pytorch {label}: {torch_steps[label]['median_ms']:.1f} ms")
    foreign["pytorch train"] = load.share()
    results["train_step"] = {"reparo": reparo_steps, "pytorch": torch_steps, "first_step_loss": first_losses}
    time.sleep(1)

    # 2. Inference of the folded models, batch 1 and `batch`.
    inference: dict = {"reparo": {}, "pytorch": {}, "onnxruntime": {}}
    inputs = {size: images[:size].copy() for size in (1, batch)}
    log("timing inference ...")
    load = ForeignLoad()
    for name in ("pruned_folded", "dense_folded"):
        for size in (1, batch):
            logits = np.empty((size, 10), dtype=np.float32)
            inference["reparo"][f"{name}/{size}"] = measure(
                lambda: reparo.infer(models[name], inputs[size], logits), reps, warmup=3, budget=1.0)
    foreign["reparo inference"] = load.share()
    time.sleep(1)
    load = ForeignLoad()
    for name in ("pruned_folded", "dense_folded"):
        module = torch_model(name).eval()
        for size in (1, batch):
            tensor = torch.from_numpy(inputs[size])

            def run() -> None:
                with torch.inference_mode():
                    module(tensor)

            inference["pytorch"][f"{name}/{size}"] = measure(run, reps, warmup=3, budget=1.0)
    foreign["pytorch inference"] = load.share()
    time.sleep(1)
    load = ForeignLoad()
    for name in ("pruned_folded", "dense_folded"):
        for size in (1, batch):
            session = ort_session(onnx_paths[(name, size)])
            feed = {"images": inputs[size]}
            inference["onnxruntime"][f"{name}/{size}"] = measure(lambda: session.run(None, feed), reps,
                                                                 warmup=3, budget=1.0)
    foreign["onnxruntime inference"] = load.share()
    results["inference"] = inference
    results["foreign_cpu_share"] = foreign
    noisy = {block: share for block, share in foreign.items() if share > 0.05}
    if noisy:
        log(f"WARNING: other processes used more than 5% of the CPU during {noisy}; rerun on a quiet machine")
    results["machine"]["loadavg_end"] = os.getloadavg()[0]

    # 3. Dense → pruned speedup against the FLOP ratio.
    flop_ratio = descriptions["dense"]["flops"] / descriptions["pruned"]["flops"]
    folded_ratio = descriptions["dense_folded"]["flops"] / descriptions["pruned_folded"]["flops"]
    speedups = {
        "flop_ratio_train": flop_ratio,
        "flop_ratio_folded": folded_ratio,
        "train_step": {"reparo": reparo_steps["dense"]["median_ms"] / reparo_steps["compact"]["median_ms"],
                       "pytorch": torch_steps["dense"]["median_ms"] / torch_steps["compact"]["median_ms"]},
    }
    for size in (1, batch):
        speedups[f"infer_batch{size}"] = {
            framework: inference[framework][f"dense_folded/{size}"]["median_ms"]
            / inference[framework][f"pruned_folded/{size}"]["median_ms"] for framework in inference}
    results["speedup_dense_over_pruned"] = speedups

    if args.engine_json:
        results["engine"] = json.loads(pathlib.Path(args.engine_json).read_text())

    markdown = report(results, batch)
    results["markdown"] = markdown
    out = pathlib.Path(args.out) if args.out else HERE / "results" / f"{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown)
    print(f"\nresults: {out}")
    for model in models.values():
        reparo.lib.reparo_model_free(model)
    return 0


def ort_session(path: pathlib.Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def report(results: dict, batch: int) -> str:
    train, inference = results["train_step"], results["inference"]
    ms = lambda entry: entry["median_ms"]  # noqa: E731
    rows = []

    def row(workload: str, reparo: float, pytorch: float | None, onnx: float | None = None) -> None:
        cells = [workload, f"{reparo:.2f}", f"{pytorch:.2f}" if pytorch else "–", f"{onnx:.2f}" if onnx else "–",
                 f"{reparo / pytorch:.2f}×" if pytorch else "–", f"{reparo / onnx:.2f}×" if onnx else "–"]
        rows.append("| " + " | ".join(cells) + " |")

    r, p = train["reparo"], train["pytorch"]
    row(f"train step, pruned 0.7 compact, b{batch}", ms(r["compact"]), ms(p["compact"]))
    row(f"train step, expanded r4: Reparo naive vs PyTorch 3 convs, b{batch}", ms(r["expanded naive"]),
        ms(p["expanded (three convs)"]))
    row(f"train step, expanded r4: Reparo online vs PyTorch 3 convs, b{batch}", ms(r["expanded online"]),
        ms(p["expanded (three convs)"]))
    row(f"train step, expanded r4: Reparo auto vs PyTorch 3 convs, b{batch}", ms(r["expanded auto"]),
        ms(p["expanded (three convs)"]))
    row(f"train step, dense, b{batch}", ms(r["dense"]), ms(p["dense"]))
    for name, label in (("pruned_folded", "pruned 0.7, collapsed + BN folded"), ("dense_folded", "dense, BN folded")):
        for size in (1, batch):
            key = f"{name}/{size}"
            row(f"inference, {label}, b{size}", ms(inference["reparo"][key]), ms(inference["pytorch"][key]),
                ms(inference["onnxruntime"][key]))
    lines = ["| workload (median ms) | Reparo | PyTorch | ONNX Runtime | Reparo/PyTorch | Reparo/ORT |",
             "|---|---:|---:|---:|---:|---:|", *rows]

    s = results["speedup_dense_over_pruned"]
    lines += ["", f"Dense → pruned 0.7 speedup (FLOP ratio from describe(): {s['flop_ratio_train']:.2f}× unfolded, "
              f"{s['flop_ratio_folded']:.2f}× folded):", "",
              "| workload | Reparo | PyTorch | ONNX Runtime | FLOP ratio |", "|---|---:|---:|---:|---:|",
              f"| train step b{batch} | {s['train_step']['reparo']:.2f}× | {s['train_step']['pytorch']:.2f}× | – | "
              f"{s['flop_ratio_train']:.2f}× |"]
    for size in (1, batch):
        entry = s[f"infer_batch{size}"]
        lines.append(f"| inference b{size} (folded) | {entry['reparo']:.2f}× | {entry['pytorch']:.2f}× | "
                     f"{entry['onnxruntime']:.2f}× | {s['flop_ratio_folded']:.2f}× |")
    lines += ["", "Agreement with reparo_infer (max |Δ| / max |reference|, 8 images):", ""]
    lines += [f"- {key}: {value:.1e}" for key, value in results["agreement_max_relative_error"].items()]
    losses = train["first_step_loss"]
    lines += ["", "First-step CE loss on the same batch and weights: " + ", ".join(
        f"{key} {value:.5f}" for key, value in losses.items())]
    m = results["machine"]
    lines += ["", f"{m['cpu']}, {m['cores']} cores, threads {results['threads']}; torch {results['versions']['torch']}, "
              f"onnxruntime {results['versions']['onnxruntime']}; load average {m['loadavg_start']:.2f} → "
              f"{m['loadavg_end']:.2f}; ≥{results['min_repetitions']} repetitions, medians.",
              "CPU share taken by other processes per timing block: " + ", ".join(
                  f"{block} {100 * share:.1f}%" for block, share in results["foreign_cpu_share"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
