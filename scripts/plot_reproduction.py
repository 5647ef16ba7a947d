#!/usr/bin/env python3
"""Plot `reparo reproduce` results: accuracy against pruning ratio, one line per fine-tuning
variant (mean over seeds, error bars: 95 % Student-t interval of the mean; the variants are
drawn slightly apart on the x axis so the bars do not hide each other).

Usage: plot_reproduction.py reproduce.csv out.png [dense_accuracy [title]]
"""
import csv
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Two-sided 95 % Student-t quantiles t(0.975, n − 1) for n = 2…10 seeds (scipy.stats.t.ppf);
# beyond 10 seeds the normal's 1.96 is within 6 %.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
ORDER = ["vanilla", "expand+spkd", "expand", "spkd"]
LABELS = {"vanilla": "vanilla fine-tuning", "expand+spkd": "expand + SP-KD (method)", "expand": "expand only",
          "spkd": "SP-KD only"}


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    dense = float(sys.argv[3]) if len(sys.argv) > 3 else None
    title = sys.argv[4] if len(sys.argv) > 4 else ""
    table: dict[str, dict[float, list[float]]] = {}
    split = "test"
    with open(source, newline="") as handle:
        for row in csv.DictReader(handle):
            split = row.get("split", split)
            table.setdefault(row["variant"], {}).setdefault(float(row["ratio"]), []).append(100 * float(row["accuracy"]))
    variants = [v for v in ORDER if v in table] + [v for v in table if v not in ORDER]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for offset_index, variant in enumerate(variants):
        by_ratio = table[variant]
        ratios = sorted(by_ratio)
        means = [statistics.mean(by_ratio[r]) for r in ratios]
        errors = []
        for r in ratios:
            n = len(by_ratio[r])
            errors.append(T975.get(n - 1, 1.96) * statistics.stdev(by_ratio[r]) / n ** 0.5 if n > 1 else 0)
        offset = (offset_index - (len(variants) - 1) / 2) * 0.004
        axis.errorbar([r + offset for r in ratios], means, yerr=errors, marker="o", capsize=3,
                      label=LABELS.get(variant, variant), linewidth=2.2 if variant == "expand+spkd" else 1.2)
    if dense is not None:
        axis.axhline(100 * dense, color="grey", linestyle="--", label="dense teacher")
    axis.set_xlabel("pruning ratio (fraction of filters removed)")
    axis.set_ylabel(f"{split} accuracy (%)")
    axis.set_title(title or "Fine-tuning pruned networks", fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(target, dpi=120)


if __name__ == "__main__":
    main()
