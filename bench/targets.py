#!/usr/bin/env python3
"""Issue 19's speed targets, checked against two or more `bench/run.sh` results.

Each run is one JSON file written by `bench/run.sh` (peers.py's output with reparo-bench's
embedded under "engine"). For every target the ratio is computed per run, and the table shows
the median over runs, the spread (min–max) and the status: "met" when the median is within
the target, else "missed by X %" (how far the median is above the bound). Speed figures only
compare within one run: each ratio divides two timings taken in the same run.

    bench/targets.py bench/results/<date>-run1.json bench/results/<date>-run2.json \
        [--throughput bench/results/<fashion-mnist>.json ...] [--out table.md]

A target whose measurement is absent from a run (e.g. a run without the engine section) is
reported as "not measured".
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys


def _median_ms(block: dict, key: str) -> float | None:
    entry = block.get(key)
    return entry["median_ms"] if isinstance(entry, dict) and "median_ms" in entry else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _best_peer_ratio(inference: dict, key: str) -> float | None:
    """Reparo's time over the faster of PyTorch and ONNX Runtime for one inference workload."""
    mine = _median_ms(inference.get("reparo", {}), key)
    peers = [t for t in (_median_ms(inference.get("pytorch", {}), key),
                         _median_ms(inference.get("onnxruntime", {}), key)) if t is not None]
    return _ratio(mine, min(peers)) if peers else None


def _conv_efficiency(run: dict) -> float | None:
    """Worst of the per-model totals: sgemm time / engine time over all conv passes of a step."""
    engine = run.get("engine") or {}
    section = engine.get("conv_efficiency") or {}
    records = section.get("results") if isinstance(section, dict) else None
    totals = [r["total"]["efficiency"] for r in records or [] if isinstance(r, dict) and "total" in r]
    return min(totals) if totals else None


# (name, bound, "max" = ratio must be ≤ bound (time ratios) or "min" = ≥ bound, extractor)
TARGETS = [
    ("fine-tuning step, pruned 0.7 compact / PyTorch", 0.7, "max",
     lambda r: _ratio(_median_ms(r["train_step"]["reparo"], "compact"),
                      _median_ms(r["train_step"]["pytorch"], "compact"))),
    ("fine-tuning step, dense / PyTorch", 0.7, "max",
     lambda r: _ratio(_median_ms(r["train_step"]["reparo"], "dense"),
                      _median_ms(r["train_step"]["pytorch"], "dense"))),
    ("fine-tuning step, expanded (auto) / PyTorch three-conv chain", 0.3, "max",
     lambda r: _ratio(_median_ms(r["train_step"]["reparo"], "expanded auto"),
                      _median_ms(r["train_step"]["pytorch"], "expanded (three convs)"))),
    ("inference, dense folded, batch 64 / best peer", 0.9, "max",
     lambda r: _best_peer_ratio(r["inference"], f"dense_folded/{r.get('batch', 64)}")),
    ("inference, dense folded, batch 1 / best peer", 1.0, "max",
     lambda r: _best_peer_ratio(r["inference"], "dense_folded/1")),
    ("inference, pruned 0.7 folded, batch 64 / best peer", 0.6, "max",
     lambda r: _best_peer_ratio(r["inference"], f"pruned_folded/{r.get('batch', 64)}")),
    ("inference, pruned 0.7 folded, batch 1 / best peer", 0.9, "max",
     lambda r: _best_peer_ratio(r["inference"], "pruned_folded/1")),
    ("conv passes of a training step: sgemm time / engine time (worst model)", 0.8, "min", _conv_efficiency),
]

THROUGHPUT_BOUND = 1.3


def _status(value: float | None, bound: float, sense: str) -> str:
    if value is None:
        return "not measured"
    if sense == "max":
        return "met" if value <= bound else f"missed by {100 * (value / bound - 1):.0f} %"
    return "met" if value >= bound else f"missed by {100 * (1 - value / bound):.0f} %"


def _row(name: str, bound: float, sense: str, values: list[float]) -> str:
    relation = "≤" if sense == "max" else "≥"
    if not values:
        return f"| {name} | {relation} {bound:g} | – | – | 0 | not measured |"
    median = statistics.median(values)
    return (f"| {name} | {relation} {bound:g} | {median:.2f} | {min(values):.2f}–{max(values):.2f} | "
            f"{len(values)} | {_status(median, bound, sense)} |")


def _throughput_ratios(paths: list[pathlib.Path]) -> dict[str, list[float]]:
    """Reparo images/s over PyTorch images/s per phase (one per alternating round), from the JSON
    that fashion_mnist_throughput.py writes beside its markdown (``--out x.md`` → x.json)."""
    phases: dict[str, list[float]] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for entry in data.get("results") or []:
            ratios = entry.get("ratios") if isinstance(entry, dict) else None
            if entry.get("phase") and isinstance(ratios, list):
                phases.setdefault(entry["phase"], []).extend(float(r) for r in ratios)
    return phases


def table(runs: list[dict], throughput: list[pathlib.Path]) -> str:
    machines = {(r.get("machine", {}).get("cpu"),
                 ((r.get("machine", {}).get("system") or {}).get("blas") or {}).get("core")) for r in runs}
    lines = ["| target | bound | median | spread | runs | status |", "|---|---:|---:|---:|---:|---|"]
    for name, bound, sense, extract in TARGETS:
        values = []
        for run in runs:
            try:
                value = extract(run)
            except (KeyError, TypeError):
                value = None
            if value is not None:
                values.append(value)
        lines.append(_row(name, bound, sense, values))
    for phase, values in sorted(_throughput_ratios(throughput).items()):
        lines.append(_row(f"Fashion-MNIST {phase}: Reparo / PyTorch images/s (runs = rounds)", THROUGHPUT_BOUND,
                          "min", values))
    header = [f"Runs: {len(runs)}; machine (CPU, BLAS core): " +
              ", ".join(f"{cpu or '?'} / {core or 'not recorded'}" for cpu, core in sorted(machines, key=str)), ""]
    return "\n".join(header + lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path, help="bench/run.sh JSON results (≥ 2 for a spread)")
    parser.add_argument("--throughput", nargs="*", type=pathlib.Path, default=[],
                        help="bench/fashion_mnist_throughput.py JSON results")
    parser.add_argument("--out", type=pathlib.Path, help="also write the table here")
    args = parser.parse_args()
    runs = [json.loads(path.read_text()) for path in args.runs]
    if len(runs) < 2:
        print("note: one run gives no spread; the issue asks for medians of at least 2 runs", file=sys.stderr)
    text = table(runs, args.throughput)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
