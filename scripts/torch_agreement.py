#!/usr/bin/env python3
"""One full fine-tuning run both ways: Reparo, and the float64 PyTorch reference of
bindings/python/tests/test_torch_training.py, on the same batches. Trains a dense teacher
with Reparo on the bundled digits, prunes it, expands it, fine-tunes (CE + SP-KD, cosine
schedule), collapses, and prints both test accuracies and how far the weights drifted apart.

    .venv/bin/python scripts/torch_agreement.py [--ratio 0.7] [--epochs 10] [--teacher-epochs 10]
    .venv/bin/python scripts/torch_agreement.py --dataset fashion-mnist --ratio 0.9 --epochs 1 \
        --lr 0.02 --teacher results/teacher-fashion-mnist-<hash>.safetensors   # the main job's model

Needs the release library (scripts/build.sh) and torch (scripts/install-deps.sh's .venv).

Expect the two runs to agree to ~1e-6 for the first few dozen steps, then to drift apart
(measured: 3e-2 of the weights' scale after 220 steps, same accuracy): float32 rounding
eventually gives a pre-activation within rounding of 0 a different sign on the two sides,
and that ReLU decision changes one gradient outright (at step 37 of the default run, one
element 1e-8 of its channel's scale from 0 while the weights differed by 6e-7; from there
layers.4.bias drifted 10× faster). The 50-step test stays ahead of such events.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
sys.path.insert(0, str(ROOT / "bindings" / "python" / "tests"))  # the reference lives with its test

import numpy as np  # noqa: E402
import torch  # noqa: E402

import reparo  # noqa: E402
from reparo import torch_interop  # noqa: E402
from test_torch_training import Reference, load_double  # noqa: E402
from conftest import relative_error  # noqa: E402

#: Three convs (two of them before the pool): about 4× the test's CNN.
SPEC = {
    "input": [1, 8, 8],
    "classes": 10,
    "layers": [
        {"type": "conv", "out": 32, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "conv", "out": 32, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 2},
        {"type": "conv", "out": 64, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "avgpool"},
        {"type": "flatten"},
        {"type": "linear", "out": 10},
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratio", type=float, default=0.7)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=0.05, help="fine-tuning learning rate (cosine to 0)")
    parser.add_argument("--dataset", default="digits", help="digits (default) or fashion-mnist")
    parser.add_argument("--teacher", help="a dense teacher file for --dataset (e.g. the main job's "
                        "results/teacher-fashion-mnist-*.safetensors) instead of training the small CNN")
    args = parser.parse_args()
    torch.set_num_threads(1)  # see the test's one_torch_thread

    train, test = reparo.Dataset.load(args.dataset, split="train"), reparo.Dataset.load(args.dataset, split="test")
    batches_per_epoch = len(train) // args.batch
    steps = args.epochs * batches_per_epoch
    options = {"lr": args.lr, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine", "total_steps": steps}

    dense = reparo.Model.load(args.teacher) if args.teacher else reparo.Model.create(SPEC, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder, dense as teacher:
        folder = pathlib.Path(folder)
        if not args.teacher:
            with reparo.Trainer(teacher, lr=0.05) as trainer:
                trainer.fit(train.images, train.labels, args.teacher_epochs, args.batch, seed=args.seed)
        print(f"teacher: {teacher.evaluate(test.images, test.labels)[0]:.2%} test accuracy")
        teacher.save(folder / "teacher.safetensors")
        with teacher.prune(ratio=args.ratio) as student:
            student.expand()
            student.save(folder / "student.safetensors")
            reference = Reference(folder / "student.safetensors", folder / "teacher.safetensors", options)
            rng = np.random.default_rng(args.seed)
            seconds = {"reparo": 0.0, "pytorch": 0.0}
            worst_loss = 0.0
            with reparo.Trainer(student, teacher, **options) as trainer:
                for _ in range(args.epochs):
                    order = rng.permutation(len(train))
                    for b in range(batches_per_epoch):
                        index = order[b * args.batch : (b + 1) * args.batch]
                        started = time.perf_counter()
                        result = trainer.step(train.images[index], train.labels[index])
                        seconds["reparo"] += time.perf_counter() - started
                        started = time.perf_counter()
                        expected = reference.step(train.images[index], train.labels[index])
                        seconds["pytorch"] += time.perf_counter() - started
                        worst_loss = max(worst_loss, abs(result.loss - expected["loss"]) / abs(expected["loss"]))
            student.save(folder / "trained.safetensors")
            _, trained = torch_interop.read_file(folder / "trained.safetensors")
            state = {k: v.detach().numpy() for k, v in reference.net.state_dict().items()}
            drift = max(relative_error(trained[name], state[name]) for name in trained)
            student.collapse()
            student.save(folder / "collapsed.safetensors")
            reparo_accuracy = student.evaluate(test.images, test.labels)[0]
            compact, _ = load_double(folder / "collapsed.safetensors")
            counters = {k: v for k, v in compact.state_dict().items() if k.endswith("num_batches_tracked")}
            mine = {k: torch.from_numpy(v) for k, v in reference.collapsed_state_dict().items()}
            compact.load_state_dict({**counters, **mine}, strict=True)
            with torch.no_grad():
                logits = compact.eval()(torch.from_numpy(test.images).double()).numpy()
            torch_accuracy = float(np.mean(logits.argmax(1) == test.labels))
    print(f"pruned {args.ratio}, expanded, {steps} steps of CE + SP-KD (cosine), collapsed:")
    print(f"  Reparo  {reparo_accuracy:.2%} test accuracy ({seconds['reparo']:.1f} s of steps)")
    print(f"  PyTorch {torch_accuracy:.2%} test accuracy ({seconds['pytorch']:.1f} s of steps, float64)")
    print(f"  max relative loss deviation {worst_loss:.2e}; weights apart by {drift:.2e} of their scale")


if __name__ == "__main__":
    main()
