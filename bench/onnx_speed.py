#!/usr/bin/env python3
"""Reparo's exported ONNX model in onnxruntime against the same model run by Reparo.

Builds VGG-16 (CIFAR, 3×32×32, Reparo's preset), prunes it 0.7, expands (rate 4) and collapses
it with BatchNorm folded (the deploy form), folds the dense model likewise, exports both with
``Model.export_onnx`` and times, in one process, ``Model.infer`` (threads 2) against an
onnxruntime session on the exported file (default session options, ``intra_op_num_threads``
2), batch 64 and 1. The two alternate round by round (which goes first alternates too), with
a 20 ms pause at each switch so neither runtime's idle threads still poll while the other
runs; every round times a block of calls lasting ≥ 50 ms (one call at batch 64), reported per
call. Figures: median and spread (min–max) of ≥ 5 rounds after warm-up, and the median of the
per-round ratios Reparo / onnxruntime. Logits are checked to agree (scaled error ≤ 1e-4)
before timing. Weights are random (speed does not depend on their values).

    OPENBLAS_NUM_THREADS=2 bench/.venv/bin/python bench/onnx_speed.py [--reps 9] [--out results.md]

Needs numpy, onnxruntime (and torch, which bench/peers.py imports; peers.py provides the
machine description and the foreign-load meter used here).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "bindings" / "python"))

from peers import THREADS, ForeignLoad, machine  # noqa: E402  (sets OPENBLAS_NUM_THREADS first)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import reparo  # noqa: E402
from reparo import _lib  # noqa: E402

#: Scaled logit error allowed between the runtimes (as in the ONNX tests).
TOLERANCE = 1e-4
#: Pause at each switch of runtime, longer than either's idle polling (Reparo's helpers poll
#: 200 µs; onnxruntime's pool spins a few thousand iterations before sleeping).
SWITCH_PAUSE = 0.02
#: A timed block repeats a cheap call until it lasts this long.
BLOCK_SECONDS = 0.05


def blas_core() -> str:
    """OpenBLAS's kernel name (openblas_get_corename, found through libreparo.so's
    dependencies), as `reparo reproduce` reports it."""
    try:
        function = _lib.lib.openblas_get_corename
    except AttributeError:
        return "unknown"
    function.restype = ctypes.c_char_p
    function.argtypes = []
    name = function()
    return name.decode() if name else "unknown"


def cpu_family() -> str:
    """"family F model M" from lscpu (the model name alone, e.g. "AMD EPYC", hides the generation)."""
    fields = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        return "family ? model ?"
    return f"family {fields.get('CPU family', '?')} model {fields.get('Model', '?')}"


def session(path: pathlib.Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def calls_per_block(call: Callable[[], object]) -> int:
    start = time.perf_counter()
    call()
    return max(1, int(BLOCK_SECONDS / max(time.perf_counter() - start, 1e-6)))


def timed(call: Callable[[], object], count: int) -> float:
    """Milliseconds per call over a block of `count` calls."""
    start = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - start) / count * 1e3


def compare(model: reparo.Model, runner: ort.InferenceSession, images: np.ndarray, reps: int) -> Dict[str, object]:
    """Alternating rounds of Reparo and onnxruntime on the same images."""
    feed = {"input": images}
    reparo_call: Callable[[], object] = lambda: model.infer(images)
    ort_call: Callable[[], object] = lambda: runner.run(["logits"], feed)
    expected, (served,) = model.infer(images), runner.run(["logits"], feed)
    error = float(np.max(np.abs(served - expected)) / max(1.0, float(np.max(np.abs(expected)))))
    if error > TOLERANCE:
        raise SystemExit(f"onnxruntime and Reparo disagree: scaled logit error {error:.2e}")
    for call in (reparo_call, ort_call, reparo_call, ort_call):  # warm-up: workspaces, pools, caches
        timed(call, 2)
        time.sleep(SWITCH_PAUSE)
    counts = {"reparo": calls_per_block(reparo_call), "onnxruntime": calls_per_block(ort_call)}
    times: Dict[str, List[float]] = {"reparo": [], "onnxruntime": []}
    for round_index in range(reps):
        order = ("reparo", "onnxruntime") if round_index % 2 == 0 else ("onnxruntime", "reparo")
        for name in order:
            time.sleep(SWITCH_PAUSE)
            times[name].append(timed(reparo_call if name == "reparo" else ort_call, counts[name]))
    ratios = [r / o for r, o in zip(times["reparo"], times["onnxruntime"])]
    return {"times": times, "calls_per_round": counts, "ratio": statistics.median(ratios),
            "ratio_range": (min(ratios), max(ratios)), "error": error}


def cell(values: List[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9, help="timed rounds per case (≥ 5)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", help="also write the markdown table to this file")
    args = parser.parse_args()
    if args.reps < 5:
        parser.error("--reps must be at least 5")

    started = datetime.datetime.now(datetime.timezone.utc)
    info = machine()
    dense = reparo.Model.create({"preset": "vgg16", "input": [3, 32, 32], "classes": 10}, seed=1)
    pruned = dense.prune(ratio=0.7)
    pruned.expand(rate=4)
    pruned.collapse(fold_batchnorm=True)
    dense.collapse(fold_batchnorm=True)
    rng = np.random.default_rng(0)
    inputs = {size: rng.standard_normal((size, 3, 32, 32)).astype(np.float32) for size in (args.batch, 1)}
    rows = []
    load = ForeignLoad()
    with tempfile.TemporaryDirectory() as folder:
        for name, model in (("pruned 0.7, collapsed, BN folded", pruned), ("dense, BN folded", dense)):
            model.threads = THREADS
            path = pathlib.Path(folder) / "model.onnx"
            model.export_onnx(path)
            runner = session(path)
            for size in (args.batch, 1):
                result = compare(model, runner, inputs[size], args.reps)
                rows.append((name, size, model.parameter_count, result))
                print(f"{name}, batch {size}: Reparo {cell(result['times']['reparo'])} ms, "
                      f"onnxruntime {cell(result['times']['onnxruntime'])} ms, "
                      f"Reparo/onnxruntime {result['ratio']:.2f}", flush=True)
    foreign = load.share()

    lines = [f"| model (VGG-16 CIFAR) | batch | Reparo `Model.infer` ms | onnxruntime ms | Reparo / onnxruntime |",
             "|---|---:|---:|---:|---:|"]
    for name, size, _, result in rows:
        low, high = result["ratio_range"]
        lines.append(f"| {name} | {size} | {cell(result['times']['reparo'])} | {cell(result['times']['onnxruntime'])} "
                     f"| {result['ratio']:.2f} ({low:.2f}–{high:.2f}) |")
    lines += ["",
              f"Median (min–max) of {args.reps} alternating rounds after warm-up; calls per round "
              + ", ".join(f"{name} b{size}: {result['calls_per_round']['reparo']}/{result['calls_per_round']['onnxruntime']}"
                          for name, size, _, result in rows) + " (Reparo/onnxruntime).",
              f"Parameters: pruned {rows[0][2]:,}, dense {rows[-1][2]:,}. Largest scaled logit error "
              f"{max(result['error'] for *_, result in rows):.1e}.",
              f"{info['cpu']} ({cpu_family()}), {info['cores']} cores, OpenBLAS core {blas_core()}, threads {THREADS} "
              f"(Model.threads, ORT intra_op_num_threads; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}); "
              f"onnxruntime {ort.__version__}, Reparo {reparo.library_version()}.",
              f"{started:%Y-%m-%d %H:%M} UTC; load average {info['loadavg_start']:.2f} at start, "
              f"{os.getloadavg()[0]:.2f} at end; other processes took {foreign:.0%} of the CPU during the run."]
    markdown = "\n".join(lines)
    print()
    print(markdown)
    if args.out:
        pathlib.Path(args.out).write_text(markdown + "\n")
    pruned.close()
    dense.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
