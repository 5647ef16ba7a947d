#!/usr/bin/env python3
"""Training throughput on Fashion-MNIST: Reparo against PyTorch, images per second.

The net of issue 19, item 5: a 6-conv VGG-style CNN for 1×28×28 input, conv 3×3 (pad 1, no
bias) → BatchNorm → ReLU with widths 32 32 | pool | 64 64 | pool | 128 128, then global average
pool → linear 10 (``SMALL_NET``). Two phases, each timed in alternating rounds (A B A B …, which
goes first alternates too) in one process, threads 2 on both sides:

- ``teacher``: dense training, the main job's teacher settings (``reparo reproduce``,
  ``ReproduceProtocol``): SGD lr 0.05, momentum 0.9, weight decay 5e-4 on conv/linear weights,
  cosine schedule over the main job's 4 teacher epochs, no augmentation.
- ``spkd``: fine-tuning of the pruned (ratio 0.7) and expanded (rate 4, 1×1 → 3×3 → 1×1 chains)
  student with CE + 300 · SP-KD against the dense teacher (eval mode, forward every step), the
  main job's ``expand+spkd`` settings at 0.7: lr 0.02, cosine over one epoch, ``kd_layers``
  "pruned", Reparo's ``chain_mode`` "auto". PyTorch runs the three-conv chain as
  ``reparo.torch_interop`` builds it and the SP-KD loss as the torch reference of
  ``bindings/python/tests/test_torch_training.py`` computes it.

Both start from the same weights (Reparo's, loaded into torch through ``torch_interop``) and see
the same batches (``reparo.fit_order``: Reparo's own ``reparo_trainer_fit`` loop over its copy
of the data; PyTorch indexes a preloaded tensor, its fastest way to batch). Batch 128, the last
batch of the epoch smaller. A round is one full epoch (60,000 images) per framework, or
``--steps N`` batches for a quick look; each framework keeps training its model from round to
round. Reported: images/s median and min–max over the rounds, the median of the per-round
ratios Reparo / PyTorch, and the share of the CPU other processes took meanwhile.

    OPENBLAS_NUM_THREADS=2 /work/main/.venv/bin/python bench/fashion_mnist_throughput.py \\
        [--rounds 3] [--steps N] [--phases teacher,spkd] [--threads 2] [--clock wall|cpu] [--out results.md]

``--out x.md`` writes the markdown table to x.md and all numbers to x.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "bindings" / "python"))

from peers import ForeignLoad, machine  # noqa: E402  (sets OPENBLAS_NUM_THREADS first)
from onnx_speed import blas_core, cpu_family  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import reparo  # noqa: E402
from reparo import torch_interop  # noqa: E402

BATCH = 128
#: Threads of both frameworks (--threads).
THREADS = 2
#: The clock rounds are timed with (--clock): wall, or the process's CPU time.
CLOCK = time.perf_counter
#: conv widths 32 32 | 64 64 | 128 128, a 2×2 max-pool between the stages.
SMALL_NET: Dict[str, Any] = {
    "input": [1, 28, 28],
    "classes": 10,
    "layers": [
        *[layer for width in (32, 32, None, 64, 64, None, 128, 128) for layer in (
            [{"type": "maxpool", "kernel": 2}] if width is None else
            [{"type": "conv", "out": width, "kernel": 3, "padding": 1},
             {"type": "batchnorm"}, {"type": "relu"}])],
        {"type": "avgpool"},
        {"type": "flatten"},
        {"type": "linear", "out": 10},
    ],
}
#: The main job's settings (Sources/reparo-cli/ReproduceProtocol.swift, Reproduce.swift).
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
TEACHER_LR, TEACHER_EPOCHS = 0.05, 4
SPKD_LR, SPKD_EPOCHS, KD_WEIGHT = 0.02, 1, 300.0
RATIO, RATE = 0.7, 4
#: Pause at each switch of framework, longer than either's idle polling.
SWITCH_PAUSE = 0.05


# --- PyTorch side: the reference training step ------------------------------------------------


def run_layers(net: torch.nn.Module, layers: List[Dict[str, Any]], x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Logits and every top-level layer's output (as test_torch_training.run)."""
    outputs = []
    for layer in layers:
        kind = layer["type"]
        if kind in ("conv", "batchnorm"):
            x = net.get_submodule(layer["name"])(x)
        elif kind == "linear":
            x = net.get_submodule(layer["name"])(x.flatten(1))[:, :, None, None]
        elif kind == "relu":
            x = F.relu(x)
        elif kind == "maxpool":
            x = F.max_pool2d(x, layer["kernel"], layer["stride"])
        elif kind == "avgpool":
            x = x.mean((2, 3), keepdim=True)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1, 1, 1)
        else:
            raise ValueError(f"layer type {kind} is not in this benchmark's net")
        outputs.append(x)
    return x.flatten(1), outputs


def distillation_taps(student: List[Dict[str, Any]], teacher: List[Dict[str, Any]]) -> List[Tuple[int, int]]:
    """(student index, teacher index) of the ReLUs closing conv → BN → ReLU whose conv was
    pruned (kd_layers "pruned"; as test_torch_training.distillation_taps)."""
    teacher_index = {layer["name"]: index for index, layer in enumerate(teacher)}
    taps = []
    for index, layer in enumerate(student[:-1]):
        if layer["type"] != "relu" or index < 2 or student[index - 1]["type"] != "batchnorm":
            continue
        conv = student[index - 2]
        if conv["type"] == "conv" and layer["name"] in teacher_index \
                and conv["out"] != teacher[teacher_index[conv["name"]]]["out"]:
            taps.append((index, teacher_index[layer["name"]]))
    return taps


def similarity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """SP-KD of one layer pair (Tung & Mori 2019, eq. 2–4)."""
    b = student.shape[0]
    a_s, a_t = student.reshape(b, -1), teacher.reshape(b, -1)
    g_s = F.normalize(a_s @ a_s.T, p=2, dim=1)
    g_t = F.normalize(a_t @ a_t.T, p=2, dim=1)
    return ((g_s - g_t) ** 2).sum() / b**2


def torch_model(path: pathlib.Path) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    state_dict, spec = torch_interop.load_into_torch(path, with_spec=True)
    net = torch_interop.build_torch_model(spec)
    net.load_state_dict(state_dict, strict=True)
    return net, spec


class TorchRun:
    """PyTorch's training loop: SGD (weight decay on conv/linear weights only, as Reparo),
    cosine rate set per step, CE + kd_weight · mean SP-KD over the taps."""

    def __init__(self, student: pathlib.Path, teacher: pathlib.Path | None, lr: float, total_steps: int,
                 images: torch.Tensor, labels: torch.Tensor) -> None:
        self.net, self.spec = torch_model(student)
        self.net.train()
        self.teacher = None
        self.taps: List[Tuple[int, int]] = []
        if teacher is not None:
            self.teacher, self.teacher_spec = torch_model(teacher)
            self.teacher.eval()
            self.taps = distillation_taps(self.spec["layers"], self.teacher_spec["layers"])
        decayed = {id(m.weight) for m in self.net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
        params = list(self.net.parameters())
        self.optimizer = torch.optim.SGD(
            [{"params": [p for p in params if id(p) in decayed], "weight_decay": WEIGHT_DECAY},
             {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0}],
            lr=lr, momentum=MOMENTUM)
        self.lr, self.total_steps, self.step_index = lr, total_steps, 0
        self.images, self.labels = images, labels

    def step(self, index: torch.Tensor) -> float:
        x, y = self.images[index], self.labels[index]
        rate = self.lr * 0.5 * (1 + math.cos(math.pi * min(self.step_index, self.total_steps) / self.total_steps))
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        logits, outputs = run_layers(self.net, self.spec["layers"], x)
        loss = F.cross_entropy(logits, y)
        if self.taps:
            with torch.no_grad():
                _, teacher_outputs = run_layers(self.teacher, self.teacher_spec["layers"], x)
            kd = sum(similarity_loss(outputs[s], teacher_outputs[t]) for s, t in self.taps) / len(self.taps)
            loss = loss + KD_WEIGHT * kd
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_index += 1
        return float(loss.detach())

    def epoch(self, order: np.ndarray) -> Tuple[int, float]:
        """Images trained and the last loss, over one epoch in `order`."""
        batches = torch.from_numpy(order).split(BATCH)
        loss = float("nan")
        for index in batches:
            loss = self.step(index)
        return len(order), loss


# --- Reparo side ------------------------------------------------------------------------------


class ReparoRun:
    """Reparo's own loop (``reparo_trainer_fit``) over its copy of the data."""

    def __init__(self, student: reparo.Model, teacher: reparo.Model | None, lr: float, total_steps: int,
                 dataset: reparo.Dataset, steps: int | None, seed: int) -> None:
        options: Dict[str, Any] = {"lr": lr, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                                   "schedule": "cosine", "total_steps": total_steps, "threads": THREADS, "seed": seed}
        if teacher is not None:
            options.update(kd_weight=KD_WEIGHT, kd_layers="pruned", chain_mode="auto")
        self.trainer = reparo.Trainer(student, teacher, **options)
        self.dataset, self.steps = dataset, steps

    def epoch(self, seed: int) -> Tuple[int, float]:
        """Images trained and the last loss, over one epoch (or `steps` batches) of seed `seed`."""
        count = len(self.dataset)
        done = [0]

        def progress(result, epoch, epochs, batch, batches, loss, accuracy):  # type: ignore[no-untyped-def]
            done[0] = batch
            return False if self.steps is not None and batch >= self.steps else None

        last = self.trainer.fit_native(self.dataset, 1, BATCH, seed=seed, progress=progress)
        images = min(done[0] * BATCH, count)
        return images, last.loss if last else float("nan")


# --- timing -----------------------------------------------------------------------------------


def compare(name: str, reparo_epoch: Callable[[int], Tuple[int, float]], torch_epoch: Callable[[int], Tuple[int, float]],
            rounds: int) -> Dict[str, Any]:
    """Alternating rounds; images/s per framework and round."""
    rates: Dict[str, List[float]] = {"reparo": [], "pytorch": []}
    losses: Dict[str, List[float]] = {"reparo": [], "pytorch": []}
    load = ForeignLoad()
    for round_index in range(rounds):
        order = ("reparo", "pytorch") if round_index % 2 == 0 else ("pytorch", "reparo")
        seed = 1000 + round_index
        for framework in order:
            time.sleep(SWITCH_PAUSE)
            start = CLOCK()
            images, loss = (reparo_epoch if framework == "reparo" else torch_epoch)(seed)
            seconds = CLOCK() - start
            rates[framework].append(images / seconds)
            losses[framework].append(loss)
            print(f"  {name} round {round_index + 1} {framework:7s}: {images / seconds:8.1f} images/s "
                  f"({images} images, {seconds:.1f} s, last loss {loss:.4f})", flush=True)
    ratios = [r / p for r, p in zip(rates["reparo"], rates["pytorch"])]
    summary = {framework: {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values,
                           "last_losses": losses[framework]}
               for framework, values in rates.items()}
    return {"phase": name, **summary, "ratio_median": statistics.median(ratios), "ratios": ratios,
            "foreign_cpu_share": load.share()}


def table(results: List[Dict[str, Any]], info: Dict[str, Any]) -> str:
    lines = [f"CPU {info['cpu']} ({info['cpu_family']}), {info['cores']} cores; OpenBLAS core {info['blas_core']}; "
             f"threads {THREADS} (Reparo trainer, torch.set_num_threads); PyTorch {info['torch']}; batch {BATCH}; "
             f"{info['unit']} per round, {info['rounds']} rounds; {info['clock']} clock",
             "",
             "| phase | Reparo images/s (min–max) | PyTorch images/s (min–max) | Reparo / PyTorch | other processes' CPU |",
             "|---|---:|---:|---:|---:|"]
    for result in results:
        r, p = result["reparo"], result["pytorch"]
        lines.append(f"| {result['phase']} | {r['median']:,.0f} ({r['min']:,.0f}–{r['max']:,.0f}) | "
                     f"{p['median']:,.0f} ({p['min']:,.0f}–{p['max']:,.0f}) | **{result['ratio_median']:.2f}×** "
                     f"({min(result['ratios']):.2f}–{max(result['ratios']):.2f}) | {100 * result['foreign_cpu_share']:.1f} % |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per phase (≥ 1)")
    parser.add_argument("--steps", type=int, help="batches per round instead of a full epoch")
    parser.add_argument("--phases", default="teacher,spkd", help="comma-separated: teacher, spkd")
    parser.add_argument("--threads", type=int, default=2, help="threads of both frameworks")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or process CPU time (with --threads 1, for a busy machine)")
    parser.add_argument("--data", help="Fashion-MNIST folder (default: the library's lookup)")
    parser.add_argument("--out", help="write the markdown table here and the numbers beside it (.json)")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if args.rounds < 1 or (args.steps is not None and args.steps < 1) or not set(phases) <= {"teacher", "spkd"} \
            or args.threads < 1:
        parser.error("--rounds ≥ 1, --steps ≥ 1, --threads ≥ 1, --phases from teacher, spkd")
    global THREADS, CLOCK
    THREADS = args.threads
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    torch.set_num_threads(THREADS)
    dataset = reparo.Dataset.load("fashion-mnist", args.data, split="train")
    count = len(dataset)
    images = torch.from_numpy(np.array(dataset.images))  # a writable copy, as torch wants
    labels = torch.from_numpy(dataset.labels.astype(np.int64))
    steps_per_epoch = math.ceil(count / BATCH)

    def torch_order(seed: int) -> np.ndarray:
        order = reparo.fit_order(count, seed, 1)
        return order[: args.steps * BATCH] if args.steps is not None else order

    info = {**machine(), "cpu_family": cpu_family(), "blas_core": blas_core(), "torch": torch.__version__,
            "threads": THREADS, "batch": BATCH, "rounds": args.rounds, "clock": args.clock,
            "unit": f"{args.steps} batches" if args.steps else f"one epoch ({count} images)",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "spec": SMALL_NET}
    try:
        info["commit"] = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    print(f"{info['cpu']} ({info['cpu_family']}), OpenBLAS core {info['blas_core']}, threads {THREADS}, "
          f"torch {torch.__version__}, {count} training images", flush=True)

    results = []
    with tempfile.TemporaryDirectory() as folder, reparo.Model.create(SMALL_NET, seed=0) as dense:
        teacher_path = pathlib.Path(folder) / "teacher.safetensors"
        dense.save(teacher_path)
        if "teacher" in phases:
            with dense.clone() as model:
                ours = ReparoRun(model, None, TEACHER_LR, TEACHER_EPOCHS * steps_per_epoch, dataset, args.steps, seed=0)
                theirs = TorchRun(teacher_path, None, TEACHER_LR, TEACHER_EPOCHS * steps_per_epoch, images, labels)
                results.append(compare("teacher", ours.epoch, lambda seed: theirs.epoch(torch_order(seed)), args.rounds))
                ours.trainer.close()
        if "spkd" in phases:
            # A teacher a few hundred steps into training, so that pruning and SP-KD see
            # structured weights; its weights do not change the work per step.
            with reparo.Trainer(dense, lr=TEACHER_LR, threads=THREADS) as warm:
                warm.fit_native(dataset, 1, BATCH, seed=7, progress=lambda result, *rest: result.step < 200 or False)
            dense.save(teacher_path)
            with dense.prune(ratio=RATIO) as student:
                student.expand(rate=RATE, seed=0)
                student_path = pathlib.Path(folder) / "student.safetensors"
                student.save(student_path)
                ours = ReparoRun(student, dense, SPKD_LR, SPKD_EPOCHS * steps_per_epoch, dataset, args.steps, seed=0)
                theirs = TorchRun(student_path, teacher_path, SPKD_LR, SPKD_EPOCHS * steps_per_epoch, images, labels)
                print(f"  spkd taps (student, teacher layer index): {theirs.taps}", flush=True)
                results.append(compare("spkd", ours.epoch, lambda seed: theirs.epoch(torch_order(seed)), args.rounds))
                ours.trainer.close()

    text = table(results, info)
    print("\n" + text)
    if args.out:
        out = pathlib.Path(args.out)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
