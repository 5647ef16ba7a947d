#!/usr/bin/env python3
"""Bring your PyTorch model: export it to ONNX, restore it with Reparo, serve the ONNX with
onnxruntime.

A small residual CNN is trained for a few epochs in PyTorch on the bundled digits (your
model), exported with torch.onnx.export, imported into Reparo, pruned (70 % of the filters),
expanded, fine-tuned with SP-KD against the imported dense model, collapsed back to the
compact shape and exported to ONNX, which onnxruntime then serves. Accuracy is printed at each
stage.

Run from the repository root after `bash scripts/build.sh` (needs torch, onnx, onnxruntime;
torch's default exporter also needs onnxscript, else the legacy exporter is used):
    python3 examples/python/bring_your_pytorch_model.py [output-folder]
"""
import importlib.util
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import reparo  # noqa: E402


class Net(nn.Module):
    """Your model: conv → BN → ReLU → max-pool → a residual block → conv → BN → ReLU →
    global average pool → linear. 1×8×8 digits in, 10 logits out."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.block_conv1, self.block_bn1 = nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.block_conv2, self.block_bn2 = nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        y = self.block_bn2(self.block_conv2(F.relu(self.block_bn1(self.block_conv1(x)))))
        x = F.relu(x + y)
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |Δlogit| / max(1, max |logit|)."""
    return float(np.max(np.abs(actual - expected)) / max(1.0, float(np.max(np.abs(expected)))))


def file_size(path: Path) -> int:
    """Bytes of an ONNX model, with its external data file if it has one."""
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/reparo-bring-your-model")
    folder.mkdir(parents=True, exist_ok=True)
    train = reparo.Dataset.load("digits", split="train")
    test = reparo.Dataset.load("digits", split="test")
    # Writable copies (the datasets' arrays are read-only views), as PyTorch wants.
    x_train, y_train, x_test, y_test = (np.array(a) for a in (train.images, train.labels, test.images, test.labels))

    # 1. Your model, trained in PyTorch (a few epochs; any training loop of yours).
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    order = np.random.default_rng(0)
    for _ in range(8):
        for batch in np.array_split(order.permutation(len(x_train)), len(x_train) // 64):
            optimizer.zero_grad()
            F.cross_entropy(net(torch.from_numpy(x_train[batch])), torch.from_numpy(y_train[batch]).long()).backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(x_test)).numpy()
    print(f"PyTorch dense: {accuracy(torch_logits, y_test):.2%} test accuracy, "
          f"{sum(p.numel() for p in net.parameters())} parameters")

    # 2. Export it to ONNX, as you would for serving (BatchNorm is folded into the convs; torch's
    #    default exporter writes the weights beside the graph, in dense.onnx.data).
    dense_onnx = folder / "dense.onnx"
    dynamo = importlib.util.find_spec("onnxscript") is not None  # torch's default exporter needs it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.from_numpy(x_test[:2]),), str(dense_onnx), input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          dynamo=dynamo, **({"verbose": False} if dynamo else {}))

    # 3. Import it into Reparo: the same network, the same logits.
    dense = reparo.Model.import_onnx(dense_onnx)
    print(f"imported:      {dense.evaluate(x_test, y_test)[0]:.2%} test accuracy, "
          f"max |Δlogit| vs PyTorch = {scaled_error(dense.infer(x_test), torch_logits):.2e} (scaled)")

    # 4. Prune 70 % of the filters (L1 norm; in the residual block only the inner conv, so the
    #    sum still adds matching channels).
    student = dense.prune(ratio=0.7)
    print(f"pruned:        {student.evaluate(x_test, y_test)[0]:.2%} test accuracy, "
          f"{student.parameter_count} of {dense.parameter_count} parameters")

    # 5. Restore: expand, fine-tune with cross-entropy + SP-KD against the dense model, collapse.
    student.expand(rate=4)
    epochs = 6
    steps = epochs * -(-len(x_train) // 64)
    with reparo.Trainer(student, teacher=dense, lr=0.01, momentum=0.9, schedule="cosine", total_steps=steps,
                        kd_weight=300) as trainer:
        trainer.fit(x_train, y_train, epochs=epochs, batch_size=64)
    student.collapse()
    restored_logits = student.infer(x_test)
    print(f"restored:      {accuracy(restored_logits, y_test):.2%} test accuracy, "
          f"{student.parameter_count} parameters ({student.state})")

    # 6. Export the compact model and serve it with onnxruntime (or any ONNX runtime).
    restored_onnx = folder / "restored.onnx"
    student.export_onnx(restored_onnx)
    session = onnxruntime.InferenceSession(str(restored_onnx), providers=["CPUExecutionProvider"])
    (served,) = session.run(["logits"], {"input": x_test})
    print(f"onnxruntime:   {accuracy(served, y_test):.2%} test accuracy, "
          f"max |Δlogit| vs Reparo = {scaled_error(served, restored_logits):.2e} (scaled); "
          f"{file_size(dense_onnx)} → {file_size(restored_onnx)} bytes")
    student.close()
    dense.close()


if __name__ == "__main__":
    main()
