#!/usr/bin/env python3
"""The method step by step in Python: train a dense CNN on the bundled digits, prune it,
expand it, fine-tune with SP-KD from the dense teacher, collapse, evaluate and save.

Run from the repository root after `bash scripts/build.sh`:
    python3 examples/python/pipeline.py [output.safetensors]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import numpy as np  # noqa: E402

import reparo  # noqa: E402

SPEC = {
    "input": [1, 8, 8],
    "classes": 10,
    "layers": [
        {"type": "conv", "out": 32, "kernel": 3, "padding": 1}, {"type": "batchnorm"}, {"type": "relu"},
        {"type": "maxpool", "kernel": 2},
        {"type": "conv", "out": 64, "kernel": 3, "padding": 1}, {"type": "batchnorm"}, {"type": "relu"},
        {"type": "avgpool"}, {"type": "flatten"}, {"type": "linear", "out": 10},
    ],
}


def main() -> None:
    output = sys.argv[1] if len(sys.argv) > 1 else "/tmp/reparo-pipeline.safetensors"
    train = reparo.Dataset.load("digits", split="train")
    test = reparo.Dataset.load("digits", split="test")

    # 1. A dense teacher.
    dense = reparo.Model.create(SPEC, seed=0)
    epochs = 15
    steps = epochs * -(-len(train) // 64)
    with reparo.Trainer(dense, lr=0.05, schedule="cosine", total_steps=steps) as trainer:
        trainer.fit(train.images, train.labels, epochs=epochs, batch_size=64)
    dense_accuracy, _ = dense.evaluate(test.images, test.labels)
    print(f"dense:     {dense_accuracy:.2%} test accuracy, {dense.parameter_count} parameters")

    # 2. Prune 70% of the filters (L1 norm); the dense model stays as the teacher.
    student = dense.prune(ratio=0.7)
    print(f"pruned:    {student.evaluate(test.images, test.labels)[0]:.2%} before fine-tuning, "
          f"{student.parameter_count} parameters")

    # 3. Expand every conv into a 1×1 → 3×3 → 1×1 chain (rate 4): outputs are unchanged.
    before = student.infer(test.images[:32])
    student.expand(rate=4)
    after = student.infer(test.images[:32])
    print(f"expanded:  {student.parameter_count} trainable parameters, "
          f"max |Δlogit| = {np.abs(after - before).max():.2e}")

    # 4. Fine-tune with cross-entropy + SP-KD against the dense teacher.
    epochs = 6
    steps = epochs * -(-len(train) // 64)
    with reparo.Trainer(student, teacher=dense, lr=0.01, schedule="cosine", total_steps=steps, kd_weight=300) as trainer:
        trainer.fit(train.images, train.labels, epochs=epochs, batch_size=64)

    # 5. Collapse back to the compact shapes and evaluate; save for inference services.
    expanded_logits = student.infer(test.images[:32])
    student.collapse()
    collapsed_logits = student.infer(test.images[:32])
    accuracy, _ = student.evaluate(test.images, test.labels)
    print(f"collapsed: {accuracy:.2%} test accuracy, {student.parameter_count} parameters, "
          f"max |Δlogit| vs expanded = {np.abs(collapsed_logits - expanded_logits).max():.2e}")
    student.save(output)
    print(f"saved {output}")


if __name__ == "__main__":
    main()
