#!/usr/bin/env python3
"""Plot `reparo reproduce` results: test accuracy vs pruning ratio, one line per variant
(mean ± std over seeds). Usage: plot_reproduction.py reproduce.csv out.png [dense_accuracy]."""
import csv
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    dense = float(sys.argv[3]) if len(sys.argv) > 3 else None
    table: dict[str, dict[float, list[float]]] = {}
    with open(source, newline="") as handle:
        for row in csv.DictReader(handle):
            table.setdefault(row["variant"], {}).setdefault(float(row["ratio"]), []).append(100 * float(row["accuracy"]))
    figure, axis = plt.subplots(figsize=(6, 4))
    for variant, by_ratio in table.items():
        ratios = sorted(by_ratio)
        means = [statistics.mean(by_ratio[r]) for r in ratios]
        stds = [statistics.stdev(by_ratio[r]) if len(by_ratio[r]) > 1 else 0 for r in ratios]
        axis.errorbar(ratios, means, yerr=stds, marker="o", capsize=3, label=variant)
    if dense is not None:
        axis.axhline(100 * dense, color="grey", linestyle="--", label="dense teacher")
    axis.set_xlabel("pruning ratio (fraction of filters removed)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("Fine-tuning pruned networks (mean ± std over seeds)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(target, dpi=120)


if __name__ == "__main__":
    main()
